# Settings and helper functions of the stats rules (stats.smk).

# Aggregation and statistics (DESIGN §3): per-run localisation, centroid, counterfactual and
# control outputs -> cached summary tables under results/summary/. The figure rules read only
# these tables, so a plotting change never re-runs an aggregation.
#
# Optional inputs follow the config: probing, centroids (LOC["techniques"]), control accuracy
# (when control.smk's control_enabled() is true) and counterfactual summaries
# (STATS_COUNTERFACTUAL). Analysis constants come from config["stats"] when the schema offers
# it, else the defaults below.

SUMMARY = f"{RESULTS}/summary"
STATS_WEIGHT_TECHNIQUES = [t for t in LOC["techniques"] if t in ("swapping", "retraining", "gradients", "probing")]
STATS_WINDOW_TECHNIQUES = [t for t in LOC["techniques"] if t in ("swapping", "retraining")]
_STATS_CFG = config.get("stats", {}) or {}
STATS_BOOTSTRAP = int(_STATS_CFG.get("bootstrap", 1000))
STATS_CONFIDENCE = float(_STATS_CFG.get("confidence", 0.95))
STATS_SEED = int(_STATS_CFG.get("seed", 0))
# The generalisation analyses need counterfactual/{dataset}/{model}/summary.json.
STATS_COUNTERFACTUAL = bool(_STATS_CFG.get("counterfactual", True))


def stats_families():
    """{dataset: task family} for the run's data sets."""
    return {d: mconf.dataset_spec(config, d).get("family", "other") for d in DATASETS}


def stats_use_control():
    """Control accuracy joins the statistics when control.smk's `control_enabled()` says so."""
    hook = globals().get("control_enabled")
    return bool(hook()) if callable(hook) else False


def stats_control_files(techniques, suffix):
    """Per-run files of the control models (exact per-model pairs, from control.smk's
    `control_localisation_files`) for the techniques the control block runs."""
    hook = globals().get("control_localisation_files")
    if not stats_use_control() or not callable(hook):
        return []
    control_techniques = globals().get("CONTROL", {}).get("techniques", techniques)
    chosen = [t for t in techniques if t in control_techniques]
    return list(hook(chosen, suffix)) if chosen else []


def stats_run_files(techniques, suffix):
    """Per-run localisation files of `techniques`: the noisy models over the run's grid, plus
    the control models when control is enabled."""
    noisy = expand(
        f"{RESULTS}/localisation/{{technique}}/{{dataset}}/{{model}}/noisy/seed{{seed}}{suffix}",
        technique=techniques,
        dataset=DATASETS,
        model=MODELS,
        seed=SEEDS,
    )
    return noisy + stats_control_files(techniques, suffix)


def stats_optional(wildcards):
    """Named optional inputs of `statistics` (absent ones are empty lists)."""
    return {
        "centroid_events": [f"{SUMMARY}/centroid_events.parquet"] if "centroids" in LOC["techniques"] else [],
        "counterfactual": [f"{SUMMARY}/counterfactual.parquet"] if STATS_COUNTERFACTUAL else [],
        "control": [f"{SUMMARY}/control_accuracy.parquet"] if stats_use_control() else [],
    }


def stats_targets():
    """Every summary table of the run (for `rule all`)."""
    out = [f"{SUMMARY}/layer_weights.parquet", f"{SUMMARY}/mcog.parquet", f"{SUMMARY}/statistics.parquet"]
    if STATS_WINDOW_TECHNIQUES:
        out.append(f"{SUMMARY}/heatmaps.parquet")
    if "probing" in LOC["techniques"]:
        out.append(f"{SUMMARY}/probing.parquet")
    if "centroids" in LOC["techniques"]:
        out += [f"{SUMMARY}/centroids.parquet", f"{SUMMARY}/centroid_events.parquet"]
    if STATS_COUNTERFACTUAL:
        out.append(f"{SUMMARY}/counterfactual.parquet")
    return out


def stats_common(name):
    return dict(log=f"{RESULTS}/logs/stats/{name}.log", benchmark=f"{RESULTS}/benchmarks/stats/{name}.tsv")
