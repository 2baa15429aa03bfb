"""Control accuracy (docs/protocol.md §7.4): do the techniques find the blocks a control model memorised in?

For a control model ``control-i-j`` and a technique's per-layer weights w_1..w_L:

* acc@1 = 1 if the top-ranked layer is i or j, else 0;
* acc@2 = the share of the technique's two top-ranked layers that are in {i, j} (0, 0.5 or 1);
* chance = 2 / L (the expected acc@1 and acc@2 of a random ranking).

**Ties.** When several layers share the k-th largest weight (e.g. probing's ``max(0, dF1)`` gives
many exact zeros) the top-k set is not determined. acc@k then counts the *expected* share under a
uniformly random order of the tied layers: layers strictly above the k-th largest weight count in
full and the remaining slots are shared evenly among the tied layers. This is deterministic, does
not favour low or high layers, and equals the plain definition whenever there is no tie; acc@1
can then lie strictly between 0 and 1. ``tie_at_1`` / ``tie_at_2`` flag such rows. NaN weights
rank last. The ``ranking`` column (layers by decreasing weight) breaks ties by the lower layer;
it is for reading only and never used for scoring.

**Learned.** A control model only tests a technique if it has memorised its noisy examples. Its
train accuracy on them (``train_noisy`` in its trace, at the checkpoint the technique analysed:
``memorised`` for gradients, the localisation checkpoint for the others) is reported; below
``learned_accuracy`` (default 0.9) the row keeps its scores in ``acc_at_1_raw`` / ``acc_at_2_raw``,
gets ``learned = False`` and NaN in ``acc_at_1`` / ``acc_at_2``, and is logged, so every mean
over the table (here, in the statistics and in the figures) leaves it out.

**Summary.** Per technique (and per technique and model when there are several models): the mean
acc@1 and acc@2 over learned runs, with a percentile bootstrap interval that resamples units =
(data set, model, target pair), each unit the mean over its seeds.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from memloc.control.pairs import pair_label, parse_variant
from memloc.errors import DataError
from memloc.io import write_parquet

log = logging.getLogger("memloc.control")

TABLE_COLUMNS = [
    "technique", "dataset", "model", "variant", "seed", "target_layers", "layer_i", "layer_j", "num_layers",
    "chance", "acc_at_1", "acc_at_2", "acc_at_1_raw", "acc_at_2_raw", "top_layer", "ranking", "tie_at_1",
    "tie_at_2", "checkpoint", "train_noisy_accuracy", "learned", "note",
]
SUMMARY_COLUMNS = [
    "technique", "model", "n_runs", "n_learned", "n_not_learned", "n_units", "chance",
    "acc_at_1", "acc_at_1_low", "acc_at_1_high", "acc_at_2", "acc_at_2_low", "acc_at_2_high", "note",
]
ALL = "(all)"

_WEIGHTS = re.compile(r"^seed(\d+)\.weights\.parquet$")
_TRACE_DIR = re.compile(r"^seed(\d+)$")

PathLike = str | os.PathLike


# --------------------------------------------------------------------------- scoring one ranking


def top_k_credit(weights: Sequence[float], layers: Sequence[int], targets: Iterable[int], k: int) -> tuple[float, bool]:
    """Share of the top-``k`` layers (by weight) in ``targets``, ties shared evenly; and whether
    the top-``k`` set was tied. NaN weights rank last; all-NaN weights give ``(nan, False)``."""
    w = np.asarray(weights, dtype=np.float64)
    layers = np.asarray(layers)
    if len(w) != len(layers):
        raise ValueError("weights and layers differ in length")
    if not 1 <= k <= len(w):
        raise ValueError(f"k={k} outside 1..{len(w)}")
    if np.isnan(w).all():
        return float("nan"), False
    w = np.where(np.isnan(w), -np.inf, w)
    hit = np.isin(layers, list(targets))
    kth = np.sort(w)[::-1][k - 1]
    above, at = w > kth, w == kth
    slots = k - int(above.sum())
    credit = hit[above].sum() + slots * hit[at].sum() / at.sum()
    return float(credit / k), bool(at.sum() > slots)


def ranking(weights: Sequence[float], layers: Sequence[int]) -> list[int]:
    """Layers by decreasing weight, ties by the lower layer, NaN last (for display)."""
    w = np.asarray(weights, dtype=np.float64)
    key = np.where(np.isnan(w), np.inf, -w)
    order = np.lexsort((np.asarray(layers), key))
    return [int(layers[i]) for i in order]


def score_weights(weights: pd.DataFrame, pair: tuple[int, int]) -> dict:
    """acc@1, acc@2 and their tie flags for one technique's weights table (``layer``, ``weight``)."""
    w = weights.sort_values("layer")
    layers = w["layer"].to_numpy(dtype=np.int64)
    values = w["weight"].to_numpy(dtype=np.float64)
    L = int(layers.max()) if len(layers) else 0
    if L < 2 or sorted(layers.tolist()) != list(range(1, L + 1)):
        raise DataError(f"weights table has layers {layers.tolist()}; expected 1..L with L >= 2")
    i, j = pair
    if j > L:
        raise DataError(f"target pair {i}-{j} lies outside the weights' {L} layers")
    acc1, tie1 = top_k_credit(values, layers, pair, 1)
    acc2, tie2 = top_k_credit(values, layers, pair, 2)
    order = ranking(values, layers)
    return {
        "num_layers": L,
        "chance": 2.0 / L,
        "acc_at_1_raw": acc1,
        "acc_at_2_raw": acc2,
        "top_layer": order[0],
        "ranking": ",".join(map(str, order)),
        "tie_at_1": tie1,
        "tie_at_2": tie2,
        "all_nan": bool(np.isnan(values).all()),
    }


