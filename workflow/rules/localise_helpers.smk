# Settings and helper functions of the localise rules (localise.smk).

# Localisation techniques: one job per (technique, dataset, model, variant, seed), each writing
# its raw table and its per-layer weights (centroids: its events); probing's label probes write
# their table and the probing events (noisy variant only).

from memloc.control.pairs import twin_of as _twin_of
from memloc.localise.baseline import baseline_seed as _baseline_seed
from memloc.localise.baseline import baseline_variant as _baseline_variant
from memloc.localise.settings import technique_params


def technique_settings(technique):
    """The params dict of a technique's job (memloc.localise.settings.technique_params)."""
    return lambda wildcards: technique_params(config, technique, wildcards.model, int(wildcards.seed), wildcards.dataset)


def analysed_checkpoint(ckpt=LOC["checkpoint"]):
    """The checkpoint a technique analyses of the job's own model."""
    return results_path(paths.CHECKPOINT, ckpt=ckpt)


def baseline_checkpoint(ckpt=LOC["checkpoint"]):
    """The baseline's checkpoint (gradients, probing): same data and model; variant and seed
    from memloc.localise.baseline (localisation.baseline_seed, control.baseline)."""
    return lambda wildcards: results_path(
        paths.CHECKPOINT,
        dataset=wildcards.dataset,
        model=wildcards.model,
        variant=_baseline_variant(config, wildcards.variant),
        seed=_baseline_seed(config, int(wildcards.seed)),
        ckpt=ckpt,
    )


def twin_checkpoint(wildcards):
    """The clean donor's checkpoint: `clean` for `noisy`, `control-i-j-clean` for `control-i-j`."""
    return results_path(
        paths.CHECKPOINT,
        dataset=wildcards.dataset,
        model=wildcards.model,
        variant=_twin_of(wildcards.variant),
        seed=wildcards.seed,
        ckpt=LOC["checkpoint"],
    )


def localisation_outputs(technique, kinds=("raw", "weights")):
    """The per-run tables of `technique`, by kind (raw, weights, events, labels), each required non-empty."""
    templates = {
        "raw": paths.LOCALISATION_RAW,
        "weights": paths.LOCALISATION_WEIGHTS,
        "events": paths.LOCALISATION_EVENTS,
        "labels": paths.LOCALISATION_LABELS,
    }
    return {kind: ensure(results_path(templates[kind], technique=technique), non_empty=True) for kind in kinds}


def localisation_targets():
    out = []
    for technique in LOC["techniques"]:
        template = paths.LOCALISATION_EVENTS if technique == "centroids" else paths.LOCALISATION_WEIGHTS
        out += expand(results_path(template, technique=technique, variant="noisy"), dataset=DATASETS, model=MODELS, seed=SEEDS)
    if LABEL_PROBES:
        out += label_probe_files(paths.LOCALISATION_EVENTS)
    return out
