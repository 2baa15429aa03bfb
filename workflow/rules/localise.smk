# Localisation technique rules (DESIGN §4); settings and helpers in localise_helpers.smk.

rule swapping:
    """Copy every window of blocks from the clean twin into the noisy model (DESIGN §4)."""
    input:
        examples=f"{RESULTS}/data/{{dataset}}.parquet",
        tokens=f"{RESULTS}/tokens/{{dataset}}/{{model}}.parquet",
        memorised=memorised_set_file,
        model=f"{MODEL_DIR}/{LOC['checkpoint']}",
        twin=lambda wc: f"{RESULTS}/models/{wc.dataset}/{wc.model}/{twin_variant(wc)}/seed{wc.seed}/{LOC['checkpoint']}",
    output:
        raw=ensure(loc_outputs("swapping")["raw"], non_empty=True),
        weights=ensure(loc_outputs("swapping")["weights"], non_empty=True),
    params:
        settings=technique_settings("swapping"),
    log:
        loc_common("swapping")["log"],
    benchmark:
        loc_common("swapping")["benchmark"]
    conda:
        CONDA_ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=mem_mb_growing(8000),
        runtime=runtime_growing(60),
    script:
        "../scripts/localise_swapping.py"


rule retraining:
    """Reset every window to its pretrained weights and retrain it on clean examples (DESIGN §4)."""
    input:
        examples=f"{RESULTS}/data/{{dataset}}.parquet",
        tokens=f"{RESULTS}/tokens/{{dataset}}/{{model}}.parquet",
        memorised=memorised_set_file,
        model=f"{MODEL_DIR}/{LOC['checkpoint']}",
        pretrained=f"{RESULTS}/pretrained/{{model}}",
    output:
        raw=ensure(loc_outputs("retraining")["raw"], non_empty=True),
        weights=ensure(loc_outputs("retraining")["weights"], non_empty=True),
    params:
        settings=technique_settings("retraining"),
    log:
        loc_common("retraining")["log"],
    benchmark:
        loc_common("retraining")["benchmark"]
    conda:
        CONDA_ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=mem_mb_growing(8000),
        runtime=runtime_growing(240),
    script:
        "../scripts/localise_retraining.py"


rule gradients:
    """Per-block forgetting gradients at the memorised checkpoint, relative to the frozen model."""
    input:
        examples=f"{RESULTS}/data/{{dataset}}.parquet",
        tokens=f"{RESULTS}/tokens/{{dataset}}/{{model}}.parquet",
        memorised=memorised_set_file,
        model=f"{MODEL_DIR}/memorised",
        frozen=f"{RESULTS}/models/{{dataset}}/{{model}}/frozen/seed{{seed}}/memorised",
    output:
        raw=ensure(loc_outputs("gradients")["raw"], non_empty=True),
        weights=ensure(loc_outputs("gradients")["weights"], non_empty=True),
    params:
        settings=technique_settings("gradients"),
    log:
        loc_common("gradients")["log"],
    benchmark:
        loc_common("gradients")["benchmark"]
    conda:
        CONDA_ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=mem_mb_growing(8000),
        runtime=runtime_growing(60),
    script:
        "../scripts/localise_gradients.py"


rule probing:
    """Probe every layer's pooled hidden state for "is this example memorised" (DESIGN §4)."""
    input:
        examples=f"{RESULTS}/data/{{dataset}}.parquet",
        tokens=f"{RESULTS}/tokens/{{dataset}}/{{model}}.parquet",
        memorised=memorised_set_file,
        model=f"{MODEL_DIR}/{LOC['checkpoint']}",
        frozen=f"{RESULTS}/models/{{dataset}}/{{model}}/frozen/seed{{seed}}/{LOC['checkpoint']}",
    output:
        raw=ensure(loc_outputs("probing")["raw"], non_empty=True),
        weights=ensure(loc_outputs("probing")["weights"], non_empty=True),
    params:
        settings=technique_settings("probing"),
    log:
        loc_common("probing")["log"],
    benchmark:
        loc_common("probing")["benchmark"]
    conda:
        CONDA_ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=mem_mb_growing(8000),
        runtime=runtime_growing(60),
    script:
        "../scripts/localise_probing.py"


rule centroids:
    """Project examples onto class-centroid lines per layer; crossing and initiation layers."""
    input:
        examples=f"{RESULTS}/data/{{dataset}}.parquet",
        tokens=f"{RESULTS}/tokens/{{dataset}}/{{model}}.parquet",
        memorised=memorised_set_file,
        model=f"{MODEL_DIR}/{LOC['checkpoint']}",
    output:
        raw=ensure(f"{RESULTS}/localisation/centroids/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}.parquet", non_empty=True),
        events=ensure(
            f"{RESULTS}/localisation/centroids/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}.events.parquet", non_empty=True
        ),
    params:
        settings=technique_settings("centroids"),
    log:
        loc_common("centroids")["log"],
    benchmark:
        loc_common("centroids")["benchmark"]
    conda:
        CONDA_ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=mem_mb_growing(8000),
        runtime=runtime_growing(30),
    script:
        "../scripts/localise_centroids.py"
