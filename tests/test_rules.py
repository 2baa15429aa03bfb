"""The rules as a user meets them: one name per job (rule, script, log and benchmark folder), a
report that renders every table it holds, and one results layout (memloc.paths) for all readers."""

from __future__ import annotations

import json
import mimetypes
import re
import subprocess
import sys
from pathlib import Path

import pytest

from memloc import paths
from memloc.check import load_schemas, match
from memloc.stats.collect import parse_counterfactual_path, parse_run_path

REPO = Path(__file__).resolve().parents[1]
STAGES = ("data", "train", "counterfactual", "localise", "control", "stats", "figure")

# Every rule of the parsed workflow, read through Snakemake's API in a fresh interpreter.
LIST_RULES = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings, StorageSettings
with SnakemakeApi(OutputSettings()) as api:
    wf = api.workflow(resource_settings=ResourceSettings(cores=1), storage_settings=StorageSettings(),
                      config_settings=ConfigSettings(configfiles=[Path(p) for p in sys.argv[3:]]),
                      workdir=Path(sys.argv[2]), snakefile=Path(sys.argv[1]))
    rules = [dict(name=r.name, script=r.script, log=[str(f) for f in r.log], benchmark=str(r.benchmark or ""),
                  report=[str(f) for f in r.output if f.flags.get("report")]) for r in wf._workflow.rules]
print("RULES=" + json.dumps(rules))
"""


@pytest.fixture(scope="module")
def rules(tmp_path_factory):
    """The rules of the embedded default with the control overlay (every rule file in play)."""
    work = tmp_path_factory.mktemp("rules")
    res = subprocess.run(
        [sys.executable, "-c", LIST_RULES, str(REPO / "Snakefile"), str(work), str(REPO / "config.yaml"),
         str(REPO / "config" / "control.yaml")],
        capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    line = next(line for line in res.stdout.splitlines() if line.startswith("RULES="))
    return {r["name"]: r for r in json.loads(line.removeprefix("RULES="))}


def _plain(template: str) -> str:
    """A Snakemake file pattern without its wildcard constraints: {seed,\\d+} -> {seed}."""
    return re.sub(r"\{(\w+),[^{}]*(?:\{[^{}]*\}[^{}]*)*\}", r"{\1}", template)


def test_rule_script_log_and_benchmark_share_one_stage_prefixed_name(rules):
    jobs = {name: r for name, r in rules.items() if r["script"]}
    assert jobs, "no rule runs a script"
    for name, r in jobs.items():
        assert name.split("_")[0] in STAGES, f"{name}: no stage prefix"
        assert Path(r["script"]).stem == name, (name, r["script"])
        log, bench = _plain(r["log"][0]), _plain(r["benchmark"])
        assert log in (f"results/logs/{name}.log",) or log.startswith(f"results/logs/{name}/"), (name, log)
        assert bench in (f"results/benchmarks/{name}.tsv",) or bench.startswith(f"results/benchmarks/{name}/"), (name, bench)
    scripts = {p.stem for p in (REPO / "workflow" / "scripts").glob("*.py")}
    assert scripts == set(jobs), scripts ^ set(jobs)


def test_report_holds_only_files_it_can_render(rules):
    """Snakemake's report embeds a file it cannot type as text/plain: Parquet would reach the reader as bytes."""
    marked = [f for r in rules.values() for f in r["report"]]
    for f in marked:
        kind, _ = mimetypes.guess_type(_plain(f))
        assert kind is not None and not f.endswith(".parquet"), f
    summary_copies = {Path(f).name for f in marked if f.startswith("results/summary/")}
    tables = {"layer_weights", "heatmaps", "probing", "centroids", "centroid_events", "counterfactual", "mcog", "statistics",
              "control_accuracy", "control_accuracy_summary", "label_probes", "probing_events", "validation",
              "swapping_clean", "memorised_runs"}
    assert summary_copies == {f"{t}.csv" for t in tables}


