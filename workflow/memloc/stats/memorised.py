"""Did each noisy model memorise its noisy labels? ``summary/memorised_runs.parquet`` (docs/protocol.md §8.1).

A run whose noisy examples are not fit at the analysed checkpoint localises a half-memorised
model; this table flags it instead of letting it mix in silently. The accuracy is the noisy
examples' against their noisy labels (the trace's ``train_noisy`` row) at the checkpoint the
localisation analyses (``localisation.checkpoint``); the threshold and the stopping record come
from the trace's metadata (:func:`memloc.training.finetune.stopping_record`).
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

import pandas as pd

from memloc import paths
from memloc.io import read_metadata

MEMORISED_RUNS_COLUMNS = [
    "dataset", "model", "seed", "checkpoint", "epoch", "noisy_accuracy", "threshold", "memorised",
    "stopping", "threshold_epoch", "epochs_trained", "epochs",
]
_DTYPES = {"dataset": "object", "model": "object", "seed": "int64", "checkpoint": "object", "epoch": "int64",
           "noisy_accuracy": "float64", "threshold": "float64", "memorised": "bool", "stopping": "object",
           "threshold_epoch": "float64", "epochs_trained": "int64", "epochs": "int64"}
_META_KEYS = ("memorised_accuracy", "stopping", "threshold_epoch", "epochs_trained", "epochs")


def memorised_row(trace: pd.DataFrame, meta: Mapping, checkpoint: str, where: str) -> dict:
    """One noisy run's row: its train_noisy accuracy at ``checkpoint`` (``final``: the last epoch
    trained; ``memorised``: the trace's memorised epoch) against its threshold."""
    missing = [k for k in _META_KEYS if k not in meta]
    if missing:
        raise ValueError(f"{where}: trace metadata lacks {', '.join(missing)}; re-run its train_finetune job")
    if checkpoint == "final":
        epoch = int(trace["epoch"].max())
    elif checkpoint == "memorised":
        epoch = int(trace.loc[trace["memorised_epoch"], "epoch"].iloc[0])
    else:
        raise ValueError(f"checkpoint {checkpoint!r} is not one of final, memorised (localisation.checkpoint)")
    noisy = trace[(trace["epoch"] == epoch) & (trace["split"] == "train_noisy")]
    acc = float(noisy["accuracy"].iloc[0]) if len(noisy) and noisy["accuracy"].notna().iloc[0] else float("nan")
    threshold = float(meta["memorised_accuracy"])
    return {
        "checkpoint": checkpoint,
        "epoch": epoch,
        "noisy_accuracy": acc,
        "threshold": threshold,
        "memorised": bool(not math.isnan(acc) and acc >= threshold),
        "stopping": meta["stopping"],
        "threshold_epoch": float("nan") if meta["threshold_epoch"] is None else float(meta["threshold_epoch"]),
        "epochs_trained": int(meta["epochs_trained"]),
        "epochs": int(meta["epochs"]),
    }


def memorised_runs_frames(items: Iterable[tuple[Mapping, pd.DataFrame, Mapping]], checkpoint: str) -> pd.DataFrame:
    """One row per noisy run from ``(ids, trace, trace metadata)``; ``ids`` holds dataset, model, seed."""
    rows = [{"dataset": ids["dataset"], "model": ids["model"], "seed": int(ids["seed"]),
             **memorised_row(trace, meta, checkpoint, str(dict(ids)))} for ids, trace, meta in items]
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=_DTYPES[c]) for c in MEMORISED_RUNS_COLUMNS})
    return pd.DataFrame(rows, columns=MEMORISED_RUNS_COLUMNS).astype(_DTYPES)


def collect_memorised_runs(paths_: Iterable[str], checkpoint: str) -> pd.DataFrame:
    """``summary/memorised_runs.parquet`` from the noisy models' ``trace.parquet`` files."""
    items = []
    for p in paths_:
        ids = paths.parse(paths.TRACE, p)
        items.append((ids, pd.read_parquet(p), read_metadata(p)))
    return memorised_runs_frames(items, checkpoint)


def not_memorised(table: pd.DataFrame) -> list[str]:
    """``dataset/model/seed`` of each run whose noisy model did not memorise."""
    bad = table[~table["memorised"].astype(bool)]
    return [f"{r.dataset}/{r.model}/seed{int(r.seed)}" for r in bad.itertuples()]
