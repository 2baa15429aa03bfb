# Settings and helper functions of the control rules (control.smk).

# Control models: for each target pair (i, j) a model whose main task may only store its noisy
# labels in blocks i and j (`control-i-j`) and its clean twin (`control-i-j-clean`, the swapping
# donor); the localisation techniques run on them unchanged, and control_accuracy scores whether
# each technique's top layers are i and j. The run list (control.datasets x models x pairs x
# control.seeds) and the switch live in common.smk; the baseline (control.baseline, e.g.
# control-frozen) is pulled in by the gradients and probing jobs (localise_helpers.smk).

from memloc.summary_tables import CONTROL_TABLES  # the control rule's tables


def control_auxiliary(wildcards):
    return control_cfg.auxiliary_dataset(config, wildcards.dataset)


def control_checkpoints():
    """The checkpoint each technique analyses (gradients always `memorised`)."""
    return {t: ("memorised" if t == "gradients" else LOC["checkpoint"]) for t in CONTROL["techniques"]}


def control_targets():
    """Control outputs of the run (for `rule all`); empty unless control.enabled."""
    if not CONTROL["enabled"]:
        return []
    return [f for t in CONTROL_TABLES for f in (summary_table(t), summary_csv(t))]
