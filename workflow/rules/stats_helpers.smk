# Settings and helper functions of the stats rules (stats.smk).

# Aggregation and statistics: per-run localisation, centroid, counterfactual and control outputs
# -> cached summary tables under results/summary/ (each with a CSV copy for the report). The
# figure rules read only these tables, so a plotting change never re-runs an aggregation.
# Optional inputs follow the config: probing, centroids (localisation.techniques), control
# accuracy (control.enabled) and counterfactual summaries (stats.counterfactual).

from memloc.summary_tables import stats_tables as _stats_tables


def stats_run_files(techniques, template):
    """Per-run localisation files of `techniques` (a memloc.paths localisation template): the noisy
    models over the run's grid, plus the control models when control is enabled."""
    noisy = expand(results_path(template, variant="noisy"), technique=techniques, dataset=DATASETS, model=MODELS, seed=SEEDS)
    return noisy + control_localisation_files(techniques, template)


def stats_optional(wildcards):
    """Named optional inputs of `stats_statistics` (absent ones are empty lists)."""
    return {
        "centroid_events": [summary_table("centroid_events")] if "centroids" in LOC["techniques"] else [],
        "counterfactual": [summary_table("counterfactual")] if STATS["counterfactual"] else [],
        "control": [summary_table("control_accuracy")] if CONTROL["enabled"] else [],
        "validation": [summary_table("validation")] if "noisy" in VARIANTS else [],
        "probing_events": [summary_table("probing_events")] if LABEL_PROBES else [],
        "memorised_runs": [summary_table("memorised_runs")] if "noisy" in VARIANTS else [],
    }


def stats_tables():
    """Every summary table of the stats rules (memloc.summary_tables, shared with the cached results for figures)."""
    return _stats_tables(config)


def stats_targets():
    """Every summary table of the run and its CSV copy (for `rule all`)."""
    return [f for t in stats_tables() for f in (summary_table(t), summary_csv(t))]
