# Settings and helper functions of the localise rules (localise.smk).

# Localisation techniques (DESIGN §4): one job per (technique, dataset, model, variant, seed),
# each writing its raw table and its per-layer weights.

LOC = config["localisation"]
MODEL_DIR = f"{RESULTS}/models/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}"
LOC_OUT = f"{RESULTS}/localisation/{{technique}}/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}"


def technique_settings(technique):
    """Technique options plus the model's device and precision, as one params dict."""

    def settings(wildcards):
        training = mconf.model_spec(config, wildcards.model)["training"]
        return {
            **LOC[technique],
            "max_window": LOC["max_window"],
            "eval_batch_size": LOC["eval_batch_size"],
            "device": training["device"],
            "precision": training["precision"],
            "deterministic": training["deterministic"],
            "seed": int(wildcards.seed),
        }

    return settings


def twin_variant(wildcards):
    """The clean donor of a variant: `clean` for `noisy`, `control-i-j-clean` for `control-i-j`."""
    from memloc.control.pairs import twin_of

    return twin_of(wildcards.variant)


def loc_outputs(technique):
    out = LOC_OUT.replace("{technique}", technique)
    return {"raw": f"{out}.parquet", "weights": f"{out}.weights.parquet"}


def loc_common(technique):
    base = LOC_OUT.replace("{technique}", technique)
    return dict(
        log=f"{RESULTS}/logs/localise/{technique}/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}.log",
        benchmark=f"{RESULTS}/benchmarks/localise/{technique}/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}.tsv",
    )


def localisation_targets():
    out = []
    for technique in LOC["techniques"]:
        suffix = ".events.parquet" if technique == "centroids" else ".weights.parquet"
        out += expand(
            f"{RESULTS}/localisation/{technique}/{{dataset}}/{{model}}/noisy/seed{{seed}}{suffix}",
            dataset=DATASETS,
            model=MODELS,
            seed=SEEDS,
        )
    return out
