# Localisation techniques (DESIGN §4): one job per (technique, dataset, model, variant, seed),
# each writing its raw table and its per-layer weights.

LOC = config["localisation"]
MODEL_DIR = f"{RESULTS}/models/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}"
LOC_OUT = f"{RESULTS}/localisation/{{technique}}/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}"


def technique_settings(technique):
    """Technique options plus the model's device and precision, as one params dict."""

    def settings(wildcards):
        training = mconf.model_spec(config, wildcards.model)["training"]
        return {
            **LOC[technique],
            "max_window": LOC["max_window"],
            "eval_batch_size": LOC["eval_batch_size"],
            "device": training["device"],
            "precision": training["precision"],
            "deterministic": training["deterministic"],
            "seed": int(wildcards.seed),
        }

    return settings


def twin_variant(wildcards):
    """The clean donor of a variant: `clean` for `noisy`, `control-i-j-clean` for `control-i-j`."""
    from memloc.control.pairs import twin_of

    return twin_of(wildcards.variant)


def loc_outputs(technique):
    out = LOC_OUT.replace("{technique}", technique)
    return {"raw": f"{out}.parquet", "weights": f"{out}.weights.parquet"}


def loc_common(technique):
    base = LOC_OUT.replace("{technique}", technique)
    return dict(
        log=f"{RESULTS}/logs/localise/{technique}/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}.log",
        benchmark=f"{RESULTS}/benchmarks/localise/{technique}/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}.tsv",
    )


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


def localisation_targets():
    out = []
    for technique in LOC["techniques"]:
        suffix = ".events.parquet" if technique == "centroids" else ".weights.parquet"
        out += expand(
            f"{RESULTS}/localisation/{technique}/{{dataset}}/{{model}}/noisy/seed{{seed}}{suffix}",
            dataset=DATASETS,
            model=MODELS,
            seed=SEEDS,
        )
    return out
