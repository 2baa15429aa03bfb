"""Row filters between reading a source and validating it (docs/protocol.md §4.1).

They reproduce how the paper built some of its data sets from the hub's versions: Reuters keeps
the documents with a single topic among the most frequent ones and drops repeated texts;
Stormfront drops two small classes. Each runs on both splits as read, before anything is split
or noised, and says in the data set's notes what it removed.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from memloc.errors import DataError

from .labels import canonical, label_list, map_key
from .sources.base import RawSplits


def _singles(value: Any) -> list[Any]:
    """The labels of one row: its list, or the single label as a one-element list."""
    labels = label_list(value)
    return [value] if labels is None else labels


def top_k_single_labels(train_labels: Sequence[Any], k: int) -> list[Any]:
    """The ``k`` labels that occur most often among training rows with exactly one label.

    Ties keep the order in which the labels first occur, as ``collections.Counter.most_common`` does.
    """
    counts: dict[Any, int] = {}
    for value in train_labels:
        labels = [canonical(v) for v in _singles(value)]
        if len(labels) == 1 and labels[0] is not None:
            counts[labels[0]] = counts.get(labels[0], 0) + 1
    return [label for label, _ in sorted(counts.items(), key=lambda item: -item[1])[:k]]


def _keep(frame: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    return frame[mask].reset_index(drop=True)


def _first_occurrences(frame: pd.DataFrame) -> np.ndarray:
    """True for each row whose (text_a, text_b) did not occur in an earlier row of the frame."""
    return ~frame[["text_a", "text_b"]].duplicated(keep="first").to_numpy()


def _single_label_rows(frame: pd.DataFrame, classes: list[Any]) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows with exactly one label among ``classes``, each label replaced by that single value."""
    keep = np.zeros(len(frame), dtype=bool)
    labels = frame["label"].tolist()
    chosen = set(classes)
    for i, value in enumerate(labels):
        singles = _singles(value)
        if len(singles) == 1 and canonical(singles[0]) in chosen:
            keep[i], labels[i] = True, singles[0]
    out = frame.assign(label=pd.Series(labels, dtype=object, index=frame.index))
    return out, keep


def _where(raw: RawSplits, split: str) -> str:
    return raw.train_where if split == "train" else str(raw.eval_where)


def _frames(raw: RawSplits) -> dict[str, pd.DataFrame]:
    return {"train": raw.train, **({"eval": raw.eval} if raw.eval is not None else {})}


def _store(raw: RawSplits, frames: dict[str, pd.DataFrame]) -> None:
    raw.train = frames["train"]
    if "eval" in frames:
        raw.eval = frames["eval"]


def single_label_subset(raw: RawSplits, k: int | None, drop_duplicates: bool) -> RawSplits:
    """Reuters as the paper built it: optionally drop repeated texts, then keep single-label rows of the top ``k`` labels.

    The top ``k`` labels are counted over the training split as read (repeats included); a text
    counts as repeated when the same ``(text_a, text_b)`` occurs earlier in the same split,
    whatever that earlier row's labels.
    """
    if k is None and not drop_duplicates:
        return raw
    classes = top_k_single_labels(raw.train["label"].tolist(), k) if k is not None else None
    frames = _frames(raw)
    for split, frame in frames.items():
        n = len(frame)
        if drop_duplicates:
            frame = _keep(frame, _first_occurrences(frame))
            raw.notes.append(f"{split}: dropped {n - len(frame)} rows whose text occurs earlier in the split")
        if classes is not None:
            m = len(frame)
            frame, keep = _single_label_rows(frame, classes)
            frame = _keep(frame, keep)
            raw.notes.append(
                f"{split}: kept {len(frame)} of {m} rows with a single label among the {k} most frequent "
                f"single training labels ({', '.join(map(str, classes))})"
            )
        if len(frame) == 0:
            raise DataError(
                f"{_where(raw, split)}: no example is left after single_label_top_k / drop_duplicate_texts. "
                "Check columns.label (it must name the column holding the label lists)."
            )
        frames[split] = frame
    _store(raw, frames)
    return raw


def drop_classes(raw: RawSplits, label_map: dict[str, Any] | None, dataset: str) -> RawSplits:
    """Remove the rows whose raw label ``label_map`` maps to null (classes the task leaves out).

    Rows with a label that is missing or absent from the map stay, for validation to report.
    """
    dropped = [key for key, value in (label_map or {}).items() if value is None]
    if not dropped:
        return raw
    if len(dropped) == len(label_map):
        raise DataError(
            f"data set '{dataset}': label_map maps every label ({', '.join(map(repr, dropped))}) to null, "
            f"which drops every class. Map at least two labels to class names in datasets.{dataset}.label_map."
        )
    def mapped_to_null(value: Any) -> bool:
        label = None if label_list(value) is not None else canonical(value)
        return label is not None and map_key(label, label_map, raw.label_names) is None

    frames = _frames(raw)
    for split, frame in frames.items():
        drop = np.array([mapped_to_null(v) for v in frame["label"].tolist()], dtype=bool)
        if drop.all():
            raise DataError(
                f"data set '{dataset}': {_where(raw, split)}: every row has a label that label_map maps to null "
                f"({', '.join(map(repr, dropped))}), so no example is left. Map some of them to class names in "
                f"datasets.{dataset}.label_map."
            )
        raw.notes.append(f"{split}: dropped {int(drop.sum())} rows whose label label_map maps to null "
                         f"({', '.join(map(str, dropped))})")
        frames[split] = _keep(frame, ~drop)
    _store(raw, frames)
    return raw
