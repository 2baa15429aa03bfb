"""End to end: the Snakemake workflow on a tiny config, config errors, bad data."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"


def snakemake(workdir: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "-d", str(workdir), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def toy_csv(path: Path, n: int = 80, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    pos = ["good", "great", "fine", "lovely", "superb"]
    neg = ["bad", "awful", "poor", "dull", "weak"]
    rows = []
    for _i in range(n):
        label = int(rng.integers(0, 2))
        words = list(rng.choice(pos if label else neg, size=3)) + list(rng.choice(["the", "film", "plot", "was"], size=3))
        rng.shuffle(words)
        rows.append({"sentence": " ".join(words), "label": label})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def tiny_config(tmp: Path, data: Path) -> dict:
    return {
        "datasets": {"toy": {"source": {"kind": "file", "train": str(data)}, "columns": {"text_a": "sentence"}}},
        "models": {
            "tiny": {
                "source": {"kind": "random", "model_type": "bert", "num_layers": 2, "hidden_size": 32, "num_heads": 2},
                "max_length": 16,
            }
        },
        "training": {"epochs": 2, "learning_rate": 1e-3, "batch_size": 8},
        "counterfactual": {"models": 3, "epochs": 2, "learning_rate": 1e-3, "bootstrap": 50},
        "localisation": {"retraining": {"epochs": 1}, "probing": {"seeds": [1, 2], "epochs": 3}},
        "stats": {"bootstrap": 50},
        "run": {"seeds": [1]},
    }


def write_config(tmp: Path, cfg: dict) -> Path:
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.slow
def test_tiny_workflow_end_to_end(tmp_path):
    data = toy_csv(tmp_path / "toy.csv")
    cfg = write_config(tmp_path, tiny_config(tmp_path, data))
    res = snakemake(tmp_path, "--configfile", str(cfg), "--cores", "2")
    assert res.returncode == 0, res.stderr[-4000:]
    results = tmp_path / "results"
    examples = pd.read_parquet(results / "data" / "toy.parquet")
    assert list(examples.columns) == ["example_id", "split", "text_a", "text_b", "label_orig", "label", "is_noisy"]
    train = examples[examples.split == "train"]
    assert train.is_noisy.sum() == sum(int(0.15 * n) for n in train.label_orig.value_counts())
    for variant in ("noisy", "clean", "frozen"):
        run = results / "models" / "toy" / "tiny" / variant / "seed1"
        assert (run / "final" / "model.safetensors").is_file()
        assert (run / "memorised" / "model.safetensors").is_file()
        trace = pd.read_parquet(run / "trace.parquet")
        assert {"epoch", "split", "loss", "accuracy", "macro_f1"} <= set(trace.columns)
        assert set(trace.epoch) == {1, 2}
        preds = pd.read_parquet(run / "predictions.parquet")
        assert {"example_id", "split", "label", "pred", "p_label", "correct"} <= set(preds.columns)
        assert preds.p_label.between(0, 1).all()
        assert set(preds.example_id) == set(examples.example_id)
        log = (results / "logs" / "train_finetune" / "toy" / "tiny" / variant / "seed1.log").read_text()
        assert "epoch 2/2" in log and "macro" not in log or "f1" in log
    clean = pd.read_parquet(results / "models/toy/tiny/clean/seed1/predictions.parquet")
    merged = clean.merge(examples, on="example_id")
    assert (merged["label_x"] == merged["label_orig"]).all(), "the clean variant must train on the original labels"
    assert not (tmp_path / "results" / "work").exists() or not any((tmp_path / "results" / "work").rglob("state.pt"))
    # Every technique wrote per-layer weights; M-CoG lies in [1, L] (L = 2 blocks here).
    for technique in ("swapping", "retraining", "gradients", "probing"):
        weights = pd.read_parquet(results / "localisation" / technique / "toy/tiny/noisy/seed1.weights.parquet")
        assert sorted(weights.layer) == [1, 2]
    mcog = pd.read_parquet(results / "summary" / "mcog.parquet")
    assert set(mcog.technique) >= {"swapping", "retraining", "gradients"}
    assert mcog.mcog.dropna().between(1, 2).all()
    assert (results / "counterfactual/toy/tiny/memorisation.parquet").is_file()
    assert (results / "summary/statistics.parquet").is_file()
    assert any((results / "figures").rglob("*.png"))
    # Nothing left to do: a second run schedules no job.
    again = snakemake(tmp_path, "--configfile", str(cfg), "--cores", "2", "-n")
    assert "Nothing to be done" in again.stdout + again.stderr
    # Every table validates against its schema and records provenance (config hash, version, inputs).
    check = subprocess.run([sys.executable, "-m", "memloc.cli", "check", str(results)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "record no provenance" not in check.stdout + check.stderr, check.stdout + check.stderr
    # The report renders every table it embeds (Snakemake types Parquet as text/plain: bytes to a reader).
    report = snakemake(tmp_path, "--configfile", str(cfg), "--report", str(tmp_path / "report.zip"))
    assert report.returncode == 0, report.stderr[-3000:]
    assert "Could not detect mimetype" not in report.stdout + report.stderr, report.stderr[-3000:]
    # Raising K plans one new subset model and the estimator (with what reads its tables), and
    # nothing upstream or in localisation: the K models already trained are kept.
    more = tiny_config(tmp_path, data)
    more["counterfactual"]["models"] += 1
    plan = snakemake(tmp_path, "--configfile", str(write_config(tmp_path, more)), "--cores", "2", "-n")
    assert plan.returncode == 0, plan.stderr[-3000:]
    planned = planned_jobs(plan.stdout + plan.stderr)
    assert planned.get("counterfactual_subset") == 1 and planned.get("counterfactual_memorisation") == 1, planned
    kept = {"data_prepare", "train_tokenize", "train_finetune", "counterfactual_memorised_set", "localise_swapping",
            "localise_retraining", "localise_gradients", "localise_probing", "localise_centroids"}
    assert not kept & set(planned), planned
    assert "k4.parquet" in plan.stdout + plan.stderr and "k3.parquet" not in " ".join(
        line for line in (plan.stdout + plan.stderr).splitlines() if line.strip().startswith("output:")
    )


def planned_jobs(dry_run_output: str) -> dict[str, int]:
    """Rule -> job count from the "Job stats" table of ``snakemake -n``."""
    lines = dry_run_output.split("Job stats:", 1)[1].splitlines()
    counts = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            if parts[0] == "total":
                break
            counts[parts[0]] = int(parts[1])
    return counts


def test_misspelt_key_fails_fast_naming_it(tmp_path):
    cfg = tiny_config(tmp_path, tmp_path / "toy.csv")
    cfg["training"]["epocs"] = 3
    path = write_config(tmp_path, cfg)
    t0 = time.perf_counter()
    res = snakemake(tmp_path, "--configfile", str(path), "--cores", "1", "-n")
    elapsed = time.perf_counter() - t0
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "epocs" in out and "did you mean 'epochs'" in out
    assert elapsed < 10
    assert not (tmp_path / "results").exists()


def test_out_of_range_and_undefined_model_are_named(tmp_path):
    cfg = tiny_config(tmp_path, tmp_path / "toy.csv")
    cfg["noise"] = {"ratio": 1.5}
    cfg["run"]["models"] = ["tinny"]
    res = snakemake(tmp_path, "--configfile", str(write_config(tmp_path, cfg)), "--cores", "1", "-n")
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "noise.ratio" in out and "< 1" in out


def test_undefined_model_name_is_named(tmp_path):
    cfg = tiny_config(tmp_path, tmp_path / "toy.csv")
    cfg["run"]["models"] = ["tinny"]
    res = snakemake(tmp_path, "--configfile", str(write_config(tmp_path, cfg)), "--cores", "1", "-n")
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "tinny" in out and "did you mean 'tiny'" in out


@pytest.mark.parametrize(
    "corrupt, expected",
    [
        (lambda df: df.assign(sentence=["   " if i == 5 else s for i, s in enumerate(df.sentence)]), "row"),
        (lambda df: df.rename(columns={"label": "y"}), "label"),
        (lambda df: df.assign(label=0), "class"),
    ],
    ids=["blank-text", "missing-label-column", "single-class"],
)
def test_bad_data_fails_naming_file_and_leaves_nothing(tmp_path, corrupt, expected):
    data = toy_csv(tmp_path / "toy.csv")
    corrupt(pd.read_csv(data)).to_csv(data, index=False)
    cfg = write_config(tmp_path, tiny_config(tmp_path, data))
    res = snakemake(tmp_path, "--configfile", str(cfg), "--cores", "1", "results/data/toy.parquet")
    assert res.returncode != 0
    log = (tmp_path / "results" / "logs" / "data_prepare" / "toy.log").read_text()
    assert "toy.csv" in log and expected in log.lower()
    assert not (tmp_path / "results" / "data" / "toy.parquet").exists()
    assert not list((tmp_path / "results" / "data").glob("*")) if (tmp_path / "results" / "data").exists() else True


def test_default_config_dry_run_plans_the_spine(tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "2", "-d", str(tmp_path), "-s", str(SNAKEFILE),
         "--configfile", str(REPO / "config.yaml")],
        capture_output=True, text=True,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout
    for rule in ("data_fetch", "data_prepare", "train_pretrained", "train_tokenize", "train_finetune"):
        assert rule in out