# --------------------------------------------------------------------------- inputs


def parse_weights_path(path: PathLike) -> dict:
    """``.../{technique}/{dataset}/{model}/{variant}/seed{seed}.weights.parquet`` -> identifiers."""
    p = Path(path)
    m = _WEIGHTS.match(p.name)
    if m is None or len(p.parts) < 5:
        raise ValueError(f"{path}: expected .../{{technique}}/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}.weights.parquet")
    technique, dataset, model, variant = p.parts[-5:-1]
    return {"technique": technique, "dataset": dataset, "model": model, "variant": variant, "seed": int(m.group(1))}


def parse_trace_path(path: PathLike) -> dict:
    """``.../{dataset}/{model}/{variant}/seed{seed}/trace.parquet`` -> identifiers."""
    p = Path(path)
    m = _TRACE_DIR.match(p.parent.name)
    if m is None or len(p.parts) < 5:
        raise ValueError(f"{path}: expected .../{{dataset}}/{{model}}/{{variant}}/seed{{seed}}/trace.parquet")
    dataset, model, variant = p.parts[-5:-2]
    return {"dataset": dataset, "model": model, "variant": variant, "seed": int(m.group(1))}


def noisy_train_accuracy(trace: pd.DataFrame, checkpoint: str = "final") -> float:
    """The main task's train accuracy on the noisy examples at ``checkpoint`` (final or memorised)."""
    rows = trace[trace["split"] == "train_noisy"]
    if "task" in rows:
        rows = rows[rows["task"].fillna("main") == "main"]
    if rows.empty:
        return float("nan")
    if checkpoint == "memorised" and "memorised_epoch" in rows and rows["memorised_epoch"].any():
        rows = rows[rows["memorised_epoch"].astype(bool)]
    else:
        rows = rows[rows["epoch"] == rows["epoch"].max()]
    return float(rows["accuracy"].iloc[-1])


# --------------------------------------------------------------------------- the table


