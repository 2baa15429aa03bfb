"""Checks that run before any output is written.

Each failure raises :class:`DataError` naming the data set, the file (and line or row, via each
example's ``origin``) or column, and what to change. Source id columns are not read, so
duplicate ids are not checked: memloc numbers examples itself (``example_id``).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from memloc.errors import DataError

from .labels import NOT_FOUND, canonical, label_list, map_key
from .noise import min_class_size, n_flips
from .sources.base import RawSplits


def _column(columns: dict[str, Any], key: str) -> str:
    return str(columns.get(key) or key)


def check_texts(frame: pd.DataFrame, columns: dict[str, Any], dataset: str) -> None:
    """Every ``text_a`` (and ``text_b`` for pair tasks) is present and not blank."""
    for key in ("text_a", "text_b"):
        if columns.get(key) is None and key == "text_b":
            continue
        for value, origin in zip(frame[key].tolist(), frame["origin"].tolist()):
            if value is None or not str(value).strip():
                what = "missing" if value is None else ("empty" if value == "" else "whitespace only")
                raise DataError(
                    f"data set '{dataset}': {origin}: {key} (column '{_column(columns, key)}') is {what}. "
                    "Remove the row or fill in its text."
                )


def check_labels(
    frame: pd.DataFrame,
    columns: dict[str, Any],
    dataset: str,
    label_map: dict[str, Any] | None,
    label_names: Sequence[str] | None,
) -> None:
    """Every label is present, and known to ``label_map`` or to the source's class names."""
    col = _column(columns, "label")
    for value, origin in zip(frame["label"].tolist(), frame["origin"].tolist()):
        if label_list(value) is not None:
            raise DataError(
                f"data set '{dataset}': {origin}: the label (column '{col}') is a list ({label_list(value)!r}); "
                f"memloc trains single-label classifiers. Set datasets.{dataset}.single_label_top_k to keep the "
                "rows with a single label among the most frequent ones, or name a single-label column in columns.label."
            )
        label = canonical(value)
        if label is None:
            raise DataError(
                f"data set '{dataset}': {origin}: the label (column '{col}') is missing ({value!r}). "
                "Remove the row or give it a label."
            )
        if label_map:
            if map_key(label, label_map, label_names) is NOT_FOUND:
                raise DataError(
                    f"data set '{dataset}': {origin}: label {label!r} (column '{col}') is not in label_map "
                    f"(keys: {', '.join(map(repr, label_map))}). Add it to datasets.{dataset}.label_map."
                )
        elif label_names:
            if isinstance(label, int) and not 0 <= label < len(label_names):
                raise DataError(
                    f"data set '{dataset}': {origin}: label {label} (column '{col}') is outside the source's "
                    f"classes 0..{len(label_names) - 1} ({', '.join(label_names)}). Unlabelled splits "
                    "(label -1, e.g. GLUE test) cannot be used; choose a labelled split."
                )
            if isinstance(label, str) and label not in label_names:
                raise DataError(
                    f"data set '{dataset}': {origin}: label {label!r} (column '{col}') is not one of the "
                    f"source's classes ({', '.join(label_names)})."
                )


def validate_raw(raw: RawSplits, spec: dict[str, Any]) -> None:
    """Row-level checks on both splits, before labels are encoded."""
    columns = {"text_a": "text", "text_b": None, "label": "label", **(spec.get("columns") or {})}
    if spec["source"].get("kind") == "registry":
        pairs = raw.train["text_b"].notna().any()  # a pair corpus (BIG-bench) fills text_b itself
        columns = {"text_a": "text_a" if pairs else "text", "text_b": "text_b" if pairs else None, "label": "label"}
    dataset = spec.get("name", "?")
    for frame, where in ((raw.train, raw.train_where), (raw.eval, raw.eval_where)):
        if frame is None:
            continue
        if len(frame) == 0:
            raise DataError(f"data set '{dataset}': {where} has no examples.")
        check_texts(frame, columns, dataset)
        check_labels(frame, columns, dataset, spec.get("label_map"), raw.label_names)


def check_classes(train: np.ndarray, names: Sequence[str], where: str, dataset: str, column: str = "label") -> None:
    """Training data has at least two classes, and every class has training examples."""
    counts = np.bincount(train, minlength=len(names))
    present = [names[c] for c in np.flatnonzero(counts)]
    if len(present) < 2:
        raise DataError(
            f"data set '{dataset}': {where}: the training split has a single class "
            f"({', '.join(map(repr, present)) or 'none'}) in column '{column}'; classification needs at least two. "
            "Check columns.label and label_map."
        )
    absent = [names[c] for c in np.flatnonzero(counts == 0)]
    if absent:
        raise DataError(
            f"data set '{dataset}': {where}: class(es) {', '.join(map(repr, absent))} (column '{column}') have no "
            "training examples (they occur only in the evaluation split or only in the source's class list). "
            f"Merge them into other classes with datasets.{dataset}.label_map."
        )


def check_noise(train: np.ndarray, names: Sequence[str], ratio: float, where: str, dataset: str) -> None:
    """With ``ratio > 0`` every class receives at least one noisy example."""
    if ratio <= 0:
        return
    counts = np.bincount(train, minlength=len(names))
    for c, n in enumerate(counts):
        if n_flips(ratio, int(n)) == 0:
            raise DataError(
                f"data set '{dataset}': {where}: class {names[c]!r} has {n} training example(s) after splitting "
                f"and subsampling; noise ratio {ratio} relabels floor({ratio} * {n}) = 0 of them. "
                f"Each class needs at least {min_class_size(ratio)}: raise max_train_examples, merge the class "
                "via label_map, or change noise.ratio."
            )


def check_eval_size(n_validation: int, n_test: int, where: str, dataset: str) -> None:
    """Both halves of the evaluation split hold at least one example."""
    if n_validation == 0 or n_test == 0:
        raise DataError(
            f"data set '{dataset}': {where}: the evaluation split has {n_validation + n_test} example(s), too few to "
            "halve into validation and test. Provide a larger evaluation split, raise eval_fraction or max_eval_examples."
        )
