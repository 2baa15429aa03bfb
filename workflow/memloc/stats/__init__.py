"""Aggregation and statistics over the per-run outputs of the localisation stages.

- :mod:`~memloc.stats.collect`: per-run files -> summary tables (layer weights, window heatmaps,
  probing F1, centroid trajectories and events, counterfactual summaries);
- :mod:`~memloc.stats.mcog`: M-CoG per run and across seeds, with intervals, raw and depth-normalised;
- :mod:`~memloc.stats.events`, :mod:`~memloc.stats.depth`: layer events per (data set, model) and
  the depth of memorisation against generalisation (docs/protocol.md §8.8);
- :mod:`~memloc.stats.statistics`: the tidy ``statistics.parquet`` (agreement, mixed model,
  generalisation, depth, control accuracy), with :mod:`~memloc.stats.unmemorised` deciding what
  it does with the runs whose noisy model did not memorise.
"""

from memloc.stats.agreement import agreement_matrix, agreement_rows, correlation
from memloc.stats.collect import (
    collect_centroid_events,
    collect_centroids,
    collect_counterfactual,
    collect_heatmaps,
    collect_layer_weights,
    collect_probing,
    heatmap_layer_weights,
    heatmap_matrix,
    parse_run_path,
    window_heatmap,
)
from memloc.stats.control import control_rows
from memloc.stats.generalisation import generalisation_rows
from memloc.stats.mcog import ALL_SEEDS, event_layers, mcog, mcog_table, probing_layer_weights, seed_aggregated
from memloc.stats.mixed import mcog_model_rows
from memloc.stats.statistics import statistics_table
from memloc.stats.tidy import STAT_COLUMNS, finalize, holm

__all__ = [
    "ALL_SEEDS",
    "STAT_COLUMNS",
    "agreement_matrix",
    "agreement_rows",
    "collect_centroid_events",
    "collect_centroids",
    "collect_counterfactual",
    "collect_heatmaps",
    "collect_layer_weights",
    "collect_probing",
    "control_rows",
    "correlation",
    "event_layers",
    "finalize",
    "generalisation_rows",
    "heatmap_layer_weights",
    "heatmap_matrix",
    "holm",
    "mcog",
    "mcog_model_rows",
    "mcog_table",
    "parse_run_path",
    "probing_layer_weights",
    "seed_aggregated",
    "statistics_table",
    "window_heatmap",
]
