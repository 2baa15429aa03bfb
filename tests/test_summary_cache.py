"""Cached results for figures (run.summary_cache, docs/protocol.md §9.1): a finished run's tables
exported with `memloc export-summary`, then every figure and report table rendered from them in a
fresh working directory with no data, training, localisation or stats job; an incomplete or
changed cache stops the workflow before any job, naming the file."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_counterfactual import simulate
from test_stats_rules import HARNESS, make_inputs
from test_stats_rules import snakemake as harness_snakemake

from memloc import cli
from memloc.config import validate
from memloc.counterfactual.estimate import memorisation_table
from memloc.errors import ConfigError, MemlocError
from memloc.summary_cache import MANIFEST, cached_files, check_cache, export_cache

from test_workflow import planned_jobs

REPO = Path(__file__).resolve().parents[1]
#: Stages whose jobs a run from cached results must never plan (counterfactual_map draws a figure).
HEAVY = ("data_", "train_", "localise_", "control_", "stats_")


def run_config() -> dict:
    """The stats harness's configuration (test_stats_rules): every technique on one tiny model and data set."""
    return {
        "datasets": {
            "toy": {"source": {"kind": "file", "train": "toy.csv"}, "columns": {"text_a": "sentence"}, "family": "sentiment"},
        },
        "models": {
            "tiny": {"source": {"kind": "random", "model_type": "bert", "num_layers": 3, "hidden_size": 32, "num_heads": 2}},
        },
    }


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A results tree whose summary tables the real stats rules wrote (from hand-made per-run files),
    plus a counterfactual memorisation table: everything a run's figures read."""
    root = tmp_path_factory.mktemp("run")
    (root / "workflow").symlink_to(REPO / "workflow")
    (root / "Snakefile").write_text(HARNESS)
    (root / "config.yaml").write_text(yaml.safe_dump(run_config()))
    make_inputs(root)
    res = harness_snakemake(root, "-c2", "tables")
    assert res.returncode == 0, res.stderr[-3000:]
    in_train, p, _ = simulate(n_models=6, n_examples=40)
    table = memorisation_table(np.arange(40), in_train, np.clip(p, 0, 1), np.arange(40) < 6, n_boot=0)
    table.to_parquet(root / "results" / "counterfactual" / "toy" / "tiny" / "memorisation.parquet")
    return root


def export(finished_run: Path, dest: Path) -> int:
    config, results = finished_run / "config.yaml", finished_run / "results"
    return cli.main(["export-summary", "--configfile", str(config), str(results), str(dest)])


