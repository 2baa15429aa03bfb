"""The published control design planned from config/paper.yaml (docs/protocol.md §7): control models
for training seed 1 and the chosen data sets only, the seed-1 baselines, and the control baseline
`control-frozen` once per (data set, model). Offline dry runs, parsed job by job."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "config" / "paper.yaml"
# The published analysis (visualisation_utils.py control_setup_ds_names) and all control data sets
# of run_training.sh (every data set but the auxiliary task, RTE).
NINE = ["wic", "cola", "boolq", "sst2", "sst5", "emotion", "implicithate", "stormfront", "reuters"]
ELEVEN = NINE[:1] + ["mrpc"] + NINE[1:-1] + ["trec", NINE[-1]]
PAPER_KEYS = {  # the keys the report asks config/paper.yaml to set
    "localisation": {"baseline_seed": 1},
    "control": {"seeds": [1], "baseline": "control-frozen", "learned_accuracy": 0},
}
_JOB = re.compile(r"^rule (\w+):\n((?:    .*\n)+)", re.M)


def plan(tmp_path: Path, control_datasets: list[str]) -> list[dict]:
    """Every job of `snakemake -n` on paper.yaml plus PAPER_KEYS: rule, wildcards, inputs."""
    overlay = {**PAPER_KEYS, "control": {**PAPER_KEYS["control"], "datasets": control_datasets}}
    (tmp_path / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path / "work"),
           "--configfile", str(PAPER), str(tmp_path / "overlay.yaml"), "-n"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]
    jobs = []
    for rule, body in _JOB.findall(res.stdout + res.stderr):
        fields = dict(re.findall(r"^    (\w+): (.*)$", body, re.M))
        wildcards = dict(kv.split("=", 1) for kv in fields.get("wildcards", "").split(", ") if "=" in kv)
        jobs.append({"rule": rule, "inputs": fields.get("input", "").split(", "), **wildcards})
    return jobs


@pytest.mark.slow
@pytest.mark.parametrize("control_datasets", [NINE, ELEVEN], ids=["9", "11"])
def test_paper_control_design_is_planned(tmp_path, control_datasets):
    jobs = plan(tmp_path, control_datasets)
    paper = yaml.safe_load(PAPER.read_text())
    run, analysed = paper["run"], paper["localisation"]["checkpoint"]
    D, M, S, C = len(run["datasets"]), len(run["models"]), len(run["seeds"]), len(control_datasets)
    control = [j for j in jobs if j["rule"] == "control_finetune"]
    models = [j for j in control if j["variant"] != "control-frozen"]
    baselines = [j for j in control if j["variant"] == "control-frozen"]
    # 3 pairs x (control model + clean twin) per (data set, model), training seed 1 only: 216 / 264.
    assert len(models) == C * M * 6 == {9: 216, 11: 264}[C]
    assert {j["seed"] for j in control} == {"1"} and {j["dataset"] for j in control} == set(control_datasets)
    # The control baseline: once per (data set, model), seed 1.
    assert Counter((j["dataset"], j["model"]) for j in baselines) == {(d, m): 1 for d in control_datasets for m in run["models"]}
    # Ordinary models: noisy and clean for every seed, the frozen baseline for seed 1 only.
    finetune = Counter((j["variant"], j["seed"]) for j in jobs if j["rule"] == "train_finetune")
    assert finetune == {**{(v, str(s)): D * M for v in ("noisy", "clean") for s in run["seeds"]}, ("frozen", "1"): D * M}
    # Gradients and probing compare every run with its seed-1 baseline; control models with control-frozen.
    for technique, ckpt in (("gradients", "memorised"), ("probing", analysed)):
        loc = [j for j in jobs if j["rule"] == f"localise_{technique}"]
        assert len(loc) == D * M * S + C * M * 3
        for j in loc:
            base = "control-frozen" if j["variant"].startswith("control-") else "frozen"
            assert f"results/models/{j['dataset']}/{j['model']}/{base}/seed1/{ckpt}" in j["inputs"], j
