# Aggregation and statistics rules; settings and helpers in stats_helpers.smk.

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
