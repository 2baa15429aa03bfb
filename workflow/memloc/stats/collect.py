"""Gather per-run files into tidy summary tables, with identifiers parsed from their paths.

Per-run files follow the results layout (:mod:`memloc.paths`)::

    .../localisation/{technique}/{dataset}/{model}/{variant}/seed{seed}[.weights|.events|.labels].parquet
    .../counterfactual/{dataset}/{model}/summary.json

Each collector takes a list of paths (or ``(ids, DataFrame)`` pairs already in memory via the
``*_frames`` variants) and returns one DataFrame with the identifier columns first. An empty
list gives an empty frame with the right columns, never an error.
"""

from __future__ import annotations

import json
import os
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from memloc import paths

RUN_IDS = ["technique", "dataset", "model", "variant", "seed"]
WEIGHT_TECHNIQUES = ["swapping", "retraining", "gradients", "probing"]

PathLike = str | os.PathLike


def parse_run_path(path: PathLike) -> dict:
    """Identifiers of a per-run localisation file (raw table, weights, events or label probes).

    >>> parse_run_path("results/localisation/swapping/sst2/bert/noisy/seed3.weights.parquet")["seed"]
    3
    """
    for template in (paths.LOCALISATION_WEIGHTS, paths.LOCALISATION_EVENTS, paths.LOCALISATION_LABELS,
                     paths.LOCALISATION_RAW):
        try:
            ids = paths.parse(template, path)
        except ValueError:
            continue
        return {k: ids[k] for k in RUN_IDS}
    raise ValueError(f"{path}: expected .../{paths.LOCALISATION}[.weights|.events|.labels].parquet")


def parse_counterfactual_path(path: PathLike) -> dict:
    """``dataset`` and ``model`` of ``.../counterfactual/{dataset}/{model}/summary.json``."""
    return paths.parse(paths.COUNTERFACTUAL_SUMMARY, path)


def _with_ids(df: pd.DataFrame, ids: Mapping, drop: Sequence[str] = ()) -> pd.DataFrame:
    df = df.drop(columns=[c for c in drop if c in df.columns]).copy()
    for key in reversed(list(ids)):
        if key in df.columns:
            df = df.drop(columns=key)
        df.insert(0, key, ids[key])
    return df


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in columns})
    out = pd.concat(frames, ignore_index=True)
    for key in ("seed",):
        if key in out:
            out[key] = out[key].astype("int64")
    return out


def _dtype(col: str) -> str:
    if col in ("seed", "layer", "size", "start", "end", "probe_seed", "n_windows", "n_pairs", "num_layers"):
        return "int64"
    if col in ("technique", "dataset", "model", "variant", "probed", "group", "family", "target"):
        return "object"
    return "float64"


# ---------------------------------------------------------------- layer weights


LAYER_WEIGHT_COLUMNS = RUN_IDS + ["layer", "weight", "weight_norm"]


def layer_weights_frames(items: Iterable[tuple[Mapping, pd.DataFrame]]) -> pd.DataFrame:
    """Concatenate per-run weight tables (``layer``, ``weight``) with their identifiers.

    Adds ``weight_norm`` = weight / sum of the run's weights (NaN when that sum is 0), which puts
    techniques on one scale for plotting and for per-layer agreement.
    """
    frames = []
    for ids, df in items:
        missing = {"layer", "weight"} - set(df.columns)
        if missing:
            raise ValueError(f"{ids}: layer weights need columns layer, weight (missing {sorted(missing)})")
        df = df[["layer", "weight"]].copy()
        df["layer"] = df["layer"].astype("int64")
        df["weight"] = df["weight"].astype("float64")
        df = df.sort_values("layer")
        total = df["weight"].sum(min_count=1)
        df["weight_norm"] = df["weight"] / total if np.isfinite(total) and total != 0 else np.nan
        frames.append(_with_ids(df, {k: ids[k] for k in RUN_IDS}))
    return _concat(frames, LAYER_WEIGHT_COLUMNS)[LAYER_WEIGHT_COLUMNS]


def collect_layer_weights(paths: Iterable[PathLike]) -> pd.DataFrame:
    """``summary/layer_weights.parquet`` from ``seed{seed}.weights.parquet`` files."""
    return layer_weights_frames((parse_run_path(p), pd.read_parquet(p)) for p in paths)


