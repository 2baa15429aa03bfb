"""``summary/statistics.parquet``: every analysis in one tidy table (docs/protocol.md §8.3).

Analyses (column ``analysis``):

- ``agreement_{technique|model}_{mcog|weights}_{pearson|spearman}``  (:mod:`memloc.stats.agreement`)
- ``mcog_model``                                                     (:mod:`memloc.stats.mixed`)
- ``generalisation_spearman``, ``generalisation_slope``              (:mod:`memloc.stats.generalisation`)
- ``control_binomial``, ``control_acc_at_2``                         (:mod:`memloc.stats.control`)

Every analysis yields at least one row; one that cannot be computed on the inputs at hand (one
data set, one model, one seed) has NaN numbers and a ``note`` that says why.
"""

from __future__ import annotations

from typing import Mapping

import pandas as pd

from memloc.stats.agreement import agreement_rows
from memloc.stats.control import control_rows
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
) -> pd.DataFrame:
    """All analyses of docs/protocol.md §8.3 as one tidy frame (Holm-adjusted within each analysis)."""
    rows = []
    rows += agreement_rows(mcog, layer_weights, variant, confidence)
    rows += mcog_model_rows(mcog, families, variant, confidence)
    rows += generalisation_rows(mcog, counterfactual, layer_weights, centroid_events, variant, confidence)
    if include_control or control is not None:
        rows += control_rows(control, confidence)
    return finalize(rows)
