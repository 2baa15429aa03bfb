"""Counterfactual memorisation (DESIGN §4): K subset models, per-example estimates, reliability.

Modules
-------
subsets        which training examples subset model k trains on; training one subset model
estimate       per-example train memorisation, generalisation, counterfactual memorisation and
               their bootstrap intervals over models; dataset-level summary
reliability    split-half reliability of the per-example estimates and its curve against K
memorised_set  the examples the localisation techniques treat as memorised
plot           the memorisation map figure

Only :mod:`subsets.run_subset` needs torch; the other modules work on NumPy/pandas alone.
"""

from memloc.counterfactual.estimate import (
    MEMORISATION_COLUMNS,
    auc,
    bootstrap_over_models,
    load_subset_predictions,
    memorisation_table,
    point_estimates,
    summarise,
)
from memloc.counterfactual.memorised_set import (
    MEMORISED_SET_KINDS,
    memorised_set,
    read_memorised_ids,
)
from memloc.counterfactual.reliability import reliability_curve, spearman, spearman_brown, split_half_reliability
from memloc.counterfactual.subsets import SUBSET_COLUMNS, subset_mask, subset_settings

__all__ = [
    "MEMORISATION_COLUMNS",
    "MEMORISED_SET_KINDS",
    "SUBSET_COLUMNS",
    "auc",
    "bootstrap_over_models",
    "load_subset_predictions",
    "memorisation_table",
    "memorised_set",
    "point_estimates",
    "read_memorised_ids",
    "reliability_curve",
    "spearman",
    "spearman_brown",
    "split_half_reliability",
    "subset_mask",
    "subset_settings",
    "summarise",
]