def clone_with_cache(finished_run: Path, workdir: Path) -> Path:
    """A fresh working directory (no results/) holding the exported cache and a config that names it."""
    workdir.mkdir()
    assert export(finished_run, workdir / "cache" / "toy") == 0
    cfg = run_config()
    cfg["run"] = {"summary_cache": "cache/toy"}
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def workflow(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """The real Snakefile in ``workdir``."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "MPLBACKEND": "Agg"})


def test_export_copies_exactly_what_the_figures_read_with_a_manifest(finished_run, tmp_path):
    dest = tmp_path / "cache"
    assert export(finished_run, dest) == 0
    manifest = json.loads((dest / MANIFEST).read_text())
    expected = set(cached_files(validate(run_config())))
    assert {"summary/mcog.parquet", "summary/statistics.parquet", "summary/memorised_runs.parquet",
            "counterfactual/toy/tiny/memorisation.parquet"} <= expected
    assert "summary/control_accuracy.parquet" not in expected  # control is off in this config
    assert set(manifest["files"]) == expected
    on_disk = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert on_disk == expected | {MANIFEST}
    for f in expected:
        assert (dest / f).read_bytes() == (finished_run / "results" / f).read_bytes(), f
        assert manifest["files"][f]["bytes"] == (dest / f).stat().st_size
    # A re-export replaces the cache; a directory that is not a cache is refused.
    (dest / "summary" / "mcog.parquet").write_bytes(b"stale")
    assert export(finished_run, dest) == 0
    mcog = "summary/mcog.parquet"
    assert (dest / mcog).read_bytes() == (finished_run / "results" / mcog).read_bytes()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert export(finished_run, other) == 1
    assert not (other / "summary").exists()


def test_export_names_the_table_an_unfinished_run_lacks(finished_run, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(finished_run / "results" / "summary", results / "summary")
    shutil.copytree(finished_run / "results" / "counterfactual", results / "counterfactual")
    (results / "summary" / "probing.parquet").unlink()
    with pytest.raises(MemlocError, match=r"summary/probing\.parquet"):
        export_cache(results, tmp_path / "cache", validate(run_config()), ["config.yaml"])
    assert not (tmp_path / "cache").exists()


def test_check_names_a_missing_or_changed_file_and_the_cache(finished_run, tmp_path):
    cache = tmp_path / "cache"
    assert export(finished_run, cache) == 0
    cfg = validate({**run_config(), "run": {"summary_cache": str(cache)}})
    assert check_cache(cache, cfg, source="study.yaml") == []
    (cache / "summary" / "heatmaps.parquet").unlink()
    with pytest.raises(ConfigError, match=re.escape(f"study.yaml: run.summary_cache = {cache} lacks summary/heatmaps.parquet,")):
        check_cache(cache, cfg, source="study.yaml")
    assert export(finished_run, cache) == 0
    (cache / "summary" / "mcog.parquet").write_bytes(b"edited by hand")
    with pytest.raises(ConfigError, match=r"summary/mcog\.parquet changed since the export"):
        check_cache(cache, cfg, source="study.yaml")
    with pytest.raises(ConfigError, match="no such directory"):
        check_cache(tmp_path / "nowhere", cfg, source="study.yaml")
    # Exported under another configuration: a warning, not an error.
    assert export(finished_run, cache) == 0
    other = validate({**run_config(), "stats": {"bootstrap": 7}, "run": {"summary_cache": str(cache)}})
    assert "another configuration" in check_cache(cache, other, source="study.yaml")[0]


def test_incomplete_cache_stops_the_workflow_before_any_job(finished_run, tmp_path):
    config = clone_with_cache(finished_run, tmp_path / "clone")
    (tmp_path / "clone" / "cache" / "toy" / "summary" / "centroid_events.parquet").unlink()
    res = workflow(tmp_path / "clone", "-n", "--cores", "2", "--configfile", str(config))
    assert res.returncode != 0
    assert "run.summary_cache = cache/toy lacks summary/centroid_events.parquet" in res.stderr, res.stderr[-3000:]
    assert "memloc export-summary" in res.stderr
    assert not (tmp_path / "clone" / "results").exists()


@pytest.mark.slow
def test_figures_and_report_from_the_cache_alone(finished_run, tmp_path):
    clone = tmp_path / "clone"
    config = clone_with_cache(finished_run, clone)
    dry = workflow(clone, "-n", "--cores", "2", "--configfile", str(config))
    assert dry.returncode == 0, dry.stderr[-3000:]
    planned = planned_jobs(dry.stdout + dry.stderr)
    assert not [r for r in planned if r.startswith(HEAVY)], planned
    assert {r for r in planned if r.startswith("counterfactual_")} == {"counterfactual_map"}, planned
    assert {"figure_tables", "figure_mcog", "figure_heatmap", "figure_depth", "figure_agreement"} <= set(planned), planned
    # The one-line command of the README: every figure and the report, from the cache alone.
    report = clone / "report.zip"
    run = workflow(clone, "--cores", "2", "--configfile", str(config), "--report-after-run", "--report", str(report))
    assert run.returncode == 0, run.stderr[-4000:]
    results = clone / "results"
    for stem in ("mcog", "heatmap_swapping", "depth_generalisation", "memorisation_map/toy/tiny"):
        assert (results / "figures" / f"{stem}.png").stat().st_size > 1000, stem
    mcog = pd.read_csv(results / "summary" / "cached" / "mcog.csv")
    assert len(mcog) == len(pd.read_parquet(finished_run / "results" / "summary" / "mcog.parquet"))
    assert report.stat().st_size > 0
    assert sorted(p.name for p in results.iterdir()) == ["benchmarks", "figures", "logs", "summary"]
    assert not list((results / "summary").glob("*.parquet"))  # the figures read the cache in place


def test_config_files_merge_as_snakemake_merges_them(tmp_path):
    """`export-summary --configfile A --configfile B` sees the configuration snakemake sees: B updates A key by key."""
    from memloc.config import load_files

    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(yaml.safe_dump({**run_config(), "stats": {"bootstrap": 50, "seed": 3}}))
    b.write_text(yaml.safe_dump({"stats": {"bootstrap": 7}, "run": {"seeds": [1, 2]}}))
    cfg = load_files([a, b])
    assert cfg["stats"] == {"bootstrap": 7, "seed": 3} and cfg["run"] == {"seeds": [1, 2]} and "toy" in cfg["datasets"]
    with pytest.raises(ConfigError, match="missing.yaml"):
        load_files([tmp_path / "missing.yaml"])
