# Aggregation and statistics rules; settings and helpers in stats_helpers.smk.


rule stats_layer_weights:
    """Every run's per-layer weights in one table, identifiers parsed from the paths."""
    input:
        weights=lambda wc: stats_run_files(WEIGHT_TECHNIQUES, paths.LOCALISATION_WEIGHTS),
    output:
        **summary_outputs("table", "layer_weights", "layer_weights"),
    log:
        job_log("stats_layer_weights"),
    benchmark:
        job_benchmark("stats_layer_weights")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/stats_layer_weights.py"


rule stats_heatmaps:
    """Window heatmaps H[n, l] (mean error of windows of size n containing layer l) per run."""
    input:
        raw=lambda wc: stats_run_files(WINDOW_TECHNIQUES, paths.LOCALISATION_RAW),
    output:
        **summary_outputs("table", "heatmaps", "heatmaps_table"),
    log:
        job_log("stats_heatmaps"),
    benchmark:
        job_benchmark("stats_heatmaps")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/stats_heatmaps.py"


rule stats_probing:
    """Every probe's F1 per layer, probe seed and probed network (noisy, frozen)."""
    input:
        raw=lambda wc: stats_run_files(["probing"], paths.LOCALISATION_RAW),
    output:
        **summary_outputs("table", "probing", "probing_table"),
    log:
        job_log("stats_probing"),
    benchmark:
        job_benchmark("stats_probing")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/stats_probing.py"


rule stats_centroids:
    """Centroid projections averaged over class pairs, and every pair's crossing/initiation layers."""
    input:
        raw=lambda wc: stats_run_files(["centroids"], paths.LOCALISATION_RAW),
        events=lambda wc: stats_run_files(["centroids"], paths.LOCALISATION_EVENTS),
    output:
        **summary_outputs("table", "centroids", "centroids_table"),
        **summary_outputs("events", "centroid_events", "centroid_events"),
    log:
        job_log("stats_centroids"),
    benchmark:
        job_benchmark("stats_centroids")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/stats_centroids.py"


rule stats_label_probes:
    """Every noisy run's label-probe F1 and its probing event and initiation layers."""
    input:
        labels=lambda wc: label_probe_files(paths.LOCALISATION_LABELS),
        events=lambda wc: label_probe_files(paths.LOCALISATION_EVENTS),
    output:
        **summary_outputs("table", "label_probes", "label_probes_table"),
        **summary_outputs("events", "probing_events", "probing_events"),
    log:
        job_log("stats_label_probes"),
    benchmark:
        job_benchmark("stats_label_probes")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/stats_label_probes.py"


rule stats_counterfactual:
    """One row per (data set, model): task family and the counterfactual summary numbers."""
    input:
        summaries=expand(results_path(paths.COUNTERFACTUAL_SUMMARY), dataset=DATASETS, model=MODELS),
    output:
        **summary_outputs("table", "counterfactual", "counterfactual_table"),
    params:
        families=lambda wc: dataset_families(),
    log:
        job_log("stats_counterfactual"),
    benchmark:
        job_benchmark("stats_counterfactual")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(1000),
        runtime=runtime_growing(5),
    script:
        "../scripts/stats_counterfactual.py"


rule stats_mcog:
    """M-CoG per run and across seeds, with bootstrap intervals (over seeds; probe seeds for probing)."""
    input:
        weights=summary_table("layer_weights"),
        probing=lambda wc: [summary_table("probing")] if "probing" in WEIGHT_TECHNIQUES else [],
    output:
        **summary_outputs("table", "mcog", "mcog_table"),
    params:
        bootstrap=STATS["bootstrap"],
        confidence=STATS["confidence"],
        seed=STATS["seed"],
    log:
        job_log("stats_mcog"),
    benchmark:
        job_benchmark("stats_mcog")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/stats_mcog.py"


rule stats_statistics:
    """Agreement, mixed model, generalisation, depth, event and control analyses in one tidy table."""
    input:
        unpack(stats_optional),
        mcog=summary_table("mcog"),
        weights=summary_table("layer_weights"),
    output:
        **summary_outputs("table", "statistics", "statistics"),
    params:
        families=lambda wc: dataset_families(),
        confidence=STATS["confidence"],
        include_control=CONTROL["enabled"],
        bootstrap=STATS["bootstrap"],
        seed=STATS["seed"],
        unmemorised=STATS["unmemorised"],
    log:
        job_log("stats_statistics"),
    benchmark:
        job_benchmark("stats_statistics")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/stats_statistics.py"


rule stats_validation:
    """Validation accuracy of every noisy model and its clean twin, the chance level and the normalised accuracy."""
    input:
        predictions=expand(
            results_path(paths.PREDICTIONS),
            dataset=DATASETS,
            model=MODELS,
            variant=[v for v in ("noisy", "clean") if v in VARIANTS],
            seed=SEEDS,
        ),
    output:
        **summary_outputs("table", "validation", "validation_table"),
    log:
        job_log("stats_validation"),
    benchmark:
        job_benchmark("stats_validation")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/stats_validation.py"


rule stats_memorised_runs:
    """Whether each noisy model memorised its noisy labels at the analysed checkpoint."""
    input:
        traces=expand(results_path(paths.TRACE, variant="noisy"), dataset=DATASETS, model=MODELS, seed=SEEDS),
    output:
        **summary_outputs("table", "memorised_runs", "memorised_runs_table"),
    params:
        checkpoint=LOC["checkpoint"],
    log:
        job_log("stats_memorised_runs"),
    benchmark:
        job_benchmark("stats_memorised_runs")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/stats_memorised_runs.py"


rule stats_swapping_clean:
    """The clean examples' accuracy with each window swapped, per swapping run."""
    input:
        raw=expand(
            results_path(paths.LOCALISATION_RAW, technique="swapping", variant="noisy"),
            dataset=DATASETS,
            model=MODELS,
            seed=SEEDS,
        ),
    output:
        **summary_outputs("table", "swapping_clean", "swapping_clean_table"),
    log:
        job_log("stats_swapping_clean"),
    benchmark:
        job_benchmark("stats_swapping_clean")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/stats_swapping_clean.py"
