"""Memorisation centre of gravity (docs/protocol.md §6.9) per run and across seeds, with intervals.

M-CoG = sum_l l * w_l / sum_l w_l over layers l = 1..L (NaN when sum_l w_l = 0). Its range 1..L
depends on the model's depth, so comparisons that pool models of different depth use the
depth-normalised ``mcog_norm`` = (M-CoG - 1) / (L - 1) in 0..1 (:func:`depth_normalised`), with L
the model's number of blocks: its largest layer in ``summary/layer_weights.parquet``
(``num_layers``).

Point estimates always come from the per-layer weights in ``summary/layer_weights.parquet``.
Intervals (``ci_method`` says which applies to a row):

- ``seeds``: rows with ``seed = -1`` (:data:`ALL_SEEDS`) hold the mean of the per-seed M-CoGs;
  with two or more training seeds the interval is a percentile bootstrap of that mean over
  seeds (resampling seeds with replacement);
- ``probe_seeds``: probing runs are re-weighted from the raw probe F1 (``summary/probing.parquet``):
  probe seeds are resampled with replacement (the same draw for the noisy and the frozen
  network, whose probes share splits), w_l = max(0, mean F1_l - mean F1_{l-1}) with the frozen
  model's layer-1 F1 as the baseline for l = 1, and M-CoG recomputed. A seed-aggregated probing
  row with a single training seed inherits this interval;
- ``none``: swapping, retraining and gradients store one number per window or layer and no
  per-example results, so a single seed has no resampling unit: ci_low = ci_high = NaN.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

ALL_SEEDS = -1
MCOG_COLUMNS = ["technique", "dataset", "model", "variant", "seed", "mcog", "mcog_norm", "ci_low", "ci_high", "ci_method",
                "n_seeds", "num_layers"]
_GROUP = ["technique", "dataset", "model", "variant"]


def mcog(layers, weights) -> float:
    """sum_l l * w_l / sum_l w_l over layers with a finite weight; NaN if the sum is 0."""
    layers = np.asarray(layers, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    ok = np.isfinite(w)
    total = w[ok].sum()
    if not ok.any() or total == 0 or not np.isfinite(total):
        return float("nan")
    return float((layers[ok] * w[ok]).sum() / total)


def depth_normalised(mcog_values, num_layers):
    """(M-CoG - 1) / (L - 1): 0 at the first block, 1 at the last, whatever the depth; NaN for L < 2."""
    m = np.asarray(mcog_values, dtype=np.float64)
    L = np.asarray(num_layers, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(L >= 2, (m - 1.0) / (L - 1.0), np.nan)


def model_depths(layer_weights: pd.DataFrame) -> pd.Series:
    """L per model: the largest layer any of its runs has a weight for (layers are 1..L)."""
    return layer_weights.groupby("model")["layer"].max().astype("int64").rename("num_layers")


def mixed_depths(mcog_df: pd.DataFrame) -> bool:
    """Whether ``summary/mcog.parquet`` holds models of different depth (so raw M-CoGs do not pool)."""
    if "num_layers" not in mcog_df or mcog_df.empty:
        return False
    return mcog_df.groupby("model")["num_layers"].max().nunique() > 1


def probing_layer_weights(raw: pd.DataFrame, score: str = "test_f1") -> pd.Series:
    """Probing weights w_1..w_L from raw probe F1 (columns ``probed`` or ``model``, ``layer``,
    ``probe_seed``, ``score``): w_l = max(0, F1_l - F1_{l-1}) on the seed-mean F1 of the noisy
    model, with the frozen model's layer-1 F1 as the baseline for l = 1 (the noisy model's
    layer-0 F1 when no frozen probe exists)."""
    col = "probed" if "probed" in raw.columns else "model"
    mean = raw.groupby([col, "layer"])[score].mean()
    noisy = mean.loc["noisy"].sort_index()
    layers = [l for l in noisy.index if l >= 1]
    out = {}
    for l in layers:
        if l == 1:
            if ("frozen", 1) in mean.index:
                base = mean.loc[("frozen", 1)]
            else:
                base = noisy.get(0, np.nan)
        else:
            base = noisy.get(l - 1, np.nan)
        out[l] = max(0.0, noisy[l] - base) if np.isfinite(base) else np.nan
    return pd.Series(out, name="weight", dtype=np.float64).rename_axis("layer")


def bootstrap_probing_mcog(
    raw: pd.DataFrame, n_boot: int = 1000, confidence: float = 0.95, rng=None, score: str = "test_f1"
) -> tuple[float, float]:
    """Percentile interval of the probing M-CoG over resampled probe seeds (NaN if < 2 seeds)."""
    rng = np.random.default_rng(rng)
    col = "probed" if "probed" in raw.columns else "model"
    seeds = np.sort(raw["probe_seed"].unique())
    if len(seeds) < 2 or n_boot < 1:
        return float("nan"), float("nan")
    # cube[network, probe seed, layer] of F1, so each resample is a fancy index.
    layers = np.sort(raw["layer"].unique())
    nets = ["noisy", "frozen"]
    table = raw.pivot_table(index=[col, "probe_seed"], columns="layer", values=score, aggfunc="mean")
    cube = np.full((2, len(seeds), len(layers)), np.nan)
    for i, net in enumerate(nets):
        if net in table.index.get_level_values(0):
            sub = table.loc[net].reindex(index=seeds, columns=layers)
            cube[i] = sub.to_numpy()
    draws = rng.integers(0, len(seeds), size=(n_boot, len(seeds)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # layers a network was not probed at
        means = np.nanmean(cube[:, draws, :], axis=2)  # (2, n_boot, n_layers)
    noisy, frozen = means[0], means[1]
    pos = {l: j for j, l in enumerate(layers)}
    stats = np.full(n_boot, np.nan)
    real = [l for l in layers if l >= 1]
    if not real:
        return float("nan"), float("nan")
    w = np.zeros((n_boot, len(real)))
    for k, l in enumerate(real):
        missing = np.full(n_boot, np.nan)
        if l == 1 and np.isfinite(frozen[:, pos[1]]).all():
            base = frozen[:, pos[1]]
        else:
            base = noisy[:, pos[l - 1]] if (l - 1) in pos else missing
        w[:, k] = np.maximum(0.0, noisy[:, pos[l]] - base)  # NaN stays NaN: layer left out
    total = np.nansum(w, axis=1)
    ok = total > 0
    stats[ok] = np.nansum(w[ok] * np.asarray(real, dtype=float), axis=1) / total[ok]
    stats = stats[np.isfinite(stats)]
    if not len(stats):
        return float("nan"), float("nan")
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return float(lo), float(hi)


def bootstrap_mean(values, n_boot: int = 1000, confidence: float = 0.95, rng=None) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (NaN with fewer than 2 values)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) < 2 or n_boot < 1:
        return float("nan"), float("nan")
    rng = np.random.default_rng(rng)
    draws = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(draws, [alpha, 1 - alpha])
    return float(lo), float(hi)


def mcog_table(
    layer_weights: pd.DataFrame,
    probing: pd.DataFrame | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """``summary/mcog.parquet``: one row per run plus a ``seed = -1`` row per
    (technique, dataset, model, variant) with the across-seed mean (see the module docstring
    for the intervals). ``probing`` is ``summary/probing.parquet`` (optional)."""
    rng = np.random.default_rng(seed)
    rows = []
    probe_groups = {}
    if probing is not None and len(probing):
        probe_groups = {key: df for key, df in probing.groupby(["dataset", "model", "variant", "seed"])}
    per_run = layer_weights.groupby(_GROUP + ["seed"], sort=True)
    for (technique, dataset, model, variant, s), df in per_run:
        value = mcog(df["layer"], df["weight"])
        lo = hi = float("nan")
        method = "none"
        raw = probe_groups.get((dataset, model, variant, s)) if technique == "probing" else None
        if raw is not None and np.isfinite(value):
            lo, hi = bootstrap_probing_mcog(raw, n_boot, confidence, rng)
            if np.isfinite(lo):
                method = "probe_seeds"
        rows.append(
            dict(
                technique=technique, dataset=dataset, model=model, variant=variant, seed=int(s),
                mcog=value, ci_low=lo, ci_high=hi, ci_method=method, n_seeds=1,
            )
        )
    runs = pd.DataFrame(rows, columns=MCOG_COLUMNS)
    agg_rows = []
    for key, df in runs.groupby(_GROUP, sort=True):
        values = df["mcog"].to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        mean = float(finite.mean()) if len(finite) else float("nan")
        if len(finite) >= 2:
            lo, hi = bootstrap_mean(finite, n_boot, confidence, rng)
            method = "seeds"
        elif len(df) == 1:
            lo, hi, method = df["ci_low"].iloc[0], df["ci_high"].iloc[0], df["ci_method"].iloc[0]
        else:
            lo = hi = float("nan")
            method = "none"
        agg_rows.append(
            dict(zip(_GROUP, key), seed=ALL_SEEDS, mcog=mean, ci_low=lo, ci_high=hi, ci_method=method,
                 n_seeds=int(len(finite)))
        )
    out = pd.concat([runs, pd.DataFrame(agg_rows, columns=MCOG_COLUMNS)], ignore_index=True)
    out["num_layers"] = out["model"].map(model_depths(layer_weights))
    out["mcog_norm"] = depth_normalised(out["mcog"], out["num_layers"])
    out = out.astype({"seed": "int64", "n_seeds": "int64", "mcog": "float64", "mcog_norm": "float64", "ci_low": "float64",
                      "ci_high": "float64", "num_layers": "int64"})
    return out[MCOG_COLUMNS]


def seed_aggregated(mcog_df: pd.DataFrame, variant: str | None = "noisy") -> pd.DataFrame:
    """The ``seed = -1`` rows (one per technique, data set, model), optionally of one variant."""
    out = mcog_df[mcog_df["seed"] == ALL_SEEDS]
    if variant is not None:
        out = out[out["variant"] == variant]
    return out.reset_index(drop=True)


def mean_layer_weights(layer_weights: pd.DataFrame, variant: str | None = "noisy", column: str = "weight_norm") -> pd.DataFrame:
    """Per-layer weights averaged over seeds: technique, dataset, model, layer, weight."""
    lw = layer_weights if variant is None else layer_weights[layer_weights["variant"] == variant]
    if column not in lw.columns:
        column = "weight"
    return (
        lw.groupby(["technique", "dataset", "model", "layer"], as_index=False)[column]
        .mean()
        .rename(columns={column: "weight"})
    )


def event_layers(layer_weights: pd.DataFrame, technique: str = "probing", variant: str | None = "noisy") -> pd.DataFrame:
    """Layer of the largest seed-mean weight per (dataset, model) for one technique (probing's
    "event layer"); NaN when every weight is 0 or missing."""
    lw = mean_layer_weights(layer_weights[layer_weights["technique"] == technique], variant, column="weight")
    rows = []
    for (dataset, model), df in lw.groupby(["dataset", "model"]):
        w = df["weight"].to_numpy(float)
        ok = np.isfinite(w)
        layer = float(df["layer"].to_numpy()[ok][np.argmax(w[ok])]) if ok.any() and w[ok].max() > 0 else np.nan
        rows.append({"dataset": dataset, "model": model, "event_layer": layer})
    return pd.DataFrame(rows, columns=["dataset", "model", "event_layer"])
