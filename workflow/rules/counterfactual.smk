# Counterfactual memorisation rules; settings and helpers in counterfactual_helpers.smk.


rule counterfactual_subset:
    """Train subset model k from the pretrained weights on a seeded share of the noisy training set."""
    input:
        examples=results_path(paths.DATA),
        tokens=results_path(paths.TOKENS),
        pretrained=results_path(paths.PRETRAINED),
    output:
        ensure(results_path(paths.SUBSET), non_empty=True),
    wildcard_constraints:
        k=r"[1-9]\d*",
    params:
        settings=cf_settings,
        subset=cf_subset,
        k=lambda wc: int(wc.k),
        work_dir=wildcard_path(paths.SUBSET_WORK),
    log:
        job_log("counterfactual_subset", f"{paths.PAIR}/k{{k}}"),
    benchmark:
        job_benchmark("counterfactual_subset", f"{paths.PAIR}/k{{k}}")
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
        examples=results_path(paths.DATA),
        subsets=cf_subset_tables,
    output:
        memorisation=ensure(results_path(paths.MEMORISATION), non_empty=True),
        summary=results_path(paths.COUNTERFACTUAL_SUMMARY),
        reliability=results_path(paths.RELIABILITY),
    params:
        bootstrap=CF["bootstrap"],
        confidence=CF["confidence"],
        seed=CF_BOOTSTRAP_SEED,
        reliability_splits=CF_RELIABILITY_SPLITS,
    log:
        job_log("counterfactual_memorisation", paths.PAIR),
    benchmark:
        job_benchmark("counterfactual_memorisation", paths.PAIR)
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=mem_mb_growing(4000),
        runtime=runtime_growing(30),
    script:
        "../scripts/counterfactual_memorisation.py"


rule counterfactual_memorised_set:
    """The training examples the localisation techniques treat as memorised (noisy or top CM)."""
    input:
        unpack(_memorised_set_inputs),
    output:
        ensure(results_path(paths.MEMORISED_SET), non_empty=True),
    params:
        kind=CF["memorised_set"],
        top_cm_share=CF["top_cm_share"] if CF["memorised_set"] == "top_cm" else None,
    log:
        job_log("counterfactual_memorised_set", paths.PAIR),
    benchmark:
        job_benchmark("counterfactual_memorised_set", paths.PAIR)
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/counterfactual_memorised_set.py"


rule counterfactual_map:
    """Train memorisation against generalisation per example, coloured by counterfactual memorisation."""
    input:
        memorisation=figure_source(paths.MEMORISATION),
    output:
        pdf=results_path(paths.MEMORISATION_MAP, ext="pdf"),
        png=report(
            results_path(paths.MEMORISATION_MAP, ext="png"),
            caption="../report/counterfactual_map.rst",
            category="Counterfactual memorisation",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "model": "{model}", "figure": "memorisation map"},
        ),
    log:
        job_log("counterfactual_map", paths.PAIR),
    benchmark:
        job_benchmark("counterfactual_map", paths.PAIR)
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/counterfactual_map.py"
