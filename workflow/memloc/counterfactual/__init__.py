"""Counterfactual memorisation (docs/protocol.md §5): K subset models, per-example estimates, reliability.

Modules
-------
subsets        which training examples subset model k trains on; training one subset model
estimate       per-example train memorisation, generalisation, counterfactual memorisation and
               their bootstrap intervals over models; dataset-level summary and AUC
reliability    split-half reliability of the per-example estimates and its curve against K
memorised_set  the examples the localisation techniques treat as memorised (and reading it back)
summary        the jobs after the subset models: estimator outputs, memorised set, figure
plot           the memorisation map figure (and the reliability curve)

Only :func:`subsets.run_subset` needs torch (imported inside it) and only :mod:`plot` needs
matplotlib; importing this package pulls in NumPy and pandas alone.
"""

from memloc.counterfactual.estimate import (
    MEMORISATION_COLUMNS,
    auc,
    bootstrap_over_models,
    estimate_memorisation,
    load_subset_predictions,
    memorisation_table,
    point_estimates,
    summarise,
)
from memloc.counterfactual.memorised_set import (
    MEMORISED_SET_KINDS,
    memorised_set,
    read_memorised_ids,
    read_memorised_mask,
)
from memloc.counterfactual.reliability import reliability_curve, spearman, spearman_brown, split_half_reliability
from memloc.counterfactual.subsets import SUBSET_COLUMNS, subset_mask, subset_settings

__all__ = [
    "MEMORISATION_COLUMNS",
    "MEMORISED_SET_KINDS",
    "SUBSET_COLUMNS",
    "auc",
    "bootstrap_over_models",
    "estimate_memorisation",
    "load_subset_predictions",
    "memorisation_table",
    "memorised_set",
    "point_estimates",
    "read_memorised_ids",
    "read_memorised_mask",
    "reliability_curve",
    "spearman",
    "spearman_brown",
    "split_half_reliability",
    "subset_mask",
    "subset_settings",
    "summarise",
]