def control_accuracy_frames(
    weights: Iterable[tuple[Mapping, pd.DataFrame]],
    noisy_accuracy: Mapping[tuple, float],
    checkpoints: Mapping[str, str] | str = "final",
    learned_accuracy: float = 0.9,
) -> pd.DataFrame:
    """The control-accuracy table from in-memory inputs.

    ``weights``: ``(ids, weights table)`` pairs, ids with technique, dataset, model, variant, seed.
    ``noisy_accuracy``: ``{(dataset, model, variant, seed, checkpoint): accuracy}``.
    ``checkpoints``: the checkpoint each technique analysed (a mapping, or one for all).
    """
    rows = []
    for ids, table in weights:
        i, j, clean = parse_variant(ids["variant"])
        if clean:
            continue  # twins are donors, never scored
        checkpoint = checkpoints if isinstance(checkpoints, str) else checkpoints.get(ids["technique"], "final")
        sc = score_weights(table, (i, j))
        acc = noisy_accuracy.get((ids["dataset"], ids["model"], ids["variant"], int(ids["seed"]), checkpoint), float("nan"))
        notes = []
        learned = bool(np.isfinite(acc) and acc >= learned_accuracy)
        if not np.isfinite(acc):
            notes.append("no train accuracy on noisy examples: not scored")
        elif not learned:
            notes.append(f"not learned: noisy-example train accuracy {acc:.3f} < {learned_accuracy:g}; excluded from means")
        if sc.pop("all_nan"):
            notes.append("every weight is NaN")
        if sc["tie_at_1"] or sc["tie_at_2"]:
            notes.append("tied weights: expected share over tie orders")
        rows.append(
            {
                "technique": ids["technique"],
                "dataset": ids["dataset"],
                "model": ids["model"],
                "variant": ids["variant"],
                "seed": int(ids["seed"]),
                "target_layers": pair_label((i, j)),
                "layer_i": i,
                "layer_j": j,
                **sc,
                "acc_at_1": sc["acc_at_1_raw"] if learned else float("nan"),
                "acc_at_2": sc["acc_at_2_raw"] if learned else float("nan"),
                "checkpoint": checkpoint,
                "train_noisy_accuracy": acc,
                "learned": learned,
                "note": "; ".join(notes),
            }
        )
    if not rows:
        return empty_table()
    out = pd.DataFrame(rows)[TABLE_COLUMNS]
    out = out.sort_values(["technique", "dataset", "model", "layer_i", "layer_j", "seed"], kind="stable").reset_index(drop=True)
    for r in out[~out["learned"]].drop_duplicates(["dataset", "model", "variant", "seed", "checkpoint"]).itertuples():
        log.warning(
            "control model %s/%s/%s/seed%d (%s checkpoint) has train accuracy %.3f on its noisy examples (< %g): "
            "it is reported with learned=False and left out of every mean",
            r.dataset, r.model, r.variant, r.seed, r.checkpoint, r.train_noisy_accuracy, learned_accuracy,
        )
    return out


def empty_table() -> pd.DataFrame:
    dtypes = {"seed": "int64", "layer_i": "int64", "layer_j": "int64", "num_layers": "int64", "top_layer": "int64",
              "tie_at_1": "bool", "tie_at_2": "bool", "learned": "bool"}
    text = {"technique", "dataset", "model", "variant", "target_layers", "ranking", "checkpoint", "note"}
    return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, "object" if c in text else "float64")) for c in TABLE_COLUMNS})


def control_accuracy_table(
    weights_paths: Sequence[PathLike],
    trace_paths: Sequence[PathLike],
    checkpoints: Mapping[str, str] | str = "final",
    learned_accuracy: float = 0.9,
) -> pd.DataFrame:
    """The control-accuracy table from the techniques' weights files and the control models' traces
    (identifiers parsed from the paths, docs/protocol.md §3.1)."""
    traces = {}
    for path in trace_paths:
        ids = parse_trace_path(path)
        traces[(ids["dataset"], ids["model"], ids["variant"], ids["seed"])] = pd.read_parquet(path)
    accuracy = {}
    for key, trace in traces.items():
        for checkpoint in ("final", "memorised"):
            accuracy[(*key, checkpoint)] = noisy_train_accuracy(trace, checkpoint)
    frames = []
    for path in weights_paths:
        ids = parse_weights_path(path)
        if (ids["dataset"], ids["model"], ids["variant"], ids["seed"]) not in traces and not parse_variant(ids["variant"])[2]:
            raise DataError(f"{path}: no trace of control model "
                            f"{ids['dataset']}/{ids['model']}/{ids['variant']}/seed{ids['seed']} among the inputs")
        frames.append((ids, pd.read_parquet(path)))
    return control_accuracy_frames(frames, accuracy, checkpoints, learned_accuracy)


