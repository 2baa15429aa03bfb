# Fine-tuning: pretrained weights materialised once per model, tokens cached once per
# (dataset, model), then one job per (dataset, model, variant, seed).


rule train_pretrained:
    """Materialise a model source (package, hub id/local dir, random) as a local checkpoint."""
    output:
        directory(results_path(paths.PRETRAINED)),
    params:
        # Only the source: changing training settings must not re-materialise the weights.
        spec=lambda wc: {"name": wc.model, "source": mconf.model_spec(config, wc.model)["source"]},
    log:
        job_log("train_pretrained", "{model}"),
    benchmark:
        job_benchmark("train_pretrained", "{model}")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(4000),
        runtime=runtime_growing(20),
    script:
        "../scripts/train_pretrained.py"


rule train_tokenize:
    """Tokenise a prepared data set for one model, once; every later job reuses it."""
    input:
        examples=results_path(paths.DATA),
        pretrained=results_path(paths.PRETRAINED),
    output:
        ensure(results_path(paths.TOKENS), non_empty=True),
    params:
        settings=lambda wc: token_settings(wc.model),
    log:
        job_log("train_tokenize", paths.PAIR),
    benchmark:
        job_benchmark("train_tokenize", paths.PAIR)
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(4000),
        runtime=runtime_growing(20),
    script:
        "../scripts/train_tokenize.py"


rule train_finetune:
    """Fine-tune one variant (noisy, clean, frozen) of a model on a data set with one seed."""
    wildcard_constraints:
        variant="noisy|clean|frozen",
    input:
        examples=results_path(paths.DATA),
        tokens=results_path(paths.TOKENS),
        pretrained=results_path(paths.PRETRAINED),
        # With training.stopping: memorised the clean twin trains as many epochs as its noisy twin.
        twin_trace=noisy_twin_trace,
    output:
        final=directory(results_path(paths.CHECKPOINT, ckpt="final")),
        memorised=directory(results_path(paths.CHECKPOINT, ckpt="memorised")),
        trace=ensure(results_path(paths.TRACE), non_empty=True),
        predictions=ensure(results_path(paths.PREDICTIONS), non_empty=True),
    params:
        settings=training_settings,
        seed=lambda wc: int(wc.seed),
        work_dir=wildcard_path(paths.MODEL_WORK),
    log:
        job_log("train_finetune", paths.RUN),
    benchmark:
        job_benchmark("train_finetune", paths.RUN)
    conda:
        CONDA_ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=mem_mb_growing(8000),
        runtime=runtime_growing(120),
    script:
        "../scripts/train_finetune.py"
