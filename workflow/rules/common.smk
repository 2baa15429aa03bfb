# Shared helpers for rules: effective specs as params, resources that grow with each attempt.

CONDA_ENV = "../../envs/memloc.yaml"


def dataset_spec(wildcards):
    """What the prepared data depends on (the reporting-only `family` is left out)."""
    spec = mconf.dataset_spec(config, wildcards.dataset)
    spec.pop("family", None)
    return spec


def model_spec(wildcards):
    return mconf.model_spec(config, wildcards.model)


def training_settings(wildcards):
    return mconf.model_spec(config, wildcards.model)["training"]


def mem_mb_growing(base_mb):
    """Memory request that doubles on each retry (a job killed for memory gets more next time)."""
    return lambda wildcards, attempt: base_mb * 2 ** (attempt - 1)


def runtime_growing(base_min):
    """Runtime request (minutes) that grows with each retry."""
    return lambda wildcards, attempt: base_min * attempt
