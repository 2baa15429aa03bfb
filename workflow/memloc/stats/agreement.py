"""Agreement between techniques and between models, on M-CoG and on per-layer weights.

For every pair of techniques (or models) the two sets of values are paired over the units they
share and correlated with Pearson's r and Spearman's rho:

- techniques on M-CoG: units are (data set, model), seed-aggregated M-CoG, raw and (a separate
  analysis) depth-normalised, which puts models of different depth on one scale;
- models on M-CoG: units are (technique, data set);
- techniques on per-layer weights: units are (data set, model, layer), seed-mean weights
  normalised to sum to 1 per run (layers are not independent observations; the p-values are
  descriptive);
- models on per-layer weights: units are (technique, data set, layer), only where both models
  have the same number of layers.

Spearman p-values are exact (all n! permutations) for n <= 8, else scipy's t approximation.
Intervals use Fisher's z: tanh(atanh(r) +- z_q / sqrt(n - 3)) for Pearson, and the same with the
variance 1.06 / (n - 3) of Fieller, Hartley and Pearson (1957) for Spearman. p-values are Holm
adjusted within each analysis (one analysis per comparison kind and coefficient).
"""

from __future__ import annotations

import itertools
import warnings
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from memloc.stats.mcog import mean_layer_weights, seed_aggregated
from memloc.stats.tidy import row

EXACT_SPEARMAN_MAX_N = 8
TECHNIQUE_ORDER = ["swapping", "retraining", "gradients", "probing", "centroids"]


def ordered(names: Sequence[str], order: Sequence[str] = TECHNIQUE_ORDER) -> list[str]:
    """``names`` in the canonical order, unknown ones after it alphabetically."""
    names = list(dict.fromkeys(names))
    return [n for n in order if n in names] + sorted(n for n in names if n not in order)


