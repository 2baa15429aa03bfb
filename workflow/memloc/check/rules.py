"""Table-level rules a schema names under ``x-memloc.rules``: cross-column and cross-file checks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from memloc.check.columns import _examples, _py
from memloc.check.report import ERROR, STALE, WARNING
from memloc.io import read_metadata


@dataclass
class Context:
    results: Path
    rel: str
    df: pd.DataFrame
    meta: dict
    groups: dict[str, str]
    loader: "Loader"


class Loader:
    """Tables read once per check: data tables and their metadata by data set."""

    def __init__(self, results: Path):
        self.results = results
        self._data: dict[str, tuple[pd.DataFrame | None, dict]] = {}

    def data(self, dataset: str) -> tuple[pd.DataFrame | None, dict]:
        if dataset not in self._data:
            path = self.results / "data" / f"{dataset}.parquet"
            try:
                self._data[dataset] = (pd.read_parquet(path), read_metadata(path))
            except Exception:  # missing or unreadable: reported on its own
                self._data[dataset] = (None, {})
        return self._data[dataset]


Rule = Callable[[Context, Any], list[tuple[str, str]]]


def _rule_noisy_only_in_train(ctx: Context, arg) -> list[tuple[str, str]]:
    df = ctx.df
    if not {"example_id", "split", "is_noisy"} <= set(df.columns):
        return []
    bad = df["is_noisy"].astype(bool) & (df["split"] != "train")
    if bad.any():
        return [(ERROR, f"{int(bad.sum())} noisy example(s) outside the training split (example_id "
                        f"{_examples(df.loc[bad, 'example_id'].map(_py))}); only training labels may be noised")]
    return []


def _rule_noisy_iff_relabelled(ctx: Context, arg) -> list[tuple[str, str]]:
    df = ctx.df
    if not {"example_id", "label", "label_orig", "is_noisy"} <= set(df.columns):
        return []
    bad = (df["label"] != df["label_orig"]) != df["is_noisy"].astype(bool)
    if bad.any():
        return [(ERROR, f"{int(bad.sum())} row(s) where is_noisy disagrees with label != label_orig "
                        f"(example_id {_examples(df.loc[bad, 'example_id'].map(_py))})")]
    return []


def _rule_labels_within_label_names(ctx: Context, arg) -> list[tuple[str, str]]:
    dataset = ctx.groups.get("dataset")
    path = ctx.results / "data" / f"{dataset}.labels.json"
    if not path.exists():
        return [(WARNING, f"no label names file {path.name} beside it; class indices cannot be checked")]
    try:
        names = json.loads(path.read_text())["names"]
    except (OSError, ValueError, KeyError, TypeError):
        return [(ERROR, f"{path.name} is unreadable or has no 'names' list")]
    out = []
    for col in ("label", "label_orig"):
        if col in ctx.df.columns and pd.api.types.is_numeric_dtype(ctx.df[col].dtype):
            bad = ctx.df[col] >= len(names)
            if bad.any():
                out.append((ERROR, f"column '{col}': {int(bad.sum())} value(s) >= {len(names)}, the number of classes "
                                   f"in {path.name} (e.g. {_examples(ctx.df.loc[bad, col].map(_py))})"))
    return out


def _rule_correct_matches_pred(ctx: Context, arg) -> list[tuple[str, str]]:
    df = ctx.df
    if not {"correct", "pred", "label"} <= set(df.columns):
        return []
    bad = df["correct"].astype(bool) != (df["pred"] == df["label"])
    if bad.any():
        return [(ERROR, f"{int(bad.sum())} row(s) where correct disagrees with pred == label "
                        f"(rows {_examples(np.flatnonzero(bad.to_numpy()))})")]
    return []


def _rule_window_consistent(ctx: Context, arg) -> list[tuple[str, str]]:
    df = ctx.df
    if not {"start", "size", "end"} <= set(df.columns):
        return []
    bad = df["end"] != df["start"] + df["size"] - 1
    if bad.any():
        rows = _examples(np.flatnonzero(bad.to_numpy()))
        return [(ERROR, f"{int(bad.sum())} window(s) with end != start + size - 1 (rows {rows})")]
    return []


def _rule_layers_contiguous(ctx: Context, by) -> list[tuple[str, str]]:
    df = ctx.df
    by = [c for c in (by or []) if c in df.columns]
    if "layer" not in df.columns or df.empty:
        return []
    groups = df.groupby(by, sort=True, dropna=False) if by else [((), df)]
    for key, g in groups:
        layers = sorted(g["layer"].tolist())
        if layers != list(range(1, len(layers) + 1)):
            label = f" for {dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True))}" if by else ""
            return [(ERROR, f"layers{label} are {layers[:12]}, not 1..{len(layers)}")]
    return []


def _rule_length_matches_input_ids(ctx: Context, arg) -> list[tuple[str, str]]:
    df = ctx.df
    if not {"length", "input_ids"} <= set(df.columns):
        return []
    lengths = df["input_ids"].map(lambda v: len(v) if v is not None else -1)
    bad = lengths.to_numpy() != df["length"].to_numpy()
    if bad.any():
        rows = _examples(np.flatnonzero(bad))
        return [(ERROR, f"{int(bad.sum())} row(s) whose length differs from len(input_ids) (rows {rows})")]
    return []


def _data_ids(ctx: Context):
    dataset = ctx.groups.get("dataset")
    if dataset is None:
        return None
    data, _ = ctx.loader.data(dataset)
    if data is None or "example_id" not in data.columns:
        return None
    return data["example_id"]


def _rule_example_ids_in_data(ctx: Context, arg) -> list[tuple[str, str]]:
    ids = _data_ids(ctx)
    if ids is None or "example_id" not in ctx.df.columns:
        return []
    extra = ~ctx.df["example_id"].isin(ids)
    if extra.any():
        return [(STALE, f"{int(extra.sum())} example id(s) that data/{ctx.groups['dataset']}.parquet does not have "
                        f"(e.g. {_examples(pd.unique(ctx.df.loc[extra, 'example_id']).tolist())}); it was computed from "
                        "an older data table")]
    return []


def _rule_tokens_cover_data(ctx: Context, arg) -> list[tuple[str, str]]:
    ids = _data_ids(ctx)
    if ids is None or "example_id" not in ctx.df.columns:
        return []
    missing = ~ids.isin(ctx.df["example_id"])
    if missing.any():
        return [(STALE, f"no token ids for {int(missing.sum())} example(s) of data/{ctx.groups['dataset']}.parquet "
                        f"(e.g. {_examples(ids[missing].map(_py))}); it was tokenised from an older data table")]
    return []


def _rule_tokens_data_hash(ctx: Context, arg) -> list[tuple[str, str]]:
    dataset = ctx.groups.get("dataset")
    data, data_meta = ctx.loader.data(dataset)
    recorded, current = ctx.meta.get("data"), data_meta.get("spec_hash")
    if data is None or recorded is None or current is None:
        return []
    if recorded != current:
        return [(STALE, f"tokenised from data with spec hash {recorded}, but data/{dataset}.parquet now has {current}")]
    return []


RULES: dict[str, Rule] = {
    "noisy_only_in_train": _rule_noisy_only_in_train,
    "noisy_iff_relabelled": _rule_noisy_iff_relabelled,
    "labels_within_label_names": _rule_labels_within_label_names,
    "correct_matches_pred": _rule_correct_matches_pred,
    "window_consistent": _rule_window_consistent,
    "layers_contiguous": _rule_layers_contiguous,
    "length_matches_input_ids": _rule_length_matches_input_ids,
    "example_ids_in_data": _rule_example_ids_in_data,
    "tokens_cover_data": _rule_tokens_cover_data,
    "tokens_data_hash": _rule_tokens_data_hash,
}


