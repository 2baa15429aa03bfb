# Settings and helper functions of the control rules (control.smk).

# Control models (DESIGN §4): for each target pair (i, j) a model whose main task may only store
# its noisy labels in blocks i and j (`control-i-j`) and its clean twin (`control-i-j-clean`, the
# swapping donor); the localisation techniques run on them unchanged, and control_accuracy scores
# whether each technique's top layers are i and j. Everything is off unless control.enabled.

from memloc.control import config as control_cfg
from memloc.control.pairs import VARIANT_PATTERN as CONTROL_VARIANT_PATTERN
from memloc.errors import ConfigError as _ControlConfigError

try:
    control_cfg.check_control_config(config)
except _ControlConfigError as _err:
    sys.stderr.write(f"memloc: {_err}\n")
    sys.exit(1)

CONTROL = config["control"]


def control_enabled():
    return bool(CONTROL["enabled"])


def control_variants(model=None):
    """Control variants `control-i-j` (no twins) of `model`, or of every run model (their union,
    first-seen order; models of different depth have different pairs). Empty when disabled."""
    if not control_enabled():
        return []
    out = []
    for m in [model] if model else MODELS:
        for v in control_cfg.model_variants(config, m, RESULTS):
            if v not in out:
                out.append(v)
    return out


def control_runs():
    """(dataset, model, variant, seed) of every control model the run scores (no twins)."""
    return [(d, m, v, s) for d in DATASETS for m in MODELS for v in control_variants(m) for s in SEEDS]


def control_localisation_files(techniques, suffix=".weights.parquet"):
    """Per-run localisation files of `techniques` on the control models (exact per-model pairs)."""
    return [
        f"{RESULTS}/localisation/{t}/{d}/{m}/{v}/seed{s}{suffix}" for t in techniques for d, m, v, s in control_runs()
    ]


def control_model_files(name="trace.parquet"):
    """A file of every control model directory (e.g. trace.parquet, predictions.parquet)."""
    return [f"{RESULTS}/models/{d}/{m}/{v}/seed{s}/{name}" for d, m, v, s in control_runs()]


def control_auxiliary(wildcards):
    return control_cfg.auxiliary_dataset(config, wildcards.dataset)


def control_checkpoints():
    """The checkpoint each technique analyses (gradients always `memorised`)."""
    loc = config["localisation"]["checkpoint"]
    return {t: ("memorised" if t == "gradients" else loc) for t in CONTROL["techniques"]}


def control_targets():
    """Control outputs of the run (for `rule all`); empty unless control.enabled."""
    if not control_enabled():
        return []
    return [
        f"{RESULTS}/summary/control_accuracy.parquet",
        f"{RESULTS}/summary/control_accuracy_summary.parquet",
        f"{RESULTS}/figures/control_accuracy_summary.pdf",
        f"{RESULTS}/figures/control_accuracy_summary.png",
    ]
