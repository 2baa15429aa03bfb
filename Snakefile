"""memloc: where in a fine-tuned transformer are the memorised training examples stored?

Targets: `all` (default). Configuration: config.yaml (embedded default, CPU, offline), or
`--configfile config/<name>.yaml`. Every key is documented in workflow/schemas/config.schema.yaml.
"""

import os
import re
import sys
from pathlib import Path

# The memloc package lives in workflow/memloc. Jobs import the installed package
# (`pip install -e .`); the Snakefile itself also works from a plain checkout.
_PKG_ROOT = str(Path(workflow.basedir) / "workflow")
if _PKG_ROOT not in sys.path:
    sys.path.insert(0, _PKG_ROOT)

from memloc import config as mconf
from memloc.errors import ConfigError


# `--configfile` replaces the embedded default instead of being merged into it, so a user's
# config never inherits data sets or models it does not mention.
if not workflow.config_settings.configfiles:

    configfile: "config.yaml"


try:
    _validated = mconf.validate(
        config, source=", ".join(map(str, workflow.config_settings.configfiles)) or "config.yaml"
    )
except ConfigError as err:
    sys.stderr.write(f"memloc: {err}\n")
    sys.exit(1)
config.clear()
config.update(_validated)

RESULTS = "results"
RESOURCES = config["resources_dir"]
DATASETS = mconf.run_datasets(config)
MODELS = mconf.run_models(config)
SEEDS = config["run"]["seeds"]
VARIANTS = config["run"]["variants"]

resource_scopes:
    gpu="local",


wildcard_constraints:
    dataset=r"[A-Za-z0-9_]+",
    model=r"[A-Za-z0-9_]+",
    variant=r"noisy|clean|frozen|control-[1-9]\d*-[1-9]\d*(?:-clean)?",
    seed=r"\d+",


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
    """Everything the configuration asks for."""
    input:
        expand(f"{RESULTS}/data/{{dataset}}.parquet", dataset=DATASETS),
        expand(
            f"{RESULTS}/models/{{dataset}}/{{model}}/{{variant}}/seed{{seed}}/predictions.parquet",
            dataset=DATASETS,
            model=MODELS,
            variant=VARIANTS,
            seed=SEEDS,
        ),
        counterfactual_targets(DATASETS, MODELS),
        localisation_targets(),
        control_targets(),
        stats_targets(),
        figure_targets(),
    default_target: True
