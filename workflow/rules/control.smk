# Control-setup rules (DESIGN §4); settings and helpers in control_helpers.smk.

rule finetune_control:
    """Train a control model: the main task updates only blocks i and j (and its head), a clean
    auxiliary task with its own head updates every block (DESIGN §4)."""
    input:
        examples=f"{RESULTS}/data/{{dataset}}.parquet",
        tokens=f"{RESULTS}/tokens/{{dataset}}/{{model}}.parquet",
        aux_examples=lambda wc: f"{RESULTS}/data/{control_auxiliary(wc)}.parquet",
        aux_tokens=lambda wc: f"{RESULTS}/tokens/{control_auxiliary(wc)}/{wc.model}.parquet",
        pretrained=f"{RESULTS}/pretrained/{{model}}",
    output:
        final=directory(f"{RESULTS}/models/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}/final"),
        memorised=directory(f"{RESULTS}/models/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}/memorised"),
        trace=ensure(f"{RESULTS}/models/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}/trace.parquet", non_empty=True),
        predictions=ensure(
            f"{RESULTS}/models/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}/predictions.parquet", non_empty=True
        ),
    wildcard_constraints:
        variant=CONTROL_VARIANT_PATTERN,
    params:
        settings=training_settings,
        control=lambda wc: control_cfg.training_settings(config),
        auxiliary=control_auxiliary,
        seed=lambda wc: int(wc.seed),
        # Resume state lives outside the declared outputs, so Snakemake keeps it after a kill.
        work_dir=lambda wc: f"{RESULTS}/work/models/{wc.dataset}/{wc.model}/{wc.variant}/seed{wc.seed}",
    log:
        f"{RESULTS}/logs/finetune_control/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/finetune_control/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=mem_mb_growing(8000),
        runtime=runtime_growing(180),
    script:
        "../scripts/control_finetune.py"


ruleorder: finetune_control > finetune


rule control_accuracy:
    """acc@1 / acc@2 of every technique on every control model, and per-technique means."""
    input:
        weights=lambda wc: control_localisation_files(CONTROL["techniques"]),
        traces=lambda wc: control_model_files("trace.parquet"),
    output:
        table=report(
            f"{RESULTS}/summary/control_accuracy.parquet", caption="../report/control_accuracy.rst", category="Control"
        ),
        summary=report(
            f"{RESULTS}/summary/control_accuracy_summary.parquet",
            caption="../report/control_accuracy_summary.rst",
            category="Control",
        ),
    params:
        checkpoints=lambda wc: control_checkpoints(),
        learned_accuracy=CONTROL["learned_accuracy"],
        bootstrap=CONTROL["bootstrap"],
        confidence=CONTROL["confidence"],
        seed=CONTROL["seed"],
    log:
        f"{RESULTS}/logs/control/control_accuracy.log",
    benchmark:
        f"{RESULTS}/benchmarks/control/control_accuracy.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/control_accuracy.py"


rule control_figure:
    """acc@1 and acc@2 per technique with bootstrap intervals, against chance 2/L."""
    input:
        table=f"{RESULTS}/summary/control_accuracy.parquet",
        summary=f"{RESULTS}/summary/control_accuracy_summary.parquet",
    output:
        pdf=report(
            f"{RESULTS}/figures/control_accuracy_summary.pdf",
            caption="../report/control_figure.rst",
            category="Control",
            labels={"figure": "control accuracy (intervals)", "format": "PDF"},
        ),
        png=report(
            f"{RESULTS}/figures/control_accuracy_summary.png",
            caption="../report/control_figure.rst",
            category="Control",
            labels={"figure": "control accuracy (intervals)", "format": "PNG"},
        ),
    log:
        f"{RESULTS}/logs/control/control_figure.log",
    benchmark:
        f"{RESULTS}/benchmarks/control/control_figure.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/control_figure.py"
