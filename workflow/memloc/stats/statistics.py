"""``summary/statistics.parquet``: every analysis in one tidy table (docs/protocol.md §8.3).

Analyses (column ``analysis``):

- ``agreement_{technique|model}_{mcog|weights}_{pearson|spearman}``  (:mod:`memloc.stats.agreement`)
- ``mcog_model``                                                     (:mod:`memloc.stats.mixed`)
- ``generalisation_spearman``, ``generalisation_slope``              (:mod:`memloc.stats.generalisation`)
- ``control_binomial``, ``control_acc_at_2``                         (:mod:`memloc.stats.control`)
- ``agreement_model_minmax_{pearson|spearman}``                      (:mod:`memloc.stats.agreement`)
- ``depth_{generalisation|validation}_spearman``,
  ``events_probing_centroids_spearman``                              (:mod:`memloc.stats.depth`)

Every analysis yields at least one row; one that cannot be computed on the inputs at hand (one
data set, one model, one seed) has NaN numbers and a ``note`` that says why.
"""

from __future__ import annotations

from typing import Mapping

import pandas as pd

from memloc.stats.agreement import agreement_rows, minmax_agreement_rows
from memloc.stats.control import control_rows
from memloc.stats.depth import depth_rows, events_rows
from memloc.stats.generalisation import generalisation_rows
from memloc.stats.mixed import mcog_model_rows
from memloc.stats.tidy import finalize


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
    *,
    n_boot: int,
    seed: int,
) -> pd.DataFrame:
    """All analyses of docs/protocol.md §8.3 as one tidy frame (Holm-adjusted within each analysis).
    ``n_boot`` and ``seed`` drive the bootstrap intervals of the depth and event analyses."""
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
    return finalize(rows)