# --------------------------------------------------------------------------- summary


def bootstrap_interval(values: np.ndarray, n_boot: int, confidence: float, rng: np.random.Generator) -> tuple[float, float]:
    """Percentile interval of the mean of ``values`` (resampled with replacement); NaN when fewer
    than two values or ``n_boot`` is 0."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2 or n_boot <= 0:
        return float("nan"), float("nan")
    means = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(axis=1)
    alpha = (1 - confidence) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def summarise(table: pd.DataFrame, bootstrap: int = 1000, confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Per technique (model ``(all)``) and, with several models, per technique and model: mean
    acc@1 / acc@2 over learned runs with bootstrap intervals over (data set, model, pair) units."""
    if table is None or table.empty:
        return pd.DataFrame({
            c: pd.Series(dtype="object" if c in ("technique", "model", "note") else "float64") for c in SUMMARY_COLUMNS
        })
    rows = []
    models = sorted(table["model"].unique())
    groups = [(t, ALL, table[table["technique"] == t]) for t in sorted(table["technique"].unique())]
    if len(models) > 1:
        groups += [(t, m, g) for (t, m), g in table.groupby(["technique", "model"], sort=True)]
    for technique, model, g in groups:
        learned = g[g["learned"]]
        units = learned.groupby(["dataset", "model", "target_layers"], sort=True)[["acc_at_1", "acc_at_2"]].mean()
        row = {
            "technique": technique,
            "model": model,
            "n_runs": int(len(g)),
            "n_learned": int(len(learned)),
            "n_not_learned": int((~g["learned"]).sum()),
            "n_units": int(len(units)),
            "chance": float(g["chance"].mean()),
        }
        # One generator per row, seeded from (seed, technique, model): adding a technique or a
        # model never changes another row's interval.
        rng = np.random.default_rng([int(seed), *map(ord, f"{technique}/{model}")])
        for col in ("acc_at_1", "acc_at_2"):
            vals = units[col].dropna().to_numpy()
            row[col] = float(vals.mean()) if len(vals) else float("nan")
            row[f"{col}_low"], row[f"{col}_high"] = bootstrap_interval(vals, bootstrap, confidence, rng)
        notes = []
        if row["n_not_learned"]:
            notes.append(f"{row['n_not_learned']} run(s) not learned, excluded")
        if row["n_units"] < 2:
            notes.append("fewer than two data set x pair units: no interval")
        if g["chance"].nunique() > 1:
            notes.append("models differ in depth: chance is the mean of 2/L")
        row["note"] = "; ".join(notes)
        rows.append(row)
    return pd.DataFrame(rows)[SUMMARY_COLUMNS]


def run_control_accuracy(
    weights_paths: Sequence[PathLike],
    trace_paths: Sequence[PathLike],
    table_path: PathLike,
    summary_path: PathLike,
    checkpoints: Mapping[str, str] | str = "final",
    learned_accuracy: float = 0.9,
    bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    provenance: Mapping[str, Any] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write ``summary/control_accuracy.parquet`` (one row per technique x control run) and the
    per-technique summary next to it."""
    table = control_accuracy_table(weights_paths, trace_paths, checkpoints, learned_accuracy)
    summary = summarise(table, bootstrap, confidence, seed)
    meta = {
        "learned_accuracy": learned_accuracy,
        "checkpoints": checkpoints,
        "bootstrap": bootstrap,
        "confidence": confidence,
        "seed": seed,
        "ties": "expected share over uniformly random orders of tied layers",
        **(provenance or {}),
    }
    write_parquet(table, table_path, metadata=meta)
    write_parquet(summary, summary_path, metadata=meta)
    for r in summary[summary["model"] == ALL].itertuples():
        log.info(
            "%s: acc@1 %.3f [%.3f, %.3f]  acc@2 %.3f [%.3f, %.3f]  chance %.3f  (%d learned runs, %d not learned)",
            r.technique, r.acc_at_1, r.acc_at_1_low, r.acc_at_1_high, r.acc_at_2, r.acc_at_2_low, r.acc_at_2_high,
            r.chance, r.n_learned, r.n_not_learned,
        )
    return table, summary
