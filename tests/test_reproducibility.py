"""Reproducibility: the tiny config run twice, in two directories, gives identical tables.

This module also holds the tiny-run helpers that tests/test_interruption.py and tests/test_check.py
import (the uninterrupted run is built once per pytest session and shared).
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from memloc.io import read_metadata

from test_workflow import SNAKEFILE, tiny_config, toy_csv  # noqa: E402

# What every compared run builds: data, tokens, the noisy model and its clean twin, layer swapping
# and layer retraining (counterfactual, gradients, probing, centroids, statistics and figures are
# left out to keep a run under a minute on two cores; tests/test_workflow.py runs the whole DAG).
TECHNIQUES = ["swapping", "retraining"]
VARIANTS = ["noisy", "clean"]
TARGETS = (
    ["results/data/toy.parquet"]
    + [f"results/models/toy/tiny/{v}/seed1/predictions.parquet" for v in VARIANTS]
    + [f"results/localisation/{t}/toy/tiny/noisy/seed1.weights.parquet" for t in TECHNIQUES]
)
TIMING_COLUMNS = {"seconds"}
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def core_config() -> dict:
    """tests/test_workflow.py's tiny config, with three epochs (so a job killed after its first
    epoch has two left to resume) and two retraining epochs per window."""
    cfg = tiny_config(Path("."), Path("toy.csv"))
    cfg["datasets"]["toy"]["source"]["train"] = "toy.csv"  # relative: identical specs in every directory
    cfg["training"]["epochs"] = 3
    cfg["localisation"] = {"techniques": TECHNIQUES, "retraining": {"epochs": 2}}
    cfg.pop("counterfactual", None)
    return cfg


def make_workdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    toy_csv(path / "toy.csv")
    (path / "config.yaml").write_text(yaml.safe_dump(core_config()))
    return path


def snakemake_cmd(workdir: Path, *args: str, targets=TARGETS) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir),
            "--configfile", str(workdir / "config.yaml"), "--cores", "2", *args, *targets]


def start_snakemake(workdir: Path, *args: str, log_name: str = "snakemake.log", targets=TARGETS) -> subprocess.Popen:
    """Snakemake in its own process group (so the test can kill it with all its jobs)."""
    log = open(workdir / log_name, "w")
    return subprocess.Popen(snakemake_cmd(workdir, *args, targets=targets), stdout=log, stderr=subprocess.STDOUT,
                            env=ENV, start_new_session=True)


def finish_snakemake(proc: subprocess.Popen, workdir: Path, log_name: str = "snakemake.log", timeout: int = 600) -> None:
    rc = proc.wait(timeout=timeout)
    assert rc == 0, (workdir / log_name).read_text()[-5000:]


def run_snakemake(workdir: Path, *args: str, log_name: str = "snakemake.log", timeout: int = 600) -> None:
    finish_snakemake(start_snakemake(workdir, *args, log_name=log_name), workdir, log_name, timeout)


# Uninterrupted runs, shared by the tests of one pytest session: name -> results directory, or the
# still running process.
_RUNS: dict[str, Path] = {}
_PENDING: dict[str, tuple[subprocess.Popen, Path, float]] = {}


@atexit.register
def _stop_pending_runs() -> None:
    """A background run nobody waited for (a test failed first) dies with the session."""
    for proc, _, _ in _PENDING.values():
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def launch_tiny_run(tmp_path_factory, name: str = "baseline") -> None:
    """Start the uninterrupted run ``name`` in the background unless it exists or runs already."""
    if name in _RUNS or name in _PENDING:
        return
    workdir = make_workdir(tmp_path_factory.mktemp(f"tiny-{name}"))
    _PENDING[name] = (start_snakemake(workdir), workdir, time.perf_counter())


def tiny_run(tmp_path_factory, name: str = "baseline") -> Path:
    """The results directory of the uninterrupted tiny run ``name`` (started if needed, then awaited)."""
    launch_tiny_run(tmp_path_factory, name)
    if name in _PENDING:
        proc, workdir, t0 = _PENDING.pop(name)
        finish_snakemake(proc, workdir)
        print(f"tiny run '{name}': {time.perf_counter() - t0:.0f}s")
        _RUNS[name] = workdir / "results"
    return _RUNS[name]


def result_files(results: Path, suffix: str) -> list[str]:
    return sorted(
        p.relative_to(results).as_posix()
        for p in results.rglob(f"*{suffix}")
        if p.is_file() and not any(part.startswith(".") or part == "work" for part in p.relative_to(results).parts)
    )


def _strip_timing(obj):
    if isinstance(obj, dict):
        return {k: _strip_timing(v) for k, v in obj.items() if k not in TIMING_COLUMNS}
    if isinstance(obj, list):
        return [_strip_timing(v) for v in obj]
    return obj


def table_values(path: Path) -> pd.DataFrame:
    df = pd.read_parquet(path)
    return df.drop(columns=[c for c in df.columns if c in TIMING_COLUMNS])


def assert_same_tables(a: Path, b: Path) -> list[str]:
    """Every Parquet table of results tree ``a`` equals ``b``'s, values and metadata, timing aside;
    every checkpoint's weights are byte-identical. Returns the compared tables."""
    tables_a, tables_b = result_files(a, ".parquet"), result_files(b, ".parquet")
    assert tables_a == tables_b, f"different tables: {sorted(set(tables_a) ^ set(tables_b))}"
    for rel in tables_a:
        x, y = table_values(a / rel), table_values(b / rel)
        pd.testing.assert_frame_equal(x, y, check_exact=True, obj=rel)
        assert _strip_timing(read_metadata(a / rel)) == _strip_timing(read_metadata(b / rel)), f"{rel}: metadata differs"
    weights_a, weights_b = result_files(a, ".safetensors"), result_files(b, ".safetensors")
    assert weights_a == weights_b and weights_a
    for rel in weights_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), f"{rel}: weights differ"
    return tables_a


@pytest.mark.slow
def test_two_runs_in_two_directories_give_identical_tables(tmp_path_factory):
    for name in ("baseline", "second"):  # both at once: most of a job is its single-threaded start-up
        launch_tiny_run(tmp_path_factory, name)
    first, second = tiny_run(tmp_path_factory), tiny_run(tmp_path_factory, "second")
    assert first != second
    compared = assert_same_tables(first, second)
    assert {"data/toy.parquet", "tokens/toy/tiny.parquet"} <= set(compared)
    assert sum(r.endswith("trace.parquet") for r in compared) == len(VARIANTS)
    assert sum(r.endswith("predictions.parquet") for r in compared) == len(VARIANTS)
    assert sum(r.endswith(".weights.parquet") for r in compared) == len(TECHNIQUES)
    # The values are real: the noisy model's predictions are not constant.
    preds = pd.read_parquet(first / "models/toy/tiny/noisy/seed1/predictions.parquet")
    assert preds["p_label"].nunique() > 10 and np.isfinite(preds["p_label"]).all()
