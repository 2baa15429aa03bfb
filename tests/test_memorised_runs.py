"""summary/memorised_runs.parquet and `memloc summary` flag noisy models that did not memorise (§8.1)."""

from __future__ import annotations

import pandas as pd
import pytest

from memloc.check import check_frame, load_schema
from memloc.check.schemas import SCHEMA_DIR
from memloc.cli import main
from memloc.io import write_parquet
from memloc.stats.memorised import collect_memorised_runs, not_memorised


def write_trace(root, dataset, seed, noisy_acc, memorised_epoch=2, threshold=0.99):
    """A noisy run's trace over 3 epochs whose train_noisy accuracy is ``noisy_acc`` per epoch."""
    rows = []
    for epoch, acc in enumerate(noisy_acc, start=1):
        for split, a in (("train", 0.9), ("train_noisy", acc), ("train_clean", 0.95), ("validation", 0.8)):
            rows.append({"epoch": epoch, "split": split, "loss": 0.5, "accuracy": a, "macro_f1": a, "n": 10,
                         "seconds": 1.0, "memorised_epoch": epoch == memorised_epoch, "memorised_reached": True})
    reached = [e for e, a in enumerate(noisy_acc, start=1) if a >= threshold]
    meta = {"variant": "noisy", "seed": seed, "memorised_epoch": memorised_epoch, "memorised_reached": True,
            "epochs": 4, "stopping": "memorised", "memorised_accuracy": threshold,
            "threshold_epoch": reached[0] if reached else None, "epochs_trained": len(noisy_acc),
            "memorisation_reached": bool(reached)}
    path = root / "models" / dataset / "tiny" / "noisy" / f"seed{seed}" / "trace.parquet"
    path.parent.mkdir(parents=True)
    write_parquet(pd.DataFrame(rows), path, metadata=meta)
    return str(path)


@pytest.fixture
def traces(tmp_path):
    return [
        write_trace(tmp_path, "fits", 1, [0.5, 0.995, 1.0]),
        write_trace(tmp_path, "half", 2, [0.3, 0.5, 0.62]),
    ]


def test_table_flags_the_run_below_the_threshold(traces):
    table = collect_memorised_runs(traces, "final")
    fits, half = (table[table.dataset == d].iloc[0] for d in ("fits", "half"))
    assert (fits.epoch, fits.noisy_accuracy, bool(fits.memorised), fits.threshold_epoch) == (3, 1.0, True, 2)
    assert (half.epoch, half.noisy_accuracy, bool(half.memorised)) == (3, 0.62, False)
    assert pd.isna(half.threshold_epoch) and half.epochs_trained == 3 and half.epochs == 4
    assert not_memorised(table) == ["half/tiny/seed2"]


def test_table_reads_the_analysed_checkpoint(tmp_path):
    """At the memorised checkpoint (epoch 1 here) the same run is below the threshold."""
    path = write_trace(tmp_path, "fits", 1, [0.5, 0.995, 1.0], memorised_epoch=1)
    row = collect_memorised_runs([path], "memorised").iloc[0]
    assert (row.checkpoint, row.epoch, row.noisy_accuracy, bool(row.memorised)) == ("memorised", 1, 0.5, False)


def test_table_without_the_stopping_record_names_the_file(tmp_path):
    path = tmp_path / "models" / "d" / "tiny" / "noisy" / "seed0" / "trace.parquet"
    path.parent.mkdir(parents=True)
    write_parquet(pd.DataFrame({"epoch": [1], "split": ["train_noisy"], "accuracy": [1.0]}), path, metadata={})
    with pytest.raises(ValueError, match="memorised_accuracy.*train_finetune"):
        collect_memorised_runs([str(path)], "final")


def test_table_matches_its_schema(traces):
    schema = load_schema(SCHEMA_DIR / "memorised_runs.yaml")
    assert check_frame(collect_memorised_runs(traces, "final"), schema) == []
    assert check_frame(collect_memorised_runs([], "final"), schema) == []


def test_summary_prints_the_flag(tmp_path, traces, capsys):
    summary = tmp_path / "summary"
    summary.mkdir()
    write_parquet(collect_memorised_runs(traces, "final"), summary / "memorised_runs.parquet")
    assert main(["summary", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    half = next(line for line in out.splitlines() if line.startswith("half"))
    fits = next(line for line in out.splitlines() if line.startswith("fits"))
    assert "NO" in half.split() and "0.620" in half and "yes" in fits.split()
    assert "WARNING: 1 noisy model(s) did not memorise" in out and "half/tiny/seed2" in out
