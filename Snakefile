"""memloc: where in a fine-tuned transformer are the memorised training examples stored?

Targets: `all` (default). Configuration: config.yaml (embedded default, CPU, offline), or
`--configfile config/<name>.yaml`. Every key is documented in workflow/schemas/config.schema.yaml.
"""

import sys
from pathlib import Path

# The memloc package lives in workflow/memloc. Jobs import the installed package
# (`pip install -e .`); the Snakefile itself also works from a plain checkout.
_PKG_ROOT = str(Path(workflow.basedir) / "workflow")
if _PKG_ROOT not in sys.path:
    sys.path.insert(0, _PKG_ROOT)

# `--configfile` replaces the embedded default instead of being merged into it, so a user's
# config never inherits data sets or models it does not mention.
if not workflow.config_settings.configfiles:

    configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/counterfactual_helpers.smk"
include: "workflow/rules/counterfactual.smk"
include: "workflow/rules/localise_helpers.smk"
include: "workflow/rules/localise.smk"
include: "workflow/rules/control_helpers.smk"
include: "workflow/rules/control.smk"
include: "workflow/rules/stats_helpers.smk"
include: "workflow/rules/stats.smk"
include: "workflow/rules/figures_helpers.smk"
include: "workflow/rules/figures.smk"


rule all:
    """Everything the configuration asks for; with run.summary_cache, only the figures and report
    tables drawn from the cache (docs/protocol.md §9.1)."""
    input:
        (
            summary_cache_targets()
            if SUMMARY_CACHE
            else [
                expand(results_path(paths.DATA), dataset=DATASETS),
                model_targets(),
                counterfactual_targets(DATASETS, MODELS),
                localisation_targets(),
                control_targets(),
                stats_targets(),
                figure_targets(),
            ]
        ),
    default_target: True
