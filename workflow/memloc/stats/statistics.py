"""``summary/statistics.parquet``: every analysis in one tidy table (docs/protocol.md §8.3).

Analyses (column ``analysis``):

- ``agreement_{technique|model}_{mcog|weights}_{pearson|spearman}``  (:mod:`memloc.stats.agreement`)
- ``mcog_model``                                                     (:mod:`memloc.stats.mixed`)
- ``generalisation_spearman``, ``generalisation_slope``              (:mod:`memloc.stats.generalisation`)
- ``control_binomial``, ``control_acc_at_2``                         (:mod:`memloc.stats.control`)
- ``agreement_model_minmax_{pearson|spearman}``                      (:mod:`memloc.stats.agreement`)
- ``depth_{generalisation|validation}_spearman``,
  ``events_probing_centroids_spearman``                              (:mod:`memloc.stats.depth`)

and, after them, the depth-normalised M-CoG (``mcog_norm``) variants of the analyses that pool
models of different depth:

- ``agreement_technique_mcog_norm_{pearson|spearman}``, ``mcog_norm_model``,
  ``generalisation_mcog_norm_{spearman|slope}``, ``depth_{generalisation|validation}_mcog_norm_spearman``.

Every analysis yields at least one row; one that cannot be computed on the inputs at hand (one
data set, one model, one seed) has NaN numbers and a ``note`` that says why. Runs whose noisy
model did not memorise are left out or kept as ``stats.unmemorised`` says
(:mod:`memloc.stats.unmemorised`); columns ``n_excluded`` and ``unmemorised`` say so on every row.
"""

from __future__ import annotations

from typing import Mapping

import pandas as pd

from memloc.stats.agreement import agreement_rows, mcog_norm_agreement_rows, minmax_agreement_rows
from memloc.stats.control import ANALYSES as CONTROL_ANALYSES
from memloc.stats.control import control_rows
from memloc.stats.depth import depth_norm_rows, depth_rows, events_rows
from memloc.stats.generalisation import generalisation_norm_rows, generalisation_rows
from memloc.stats.mixed import NORM_ANALYSIS, mcog_model_rows
from memloc.stats.tidy import finalize
from memloc.stats.unmemorised import exclusion


def statistics_table(
    mcog: pd.DataFrame,
    layer_weights: pd.DataFrame | None = None,
    families: Mapping[str, str] | None = None,
    counterfactual: pd.DataFrame | None = None,
    centroid_events: pd.DataFrame | None = None,
    control: pd.DataFrame | None = None,
    confidence: float = 0.95,
    variant: str = "noisy",
    include_control: bool = True,
    validation: pd.DataFrame | None = None,
    probing_events: pd.DataFrame | None = None,
    memorised_runs: pd.DataFrame | None = None,
    *,
    n_boot: int,
    seed: int,
    unmemorised: str,
) -> pd.DataFrame:
    """All analyses of docs/protocol.md §8.3 as one tidy frame (Holm-adjusted within each analysis).
    ``n_boot`` and ``seed`` drive the bootstrap intervals of the depth and event analyses;
    ``memorised_runs`` (``summary/memorised_runs.parquet``) and ``unmemorised``
    (``stats.unmemorised``: exclude or include) decide what happens to runs that did not memorise."""
    if "mcog_norm" not in mcog:
        raise ValueError("summary/mcog.parquet lacks the column mcog_norm (depth-normalised M-CoG); re-run stats_mcog")
    ex = exclusion(memorised_runs, unmemorised)
    mcog = ex.apply_mcog(mcog, variant)
    layer_weights, centroid_events, validation, probing_events = (
        ex.apply(t, variant) for t in (layer_weights, centroid_events, validation, probing_events)
    )
    rows = []
    rows += agreement_rows(mcog, layer_weights, variant, confidence)
    rows += mcog_model_rows(mcog, families, variant, confidence)
    rows += generalisation_rows(mcog, counterfactual, layer_weights, centroid_events, variant, confidence)
    if include_control or control is not None:
        rows += control_rows(control, confidence)
    rows += minmax_agreement_rows(layer_weights, variant, confidence)
    boot = dict(variant=variant, confidence=confidence, n_boot=n_boot, seed=seed)
    rows += depth_rows(mcog, counterfactual, validation, probing_events, centroid_events, **boot)
    rows += events_rows(probing_events, centroid_events, **boot)
    rows += mcog_norm_agreement_rows(mcog, variant, confidence)
    rows += mcog_model_rows(mcog, families, variant, confidence, value="mcog_norm", analysis=NORM_ANALYSIS)
    rows += generalisation_norm_rows(mcog, counterfactual, variant, confidence)
    rows += depth_norm_rows(mcog, counterfactual, validation, **boot)
    table = finalize(rows)
    noisy = ~table["analysis"].isin(CONTROL_ANALYSES)  # control models are not noisy runs
    table.loc[noisy, "n_excluded"] = ex.n_excluded
    table.loc[noisy, "unmemorised"] = ", ".join(ex.names)
    return table