# ---------------------------------------------------------------- window heatmaps


HEATMAP_COLUMNS = RUN_IDS + ["size", "layer", "error", "n_windows"]


def window_heatmap(raw: pd.DataFrame, num_layers: int | None = None, value: str = "error") -> pd.DataFrame:
    """Tidy heatmap ``H[n, l]``: mean ``value`` over windows of size ``n`` that contain block ``l``.

    ``raw`` has one row per window with ``start`` and ``end`` (1-based, inclusive; ``size`` is
    derived when absent). Returns columns ``size``, ``layer``, ``error`` (the mean of ``value``)
    and ``n_windows``; only cells with at least one window with a finite value appear.
    ``num_layers`` defaults to the largest ``end``.
    """
    cols = ["size", "layer", "error", "n_windows"]
    if raw.empty:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in cols})
    start = raw["start"].to_numpy(dtype=np.int64)
    end = raw["end"].to_numpy(dtype=np.int64)
    L = int(num_layers if num_layers is not None else end.max())
    if start.min() < 1 or end.max() > L or (end < start).any():
        raise ValueError(f"windows must satisfy 1 <= start <= end <= {L}")
    val = raw[value].to_numpy(dtype=np.float64)
    size = end - start + 1
    # One record per (window, contained layer): a window of size n counts towards n layers.
    reps = size
    layer = np.concatenate([np.arange(s, e + 1) for s, e in zip(start, end)])
    long = pd.DataFrame({"size": np.repeat(size, reps), "layer": layer, "value": np.repeat(val, reps)})
    long = long[np.isfinite(long["value"])]
    out = long.groupby(["size", "layer"], as_index=False).agg(error=("value", "mean"), n_windows=("value", "size"))
    out["size"] = out["size"].astype("int64")
    out["layer"] = out["layer"].astype("int64")
    return out[cols]


def heatmap_matrix(heat: pd.DataFrame, num_layers: int | None = None) -> np.ndarray:
    """``H[n - 1, l - 1]`` as a dense array (NaN where no window) from a tidy heatmap."""
    L = int(num_layers if num_layers is not None else max(heat["layer"].max(), heat["size"].max()))
    out = np.full((L, L), np.nan)
    out[heat["size"].to_numpy(int) - 1, heat["layer"].to_numpy(int) - 1] = heat["error"].to_numpy(float)
    return out


def heatmap_layer_weights(heat: pd.DataFrame) -> pd.DataFrame:
    """``w_l`` = mean over window sizes ``n`` of ``H[n, l]`` (sizes without a window skipped)."""
    return heat.groupby("layer", as_index=False)["error"].mean().rename(columns={"error": "weight"})


def heatmaps_frames(items: Iterable[tuple[Mapping, pd.DataFrame]]) -> pd.DataFrame:
    frames = [_with_ids(window_heatmap(df), {k: ids[k] for k in RUN_IDS}) for ids, df in items]
    return _concat(frames, HEATMAP_COLUMNS)[HEATMAP_COLUMNS]


def collect_heatmaps(paths: Iterable[PathLike]) -> pd.DataFrame:
    """``summary/heatmaps.parquet`` from raw swapping/retraining tables (one row per window)."""
    return heatmaps_frames((parse_run_path(p), pd.read_parquet(p)) for p in paths)


# ---------------------------------------------------------------- probing


PROBING_COLUMNS = ["dataset", "model", "variant", "seed", "probed", "layer", "probe_seed", "val_f1", "test_f1"]


def probing_frames(items: Iterable[tuple[Mapping, pd.DataFrame]]) -> pd.DataFrame:
    """Raw probing tables with identifiers. The raw ``model`` column ("noisy"/"frozen": which
    network was probed) becomes ``probed`` so that ``model`` keeps naming the model."""
    frames = []
    for ids, df in items:
        df = df.rename(columns={"model": "probed"})
        keep = [c for c in ("probed", "layer", "probe_seed", "val_f1", "test_f1") if c in df.columns]
        frames.append(_with_ids(df[keep], {k: ids[k] for k in ("dataset", "model", "variant", "seed")}))
    out = _concat(frames, PROBING_COLUMNS)
    for col in PROBING_COLUMNS:
        if col not in out:
            out[col] = np.nan
    return out[PROBING_COLUMNS]


