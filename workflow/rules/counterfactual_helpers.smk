# Settings and helper functions of the counterfactual rules (counterfactual.smk).

# Counterfactual memorisation: K subset models per (dataset, model), each trained on a seeded
# share of the noisy training set; then per-example train memorisation, generalisation and
# counterfactual memorisation with bootstrap intervals, a dataset summary, the split-half
# reliability curve, the memorised-set table for the localisation stages and the memorisation map.
#
# Raising counterfactual.models (K) re-runs only the new subset models and the estimator: the
# per-k job's params hold the training settings and the subset's data seeds, never K.

from memloc.counterfactual.subsets import subset_settings as _cf_subset_settings

# Fixed analysis constants (not user settings): the bootstrap seed and the number of random
# split-halves averaged per k in the reliability curve.
CF_BOOTSTRAP_SEED = 0
CF_RELIABILITY_SPLITS = 20


def cf_settings(wildcards):
    """The model's training settings with the counterfactual epochs, learning rate, batch size."""
    return _cf_subset_settings(mconf.model_spec(config, wildcards.model, wildcards.dataset)["training"], CF)


def cf_subset(wildcards):
    """What subset k depends on: the share, stratification and the data set's data seeds (not K, not the model)."""
    spec = mconf.dataset_spec(config, wildcards.dataset)
    return {
        "fraction": CF["fraction"],
        "stratify": CF["stratify"],
        "split_seed": int(spec.get("split_seed", 0)),
        "noise_seed": int(spec["noise"]["seed"]),
    }


def cf_subset_tables(wildcards):
    return [results_path(paths.SUBSET, dataset=wildcards.dataset, model=wildcards.model, k=k) for k in range(1, CF["models"] + 1)]


def counterfactual_targets(datasets=None, models=None, figures=True):
    """Every counterfactual output of the run (for `rule all`)."""
    datasets = DATASETS if datasets is None else datasets
    models = MODELS if models is None else models
    tables = [paths.MEMORISATION, paths.COUNTERFACTUAL_SUMMARY, paths.RELIABILITY, paths.MEMORISED_SET]
    out = [f for d in datasets for m in models for f in (results_path(t, dataset=d, model=m) for t in tables)]
    if figures:
        out += memorisation_map_targets(datasets, models)
    return out


def memorisation_map_targets(datasets, models):
    """The memorisation maps (PDF and PNG) of every (dataset, model)."""
    return expand(results_path(paths.MEMORISATION_MAP), dataset=datasets, model=models, ext=["pdf", "png"])


def _memorised_set_inputs(wildcards):
    inputs = {"examples": results_path(paths.DATA, dataset=wildcards.dataset)}
    if CF["memorised_set"] == "top_cm":
        # Only this set needs the K subset models; `noisy` comes straight from the data.
        inputs["memorisation"] = results_path(paths.MEMORISATION, dataset=wildcards.dataset, model=wildcards.model)
    return inputs