def correlation(x, y, method: str = "pearson", confidence: float = 0.95) -> dict:
    """Correlation of paired values (pairs with a NaN are dropped).

    Returns ``estimate``, ``ci_low``, ``ci_high``, ``p_value``, ``n`` and ``note``; numbers are
    NaN (with the reason in ``note``) for fewer than 3 pairs or a constant input; the interval
    is NaN for n = 3 (Fisher's z needs n > 3).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = int(len(x))
    out = dict(estimate=np.nan, ci_low=np.nan, ci_high=np.nan, p_value=np.nan, n=n, note="")
    if n < 3:
        out["note"] = f"n = {n} < 3 paired values: not computed"
        return out
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        out["note"] = "constant input: correlation undefined"
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "pearson":
            res = stats.pearsonr(x, y)
            var = 1.0
        elif method == "spearman":
            res = stats.spearmanr(x, y)
            var = 1.06
        else:
            raise ValueError(f"unknown correlation method {method!r}")
    r = float(res.statistic)
    out["estimate"] = r
    out["p_value"] = float(res.pvalue)
    exact = ""
    if method == "spearman" and n <= EXACT_SPEARMAN_MAX_N:
        out["p_value"] = spearman_exact_p(x, y)
        exact = "; exact permutation p-value"
    if n > 3 and np.isfinite(r):
        zq = stats.norm.ppf(0.5 + confidence / 2)
        z = np.arctanh(np.clip(r, -1 + 1e-12, 1 - 1e-12))
        half = zq * np.sqrt(var / (n - 3))
        out["ci_low"], out["ci_high"] = float(np.tanh(z - half)), float(np.tanh(z + half))
        out["note"] = "Fisher z interval" + (" (Fieller variance 1.06/(n-3))" if method == "spearman" else "")
    else:
        out["note"] = "n = 3: no Fisher z interval"
    out["note"] += exact
    return out


def spearman_exact_p(x, y) -> float:
    """Two-sided permutation p-value of Spearman's rho over all n! orderings of ``y``.

    The t approximation that :func:`scipy.stats.spearmanr` uses is poor for small n (it gives
    p = 0 for a perfect rank agreement of 4 points, where the exact value is 2/24).
    """
    rx = stats.rankdata(x)
    ry = stats.rankdata(y)
    rx = rx - rx.mean()
    ry = ry - ry.mean()
    denom = np.sqrt((rx**2).sum() * (ry**2).sum())
    perms = np.array(list(itertools.permutations(range(len(ry)))))
    rho = (ry[perms] @ rx) / denom
    observed = abs(float(rx @ ry) / denom)
    return float(np.mean(np.abs(rho) >= observed - 1e-12))


def pairwise(
    wide: pd.DataFrame, analysis: str, method: str, names: Sequence[str], confidence: float = 0.95, what: str = ""
) -> list[dict]:
    """Correlate every pair of columns of ``wide`` (rows are paired units)."""
    if len(names) < 2:
        return [row(analysis, "(none)", note=f"fewer than 2 {what or 'columns'} ({len(names)}): nothing to compare")]
    rows = []
    for a, b in itertools.combinations(names, 2):
        res = correlation(wide[a], wide[b], method, confidence)
        rows.append(row(analysis, f"{a}~{b}", res["estimate"], res["ci_low"], res["ci_high"], res["p_value"], res["n"],
                        res["note"]))
    return rows


def agreement_rows(
    mcog: pd.DataFrame,
    layer_weights: pd.DataFrame | None = None,
    variant: str = "noisy",
    confidence: float = 0.95,
    methods: Sequence[str] = ("pearson", "spearman"),
) -> list[dict]:
    """Rows for the analyses ``agreement_{technique|model}_{mcog|weights}_{pearson|spearman}``."""
    rows: list[dict] = []
    agg = seed_aggregated(mcog, variant)
    techniques = ordered(agg["technique"].unique())
    models = sorted(agg["model"].unique())
    wide_t = _technique_wide(agg, "mcog")
    wide_m = agg.pivot_table(index=["technique", "dataset"], columns="model", values="mcog", aggfunc="mean")
    for method in methods:
        rows += pairwise(wide_t, f"agreement_technique_mcog_{method}", method, techniques, confidence, "techniques")
        rows += pairwise(wide_m, f"agreement_model_mcog_{method}", method, models, confidence, "models")

    if layer_weights is None or layer_weights.empty:
        for method in methods:
            for kind in ("technique", "model"):
                rows.append(row(f"agreement_{kind}_weights_{method}", "(none)", note="no layer weights"))
        return rows
    lw = mean_layer_weights(layer_weights, variant)
    techniques_w = ordered(lw["technique"].unique())
    wide_tw = lw.pivot_table(index=["dataset", "model", "layer"], columns="technique", values="weight", aggfunc="mean")
    for method in methods:
        rows += pairwise(wide_tw, f"agreement_technique_weights_{method}", method, techniques_w, confidence, "techniques")

    for method in methods:
        rows += model_weight_rows(lw, f"agreement_model_weights_{method}", method, confidence)
    return rows


def _technique_wide(agg: pd.DataFrame, value: str) -> pd.DataFrame:
    """Seed-aggregated ``value`` with one row per (data set, model), one column per technique."""
    return agg.pivot_table(index=["dataset", "model"], columns="technique", values=value, aggfunc="mean")


def mcog_norm_agreement_rows(
    mcog: pd.DataFrame, variant: str, confidence: float, methods: Sequence[str] = ("pearson", "spearman")
) -> list[dict]:
    """Rows of ``agreement_technique_mcog_norm_{method}``: techniques on the depth-normalised M-CoG
    (``mcog_norm``), whose units (data set, model) pool models of different depth on one 0..1 scale.
    Between models the raw M-CoG stays right: each model's values are mapped by its own increasing
    affine map, which leaves Pearson's r and Spearman's rho unchanged, so there is no normalised
    model agreement."""
    agg = seed_aggregated(mcog, variant)
    techniques = ordered(agg["technique"].unique())
    wide = _technique_wide(agg, "mcog_norm")
    return [r for m in methods
            for r in pairwise(wide, f"agreement_technique_mcog_norm_{m}", m, techniques, confidence, "techniques")]


def model_weight_rows(lw: pd.DataFrame, analysis: str, method: str, confidence: float) -> list[dict]:
    """Every pair of models correlated on per-layer weights (``lw``: technique, dataset, model,
    layer, weight) over the (technique, data set, layer) units both have, only where their
    depths match."""
    models = sorted(lw["model"].unique())
    if len(models) < 2:
        return [row(analysis, "(none)", note=f"fewer than 2 models ({len(models)}): nothing to compare")]
    depth = lw.groupby(["technique", "dataset", "model"])["layer"].max()
    rows = []
    for a, b in itertools.combinations(models, 2):
        da = depth.xs(a, level="model")
        db = depth.xs(b, level="model")
        shared = da.index.intersection(db.index)
        same = [k for k in shared if da[k] == db[k]]
        skipped = len(shared) - len(same)
        if not same:
            note = ("models differ in depth: per-layer weights not comparable" if skipped
                    else "no shared (technique, data set)")
            rows.append(row(analysis, f"{a}~{b}", n=0, note=note))
            continue
        sub = lw[lw["model"].isin([a, b])]
        keep = set(same)
        sub = sub[[(t, d) in keep for t, d in zip(sub["technique"], sub["dataset"])]]
        wide = sub.pivot_table(index=["technique", "dataset", "layer"], columns="model", values="weight", aggfunc="mean")
        res = correlation(wide[a], wide[b], method, confidence)
        note = res["note"] + (f"; {skipped} (technique, data set) skipped: depths differ" if skipped else "")
        rows.append(row(analysis, f"{a}~{b}", res["estimate"], res["ci_low"], res["ci_high"], res["p_value"], res["n"], note))
    return rows


def minmax(values) -> np.ndarray:
    """``(v - min) / (max - min)`` over the finite values; all NaN when they are constant."""
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    if not len(finite) or np.ptp(finite) == 0:
        return np.full(v.shape, np.nan)
    return (v - finite.min()) / np.ptp(finite)


def minmax_agreement_rows(
    layer_weights: pd.DataFrame | None,
    variant: str,
    confidence: float,
    methods: Sequence[str] = ("pearson", "spearman"),
) -> list[dict]:
    """Rows of ``agreement_model_minmax_{method}``: models compared on their seed-mean per-layer
    ``weight``, min-max scaled per (technique, model) over all its data sets and layers (the
    paper's model agreement on per-layer weights), paired over (technique, data set, layer)."""
    if layer_weights is None or layer_weights.empty:
        return [row(f"agreement_model_minmax_{m}", "(none)", note="no layer weights") for m in methods]
    lw = mean_layer_weights(layer_weights, variant, column="weight")
    lw["weight"] = lw.groupby(["technique", "model"])["weight"].transform(minmax)
    return [r for m in methods for r in model_weight_rows(lw, f"agreement_model_minmax_{m}", m, confidence)]


def agreement_matrix(statistics: pd.DataFrame, analysis: str) -> pd.DataFrame:
    """Square matrix (diagonal 1) of the pairwise estimates of one agreement analysis."""
    sub = statistics[(statistics["analysis"] == analysis) & statistics["term"].str.contains("~", regex=False)]
    pairs = [t.split("~", 1) for t in sub["term"]]
    names = ordered([n for p in pairs for n in p])
    mat = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for (a, b), est in zip(pairs, sub["estimate"]):
        mat.loc[a, b] = mat.loc[b, a] = est
    return mat
