# Fine-tuning: pretrained weights materialised once per model, tokens cached once per
# (dataset, model), then one job per (dataset, model, variant, seed).


rule pretrained:
    """Materialise a model source (package, hub id/local dir, random) as a local checkpoint."""
    output:
        directory(f"{RESULTS}/pretrained/{{model}}"),
    params:
        # Only the source: changing training settings must not re-materialise the weights.
        spec=lambda wc: {"name": wc.model, "source": mconf.model_spec(config, wc.model)["source"]},
    log:
        f"{RESULTS}/logs/pretrained/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/pretrained/{{model}}.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(4000),
        runtime=runtime_growing(20),
    script:
        "../scripts/pretrained.py"


rule tokenize:
    """Tokenise a prepared data set for one model, once; every later job reuses it."""
    input:
        examples=f"{RESULTS}/data/{{dataset}}.parquet",
        pretrained=f"{RESULTS}/pretrained/{{model}}",
    output:
        ensure(f"{RESULTS}/tokens/{{dataset}}/{{model}}.parquet", non_empty=True),
    params:
        max_length=lambda wc: mconf.model_spec(config, wc.model)["max_length"],
    log:
        f"{RESULTS}/logs/tokenize/{{dataset}}/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tokenize/{{dataset}}/{{model}}.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(4000),
        runtime=runtime_growing(20),
    script:
        "../scripts/tokenize.py"


rule finetune:
    """Fine-tune one variant (noisy, clean, frozen) of a model on a data set with one seed."""
    wildcard_constraints:
        variant="noisy|clean|frozen",
    input:
        examples=f"{RESULTS}/data/{{dataset}}.parquet",
        tokens=f"{RESULTS}/tokens/{{dataset}}/{{model}}.parquet",
        pretrained=f"{RESULTS}/pretrained/{{model}}",
    output:
        final=directory(f"{RESULTS}/models/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}/final"),
        memorised=directory(f"{RESULTS}/models/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}/memorised"),
        trace=ensure(f"{RESULTS}/models/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}/trace.parquet", non_empty=True),
        predictions=ensure(
            f"{RESULTS}/models/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}/predictions.parquet", non_empty=True
        ),
    params:
        settings=training_settings,
        seed=lambda wc: int(wc.seed),
        # Resume state lives outside the declared outputs, so Snakemake keeps it after a kill.
        work_dir=lambda wc: f"{RESULTS}/work/models/{wc.dataset}/{wc.model}/{wc.variant}/seed{wc.seed}",
    log:
        f"{RESULTS}/logs/finetune/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/finetune/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=mem_mb_growing(8000),
        runtime=runtime_growing(120),
    script:
        "../scripts/finetune.py"
