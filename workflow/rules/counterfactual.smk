# Counterfactual memorisation rules (DESIGN §4); settings and helpers in counterfactual_helpers.smk.

rule finetune_subset:
    """Train subset model k from the pretrained weights on a seeded share of the noisy training set."""
    input:
        examples=f"{RESULTS}/data/{{dataset}}.parquet",
        tokens=f"{RESULTS}/tokens/{{dataset}}/{{model}}.parquet",
        pretrained=f"{RESULTS}/pretrained/{{model}}",
    output:
        ensure(f"{CF_DIR}/k{{k}}.parquet", non_empty=True),
    wildcard_constraints:
        k=r"[1-9]\d*",
    params:
        settings=cf_settings,
        subset=cf_subset,
        k=lambda wc: int(wc.k),
        # Resume state lives outside the declared outputs, so Snakemake keeps it after a kill.
        work_dir=lambda wc: f"{RESULTS}/work/counterfactual/{wc.dataset}/{wc.model}/k{wc.k}",
    log:
        f"{RESULTS}/logs/finetune_subset/{{dataset}}/{{model}}/k{{k}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/finetune_subset/{{dataset}}/{{model}}/k{{k}}.tsv"
    conda:
        CONDA_ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=mem_mb_growing(8000),
        runtime=runtime_growing(120),
    script:
        "../scripts/counterfactual_subset.py"


rule counterfactual_memorisation:
    """Per-example memorisation with bootstrap intervals, dataset summary and reliability curve."""
    input:
        examples=f"{RESULTS}/data/{{dataset}}.parquet",
        subsets=cf_subset_tables,
    output:
        memorisation=ensure(f"{CF_DIR}/memorisation.parquet", non_empty=True),
        summary=f"{CF_DIR}/summary.json",
        reliability=f"{CF_DIR}/reliability.parquet",
    params:
        bootstrap=CF["bootstrap"],
        confidence=CF["confidence"],
        seed=CF_BOOTSTRAP_SEED,
        reliability_splits=CF_RELIABILITY_SPLITS,
    log:
        f"{RESULTS}/logs/counterfactual_memorisation/{{dataset}}/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/counterfactual_memorisation/{{dataset}}/{{model}}.tsv"
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=mem_mb_growing(4000),
        runtime=runtime_growing(30),
    script:
        "../scripts/counterfactual_memorisation.py"


rule memorised_set:
    """The training examples the localisation techniques treat as memorised (noisy or top CM)."""
    input:
        unpack(_memorised_set_inputs),
    output:
        ensure(f"{CF_DIR}/memorised_set.parquet", non_empty=True),
    params:
        kind=CF["memorised_set"],
        top_cm_share=CF["top_cm_share"] if CF["memorised_set"] == "top_cm" else None,
    log:
        f"{RESULTS}/logs/memorised_set/{{dataset}}/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/memorised_set/{{dataset}}/{{model}}.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/counterfactual_memorised_set.py"


rule memorisation_map:
    """Train memorisation against generalisation per example, coloured by counterfactual memorisation."""
    input:
        memorisation=f"{CF_DIR}/memorisation.parquet",
    output:
        pdf=f"{RESULTS}/figures/memorisation_map/{{dataset}}/{{model}}.pdf",
        png=report(
            f"{RESULTS}/figures/memorisation_map/{{dataset}}/{{model}}.png",
            caption="../report/counterfactual_map.rst",
            category="Counterfactual memorisation",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "model": "{model}", "figure": "memorisation map"},
        ),
    log:
        f"{RESULTS}/logs/memorisation_map/{{dataset}}/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/memorisation_map/{{dataset}}/{{model}}.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/counterfactual_map.py"