@pytest.mark.parametrize(
    "template, values",
    [
        (paths.LOCALISATION_WEIGHTS,
         dict(technique="swapping", dataset="sst2", model="bert_base", variant="control-1-2", seed=12)),
        (paths.LOCALISATION_EVENTS, dict(technique="centroids", dataset="d", model="m", variant="noisy", seed=3)),
        (paths.LOCALISATION_RAW, dict(technique="probing", dataset="d", model="m", variant="noisy", seed=1)),
        (paths.LOCALISATION_LABELS, dict(technique="probing", dataset="d", model="m", variant="noisy", seed=4)),
        (paths.LOCALISATION_EVENTS, dict(technique="probing", dataset="d", model="m", variant="noisy", seed=5)),
    ],
)
def test_collectors_parse_what_the_rules_write(template, values):
    path = "results/" + paths.fill(template, **values)
    assert parse_run_path(path) == values
    assert parse_run_path("/abs/" + path) == values


def test_counterfactual_and_check_read_the_same_layout():
    summary = "results/" + paths.fill(paths.COUNTERFACTUAL_SUMMARY, dataset="movies", model="minilm")
    assert parse_counterfactual_path(summary) == {"dataset": "movies", "model": "minilm"}
    schemas = load_schemas()
    weights = paths.fill(paths.LOCALISATION_WEIGHTS, technique="gradients", dataset="d", model="m", variant="noisy", seed=2)
    schema, groups = match(weights, schemas)
    assert schema.name == "localisation_weights" and groups["technique"] == "gradients" and groups["seed"] == "2"
    assert match(paths.fill(paths.SUMMARY_CSV, table="mcog"), schemas) is None  # the report's copy is not a contract table


def test_fill_refuses_a_wildcard_the_template_lacks():
    with pytest.raises(KeyError, match="technique"):
        paths.fill(paths.TRACE, technique="swapping")


@pytest.mark.parametrize("stage", ["data", "train", "counterfactual", "localise", "control", "stats", "figures"])
def test_each_stage_parses_on_its_own_after_common(tmp_path, stage):
    (tmp_path / "workflow").symlink_to(REPO / "workflow")
    helpers = REPO / "workflow" / "rules" / f"{stage}_helpers.smk"
    (tmp_path / "Snakefile").write_text("\n".join([
        "import sys",
        "from pathlib import Path",
        'sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))',
        f'configfile: "{REPO / "config.yaml"}"',
        'include: "workflow/rules/common.smk"',
        *([f'include: "workflow/rules/{stage}_helpers.smk"'] if helpers.exists() else []),
        f'include: "workflow/rules/{stage}.smk"',
        "",
    ]))
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(tmp_path / "Snakefile"), "-d", str(tmp_path), "--list-rules"],
        capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0, res.stderr[-3000:]


def _namedlist(**items):
    from snakemake.iocontainers import Namedlist

    return Namedlist(fromdict=items)


def test_adapters_get_the_package_keywords_of_a_jobs_files(tmp_path):
    """An empty optional input (a control model's memorised set) arrives as None; a training job's
    `memorised` checkpoint output never stands in for the localisation input of that name."""
    from types import SimpleNamespace

    from memloc.job import start

    smk = SimpleNamespace(
        input=_namedlist(examples="d.parquet", tokens="t.parquet", memorised=[], model="m/final", twin="c/final"),
        output=_namedlist(raw="r.parquet", weights="w.parquet"),
        params=_namedlist(settings={"seed": 1}), wildcards=_namedlist(dataset="d", model="m"), log=[str(tmp_path / "x.log")],
        threads=1,
    )
    job = start(smk)
    assert job.files == dict(examples_path="d.parquet", tokens_path="t.parquet", memorised=None, model_dir="m/final",
                             twin_dir="c/final", raw_path="r.parquet", weights_path="w.parquet")
    smk.input = _namedlist(examples="d.parquet", tokens="t.parquet", pretrained="p")
    smk.output = _namedlist(final="m/final", memorised="m/memorised", trace="m/trace.parquet")
    job = start(smk)
    assert job.files == dict(examples_path="d.parquet", tokens_path="t.parquet", pretrained_dir="p") and job.model_dir == "m"
    # Every job records its start-up time in its log (the benchmarks' start-up share reads it).
    first = (tmp_path / "x.log").read_text().splitlines()[0]
    assert re.search(r"start-up \d+\.\d\d s", first), first
