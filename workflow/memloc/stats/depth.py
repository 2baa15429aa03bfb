"""Depth of memorisation against how well a task generalises (docs/protocol.md §8.8).

Measures per (data set, model) (:func:`depth_measures`):

- ``mcog[mean]``: the mean over techniques of the seed-aggregated M-CoG; NaN unless every
  technique of the table has one for that (data set, model), so that every mean averages the
  same techniques;
- ``probing_event_layer``, ``centroid_crossing_layer``: seed-mean event layers
  (:mod:`memloc.stats.events`).

Outcomes (:func:`depth_outcomes`): ``generalisation`` (the counterfactual generalisation score,
§5.4) and ``validation`` (the seed-mean normalised validation accuracy, §8.1).

Analyses ``depth_generalisation_spearman`` and ``depth_validation_spearman``: Spearman's rho of each
measure and the outcome, over all models pooled and per model (when there are several);
``events_probing_centroids_spearman``: probing against centroid events (memorisation event
against crossing, initiation against initiation), likewise. Intervals: percentile bootstrap
over data sets (:func:`spearman_bootstrap`); p-values as in §8.4. Fewer than 3 data sets: not
computed.

Analyses ``depth_generalisation_mcog_norm_spearman`` and ``depth_validation_mcog_norm_spearman``
(:func:`depth_norm_rows`): the measure ``mcog_norm[mean]``, the mean over techniques of the
depth-normalised M-CoG, against each outcome over all models pooled (per model it ranks as
``mcog[mean]`` does).
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
from scipy import stats

from memloc.stats.agreement import EXACT_SPEARMAN_MAX_N, correlation
from memloc.stats.events import centroid_event_means, paired_events, probing_event_means
from memloc.stats.generalisation import MIN_DATASETS
from memloc.stats.mcog import seed_aggregated
from memloc.stats.tidy import row

MEAN_MCOG = "mcog[mean]"
MEAN_MCOG_NORM = "mcog_norm[mean]"
MEASURES = (MEAN_MCOG, "probing_event_layer", "centroid_crossing_layer")
OUTCOMES = {"generalisation": "depth_generalisation_spearman", "validation": "depth_validation_spearman"}
NORM_OUTCOMES = {"generalisation": "depth_generalisation_mcog_norm_spearman",
                 "validation": "depth_validation_mcog_norm_spearman"}
EVENTS_ANALYSIS = "events_probing_centroids_spearman"
#: (probing column, centroid column) compared by :func:`events_rows`.
EVENT_PAIRS = (("probing_event_layer", "centroid_crossing_layer"), ("probing_initiation_layer", "centroid_initiation_layer"))


def technique_mean_mcog(mcog: pd.DataFrame, variant: str = "noisy", value: str = "mcog") -> pd.DataFrame:
    """``dataset``, ``model``, ``value`` (mean over techniques of the seed-aggregated ``value``:
    ``mcog``, or ``mcog_norm`` for the depth-normalised one) and ``n_techniques``; NaN where a
    technique of the table lacks a finite value."""
    agg = seed_aggregated(mcog, variant)
    if agg.empty:
        return pd.DataFrame(columns=["dataset", "model", value, "n_techniques"])
    wide = agg.pivot_table(index=["dataset", "model"], columns="technique", values=value, aggfunc="mean", dropna=False)
    complete = np.isfinite(wide.to_numpy(dtype=float)).all(axis=1)
    out = pd.DataFrame({value: np.where(complete, wide.mean(axis=1), np.nan), "n_techniques": wide.shape[1]}, index=wide.index)
    return out.reset_index()


def depth_measures(
    mcog: pd.DataFrame,
    probing_events: pd.DataFrame | None = None,
    centroid_events: pd.DataFrame | None = None,
    variant: str = "noisy",
) -> pd.DataFrame:
    """Long table ``dataset``, ``model``, ``measure``, ``value`` of the measures present."""
    parts = [technique_mean_mcog(mcog, variant).rename(columns={"mcog": "value"}).assign(measure=MEAN_MCOG)]
    probe = probing_event_means(probing_events, variant)
    if len(probe):
        parts.append(probe.rename(columns={"event_layer": "value"}).assign(measure="probing_event_layer"))
    cent = centroid_event_means(centroid_events, variant)
    if len(cent):
        parts.append(cent.rename(columns={"crossing_layer": "value"}).assign(measure="centroid_crossing_layer"))
    out = pd.concat([p[["dataset", "model", "measure", "value"]] for p in parts], ignore_index=True)
    return out.astype({"value": "float64"})


def depth_outcomes(counterfactual: pd.DataFrame | None, validation: pd.DataFrame | None, variant: str = "noisy",
                   score: str = "generalisation_mean") -> pd.DataFrame:
    """``dataset``, ``model``, ``generalisation``, ``validation`` (NaN where a table lacks the pair)."""
    out = pd.DataFrame({"dataset": pd.Series(dtype=object), "model": pd.Series(dtype=object)})
    if counterfactual is not None and len(counterfactual) and score in counterfactual:
        cf = counterfactual[["dataset", "model", score]].rename(columns={score: "generalisation"})
        out = out.merge(cf, on=["dataset", "model"], how="outer")
    if validation is not None and len(validation):
        v = validation[validation["variant"] == variant] if "variant" in validation else validation
        v = v.groupby(["dataset", "model"], as_index=False)["accuracy_norm"].mean()
        v = v.rename(columns={"accuracy_norm": "validation"})
        out = out.merge(v, on=["dataset", "model"], how="outer")
    for col in OUTCOMES:
        if col not in out:
            out[col] = np.nan
    return out[["dataset", "model", *OUTCOMES]].astype({c: "float64" for c in OUTCOMES})


def depth_frame(mcog, counterfactual=None, validation=None, probing_events=None, centroid_events=None,
                variant: str = "noisy") -> pd.DataFrame:
    """Measures joined with the outcomes: ``dataset``, ``model``, ``measure``, ``value``,
    ``generalisation``, ``validation``; with ``mcog_norm[mean]`` too where ``mcog`` has ``mcog_norm``."""
    m = depth_measures(mcog, probing_events, centroid_events, variant)
    norm = technique_mean_mcog(mcog, variant, "mcog_norm") if "mcog_norm" in mcog else pd.DataFrame()
    if len(norm):
        norm = norm.rename(columns={"mcog_norm": "value"}).assign(measure=MEAN_MCOG_NORM)[m.columns]
        m = pd.concat([m, norm.astype({"value": "float64"})], ignore_index=True)
    return m.merge(depth_outcomes(counterfactual, validation, variant), on=["dataset", "model"], how="left")


def _rank_corr_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row pair of ``x``, ``y`` (n_boot x n); NaN for a constant row."""
    rx = stats.rankdata(x, axis=1)
    ry = stats.rankdata(y, axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    denom = np.sqrt((rx**2).sum(axis=1) * (ry**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (rx * ry).sum(axis=1) / denom, np.nan)


def spearman_bootstrap(x, y, clusters, n_boot: int, confidence: float, rng=None) -> dict:
    """Spearman's rho of paired values with a percentile bootstrap interval that resamples
    ``clusters`` (data sets) with replacement, keeping every point of a drawn cluster (the
    models of a data set share its generalisation score). Estimate, p-value and ``n`` as
    :func:`memloc.stats.agreement.correlation`; resamples with a constant side are left out."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    clusters = np.asarray(clusters)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y, clusters = x[ok], y[ok], clusters[ok]
    out = correlation(x, y, "spearman", confidence)
    groups = pd.unique(clusters)
    if not np.isfinite(out["estimate"]):
        return out  # its note says why
    exact = "exact permutation p-value" if out["n"] <= EXACT_SPEARMAN_MAX_N else ""
    out["ci_low"] = out["ci_high"] = np.nan
    if len(groups) < 2 or n_boot < 1:
        out["note"] = "; ".join(p for p in ("no bootstrap interval", exact) if p)
        return out
    rng = np.random.default_rng(rng)
    members = [np.flatnonzero(clusters == g) for g in groups]
    sizes = np.array([len(m) for m in members])
    draws = rng.integers(0, len(groups), size=(n_boot, len(groups)))
    if (sizes == sizes[0]).all():  # equal clusters: one index array of fixed width
        idx = np.stack(members)[draws].reshape(n_boot, -1)
        rho = _rank_corr_rows(x[idx], y[idx])
    else:
        rho = np.array([_rank_corr_rows(x[i][None], y[i][None])[0]
                        for i in (np.concatenate([members[g] for g in d]) for d in draws)])
    finite = rho[np.isfinite(rho)]
    alpha = (1 - confidence) / 2
    if len(finite):
        out["ci_low"], out["ci_high"] = (float(q) for q in np.quantile(finite, [alpha, 1 - alpha]))
    dropped = n_boot - len(finite)
    left_out = f", {dropped} constant resamples left out" if dropped else ""
    note = f"percentile bootstrap over {len(groups)} data sets (B = {n_boot}{left_out})"
    out["note"] = "; ".join(p for p in (note, exact) if p)
    return out


def _row_rng(seed: int, analysis: str, term: str) -> np.random.Generator:
    """One generator per row, so that a row's interval does not depend on the rows before it."""
    return np.random.default_rng([seed, zlib.crc32(f"{analysis}|{term}".encode())])


def _scopes(models) -> list[tuple[str, str | None]]:
    models = sorted(models)
    return [("all models", None)] + ([(m, m) for m in models] if len(models) > 1 else [])


def _rows(data: pd.DataFrame, analysis: str, name: str, xcol: str, ycol: str, n_boot: int, confidence: float,
          seed: int, pooled_only: bool = False) -> list[dict]:
    """Spearman rows of ``ycol`` against ``xcol`` for every scope of ``data`` (one term per scope;
    only "all models" with ``pooled_only``)."""
    rows = []
    scopes = _scopes(data["model"].unique())
    for label, mdl in scopes[:1] if pooled_only else scopes:
        sub = data if mdl is None else data[data["model"] == mdl]
        sub = sub[np.isfinite(sub[xcol].astype(float)) & np.isfinite(sub[ycol].astype(float))]
        term = f"{name} | {label}"
        k = sub["dataset"].nunique()
        if k < MIN_DATASETS:
            rows.append(row(analysis, term, n=len(sub), note=f"{k} data set{'s' if k != 1 else ''} (< {MIN_DATASETS}): skipped"))
            continue
        res = spearman_bootstrap(sub[xcol], sub[ycol], sub["dataset"], n_boot, confidence, _row_rng(seed, analysis, term))
        pooled = "; models pooled" if mdl is None and data["model"].nunique() > 1 else ""
        rows.append(row(analysis, term, res["estimate"], res["ci_low"], res["ci_high"], res["p_value"], res["n"],
                        res["note"] + pooled))
    return rows


def depth_rows(
    mcog: pd.DataFrame,
    counterfactual: pd.DataFrame | None = None,
    validation: pd.DataFrame | None = None,
    probing_events: pd.DataFrame | None = None,
    centroid_events: pd.DataFrame | None = None,
    *,
    variant: str,
    confidence: float,
    n_boot: int,
    seed: int,
) -> list[dict]:
    """Rows of ``depth_generalisation_spearman`` and ``depth_validation_spearman``."""
    data = depth_frame(mcog, counterfactual, validation, probing_events, centroid_events, variant)
    rows = []
    for outcome, analysis in OUTCOMES.items():
        if data[outcome].notna().sum() == 0:
            what = "counterfactual summaries" if outcome == "generalisation" else "validation accuracies"
            rows.append(row(analysis, "(none)", note=f"no {what}: analysis skipped"))
            continue
        for measure in [m for m in MEASURES if m in set(data["measure"])]:
            rows += _rows(data[data["measure"] == measure], analysis, measure, outcome, "value", n_boot, confidence, seed)
    return rows


def depth_norm_rows(
    mcog: pd.DataFrame,
    counterfactual: pd.DataFrame | None = None,
    validation: pd.DataFrame | None = None,
    *,
    variant: str,
    confidence: float,
    n_boot: int,
    seed: int,
) -> list[dict]:
    """Rows of :data:`NORM_OUTCOMES`: ``mcog_norm[mean]`` against each outcome, models pooled."""
    data = depth_frame(mcog, counterfactual, validation, variant=variant)
    data = data[data["measure"] == MEAN_MCOG_NORM]
    rows = []
    for outcome, analysis in NORM_OUTCOMES.items():
        if data[outcome].notna().sum() == 0:
            what = "counterfactual summaries" if outcome == "generalisation" else "validation accuracies"
            rows.append(row(analysis, "(none)", note=f"no {what} (or no M-CoG): analysis skipped"))
            continue
        rows += _rows(data, analysis, MEAN_MCOG_NORM, outcome, "value", n_boot, confidence, seed, pooled_only=True)
    return rows


def events_rows(
    probing_events: pd.DataFrame | None,
    centroid_events: pd.DataFrame | None,
    *,
    variant: str,
    confidence: float,
    n_boot: int,
    seed: int,
) -> list[dict]:
    """Rows of ``events_probing_centroids_spearman`` (terms ``probing_x~centroid_y | scope``)."""
    data = paired_events(probing_events, centroid_events, variant)
    if data.empty:
        have = [n for n, t in (("probing events", probing_events), ("centroid events", centroid_events))
                if t is not None and len(t)]
        note = f"needs probing and centroid events; this run has {', '.join(have) or 'neither'}"
        return [row(EVENTS_ANALYSIS, "(none)", note=note)]
    rows = []
    for p, c in EVENT_PAIRS:
        rows += _rows(data, EVENTS_ANALYSIS, f"{p}~{c}", c, p, n_boot, confidence, seed)
    return rows
