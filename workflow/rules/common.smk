# The workflow's globals: the validated config, the run lists, the results layout (memloc.paths)
# and the switches that decide which stages run. Every rule file reads only these and its own
# helpers, so any stage (X_helpers.smk, then X.smk) can be included on its own after this file.
#
# Job names: rule name = script name = log and benchmark folder, prefixed by the stage
# (data_, train_, counterfactual_, localise_, control_, stats_, figure_).

import re
import sys
from dataclasses import asdict
from pathlib import Path

from memloc import config as mconf
from memloc import paths
from memloc.control import config as control_cfg
from memloc.control.pairs import VARIANT_PATTERN as CONTROL_VARIANT_PATTERN
from memloc.encoding import TokenSettings
from memloc.errors import ConfigError
from memloc.localise.baseline import baseline_seeds
from memloc.summary_cache import check_cache

CONDA_ENV = "../../envs/memloc.yaml"

# Validation fills every default from the schema and checks every cross-reference (run names,
# control auxiliary data set, control pairs), so nothing below repeats a default or a check.
_CONFIG_SOURCE = ", ".join(map(str, workflow.config_settings.configfiles)) or "config.yaml"
try:
    _validated = mconf.validate(config, source=_CONFIG_SOURCE)
except ConfigError as err:
    sys.stderr.write(f"memloc: {err}\n")
    sys.exit(1)
config.clear()
config.update(_validated)

# Cached results for figures (docs/protocol.md §9.1): with run.summary_cache set, the figure and
# report jobs read that directory instead of results/ and `all` asks for nothing else. An
# incomplete or changed cache stops here, before any job, naming the files.
SUMMARY_CACHE = config["run"]["summary_cache"]
if SUMMARY_CACHE:
    try:
        for _warning in check_cache(SUMMARY_CACHE, config, source=_CONFIG_SOURCE):
            sys.stderr.write(f"memloc: warning: {_warning}\n")
    except ConfigError as err:
        sys.stderr.write(f"memloc: {err}\n")
        sys.exit(1)

RESULTS = "results"
RESOURCES = config["resources_dir"]
DATASETS = mconf.run_datasets(config)
MODELS = mconf.run_models(config)
SEEDS = config["run"]["seeds"]
VARIANTS = config["run"]["variants"]

LOC = config["localisation"]
CF = config["counterfactual"]
CONTROL = config["control"]
CONTROL_DATASETS = control_cfg.control_datasets(config)
CONTROL_MODELS = control_cfg.control_models(config)
CONTROL_SEEDS = control_cfg.control_seeds(config)
STATS = config["stats"]
# Techniques by what they produce: per-layer weights (M-CoG) and window tables (heatmaps).
WEIGHT_TECHNIQUES = [t for t in LOC["techniques"] if t in ("swapping", "retraining", "gradients", "probing")]
WINDOW_TECHNIQUES = [t for t in LOC["techniques"] if t in ("swapping", "retraining")]
# Label probes and probing events (noisy variant only): localisation.probing.label_probes.
LABEL_PROBES = "probing" in LOC["techniques"] and LOC["probing"]["label_probes"]


resource_scopes:
    gpu="local",


wildcard_constraints:
    dataset=r"[A-Za-z0-9_]+",
    model=r"[A-Za-z0-9_]+",
    variant=rf"noisy|clean|frozen|{CONTROL_VARIANT_PATTERN}",
    seed=r"\d+",


def results_path(template, **values):
    """A file of the results layout (a memloc.paths template), some wildcards filled in."""
    return f"{RESULTS}/{paths.fill(template, **values)}"


def wildcard_path(template):
    """A params function: `template` (under results) filled with the job's wildcards."""
    return lambda wildcards: results_path(template, **dict(wildcards.items()))


def summary_table(table):
    return results_path(paths.SUMMARY, table=table)


def figure_source(template, **values):
    """A file the figure and report jobs read: under results/ or, with run.summary_cache, under the
    cache, which keeps the results layout (memloc.summary_cache)."""
    if SUMMARY_CACHE:
        return str(Path(SUMMARY_CACHE) / paths.fill(template, **values))
    return results_path(template, **values)


def figure_table(table):
    """A summary table as the figure jobs read it (figure_source)."""
    return figure_source(paths.SUMMARY, table=table)


def summary_csv(table):
    return results_path(paths.SUMMARY_CSV, table=table)


def summary_outputs(name, table, caption, category="Tables"):
    """Output `name` (a summary table's Parquet) and `name`_csv, its copy in the report: Snakemake's
    report renders CSV as a table but embeds Parquet as unreadable bytes. The job writes both."""
    return {
        name: summary_table(table),
        f"{name}_csv": report(summary_csv(table), caption=f"../report/{caption}.rst", category=category),
    }


