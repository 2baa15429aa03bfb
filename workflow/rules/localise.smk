# Localisation technique rules; settings and helpers in localise_helpers.smk.


rule localise_swapping:
    """Copy every window of blocks from the clean twin into the noisy model."""
    input:
        examples=results_path(paths.DATA),
        tokens=results_path(paths.TOKENS),
        memorised=memorised_set_file,
        model=analysed_checkpoint(),
        twin=twin_checkpoint,
    output:
        **localisation_outputs("swapping"),
    params:
        settings=technique_settings("swapping"),
    log:
        job_log("localise_swapping", paths.RUN),
    benchmark:
        job_benchmark("localise_swapping", paths.RUN)
    conda:
        CONDA_ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=mem_mb_growing(8000),
        runtime=runtime_growing(60),
    script:
        "../scripts/localise_swapping.py"


rule localise_retraining:
    """Reset every window to its pretrained weights and retrain it on clean examples."""
    input:
        examples=results_path(paths.DATA),
        tokens=results_path(paths.TOKENS),
        memorised=memorised_set_file,
        model=analysed_checkpoint(),
        pretrained=results_path(paths.PRETRAINED),
    output:
        **localisation_outputs("retraining"),
    params:
        settings=technique_settings("retraining"),
    log:
        job_log("localise_retraining", paths.RUN),
    benchmark:
        job_benchmark("localise_retraining", paths.RUN)
    conda:
        CONDA_ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=mem_mb_growing(8000),
        runtime=runtime_growing(240),
    script:
        "../scripts/localise_retraining.py"


rule localise_gradients:
    """Per-block forgetting gradients at the memorised checkpoint, relative to the baseline (frozen) model."""
    input:
        examples=results_path(paths.DATA),
        tokens=results_path(paths.TOKENS),
        memorised=memorised_set_file,
        model=analysed_checkpoint(ckpt="memorised"),
        frozen=baseline_checkpoint(ckpt="memorised"),
    output:
        **localisation_outputs("gradients"),
    params:
        settings=technique_settings("gradients"),
    log:
        job_log("localise_gradients", paths.RUN),
    benchmark:
        job_benchmark("localise_gradients", paths.RUN)
    conda:
        CONDA_ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=mem_mb_growing(8000),
        runtime=runtime_growing(60),
    script:
        "../scripts/localise_gradients.py"


rule localise_probing:
    """Probe every layer's pooled hidden state for "is this example memorised"."""
    input:
        examples=results_path(paths.DATA),
        tokens=results_path(paths.TOKENS),
        memorised=memorised_set_file,
        model=analysed_checkpoint(),
        frozen=baseline_checkpoint(),
    output:
        **localisation_outputs("probing"),
    params:
        settings=technique_settings("probing"),
    log:
        job_log("localise_probing", paths.RUN),
    benchmark:
        job_benchmark("localise_probing", paths.RUN)
    conda:
        CONDA_ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=mem_mb_growing(8000),
        runtime=runtime_growing(60),
    script:
        "../scripts/localise_probing.py"


rule localise_label_probes:
    """Probe every layer for the training (noisy) and the original label; probing event and initiation layers."""
    input:
        examples=results_path(paths.DATA),
        tokens=results_path(paths.TOKENS),
        memorised=memorised_set_file,
        model=analysed_checkpoint(),
    output:
        **localisation_outputs("probing", ("labels", "events")),
    wildcard_constraints:
        variant="noisy",
    params:
        settings=technique_settings("probing"),
    log:
        job_log("localise_label_probes", paths.RUN),
    benchmark:
        job_benchmark("localise_label_probes", paths.RUN)
    conda:
        CONDA_ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=mem_mb_growing(8000),
        runtime=runtime_growing(60),
    script:
        "../scripts/localise_label_probes.py"


rule localise_centroids:
    """Project examples onto class-centroid lines per layer; crossing and initiation layers."""
    input:
        examples=results_path(paths.DATA),
        tokens=results_path(paths.TOKENS),
        memorised=memorised_set_file,
        model=analysed_checkpoint(),
    output:
        **localisation_outputs("centroids", ("raw", "events")),
    params:
        settings=technique_settings("centroids"),
    log:
        job_log("localise_centroids", paths.RUN),
    benchmark:
        job_benchmark("localise_centroids", paths.RUN)
    conda:
        CONDA_ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=mem_mb_growing(8000),
        runtime=runtime_growing(30),
    script:
        "../scripts/localise_centroids.py"
