"""memloc figures: each function takes summary DataFrames and an output stem and writes
``<stem>.pdf`` and ``<stem>.png``; one colour and marker per data set throughout (:mod:`.style`)."""

from memloc.figures import style
from memloc.figures.agreement import plot_agreement
from memloc.figures.centroid_events import plot_centroid_events
from memloc.figures.centroids import plot_centroids
from memloc.figures.control import plot_control
from memloc.figures.generalisation import plot_generalisation
from memloc.figures.heatmaps import plot_heatmaps
from memloc.figures.label_probes import plot_label_probes, plot_probing_events
from memloc.figures.mcog import plot_mcog
from memloc.figures.probing import plot_probing
from memloc.figures.weights import plot_layer_weights

__all__ = [
    "plot_agreement",
    "plot_centroid_events",
    "plot_centroids",
    "plot_control",
    "plot_generalisation",
    "plot_heatmaps",
    "plot_label_probes",
    "plot_layer_weights",
    "plot_mcog",
    "plot_probing",
    "plot_probing_events",
    "style",
]
