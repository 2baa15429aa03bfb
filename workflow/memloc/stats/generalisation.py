"""Localisation measures against the data set's generalisation score (docs/protocol.md §8.6).

The generalisation score of a (data set, model) is ``generalisation_mean`` of its counterfactual
summary. Measures per (data set, model):

- ``mcog[<technique>]``: seed-aggregated M-CoG of each technique;
- ``centroid_crossing``: mean ``crossing_layer`` over class pairs (``scope`` "pair" rows; a run
  that pooled its pairs gives its "pooled" row instead) and seeds (rows that never cross are
  left out);
- ``probing_event``: the layer with the largest seed-mean probing weight.

For each measure and scope ("all models" pooled, and each model on its own when there are
several) two rows: analysis ``generalisation_spearman`` (Spearman's rho, Fisher-z interval with
the Fieller variance) and ``generalisation_slope`` (OLS slope of the measure on the
generalisation score, t interval). Holm adjustment runs within each of the two analyses.
A scope with fewer than 3 data sets is reported with NaN and a note.

Analyses ``generalisation_mcog_norm_spearman`` and ``generalisation_mcog_norm_slope``: the same for
``mcog_norm[<technique>]``, the depth-normalised M-CoG, over all models pooled only (within one
model it is an increasing affine map of the raw M-CoG: the same rho, a rescaled slope).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from memloc.stats.agreement import correlation, ordered
from memloc.stats.events import centroid_event_means
from memloc.stats.mcog import event_layers, seed_aggregated
from memloc.stats.tidy import row

MIN_DATASETS = 3
ANALYSES = ("generalisation_spearman", "generalisation_slope")
NORM_ANALYSES = ("generalisation_mcog_norm_spearman", "generalisation_mcog_norm_slope")


def measures(
    mcog: pd.DataFrame,
    layer_weights: pd.DataFrame | None = None,
    centroid_events: pd.DataFrame | None = None,
    variant: str = "noisy",
) -> pd.DataFrame:
    """Long table ``dataset``, ``model``, ``measure``, ``value``."""
    parts = [p for p in [mcog_measures(mcog, variant, "mcog")] if len(p)]
    if centroid_events is not None and len(centroid_events):
        cross = centroid_event_means(centroid_events, variant).dropna(subset=["crossing_layer"])
        cross = cross[["dataset", "model", "crossing_layer"]]
        parts.append(cross.rename(columns={"crossing_layer": "value"}).assign(measure="centroid_crossing"))
    if layer_weights is not None and len(layer_weights) and (layer_weights["technique"] == "probing").any():
        ev = event_layers(layer_weights, "probing", variant)
        parts.append(ev.rename(columns={"event_layer": "value"}).assign(measure="probing_event"))
    if not parts:
        return pd.DataFrame(columns=["dataset", "model", "measure", "value"])
    return pd.concat(parts, ignore_index=True)[["dataset", "model", "measure", "value"]]


def mcog_measures(mcog: pd.DataFrame, variant: str, value: str) -> pd.DataFrame:
    """``dataset``, ``model``, ``measure`` (``<value>[<technique>]``), ``value``: seed-aggregated ``value``."""
    agg = seed_aggregated(mcog, variant)
    parts = []
    for technique in ordered(agg["technique"].unique()):
        sub = agg[agg["technique"] == technique]
        parts.append(pd.DataFrame({"dataset": sub["dataset"], "model": sub["model"], "measure": f"{value}[{technique}]",
                                   "value": sub[value]}))
    if not parts:
        return pd.DataFrame(columns=["dataset", "model", "measure", "value"])
    return pd.concat(parts, ignore_index=True)


def ols_slope(x, y, confidence: float = 0.95) -> dict:
    """Slope of y on x by OLS with its t interval and p-value (NaN for < 3 points or constant x)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = len(x)
    out = dict(estimate=np.nan, ci_low=np.nan, ci_high=np.nan, p_value=np.nan, n=n, note="")
    if n < 3:
        out["note"] = f"n = {n} < 3 points: not computed"
        return out
    if np.ptp(x) == 0:
        out["note"] = "constant generalisation score: slope undefined"
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.linregress(x, y)
    t = stats.t.ppf(0.5 + confidence / 2, n - 2)
    out.update(estimate=res.slope, ci_low=res.slope - t * res.stderr, ci_high=res.slope + t * res.stderr,
               p_value=res.pvalue, note="OLS slope of the measure per unit of generalisation score, t interval")
    if n == 3:
        out["note"] += " (1 residual df)"
    return out


