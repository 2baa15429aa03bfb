# Settings and helper functions of the counterfactual rules (counterfactual.smk).

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
    """The memorised-set table of a (dataset, model): input for the localisation rules.

    Control variants always localise their own injected noise, so they get no file.
    """
    if wildcards.get("variant", "noisy").startswith("control-"):
        return []
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


def _memorised_set_inputs(wildcards):
    inputs = {"examples": f"{RESULTS}/data/{wildcards.dataset}.parquet"}
    if CF["memorised_set"] == "top_cm":
        # Only this set needs the K subset models; `noisy` comes straight from the data.
        inputs["memorisation"] = f"{RESULTS}/counterfactual/{wildcards.dataset}/{wildcards.model}/memorisation.parquet"
    return inputs
