"""The offline study (config/study.yaml, README "A small replication"): its design as planned by an
offline dry run, and its shipped cached results (cache/study), which must match the configuration
exactly and render every figure and the report without a single training job."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from memloc.config import load_files, run_datasets, run_models, validate
from memloc.summary_cache import check_cache

from test_workflow import planned_jobs

REPO = Path(__file__).resolve().parents[1]
STUDY = REPO / "config" / "study.yaml"
CACHE = REPO / "cache" / "study"
#: Stages a render from the cache must never plan (counterfactual_map draws a figure).
HEAVY = ("data_", "train_", "localise_", "control_", "stats_")


def study() -> dict:
    return validate(load_files([STUDY]), source=str(STUDY))


def dry_run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    """`snakemake -n` on the study from a fresh working directory (nothing fetched or trained)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--configfile",
           str(STUDY), *extra, "-n"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)


def test_the_study_spans_six_registry_tasks_four_families_two_architectures_two_seeds():
    cfg = study()
    datasets, models = run_datasets(cfg), run_models(cfg)
    assert len(datasets) == 6 and len(models) == 2 and len(cfg["run"]["seeds"]) >= 2
    families = Counter(cfg["datasets"][d]["family"] for d in datasets)
    assert len(families) >= 4, families
    # Offline: every corpus and model arrives through the package registry, none from a hub.
    assert {cfg["datasets"][d]["source"]["kind"] for d in datasets} == {"registry"}
    assert {cfg["models"][m]["source"]["kind"] for m in models} == {"package", "gguf"}
    # Memorisation must be reached, not assumed: the adaptive stopping rule, and flagged runs left out.
    assert cfg["training"]["stopping"] == "memorised" and cfg["stats"]["unmemorised"] == "exclude"


@pytest.mark.slow
def test_the_study_plans_every_run_its_subset_models_and_one_control_family(tmp_path):
    res = dry_run(tmp_path)
    assert res.returncode == 0, res.stderr[-4000:]
    jobs = planned_jobs(res.stdout + res.stderr)
    cfg = study()
    pairs = len(run_datasets(cfg)) * len(run_models(cfg))
    runs = pairs * len(cfg["run"]["seeds"])
    assert pairs >= 12
    assert jobs["train_finetune"] == 3 * runs, "noisy, clean and frozen per (task, model, seed)"
    assert jobs["counterfactual_subset"] == pairs * cfg["counterfactual"]["models"]
    control = len(cfg["control"]["datasets"]) * len(cfg["control"]["models"]) * 3  # default pairs
    assert jobs["control_finetune"] == 2 * control, "control models and their clean twins"
    assert jobs["localise_swapping"] == runs + control
    assert "localise_centroids" not in jobs and "stats_statistics" in jobs


def test_the_shipped_cache_matches_the_study_configuration():
    """Every table the study's figures read is in cache/study, unchanged since its export, under this configuration."""
    assert check_cache(CACHE, study(), source=str(STUDY)) == []


@pytest.mark.slow
def test_rendering_from_the_shipped_cache_plans_no_training_job(tmp_path):
    (tmp_path / "cache").symlink_to(REPO / "cache")
    res = dry_run(tmp_path, "--config", "run={summary_cache: cache/study}")
    assert res.returncode == 0, res.stderr[-4000:]
    planned = planned_jobs(res.stdout + res.stderr)
    assert not [r for r in planned if r.startswith(HEAVY)], planned
    assert {"figure_tables", "figure_mcog", "figure_generalisation", "figure_agreement", "counterfactual_map"} <= set(planned)


def test_the_cache_manifest_names_the_study():
    manifest = yaml.safe_load((CACHE / "manifest.json").read_text())
    assert any(Path(c).name == "study.yaml" for c in manifest["config"]), manifest["config"]
