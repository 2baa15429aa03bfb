"""The results layout, written down once: every file memloc writes, as a template under the results directory.

Templates use Snakemake's wildcard syntax (``{dataset}``, ``{seed}``, ...) and are relative to the
results directory. The rules prefix them with it (``workflow/rules/common.smk``), ``memloc check``
turns them into regular expressions to find each table's schema (``x-memloc.path`` in
``workflow/schemas/tables/``), and the collectors parse identifiers back out of per-run file names
(:func:`parse`). Changing a path here changes it everywhere.
"""

from __future__ import annotations

import os
import re
from typing import Mapping

#: One fine-tuned model (dataset, model, variant, seed) and one (dataset, model) pair.
RUN = "{dataset}/{model}/{variant}/seed{seed}"
PAIR = "{dataset}/{model}"

DATA = "data/{dataset}.parquet"
LABELS = "data/{dataset}.labels.json"
PRETRAINED = "pretrained/{model}"
TOKENS = f"tokens/{PAIR}.parquet"

#: A model's directory: its checkpoints (``final/``, ``memorised/``), trace and predictions.
MODEL = f"models/{RUN}"
CHECKPOINT = f"{MODEL}/{{ckpt}}"
TRACE = f"{MODEL}/trace.parquet"
PREDICTIONS = f"{MODEL}/predictions.parquet"
#: Resume state of a training job, outside its declared outputs so that Snakemake keeps it after a kill.
MODEL_WORK = f"work/models/{RUN}"

COUNTERFACTUAL = f"counterfactual/{PAIR}"
SUBSET = f"{COUNTERFACTUAL}/k{{k}}.parquet"
SUBSET_WORK = f"work/counterfactual/{PAIR}/k{{k}}"
MEMORISATION = f"{COUNTERFACTUAL}/memorisation.parquet"
COUNTERFACTUAL_SUMMARY = f"{COUNTERFACTUAL}/summary.json"
RELIABILITY = f"{COUNTERFACTUAL}/reliability.parquet"
MEMORISED_SET = f"{COUNTERFACTUAL}/memorised_set.parquet"

#: A technique's per-run tables: the raw table, its per-layer weights, the centroids' and probing's
#: events, and probing's label probes.
LOCALISATION = f"localisation/{{technique}}/{RUN}"
LOCALISATION_RAW = f"{LOCALISATION}.parquet"
LOCALISATION_WEIGHTS = f"{LOCALISATION}.weights.parquet"
LOCALISATION_EVENTS = f"{LOCALISATION}.events.parquet"
LOCALISATION_LABELS = f"{LOCALISATION}.labels.parquet"

SUMMARY = "summary/{table}.parquet"
#: The report's copy of a summary table: Snakemake's report renders CSV as a table, Parquet as bytes.
SUMMARY_CSV = "summary/{table}.csv"
#: ... and of one read from cached results (``run.summary_cache``), apart from the stats rules' own copies.
SUMMARY_CACHED_CSV = "summary/cached/{table}.csv"
FIGURE = "figures/{stem}.{ext}"
MEMORISATION_MAP = f"figures/memorisation_map/{PAIR}.{{ext}}"

#: One job's log and benchmark: a folder per rule, a file per job (``{job}``: its wildcards as a path).
LOG = "logs/{rule}/{job}.log"
BENCHMARK = "benchmarks/{rule}/{job}.tsv"
#: ... and those of a rule that runs once.
RULE_LOG = "logs/{rule}.log"
RULE_BENCHMARK = "benchmarks/{rule}.tsv"

_WILDCARD = re.compile(r"\{(\w+)\}")
#: Wildcards whose values are numbers; any other matches one path component.
_NUMERIC = {"seed", "k"}


def fill(template: str, **values: object) -> str:
    """``template`` with the given wildcards replaced and the others left as wildcards.

    >>> fill(LOCALISATION_WEIGHTS, technique="swapping")
    'localisation/swapping/{dataset}/{model}/{variant}/seed{seed}.weights.parquet'
    """
    unknown = set(values) - set(_WILDCARD.findall(template))
    if unknown:
        raise KeyError(f"{template}: no wildcard(s) {', '.join(sorted(unknown))}")
    return _WILDCARD.sub(lambda m: str(values.get(m.group(1), m.group(0))), template)


def pattern(template: str, anchored: bool = True, **constraints: str) -> re.Pattern:
    """A regular expression of ``template`` with one named group per wildcard.

    ``constraints`` give a wildcard's own expression (e.g. ``technique="swapping|retraining"``);
    ``seed`` and ``k`` match digits, every other wildcard one path component. ``anchored=False``
    matches the template at the end of a longer path (``results/...`` or an absolute one).
    """
    parts, pos = [], 0
    for m in _WILDCARD.finditer(template):
        name = m.group(1)
        parts.append(re.escape(template[pos : m.start()]))
        expr = constraints.get(name, r"\d+" if name in _NUMERIC else r"[^/]+")
        parts.append(f"(?P<{name}>{expr})")
        pos = m.end()
    parts.append(re.escape(template[pos:]))
    body = "".join(parts)
    return re.compile(f"^{body}$" if anchored else f"(?:^|/){body}$")


def parse(template: str, path: str | os.PathLike, **constraints: str) -> dict[str, object]:
    """The wildcards of ``path`` (a file of ``template``, under any results directory); numbers as ints.

    >>> parse(LOCALISATION_WEIGHTS, "results/localisation/swapping/sst2/bert/noisy/seed3.weights.parquet")["seed"]
    3
    """
    text = os.fspath(path).replace(os.sep, "/")
    m = pattern(template, anchored=False, **constraints).search(text)
    if m is None:
        raise ValueError(f"{path}: expected a path of the form .../{template}")
    return {k: int(v) if k in _NUMERIC else v for k, v in m.groupdict().items()}


def table_pattern(spec: Mapping) -> re.Pattern:
    """The files of a table schema's ``x-memloc`` block: ``path`` names a template of this module,
    ``wildcards`` optionally constrains some of its wildcards (e.g. ``technique: swapping|retraining``)."""
    name = spec.get("path")
    template = globals().get(name) if isinstance(name, str) and name.isupper() else None
    if not isinstance(template, str):
        known = sorted(k for k, v in globals().items() if k.isupper() and isinstance(v, str) and not k.startswith("_"))
        raise KeyError(f"x-memloc.path = {name!r} is not a template of memloc.paths; known: {', '.join(known)}")
    return pattern(template, **(spec.get("wildcards") or {}))