def collect_probing(paths: Iterable[PathLike]) -> pd.DataFrame:
    """``summary/probing.parquet``: every probe's F1 per layer, probe seed and probed network."""
    return probing_frames((parse_run_path(p), pd.read_parquet(p)) for p in paths)


LABEL_PROBE_COLUMNS = ["dataset", "model", "variant", "seed", "target", "layer", "probe_seed", "val_f1", "test_f1",
                       "test_f1_noisy", "test_f1_clean"]
PROBING_EVENT_COLUMNS = ["dataset", "model", "variant", "seed", "num_layers", "event_layer", "initiation_layer",
                         "chance_f1", "peak_f1"]


def _run_frames(items: Iterable[tuple[Mapping, pd.DataFrame]], columns: list[str]) -> pd.DataFrame:
    """Per-run tables with their run identifiers, reduced to ``columns`` (absent ones NaN)."""
    ids_cols = ["dataset", "model", "variant", "seed"]
    frames = [_with_ids(df[[c for c in columns[4:] if c in df.columns]], {k: ids[k] for k in ids_cols}) for ids, df in items]
    out = _concat(frames, columns)
    for col in columns:
        if col not in out:
            out[col] = np.nan
    return out[columns]


def label_probe_frames(items: Iterable[tuple[Mapping, pd.DataFrame]]) -> pd.DataFrame:
    """Label-probe tables (§6.7) with identifiers: macro F1 per target, layer and probe seed."""
    return _run_frames(items, LABEL_PROBE_COLUMNS)


def collect_label_probes(paths: Iterable[PathLike]) -> pd.DataFrame:
    """``summary/label_probes.parquet`` from ``localisation/probing/.../seed{seed}.labels.parquet``."""
    return label_probe_frames((parse_run_path(p), pd.read_parquet(p)) for p in paths)


def probing_event_frames(items: Iterable[tuple[Mapping, pd.DataFrame]]) -> pd.DataFrame:
    """Probing events (§6.7) with identifiers: one row per run."""
    return _run_frames(items, PROBING_EVENT_COLUMNS)


def collect_probing_events(paths: Iterable[PathLike]) -> pd.DataFrame:
    """``summary/probing_events.parquet`` from ``localisation/probing/.../seed{seed}.events.parquet``."""
    return probing_event_frames((parse_run_path(p), pd.read_parquet(p)) for p in paths)


# ---------------------------------------------------------------- centroids


CENTROID_COLUMNS = ["dataset", "model", "variant", "seed", "layer", "group", "mean", "p12_5", "p87_5", "n_pairs"]
EVENT_COLUMNS = ["dataset", "model", "variant", "seed", "scope", "class_a", "class_b", "crossing_layer", "initiation_layer"]
CENTROID_GROUPS = ["clean_a", "noisy", "clean_b"]


def centroid_frames(items: Iterable[tuple[Mapping, pd.DataFrame]]) -> pd.DataFrame:
    """Centroid projections per run, layer and group: the mean over class pairs of ``mean``,
    ``p12_5`` and ``p87_5``, or, where the run pooled its pairs (rows of ``scope`` "pooled",
    docs/protocol.md §6.8), the statistics of the pooled positions (``n_pairs`` pairs contributed)."""
    frames = []
    for ids, df in items:
        if "scope" in df.columns and (df["scope"] == "pooled").any():
            agg = _pooled_centroids(df)
        else:
            agg = (
                df.groupby(["layer", "group"], as_index=False)
                .agg(
                    mean=("mean", "mean"),
                    p12_5=("p12_5", "mean"),
                    p87_5=("p87_5", "mean"),
                    n_pairs=("mean", "count"),
                )
                .astype({"layer": "int64", "n_pairs": "int64"})
            )
        frames.append(_with_ids(agg, {k: ids[k] for k in ("dataset", "model", "variant", "seed")}))
    return _concat(frames, CENTROID_COLUMNS)[CENTROID_COLUMNS]


