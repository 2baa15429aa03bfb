# Figure rules (cached Parquet in, PDF/PNG out); helpers in figures_helpers.smk.


rule figure_heatmap:
    """Memorisation error heatmap (window size x layer) of swapping or retraining."""
    input:
        table=figure_table("heatmaps"),
        memorised_runs=memorised_runs_input,
        code=figure_code("heatmaps"),
    output:
        pdf=_HEATMAP_OUT["pdf"],
        png=_HEATMAP_OUT["png"],
    wildcard_constraints:
        technique="swapping|retraining",
    params:
        datasets=DATASETS,
    log:
        job_log("figure_heatmap", "{technique}"),
    benchmark:
        job_benchmark("figure_heatmap", "{technique}")
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
        table=figure_table("layer_weights"),
        memorised_runs=memorised_runs_input,
        code=figure_code("weights"),
    output:
        pdf=_WEIGHTS_OUT["pdf"],
        png=_WEIGHTS_OUT["png"],
    params:
        datasets=DATASETS,
        families=lambda wc: dataset_families(),
    log:
        job_log("figure_layer_weights"),
    benchmark:
        job_benchmark("figure_layer_weights")
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
        table=figure_table("probing"),
        memorised_runs=memorised_runs_input,
        code=figure_code("probing"),
    output:
        pdf=_PROBING_OUT["pdf"],
        png=_PROBING_OUT["png"],
    params:
        datasets=DATASETS,
    log:
        job_log("figure_probing"),
    benchmark:
        job_benchmark("figure_probing")
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
        table=figure_table("centroids"),
        events=figure_table("centroid_events"),
        memorised_runs=memorised_runs_input,
        code=figure_code("centroids"),
    output:
        pdf=_CENTROIDS_OUT["pdf"],
        png=_CENTROIDS_OUT["png"],
    params:
        datasets=DATASETS,
    log:
        job_log("figure_centroids"),
    benchmark:
        job_benchmark("figure_centroids")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_centroids.py"


rule figure_centroid_events:
    """Centroid crossing against classification initiation, one point per data set and model."""
    input:
        events=figure_table("centroid_events"),
        memorised_runs=memorised_runs_input,
        code=figure_code("centroid_events"),
    output:
        pdf=_CENTROID_EVENTS_OUT["pdf"],
        png=_CENTROID_EVENTS_OUT["png"],
    params:
        datasets=DATASETS,
    log:
        job_log("figure_centroid_events"),
    benchmark:
        job_benchmark("figure_centroid_events")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_centroid_events.py"


rule figure_mcog:
    """M-CoG per data set and technique with intervals."""
    input:
        table=figure_table("mcog"),
        memorised_runs=memorised_runs_input,
        code=figure_code("mcog"),
    output:
        pdf=_MCOG_OUT["pdf"],
        png=_MCOG_OUT["png"],
    params:
        datasets=DATASETS,
    log:
        job_log("figure_mcog"),
    benchmark:
        job_benchmark("figure_mcog")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_mcog.py"


rule figure_agreement:
    """Agreement matrices (Pearson) between techniques or models; techniques on depth-normalised M-CoG when depths differ."""
    input:
        table=figure_table("statistics"),
        mcog=figure_table("mcog"),
        memorised_runs=memorised_runs_input,
        code=figure_code("agreement"),
    output:
        pdf=_AGREEMENT_OUT["pdf"],
        png=_AGREEMENT_OUT["png"],
    wildcard_constraints:
        between="technique|model",
    params:
        method="pearson",
        unmemorised=STATS["unmemorised"],
    log:
        job_log("figure_agreement", "{between}"),
    benchmark:
        job_benchmark("figure_agreement", "{between}")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_agreement.py"


rule figure_control:
    """Control accuracy (acc@1, acc@2) per technique with bootstrap intervals, against chance 2/L."""
    input:
        table=figure_table("control_accuracy"),
        summary=figure_table("control_accuracy_summary"),
        code=figure_code("control"),
    output:
        pdf=_CONTROL_OUT["pdf"],
        png=_CONTROL_OUT["png"],
    params:
        datasets=DATASETS,
    log:
        job_log("figure_control"),
    benchmark:
        job_benchmark("figure_control")
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
        mcog=figure_table("mcog"),
        counterfactual=figure_table("counterfactual"),
        memorised_runs=memorised_runs_input,
        code=figure_code("generalisation"),
    output:
        pdf=_GENERALISATION_OUT["pdf"],
        png=_GENERALISATION_OUT["png"],
    params:
        datasets=DATASETS,
    log:
        job_log("figure_generalisation"),
    benchmark:
        job_benchmark("figure_generalisation")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_generalisation.py"