def job_log(rule, job=None):
    """The log of one job of `rule`: results/logs/{rule}/{job}.log (results/logs/{rule}.log for a rule run once)."""
    if job is None:
        return results_path(paths.RULE_LOG, rule=rule)
    return results_path(paths.LOG, rule=rule, job=job)


def job_benchmark(rule, job=None):
    if job is None:
        return results_path(paths.RULE_BENCHMARK, rule=rule)
    return results_path(paths.BENCHMARK, rule=rule, job=job)


def dataset_spec(wildcards):
    """What the prepared data depends on (the reporting-only `family` and the training override are left out)."""
    spec = mconf.dataset_spec(config, wildcards.dataset)
    spec.pop("family", None)
    spec.pop("training", None)
    return spec


def dataset_families():
    """{dataset: task family} for the run's data sets."""
    return {d: mconf.dataset_spec(config, d).get("family", "other") for d in DATASETS}


def training_settings(wildcards):
    return mconf.model_spec(config, wildcards.model, wildcards.dataset)["training"]


def noisy_twin_trace(wildcards):
    """The noisy twin's trace, an input of a clean variant whose training.stopping is `memorised`."""
    if wildcards.variant != "clean" or training_settings(wildcards)["stopping"] != "memorised":
        return []
    return results_path(paths.TRACE, dataset=wildcards.dataset, model=wildcards.model, variant="noisy", seed=wildcards.seed)


def model_targets():
    """Predictions of every run model of run.variants; `frozen`, the baseline (memloc.localise.baseline),
    only for the seeds whose baseline it is (localisation.baseline_seed)."""
    return [
        results_path(paths.PREDICTIONS, dataset=d, model=m, variant=v, seed=s)
        for d in DATASETS
        for m in MODELS
        for v in VARIANTS
        for s in (baseline_seeds(config, SEEDS) if v == "frozen" else SEEDS)
    ]


def token_settings(model):
    """The model's tokenisation keys (memloc.encoding.TokenSettings): max_length, pair_encoding, separator."""
    return asdict(TokenSettings.from_model_spec(mconf.model_spec(config, model)))


def label_probe_files(template):
    """Probing's label-probe table or events (a memloc.paths localisation template) of every noisy run."""
    return expand(results_path(template, technique="probing", variant="noisy"), dataset=DATASETS, model=MODELS, seed=SEEDS)


def memorised_set_file(wildcards):
    """The memorised-set table of a (dataset, model): input for the localisation rules.

    Control variants always localise their own injected noise, so they get no file.
    """
    if wildcards.get("variant", "noisy").startswith("control-"):
        return []
    return results_path(paths.MEMORISED_SET, dataset=wildcards.dataset, model=wildcards.model)


# Control models (control-i-j and their clean twins): off unless control.enabled.


def control_variants(model=None):
    """Control variants `control-i-j` (no twins) of `model`, or of every control model (their union,
    first-seen order; models of different depth have different pairs). Empty when disabled."""
    if not CONTROL["enabled"]:
        return []
    out = []
    for m in [model] if model else CONTROL_MODELS:
        for v in control_cfg.model_variants(config, m, RESULTS):
            if v not in out:
                out.append(v)
    return out


def control_runs():
    """(dataset, model, variant, seed) of every control model the run scores (no twins):
    control.datasets x control.models x pairs x control.seeds."""
    return [(d, m, v, s) for d in CONTROL_DATASETS for m in CONTROL_MODELS for v in control_variants(m) for s in CONTROL_SEEDS]


def control_localisation_files(techniques, template=paths.LOCALISATION_WEIGHTS):
    """Per-run localisation files of those of `techniques` the control block scores, on every control model."""
    chosen = [t for t in techniques if t in CONTROL["techniques"]]
    return [
        results_path(template, technique=t, dataset=d, model=m, variant=v, seed=s)
        for t in chosen
        for d, m, v, s in control_runs()
    ]


def control_model_files(template):
    """A file of every control model (e.g. paths.TRACE)."""
    return [results_path(template, dataset=d, model=m, variant=v, seed=s) for d, m, v, s in control_runs()]


def mem_mb_growing(base_mb):
    """Memory request that doubles on each retry (a job killed for memory gets more next time)."""
    return lambda wildcards, attempt: base_mb * 2 ** (attempt - 1)


def runtime_growing(base_min):
    """Runtime request (minutes) that grows with each retry."""
    return lambda wildcards, attempt: base_min * attempt