def _pooled_centroids(df: pd.DataFrame) -> pd.DataFrame:
    """The "pooled" rows of one run, with the number of its pairs behind each (layer, group)."""
    keys = ["layer", "group"]
    n_pairs = df[df["scope"] == "pair"].groupby(keys).size().rename("n_pairs").reset_index()
    pooled = df.loc[df["scope"] == "pooled", [*keys, "mean", "p12_5", "p87_5"]].merge(n_pairs, on=keys, how="left")
    return pooled.fillna({"n_pairs": 0}).astype({"layer": "int64", "n_pairs": "int64"}).sort_values(keys, ignore_index=True)


def collect_centroids(paths: Iterable[PathLike]) -> pd.DataFrame:
    """``summary/centroids.parquet`` from ``localisation/centroids/.../seed{seed}.parquet``."""
    return centroid_frames((parse_run_path(p), pd.read_parquet(p)) for p in paths)


def centroid_event_frames(items: Iterable[tuple[Mapping, pd.DataFrame]]) -> pd.DataFrame:
    """Centroid events with identifiers; ``scope`` is "pair" (one class pair), "mean" (the
    stage's average over pairs) or "pooled" (the positions of every pair pooled); tables without
    the column are taken as per-pair rows."""
    frames = []
    for ids, df in items:
        if "scope" not in df.columns:
            df = df.assign(scope="pair")
        keep = [c for c in EVENT_COLUMNS[4:] if c in df.columns]
        frames.append(_with_ids(df[keep], {k: ids[k] for k in ("dataset", "model", "variant", "seed")}))
    out = _concat(frames, EVENT_COLUMNS)
    for col in EVENT_COLUMNS:
        if col not in out:
            out[col] = np.nan
    return out[EVENT_COLUMNS]


def collect_centroid_events(paths: Iterable[PathLike]) -> pd.DataFrame:
    """``summary/centroid_events.parquet`` from ``seed{seed}.events.parquet`` files."""
    return centroid_event_frames((parse_run_path(p), pd.read_parquet(p)) for p in paths)


def event_rows(events: pd.DataFrame) -> pd.DataFrame:
    """The rows a run's crossing and initiation are read from (docs/protocol.md §6.8): its
    "pooled" row where the run pooled its class pairs (``localisation.centroids.pooling``), else
    its per-pair rows; a table without ``scope`` holds per-pair rows. Runs are told apart by the
    identifier columns the table has."""
    if "scope" not in events.columns:
        return events
    pooled = events["scope"] == "pooled"
    keys = [k for k in ("dataset", "model", "variant", "seed") if k in events.columns]
    if keys:
        has_pooled = pooled.groupby([events[k] for k in keys], dropna=False).transform("any").astype(bool)
    else:
        has_pooled = pd.Series(bool(pooled.any()), index=events.index)
    return events[(pooled & has_pooled) | ((events["scope"] == "pair") & ~has_pooled)]


# ---------------------------------------------------------------- counterfactual


#: The numbers of a counterfactual summary.json (memloc.counterfactual.estimate) that every table has.
COUNTERFACTUAL_KEYS = ["generalisation_mean", "cm_noisy_mean", "cm_clean_mean", "auc_noisy", "reliability"]


def counterfactual_frames(
    items: Iterable[tuple[Mapping, Mapping]], families: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """One row per (dataset, model): ``family`` plus every scalar number of its summary.json."""
    rows = []
    for ids, summary in items:
        row = {"dataset": ids["dataset"], "model": ids["model"]}
        row["family"] = (families or {}).get(ids["dataset"], "other")
        for key, value in summary.items():
            if isinstance(value, bool):
                row[key] = float(value)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                row[key] = float(value)
        for key in COUNTERFACTUAL_KEYS:
            row.setdefault(key, np.nan)
        rows.append(row)
    if not rows:
        cols = ["dataset", "model", "family"] + COUNTERFACTUAL_KEYS
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in cols})
    return pd.DataFrame(rows)


def collect_counterfactual(paths: Iterable[PathLike], families: Mapping[str, str] | None = None) -> pd.DataFrame:
    """``summary/counterfactual.parquet`` from ``counterfactual/{dataset}/{model}/summary.json``."""
    items = []
    for p in paths:
        with open(p) as fh:
            items.append((parse_counterfactual_path(p), json.load(fh)))
    return counterfactual_frames(items, families)


