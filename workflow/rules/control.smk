# Control-setup rules; settings and helpers in control_helpers.smk.


rule control_finetune:
    """Train a control model: the main task updates only blocks i and j (and its head; control-frozen,
    the control baseline: the head only), a clean auxiliary task with its own head updates every block."""
    input:
        examples=results_path(paths.DATA),
        tokens=results_path(paths.TOKENS),
        aux_examples=lambda wc: results_path(paths.DATA, dataset=control_auxiliary(wc)),
        aux_tokens=lambda wc: results_path(paths.TOKENS, dataset=control_auxiliary(wc), model=wc.model),
        pretrained=results_path(paths.PRETRAINED),
    output:
        final=directory(results_path(paths.CHECKPOINT, ckpt="final")),
        memorised=directory(results_path(paths.CHECKPOINT, ckpt="memorised")),
        trace=ensure(results_path(paths.TRACE), non_empty=True),
        predictions=ensure(results_path(paths.PREDICTIONS), non_empty=True),
    wildcard_constraints:
        # control-i-j[-clean] and control-frozen, disjoint from train_finetune's noisy|clean|frozen.
        variant=CONTROL_VARIANT_PATTERN,
    params:
        settings=training_settings,
        control=lambda wc: control_cfg.training_settings(config),
        auxiliary=control_auxiliary,
        seed=lambda wc: int(wc.seed),
        work_dir=wildcard_path(paths.MODEL_WORK),
    log:
        job_log("control_finetune", paths.RUN),
    benchmark:
        job_benchmark("control_finetune", paths.RUN)
    conda:
        CONDA_ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=mem_mb_growing(8000),
        runtime=runtime_growing(180),
    script:
        "../scripts/control_finetune.py"


rule control_accuracy:
    """acc@1 / acc@2 of every technique on every control model, and per-technique means."""
    input:
        weights=lambda wc: control_localisation_files(CONTROL["techniques"]),
        traces=lambda wc: control_model_files(paths.TRACE),
    output:
        **summary_outputs("table", "control_accuracy", "control_accuracy", "Control"),
        **summary_outputs("summary", "control_accuracy_summary", "control_accuracy_summary", "Control"),
    params:
        checkpoints=lambda wc: control_checkpoints(),
        learned_accuracy=CONTROL["learned_accuracy"],
        bootstrap=CONTROL["bootstrap"],
        confidence=CONTROL["confidence"],
        seed=CONTROL["seed"],
    log:
        job_log("control_accuracy"),
    benchmark:
        job_benchmark("control_accuracy")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/control_accuracy.py"
