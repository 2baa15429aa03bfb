"""The benchmark suite's arithmetic: FLOP counts, per-rule breakdowns, wall-time spans, exponents."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import bench_windows  # noqa: E402
import end_to_end  # noqa: E402
import precision  # noqa: E402
import scaling  # noqa: E402
import throughput  # noqa: E402

from memloc.models.random import build_random_classifier  # noqa: E402

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def bench_file(root: Path, rel: str, seconds: float, rss: float, end: float) -> None:
    path = root / "benchmarks" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{seconds}\t0:00:00\t{rss}\t0\t0\t0\t0\t0\t0\t{seconds}\n")
    os.utime(path, (end, end))


def test_training_flops_match_a_hand_count():
    model = build_random_classifier("bert", num_layers=2, hidden_size=32, num_heads=2, vocab_size=100, seed=0)
    d, f = 32, model.config.intermediate_size
    lengths = np.array([5, 7])
    forward = 2 * (2 * (4 * d * d + 2 * d * f) * 12 + 4 * d * (25 + 49)) + 2 * (2 * (d * d + d * 2))
    assert throughput.training_flops(model, lengths) == pytest.approx(3 * forward)
    # Padding is not useful work: the count depends on the real lengths only.
    assert throughput.training_flops(model, np.array([7, 5])) == throughput.training_flops(model, lengths)


def test_per_rule_breakdown_and_span(tmp_path):
    bench_file(tmp_path, "train_finetune/d/m/noisy/seed1.tsv", 100, 1200, end=1_000_100)
    bench_file(tmp_path, "train_finetune/d/m/clean/seed1.tsv", 80, 1100, end=1_000_180)
    bench_file(tmp_path, "localise_swapping/d/m/noisy/seed1.tsv", 20, 700, end=1_000_200)
    bench_file(tmp_path, "stats_mcog.tsv", 1, 150, end=1_000_201)
    jobs = end_to_end.read_benchmarks(tmp_path)
    assert sorted(jobs.rule.unique()) == ["localise_swapping", "stats_mcog", "train_finetune"]
    rules = end_to_end.per_rule(jobs).set_index("rule")
    assert rules.loc["train_finetune", "jobs"] == 2 and rules.loc["train_finetune", "seconds"] == 180
    assert rules.loc["train_finetune", "max_rss_mb"] == 1200
    assert rules["share"].sum() == pytest.approx(1.0)
    assert rules.index[0] == "train_finetune"  # the most expensive rule first
    assert end_to_end.span_seconds(jobs) == pytest.approx(201)  # first start 1_000_000, last end 1_000_201
    rows, _ = end_to_end.end_to_end_rows(tmp_path)
    assert rows[0]["value"] == pytest.approx(201) and rows[0]["ratio"] == pytest.approx(201 / 600)


def test_start_up_share_comes_from_the_job_logs(tmp_path):
    from memloc.job import STARTUP_MESSAGE

    bench_file(tmp_path, "train_finetune/d/m/noisy/seed1.tsv", 100, 1200, end=1_000_100)
    bench_file(tmp_path, "stats_mcog.tsv", 10, 150, end=1_000_201)
    for rel, seconds in (("train_finetune/d/m/noisy/seed1.log", 4.0), ("stats_mcog.log", 2.0)):
        log = tmp_path / "logs" / rel
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("12:00:00 INFO memloc.job: " + STARTUP_MESSAGE % seconds + "\n12:00:05 INFO memloc.train: work\n")
    rows, _ = end_to_end.end_to_end_rows(tmp_path)
    startup = next(r for r in rows if r["benchmark"] == "job start-up")
    assert startup["value"] == pytest.approx(6.0) and startup["ratio"] == pytest.approx(6.0 / 110)
    assert "training jobs 4.00 s" in startup["detail"]


def test_floor_scales_the_training_rules_by_the_measured_utilisation(tmp_path):
    bench_file(tmp_path, "train_finetune/d/m/noisy/seed1.tsv", 100, 1200, end=1_000_100)
    bench_file(tmp_path, "counterfactual_subset/d/m/k1.tsv", 50, 1200, end=1_000_150)
    bench_file(tmp_path, "stats_mcog.tsv", 10, 150, end=1_000_201)
    rules = end_to_end.per_rule(end_to_end.read_benchmarks(tmp_path))
    row = end_to_end.floor_row(rules, mfu=0.8, target_s=100)
    assert row["value"] == pytest.approx(120) and row["ratio"] == pytest.approx(1.2)  # stats jobs do not count


def test_window_benchmarks_write_their_table(tmp_path):
    out = tmp_path / "windows.parquet"
    bench_windows.main(["--layers", "2", "--hidden", "16", "--heads", "2", "--batch", "4", "--max-len", "8",
                        "--job-examples", "8", "--job-layers", "2", "--repeats", "1", "--out", str(out)])
    table = pd.read_parquet(out)
    assert {"retraining_steps", "retraining_job"} <= set(table["benchmark"])
    assert (table["device"] == "cpu").all() and (table["speedup"] > 0).all()


def test_no_benchmark_files_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no benchmark files"):
        end_to_end.read_benchmarks(tmp_path)


def test_fit_exponent_recovers_power_laws():
    x = np.array([150, 300, 600])
    assert scaling.fit_exponent(x, 3.0 * x) == pytest.approx(1.0)
    assert scaling.fit_exponent(x, 0.1 * x**2) == pytest.approx(2.0)
    assert np.isnan(scaling.fit_exponent(x[:1], x[:1]))


def test_grid_config_is_a_valid_memloc_config(tmp_path):
    from memloc import config as mconf

    data = scaling.synthetic_corpus(tmp_path / "c.csv", 50)
    cfg = mconf.validate(scaling.grid_config(data, 30, 3, 64), source="grid")
    assert cfg["models"]["randombert"]["source"]["num_layers"] == 3
    assert cfg["datasets"]["synthetic"]["max_train_examples"] == 30


def test_precision_check_runs_the_default_model_smaller_in_each_precision():
    from memloc import config as mconf

    for p in ("fp32", "bf16"):
        cfg = mconf.validate(precision.small_default(p, n=400), source="precision")
        assert cfg["training"]["precision"] == p
        assert all(d["max_train_examples"] == 400 for d in cfg["datasets"].values())
        assert cfg["models"] == mconf.validate(__import__("yaml").safe_load((REPO / "config.yaml").read_text()))["models"]
