"""Which summary tables (``summary/{table}.parquet``, docs/protocol.md §8.1) a configuration's run writes.

One list for the stats and control rules (their ``all`` targets) and for the cached results that
figures can be rendered from (:mod:`memloc.summary_cache`), so the two never disagree.
"""

from __future__ import annotations

#: The control rule's tables (control.enabled, docs/protocol.md §7.4-7.5).
CONTROL_TABLES = ["control_accuracy", "control_accuracy_summary"]
#: Techniques whose raw tables are window tables (the heatmaps).
WINDOW_TECHNIQUES = ("swapping", "retraining")


def stats_tables(cfg: dict) -> list[str]:
    """The stats rules' tables of validated config ``cfg``, in the order the rules list them."""
    loc = cfg["localisation"]
    techniques = loc["techniques"]
    out = ["layer_weights", "mcog", "statistics"]
    if any(t in WINDOW_TECHNIQUES for t in techniques):
        out.append("heatmaps")
    if "probing" in techniques:
        out.append("probing")
    if "centroids" in techniques:
        out += ["centroids", "centroid_events"]
    if "probing" in techniques and loc["probing"]["label_probes"]:
        out += ["label_probes", "probing_events"]
    if cfg["stats"]["counterfactual"]:
        out.append("counterfactual")
    if "noisy" in cfg["run"]["variants"]:
        out += ["validation", "memorised_runs"]
    if "swapping" in techniques:
        out.append("swapping_clean")
    return out


def summary_tables(cfg: dict) -> list[str]:
    """Every summary table of the run: the stats rules' and, with control.enabled, the control tables."""
    return stats_tables(cfg) + (CONTROL_TABLES if cfg["control"]["enabled"] else [])