def read_optional(paths: Iterable[PathLike] | PathLike | None) -> pd.DataFrame | None:
    """Read a Parquet table given as a path or a one-element list; None when absent."""
    if paths is None:
        return None
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = [p for p in paths if p]
    if not paths:
        return None
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)


# ---------------------------------------------------------------- validation accuracy


VALIDATION_COLUMNS = ["dataset", "model", "variant", "seed", "n", "accuracy", "chance", "accuracy_norm"]


def shuffled_label_accuracy(labels) -> float:
    """Expected accuracy of ``labels`` against a random permutation of themselves, sum_c p_c^2: the
    chance level that the paper's random baseline (shuffled labels) gives in accuracy terms."""
    labels = pd.Series(labels)
    if labels.empty:
        return float("nan")
    share = labels.value_counts(normalize=True).to_numpy(dtype=np.float64)
    return float((share**2).sum())


def validation_row(predictions: pd.DataFrame) -> dict:
    """Validation accuracy of the final checkpoint, its chance level and the normalised accuracy
    ``(accuracy - chance) / (1 - chance)`` (docs/protocol.md §8.1)."""
    missing = {"split", "checkpoint", "label", "correct"} - set(predictions.columns)
    if missing:
        raise ValueError(f"predictions need columns split, checkpoint, label, correct (missing {sorted(missing)})")
    v = predictions[(predictions["split"] == "validation") & (predictions["checkpoint"] == "final")]
    n = len(v)
    accuracy = float(v["correct"].astype(float).mean()) if n else float("nan")
    chance = shuffled_label_accuracy(v["label"])
    norm = (accuracy - chance) / (1 - chance) if n and chance < 1 else float("nan")
    return {"n": n, "accuracy": accuracy, "chance": chance, "accuracy_norm": norm}


def validation_frames(items: Iterable[tuple[Mapping, pd.DataFrame]]) -> pd.DataFrame:
    """One row per fine-tuned model (``ids``: dataset, model, variant, seed) from its predictions."""
    rows = [{**{k: ids[k] for k in VALIDATION_COLUMNS[:4]}, **validation_row(df)} for ids, df in items]
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c) if c != "n" else "int64") for c in VALIDATION_COLUMNS})
    return pd.DataFrame(rows, columns=VALIDATION_COLUMNS).astype({"seed": "int64", "n": "int64"})


def collect_validation(paths_: Iterable[PathLike]) -> pd.DataFrame:
    """``summary/validation.parquet`` from ``models/.../predictions.parquet`` files."""
    items = []
    for p in paths_:
        ids = paths.parse(paths.PREDICTIONS, p)
        items.append((ids, pd.read_parquet(p, columns=["split", "checkpoint", "label", "correct"])))
    return validation_frames(items)


# ---------------------------------------------------------------- clean accuracy under swapping


SWAPPING_CLEAN_COLUMNS = ["dataset", "model", "variant", "seed", "start", "end", "size", "acc_clean", "n_clean"]


def swapping_clean_frames(items: Iterable[tuple[Mapping, pd.DataFrame]]) -> pd.DataFrame:
    """Per window of every swapping run: the clean examples' accuracy with the window swapped (§6.3)."""
    frames = []
    for ids, df in items:
        missing = {"start", "end", "acc_clean"} - set(df.columns)
        if missing:
            raise ValueError(f"{ids}: swapping windows need columns start, end, acc_clean (missing {sorted(missing)})")
        out = pd.DataFrame({
            "start": df["start"].astype("int64"),
            "end": df["end"].astype("int64"),
            "size": (df["end"] - df["start"] + 1).astype("int64"),
            "acc_clean": df["acc_clean"].astype("float64"),
            "n_clean": df["n_clean"].astype("float64") if "n_clean" in df else np.nan,
        })
        frames.append(_with_ids(out, {k: ids[k] for k in SWAPPING_CLEAN_COLUMNS[:4]}))
    return _concat(frames, SWAPPING_CLEAN_COLUMNS)[SWAPPING_CLEAN_COLUMNS]


def collect_swapping_clean(paths_: Iterable[PathLike]) -> pd.DataFrame:
    """``summary/swapping_clean.parquet`` from the raw swapping tables."""
    return swapping_clean_frames((parse_run_path(p), pd.read_parquet(p)) for p in paths_)