rule figure_label_probes:
    """Label-probe F1 per layer: noisy label vs original label, on noisy and clean examples."""
    input:
        table=figure_table("label_probes"),
        events=figure_table("probing_events"),
        memorised_runs=memorised_runs_input,
        code=figure_code("label_probes"),
    output:
        pdf=_LABEL_PROBES_OUT["pdf"],
        png=_LABEL_PROBES_OUT["png"],
    params:
        datasets=DATASETS,
    log:
        job_log("figure_label_probes"),
    benchmark:
        job_benchmark("figure_label_probes")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_label_probes.py"


rule figure_probing_events:
    """Probing event layer against initiation layer per data set, with the diagonal."""
    input:
        table=figure_table("probing_events"),
        memorised_runs=memorised_runs_input,
        code=figure_code("label_probes"),
    output:
        pdf=_PROBING_EVENTS_OUT["pdf"],
        png=_PROBING_EVENTS_OUT["png"],
    params:
        datasets=DATASETS,
    log:
        job_log("figure_probing_events"),
    benchmark:
        job_benchmark("figure_probing_events")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_probing_events.py"


rule figures:
    """Every figure the config asks for."""
    input:
        lambda wc: figure_targets(),


rule figure_single_layer:
    """The largest memorisation error from swapping or retraining one block, per model and data set."""
    input:
        table=figure_table("heatmaps"),
        memorised_runs=memorised_runs_input,
        code=figure_code("single_layer"),
    output:
        pdf=_SINGLE_LAYER_OUT["pdf"],
        png=_SINGLE_LAYER_OUT["png"],
    wildcard_constraints:
        technique="swapping|retraining",
    params:
        datasets=DATASETS,
    log:
        job_log("figure_single_layer", "{technique}"),
    benchmark:
        job_benchmark("figure_single_layer", "{technique}")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_single_layer.py"


rule figure_clean_accuracy:
    """The clean examples' accuracy with each window swapped."""
    input:
        table=figure_table("swapping_clean"),
        memorised_runs=memorised_runs_input,
        code=figure_code("clean_accuracy"),
    output:
        pdf=_CLEAN_ACCURACY_OUT["pdf"],
        png=_CLEAN_ACCURACY_OUT["png"],
    params:
        datasets=DATASETS,
    log:
        job_log("figure_clean_accuracy"),
    benchmark:
        job_benchmark("figure_clean_accuracy")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_clean_accuracy.py"


rule figure_mcog_mean:
    """M-CoG averaged over techniques per data set and model."""
    input:
        table=figure_table("mcog"),
        memorised_runs=memorised_runs_input,
        code=figure_code("mcog_mean"),
    output:
        pdf=_MCOG_MEAN_OUT["pdf"],
        png=_MCOG_MEAN_OUT["png"],
    params:
        datasets=DATASETS,
    log:
        job_log("figure_mcog_mean"),
    benchmark:
        job_benchmark("figure_mcog_mean")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_mcog_mean.py"


rule figure_depth:
    """M-CoG averaged over techniques and the layer events against generalisation and validation accuracy."""
    input:
        unpack(figure_depth_optional),
        mcog=figure_table("mcog"),
        statistics=figure_table("statistics"),
        code=figure_code("depth"),
    output:
        pdf=_DEPTH_OUT["pdf"],
        png=_DEPTH_OUT["png"],
    params:
        datasets=DATASETS,
        unmemorised=STATS["unmemorised"],
    log:
        job_log("figure_depth"),
    benchmark:
        job_benchmark("figure_depth")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_depth.py"


rule figure_events:
    """Probing events against centroid events."""
    input:
        unpack(figure_events_optional),
        statistics=figure_table("statistics"),
        code=figure_code("events"),
    output:
        pdf=_EVENTS_OUT["pdf"],
        png=_EVENTS_OUT["png"],
    params:
        datasets=DATASETS,
        unmemorised=STATS["unmemorised"],
    log:
        job_log("figure_events"),
    benchmark:
        job_benchmark("figure_events")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_events.py"


rule figure_tables:
    """The report's CSV copy of every summary table the figures read: for a run from cached results
    (run.summary_cache), whose tables no stats rule writes."""
    input:
        **{t: figure_table(t) for t in _summary_tables(config)},
    output:
        **cached_table_outputs(),
    log:
        job_log("figure_tables"),
    benchmark:
        job_benchmark("figure_tables")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(1000),
        runtime=runtime_growing(5),
    script:
        "../scripts/figure_tables.py"
