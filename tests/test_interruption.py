"""Interruption: a run killed (SIGKILL, the whole process group) during a fine-tuning job and again
during a localisation job, then re-run with ``--rerun-incomplete``, ends with exactly the tables
and weights of an uninterrupted run in another directory.

A user's recovery is ``snakemake --unlock`` (a killed Snakemake leaves its lock behind) and then
``snakemake --rerun-incomplete``; training resumes from the last finished epoch
(``results/work/.../state.pt``) and retraining from its finished windows (``*.progress.jsonl``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from test_reproducibility import (  # noqa: E402
    ENV,
    assert_same_tables,
    finish_snakemake,
    launch_tiny_run,
    make_workdir,
    snakemake_cmd,
    start_snakemake,
    tiny_run,
)

POLL = 0.02


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL Snakemake and every job it started (they share its process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError("processes of the killed group are still alive")


def wait_until(condition, proc: subprocess.Popen, workdir: Path, what: str, timeout: float = 300):
    """Poll ``condition()`` until it returns something truthy; fail if Snakemake ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if proc.poll() is not None:
            raise AssertionError(f"snakemake ended (rc {proc.returncode}) before {what}:\n"
                                 + (workdir / "snakemake.log").read_text()[-4000:])
        time.sleep(POLL)
    kill_group(proc)
    raise AssertionError(f"timed out waiting for {what}")


def unlock(workdir: Path) -> None:
    res = subprocess.run(snakemake_cmd(workdir, "--unlock", targets=[]), capture_output=True, text=True, env=ENV, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]


@pytest.mark.slow
def test_killed_during_training_and_retraining_resumes_to_identical_tables(tmp_path_factory):
    launch_tiny_run(tmp_path_factory)  # the uninterrupted run, in the background meanwhile
    work = make_workdir(tmp_path_factory.mktemp("interrupted"))
    results = work / "results"

    # 1. Kill while a fine-tuning job is in its second epoch: its resume state exists.
    proc = start_snakemake(work)
    state = wait_until(lambda: next(iter((results / "work" / "models").rglob("state.pt")), None)
                       if (results / "work" / "models").exists() else None,
                       proc, work, "a fine-tuning job finished its first epoch")
    kill_group(proc)
    variant = state.parent.parent.name  # results/work/models/toy/tiny/{variant}/seed1/state.pt
    assert state.exists(), "the job finished before the kill; nothing was interrupted"
    assert not (results / f"models/toy/tiny/{variant}/seed1/predictions.parquet").exists()

    # 2. Re-run; kill again while layer retraining is between windows.
    unlock(work)
    progress = results / "localisation/retraining/toy/tiny/noisy/seed1.parquet.progress.jsonl"
    proc = start_snakemake(work, "--rerun-incomplete", log_name="snakemake.log")
    wait_until(lambda: progress.exists() and len(progress.read_text().splitlines()) >= 2,
               proc, work, "layer retraining finished its first window")
    kill_group(proc)
    assert progress.exists(), "retraining finished before the kill; nothing was interrupted"
    assert not (results / "localisation/retraining/toy/tiny/noisy/seed1.weights.parquet").exists()

    # 3. Re-run to completion.
    unlock(work)
    finish_snakemake(start_snakemake(work, "--rerun-incomplete"), work)
    finetune_log = (results / f"logs/train_finetune/toy/tiny/{variant}/seed1.log").read_text()
    assert "resuming from the end of epoch" in finetune_log, finetune_log[-2000:]
    retraining_log = (results / "logs/localise_retraining/toy/tiny/noisy/seed1.log").read_text()
    assert "windows already retrained" in retraining_log, retraining_log[-2000:]
    # Resume state is cleaned up once the outputs exist.
    assert not any((results / "work").rglob("state.pt")) if (results / "work").exists() else True
    assert not progress.exists()

    # Data, tokens, traces and predictions (timing columns aside), localisation raw tables and
    # weights, and the checkpoints' weights all equal the uninterrupted run's.
    compared = assert_same_tables(tiny_run(tmp_path_factory), results)
    assert any(r.endswith("retraining/toy/tiny/noisy/seed1.weights.parquet") for r in compared)
    assert f"models/toy/tiny/{variant}/seed1/trace.parquet" in compared
