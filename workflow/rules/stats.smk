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


rule layer_weights:
    """Every run's per-layer weights in one table, identifiers parsed from the paths."""
    input:
        weights=lambda wc: stats_run_files(STATS_WEIGHT_TECHNIQUES, ".weights.parquet"),
    output:
        table=report(f"{SUMMARY}/layer_weights.parquet", caption="../report/layer_weights.rst", category="Tables"),
    log:
        stats_common("layer_weights")["log"],
    benchmark:
        stats_common("layer_weights")["benchmark"]
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/stats_layer_weights.py"


rule summary_heatmaps:
    """Window heatmaps H[n, l] (mean error of windows of size n containing layer l) per run."""
    input:
        raw=lambda wc: stats_run_files(STATS_WINDOW_TECHNIQUES, ".parquet"),
    output:
        table=report(f"{SUMMARY}/heatmaps.parquet", caption="../report/heatmaps_table.rst", category="Tables"),
    log:
        stats_common("heatmaps")["log"],
    benchmark:
        stats_common("heatmaps")["benchmark"]
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/stats_heatmaps.py"


rule summary_probing:
    """Every probe's F1 per layer, probe seed and probed network (noisy, frozen)."""
    input:
        raw=lambda wc: stats_run_files(["probing"], ".parquet"),
    output:
        table=report(f"{SUMMARY}/probing.parquet", caption="../report/probing_table.rst", category="Tables"),
    log:
        stats_common("probing")["log"],
    benchmark:
        stats_common("probing")["benchmark"]
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/stats_probing.py"


rule summary_centroids:
    """Centroid projections averaged over class pairs, and every pair's crossing/initiation layers."""
    input:
        raw=lambda wc: stats_run_files(["centroids"], ".parquet"),
        events=lambda wc: stats_run_files(["centroids"], ".events.parquet"),
    output:
        table=report(f"{SUMMARY}/centroids.parquet", caption="../report/centroids_table.rst", category="Tables"),
        events=report(f"{SUMMARY}/centroid_events.parquet", caption="../report/centroid_events.rst", category="Tables"),
    log:
        stats_common("centroids")["log"],
    benchmark:
        stats_common("centroids")["benchmark"]
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/stats_centroids.py"


rule summary_counterfactual:
    """One row per (data set, model): task family and the counterfactual summary numbers."""
    input:
        summaries=expand(f"{RESULTS}/counterfactual/{{dataset}}/{{model}}/summary.json", dataset=DATASETS, model=MODELS),
    output:
        table=report(f"{SUMMARY}/counterfactual.parquet", caption="../report/counterfactual_table.rst", category="Tables"),
    params:
        families=lambda wc: stats_families(),
    log:
        stats_common("counterfactual")["log"],
    benchmark:
        stats_common("counterfactual")["benchmark"]
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(1000),
        runtime=runtime_growing(5),
    script:
        "../scripts/stats_counterfactual.py"


rule mcog:
    """M-CoG per run and across seeds, with bootstrap intervals (over seeds; probe seeds for probing)."""
    input:
        weights=f"{SUMMARY}/layer_weights.parquet",
        probing=lambda wc: [f"{SUMMARY}/probing.parquet"] if "probing" in STATS_WEIGHT_TECHNIQUES else [],
    output:
        table=report(f"{SUMMARY}/mcog.parquet", caption="../report/mcog_table.rst", category="Tables"),
    params:
        bootstrap=STATS_BOOTSTRAP,
        confidence=STATS_CONFIDENCE,
        seed=STATS_SEED,
    log:
        stats_common("mcog")["log"],
    benchmark:
        stats_common("mcog")["benchmark"]
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/stats_mcog.py"


rule statistics:
    """Agreement, mixed model, generalisation and control analyses in one tidy table."""
    input:
        unpack(stats_optional),
        mcog=f"{SUMMARY}/mcog.parquet",
        weights=f"{SUMMARY}/layer_weights.parquet",
    output:
        table=report(f"{SUMMARY}/statistics.parquet", caption="../report/statistics.rst", category="Tables"),
    params:
        families=lambda wc: stats_families(),
        confidence=STATS_CONFIDENCE,
        include_control=lambda wc: stats_use_control(),
    log:
        stats_common("statistics")["log"],
    benchmark:
        stats_common("statistics")["benchmark"]
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/stats_statistics.py"
