# Figure rules (cached Parquet in, PDF/PNG out); helpers in figures_helpers.smk.

rule figure_heatmap:
    """Memorisation error heatmap (window size x layer) of swapping or retraining."""
    input:
        table=f"{SUMMARY}/heatmaps.parquet",
        code=figure_code("heatmaps"),
    output:
        pdf=_HEATMAP_OUT["pdf"],
        png=_HEATMAP_OUT["png"],
    wildcard_constraints:
        technique="swapping|retraining",
    params:
        datasets=DATASETS,
    log:
        f"{RESULTS}/logs/figures/heatmap_{{technique}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/heatmap_{{technique}}.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_heatmap.py"


rule figure_layer_weights:
    """Per-layer weight curves per technique, grouped by task family."""
    input:
        table=f"{SUMMARY}/layer_weights.parquet",
        code=figure_code("weights"),
    output:
        pdf=_WEIGHTS_OUT["pdf"],
        png=_WEIGHTS_OUT["png"],
    params:
        datasets=DATASETS,
        families=lambda wc: stats_families(),
    log:
        figure_common("layer_weights")["log"],
    benchmark:
        figure_common("layer_weights")["benchmark"]
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_layer_weights.py"


rule figure_probing:
    """Probe F1 per layer, noisy against frozen model."""
    input:
        table=f"{SUMMARY}/probing.parquet",
        code=figure_code("probing"),
    output:
        pdf=_PROBING_OUT["pdf"],
        png=_PROBING_OUT["png"],
    params:
        datasets=DATASETS,
    log:
        figure_common("probing_f1")["log"],
    benchmark:
        figure_common("probing_f1")["benchmark"]
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_probing.py"


rule figure_centroids:
    """Centroid trajectories of clean and noisy examples per layer."""
    input:
        table=f"{SUMMARY}/centroids.parquet",
        events=f"{SUMMARY}/centroid_events.parquet",
        code=figure_code("centroids"),
    output:
        pdf=_CENTROIDS_OUT["pdf"],
        png=_CENTROIDS_OUT["png"],
    params:
        datasets=DATASETS,
    log:
        figure_common("centroid_trajectories")["log"],
    benchmark:
        figure_common("centroid_trajectories")["benchmark"]
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_centroids.py"


rule figure_mcog:
    """M-CoG per data set and technique with intervals."""
    input:
        table=f"{SUMMARY}/mcog.parquet",
        code=figure_code("mcog"),
    output:
        pdf=_MCOG_OUT["pdf"],
        png=_MCOG_OUT["png"],
    params:
        datasets=DATASETS,
    log:
        figure_common("mcog")["log"],
    benchmark:
        figure_common("mcog")["benchmark"]
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_mcog.py"


rule figure_agreement:
    """Agreement matrices (Pearson) between techniques or between models."""
    input:
        table=f"{SUMMARY}/statistics.parquet",
        code=figure_code("agreement"),
    output:
        pdf=_AGREEMENT_OUT["pdf"],
        png=_AGREEMENT_OUT["png"],
    wildcard_constraints:
        between="technique|model",
    params:
        method="pearson",
    log:
        f"{RESULTS}/logs/figures/agreement_{{between}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/agreement_{{between}}.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_agreement.py"


rule figure_control:
    """Control accuracy (acc@1, acc@2) per technique against chance."""
    input:
        table=f"{SUMMARY}/control_accuracy.parquet",
        code=figure_code("control"),
    output:
        pdf=_CONTROL_OUT["pdf"],
        png=_CONTROL_OUT["png"],
    params:
        datasets=DATASETS,
    log:
        figure_common("control_accuracy")["log"],
    benchmark:
        figure_common("control_accuracy")["benchmark"]
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_control.py"


rule figure_generalisation:
    """M-CoG against the data set's generalisation score."""
    input:
        mcog=f"{SUMMARY}/mcog.parquet",
        counterfactual=f"{SUMMARY}/counterfactual.parquet",
        code=figure_code("generalisation"),
    output:
        pdf=_GENERALISATION_OUT["pdf"],
        png=_GENERALISATION_OUT["png"],
    params:
        datasets=DATASETS,
    log:
        figure_common("mcog_generalisation")["log"],
    benchmark:
        figure_common("mcog_generalisation")["benchmark"]
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_generalisation.py"


rule figures:
    """Every figure the config asks for."""
    input:
        lambda wc: figure_targets(),