def generalisation_rows(
    mcog: pd.DataFrame,
    counterfactual: pd.DataFrame | None,
    layer_weights: pd.DataFrame | None = None,
    centroid_events: pd.DataFrame | None = None,
    variant: str = "noisy",
    confidence: float = 0.95,
    score: str = "generalisation_mean",
) -> list[dict]:
    m = measures(mcog, layer_weights, centroid_events, variant) if _has_score(counterfactual, score) else None
    return _measure_rows(m, counterfactual, ANALYSES, confidence, score, pooled_only=False)


def generalisation_norm_rows(
    mcog: pd.DataFrame,
    counterfactual: pd.DataFrame | None,
    variant: str,
    confidence: float,
    score: str = "generalisation_mean",
) -> list[dict]:
    """Rows of :data:`NORM_ANALYSES`: each technique's depth-normalised M-CoG against the score, models pooled."""
    m = mcog_measures(mcog, variant, "mcog_norm") if _has_score(counterfactual, score) else None
    return _measure_rows(m, counterfactual, NORM_ANALYSES, confidence, score, pooled_only=True)


def _has_score(counterfactual: pd.DataFrame | None, score: str) -> bool:
    return counterfactual is not None and not counterfactual.empty and score in counterfactual


def _measure_rows(m: pd.DataFrame | None, counterfactual: pd.DataFrame | None, analyses: tuple[str, str],
                  confidence: float, score: str, pooled_only: bool) -> list[dict]:
    """Spearman and slope rows (``analyses``) of every measure of ``m`` against ``score``, per scope."""
    if m is None:
        return [row(a, "(none)", note="no counterfactual summaries: generalisation analyses skipped") for a in analyses]
    data = m.merge(counterfactual[["dataset", "model", score]], on=["dataset", "model"], how="inner")
    if data.empty:
        return [
            row(a, "(none)", note="no (data set, model) has both a localisation measure and a counterfactual summary")
            for a in analyses
        ]
    models = sorted(data["model"].unique())
    per_model = len(models) > 1 and not pooled_only
    scopes = [("all models", None)] + ([(mdl, mdl) for mdl in models] if per_model else [])
    rho_analysis, slope_analysis = analyses
    rows = []
    for measure in m["measure"].drop_duplicates():
        for label, mdl in scopes:
            sub = data[data["measure"] == measure]
            if mdl is not None:
                sub = sub[sub["model"] == mdl]
            sub = sub[np.isfinite(sub["value"].astype(float)) & np.isfinite(sub[score].astype(float))]
            term = f"{measure} | {label}"
            k = sub["dataset"].nunique()
            if k < MIN_DATASETS:
                note = f"{k} data set{'s' if k != 1 else ''} (< {MIN_DATASETS}): skipped"
                rows.append(row(rho_analysis, term, n=len(sub), note=note))
                rows.append(row(slope_analysis, term, n=len(sub), note=note))
                continue
            pooled = "; models pooled" if mdl is None and len(models) > 1 else ""
            rho = correlation(sub[score], sub["value"], "spearman", confidence)
            rows.append(row(rho_analysis, term, rho["estimate"], rho["ci_low"], rho["ci_high"],
                            rho["p_value"], rho["n"], rho["note"] + pooled))
            sl = ols_slope(sub[score], sub["value"], confidence)
            rows.append(row(slope_analysis, term, sl["estimate"], sl["ci_low"], sl["ci_high"],
                            sl["p_value"], sl["n"], sl["note"] + pooled))
    return rows
