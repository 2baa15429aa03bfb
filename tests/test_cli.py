"""`memloc summary`: key numbers from hand-made summary tables; a clear message without them."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from memloc.cli import main


@pytest.fixture
def results(tmp_path):
    summary = tmp_path / "summary"
    summary.mkdir()
    rows = []
    for tech, value, lo, hi in (("swapping", 5.83, 5.61, 6.02), ("probing", 6.41, np.nan, np.nan)):
        rows.append(dict(technique=tech, dataset="movies", model="minilm", variant="noisy", seed=1, mcog=value,
                         ci_low=np.nan, ci_high=np.nan, ci_method="none", n_seeds=1))
        rows.append(dict(technique=tech, dataset="movies", model="minilm", variant="noisy", seed=-1, mcog=value,
                         ci_low=lo, ci_high=hi, ci_method="seeds", n_seeds=1))
    rows.append(dict(technique="swapping", dataset="movies", model="minilm", variant="control-1-2", seed=-1, mcog=1.11,
                     ci_low=np.nan, ci_high=np.nan, ci_method="none", n_seeds=1))
    pd.DataFrame(rows).to_parquet(summary / "mcog.parquet")
    pd.DataFrame(
        dict(technique=["retraining", "retraining", "gradients", "gradients"], dataset="movies", model="minilm",
             target_layers=["1-2", "3-4", "1-2", "3-4"], acc_at_1=[1.0, 1.0, 1.0, 0.0], acc_at_2=[1.0, 0.5, 0.5, 0.0],
             chance=1 / 3)
    ).to_parquet(summary / "control_accuracy.parquet")
    cf = tmp_path / "counterfactual" / "movies" / "minilm"
    cf.mkdir(parents=True)
    (cf / "summary.json").write_text(json.dumps(
        {"generalisation_mean": 0.612, "cm_noisy_mean": 0.487, "cm_clean_mean": 0.031, "auc_noisy": 0.944, "reliability": 0.873}
    ))
    return tmp_path


def test_summary_prints_key_numbers(results, capsys):
    assert main(["summary", str(results)]) == 0
    out = capsys.readouterr().out
    assert "5.83 [5.61, 6.02]" in out  # seed-aggregated M-CoG with its interval
    assert "6.41" in out and "1.11" not in out  # control variants are not in the M-CoG table
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert lines["retraining"][1:3] == ["1.00", "0.75"]  # acc@1, acc@2
    assert lines["gradients"][1:3] == ["0.50", "0.25"]
    assert lines["movies"][:2] == ["movies", "minilm"] and "0.612" in out and "0.944" in out


def test_summary_without_control_or_counterfactual(results, capsys):
    (results / "summary" / "control_accuracy.parquet").unlink()
    (results / "counterfactual" / "movies" / "minilm" / "summary.json").unlink()
    assert main(["summary", str(results)]) == 0
    out = capsys.readouterr().out
    assert "5.83" in out and "Control" not in out and "Counterfactual" not in out


def test_summary_prints_validation_twins_cross_task_statistics_and_cached_counterfactual_table(results, capsys):
    """What a study reader looks for first, also from an exported cache (no counterfactual/ tree there)."""
    summary = results / "summary"
    validation = pd.DataFrame(dict(dataset="movies", model="minilm", variant=["noisy", "noisy", "clean", "clean"],
                                   seed=[1, 2, 1, 2], n=60, accuracy=[0.70, 0.60, 0.80, 0.90], chance=0.5, accuracy_norm=0.0))
    validation.to_parquet(summary / "validation.parquet")
    pd.DataFrame(dict(
        analysis=["depth_generalisation_spearman", "mcog_model", "agreement_technique_mcog_pearson"],
        term=["mcog[mean] | all models", "family (joint Wald)", "swapping~retraining"],
        estimate=[0.56, np.nan, 0.97], ci_low=[0.1, np.nan, 0.9], ci_high=[0.8, np.nan, 0.99], p_value=[0.01, np.nan, 0.001],
        p_adjusted=[0.01, np.nan, 0.001], n=[12, 0, 12], note=["", "one family", ""],
    )).to_parquet(summary / "statistics.parquet")
    (results / "counterfactual" / "movies" / "minilm" / "summary.json").unlink()
    cf = pd.DataFrame(dict(dataset=["movies"], model=["minilm"], family=["sentiment"], generalisation_mean=[0.612],
                           cm_noisy_mean=[0.487], cm_clean_mean=[0.031], auc_noisy=[0.944], reliability=[0.873]))
    cf.to_parquet(summary / "counterfactual.parquet")
    assert main(["summary", str(results)]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith("movies  ")]
    assert ["movies", "minilm", "0.650", "0.850", "0.200", "2"] in rows  # noisy vs clean twin, mean of 2 seeds
    assert "0.56 [0.10, 0.80]" in out and "not computed: one family" in out
    assert "0.944" in out and "0.873" in out  # the counterfactual table, read from summary/


def test_summary_missing_results(tmp_path, capsys):
    assert main(["summary", str(tmp_path / "nowhere")]) == 1
    assert "run snakemake first" in capsys.readouterr().err


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "memloc.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "summary" in out.stdout
