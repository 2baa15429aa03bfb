# Counterfactual memorisation (DESIGN §4): K subset models per (dataset, model), each trained on
# a seeded share of the noisy training set; then per-example train memorisation, generalisation
# and counterfactual memorisation with bootstrap intervals, a dataset summary, the split-half
# reliability curve, the memorised-set table for the localisation stages and the memorisation map.
#
# Raising counterfactual.models (K) re-runs only the new subset models and the estimator: the
# per-k job's params hold the training settings and the subset's data seeds, never K.

from memloc.counterfactual.subsets import subset_settings as _cf_subset_settings

CF = config["counterfactual"]
CF_DIR = f"{RESULTS}/counterfactual/{{dataset}}/{{model}}"
# Fixed analysis constants (not user settings): the bootstrap seed and the number of random
# split-halves averaged per k in the reliability curve.
CF_BOOTSTRAP_SEED = 0
CF_RELIABILITY_SPLITS = 20


def cf_settings(wildcards):
    """The model's training settings with the counterfactual epochs, learning rate, batch size."""
    return _cf_subset_settings(mconf.model_spec(config, wildcards.model)["training"], CF)


def cf_subset(wildcards):
    """What subset k depends on: the share and the data set's data seeds (not K, not the model)."""
    spec = mconf.dataset_spec(config, wildcards.dataset)
    return {
        "fraction": CF["fraction"],
        "split_seed": int(spec.get("split_seed", 0)),
        "noise_seed": int(spec["noise"]["seed"]),
    }


def cf_subset_tables(wildcards):
    return [f"{RESULTS}/counterfactual/{wildcards.dataset}/{wildcards.model}/k{k}.parquet" for k in range(1, CF["models"] + 1)]


def memorised_set_file(wildcards):
    """The memorised-set table of a (dataset, model): input for the localisation rules."""
    return f"{RESULTS}/counterfactual/{wildcards.dataset}/{wildcards.model}/memorised_set.parquet"


def counterfactual_targets(datasets=None, models=None, figures=True):
    """Every counterfactual output of the run (for `rule all`)."""
    datasets = DATASETS if datasets is None else datasets
    models = MODELS if models is None else models
    out = expand(
        f"{CF_DIR}/{{name}}",
        dataset=datasets,
        model=models,
        name=["memorisation.parquet", "summary.json", "reliability.parquet", "memorised_set.parquet"],
    )
    if figures:
        out += expand(
            f"{RESULTS}/figures/memorisation_map/{{dataset}}/{{model}}.{{ext}}",
            dataset=datasets,
            model=models,
            ext=["pdf", "png"],
        )
    return out


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


def _memorised_set_inputs(wildcards):
    inputs = {"examples": f"{RESULTS}/data/{wildcards.dataset}.parquet"}
    if CF["memorised_set"] == "top_cm":
        # Only this set needs the K subset models; `noisy` comes straight from the data.
        inputs["memorisation"] = f"{RESULTS}/counterfactual/{wildcards.dataset}/{wildcards.model}/memorisation.parquet"
    return inputs


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
