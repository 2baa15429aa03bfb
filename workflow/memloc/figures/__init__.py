"""memloc figures: each function takes summary DataFrames and an output stem and writes
``<stem>.pdf`` and ``<stem>.png``; one colour and marker per data set throughout (:mod:`.style`)."""

from memloc.figures import style
from memloc.figures.agreement import plot_agreement
from memloc.figures.centroid_events import plot_centroid_events
from memloc.figures.centroids import plot_centroids
from memloc.figures.clean_accuracy import plot_clean_accuracy
from memloc.figures.control import plot_control
from memloc.figures.depth import plot_depth
from memloc.figures.events import plot_events
from memloc.figures.generalisation import plot_generalisation
from memloc.figures.heatmaps import plot_heatmaps
from memloc.figures.label_probes import plot_label_probes, plot_probing_events
from memloc.figures.mcog import plot_mcog
from memloc.figures.mcog_mean import plot_mcog_mean
from memloc.figures.probing import plot_probing
from memloc.figures.single_layer import plot_single_layer
from memloc.figures.weights import plot_layer_weights

__all__ = [
    "plot_agreement",
    "plot_centroid_events",
    "plot_centroids",
    "plot_clean_accuracy",
    "plot_control",
    "plot_depth",
    "plot_events",
    "plot_generalisation",
    "plot_heatmaps",
    "plot_label_probes",
    "plot_layer_weights",
    "plot_mcog",
    "plot_mcog_mean",
    "plot_probing",
    "plot_probing_events",
    "plot_single_layer",
    "style",
]
