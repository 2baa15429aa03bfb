"""stats.smk and figures.smk on their own: a harness Snakefile that includes only common.smk and
those two stages, hand-made per-run files, a dry run of every target and a real run of the summary tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from memloc.stats import synthetic as syn
from memloc.stats.collect import heatmap_layer_weights, window_heatmap
from memloc.stats.mcog import probing_layer_weights

REPO = Path(__file__).resolve().parents[1]

HARNESS = """
import sys
from pathlib import Path
sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))
configfile: "config.yaml"
include: "workflow/rules/common.smk"
include: "workflow/rules/stats_helpers.smk"
include: "workflow/rules/stats.smk"
include: "workflow/rules/figures_helpers.smk"
include: "workflow/rules/figures.smk"

rule all:
    input: stats_targets(), figure_targets()
    default_target: True

rule tables:
    input: stats_targets()
"""


def make_inputs(root: Path, L: int = 3) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    res = root / "results"
    base = res / "localisation" / "{t}" / "toy" / "tiny" / "noisy" / "seed1"
    for t in ("swapping", "retraining", "gradients", "probing", "centroids"):
        stem = Path(str(base).format(t=t))
        stem.parent.mkdir(parents=True, exist_ok=True)
        if t in ("swapping", "retraining"):
            raw = syn.window_table(L, rng, 2.0)
            w = heatmap_layer_weights(window_heatmap(raw))
        elif t == "probing":
            raw = syn.probing_table(L, rng)
            w = probing_layer_weights(raw).reset_index()
        elif t == "gradients":
            raw = pd.DataFrame({"layer": range(1, L + 1), "weight": [0.2, 0.5, 0.3]})
            w = raw
        else:
            raw, ev = syn.centroid_table(L, rng)
            ev.to_parquet(f"{stem}.events.parquet")
        raw.to_parquet(f"{stem}.parquet")
        if t != "centroids":
            w.to_parquet(f"{stem}.weights.parquet")
    # The noisy model's trace: its noisy examples reach 0.5 accuracy only, below the 0.99 threshold.
    from test_memorised_runs import write_trace

    write_trace(res, "toy", 1, [0.3, 0.4, 0.5])
    model = res / "models" / "toy" / "tiny" / "noisy" / "seed1"
    model.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(dict(example_id=range(6), split=["train", "validation", "validation", "validation", "validation", "test"],
                      checkpoint="final", label=[0, 0, 0, 1, 1, 1], pred=[0, 0, 1, 1, 1, 0], p_label=0.6,
                      correct=[True, True, False, True, True, False], is_noisy=False)).to_parquet(model / "predictions.parquet")
    twin = res / "models" / "toy" / "tiny" / "clean" / "seed1"  # its clean twin: every validation example right
    twin.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(dict(example_id=range(6), split=["train", "validation", "validation", "validation", "validation", "test"],
                      checkpoint="final", label=[0, 0, 0, 1, 1, 1], pred=[0, 0, 0, 1, 1, 0], p_label=0.7,
                      correct=[True, True, True, True, True, False], is_noisy=False)).to_parquet(twin / "predictions.parquet")
    cf = res / "counterfactual" / "toy" / "tiny"
    cf.mkdir(parents=True)
    (cf / "summary.json").write_text(json.dumps({"generalisation_mean": 0.4, "cm_noisy_mean": 0.3, "cm_clean_mean": 0.02,
                                                 "auc_noisy": 0.8, "reliability": 0.7}))


@pytest.fixture
def harness(tmp_path):
    (tmp_path / "workflow").symlink_to(REPO / "workflow")
    (tmp_path / "Snakefile").write_text(HARNESS)
    cfg = {
        "datasets": {
            "toy": {"source": {"kind": "file", "train": "toy.csv"}, "columns": {"text_a": "sentence"}, "family": "sentiment"},
        },
        "models": {
            "tiny": {"source": {"kind": "random", "model_type": "bert", "num_layers": 3, "hidden_size": 32, "num_heads": 2}},
        },
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    make_inputs(tmp_path)
    return tmp_path


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "-d", str(workdir), "-s", str(workdir / "Snakefile"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "MPLBACKEND": "Agg"})


def test_rules_dry_run_and_tables(harness):
    dry = snakemake(harness, "-n", "all")
    assert dry.returncode == 0, dry.stderr + dry.stdout
    for rule in ("stats_layer_weights", "stats_mcog", "stats_statistics", "stats_heatmaps", "figure_heatmap", "figure_agreement",
                 "figure_mcog", "figure_generalisation", "figure_centroids", "figure_centroid_events", "figure_probing",
                 "stats_validation", "stats_swapping_clean", "figure_single_layer", "figure_clean_accuracy", "figure_mcog_mean",
                 "figure_depth", "figure_events", "stats_memorised_runs"):
        assert rule in dry.stdout, rule
    assert "figure_control" not in dry.stdout  # no control models configured

    run = snakemake(harness, "-c2", "tables")
    assert run.returncode == 0, run.stderr
    summary = harness / "results" / "summary"
    mc = pd.read_parquet(summary / "mcog.parquet")
    assert set(mc["technique"]) == {"swapping", "retraining", "gradients", "probing"}
    assert mc.loc[mc["technique"] == "gradients", "mcog"].iloc[0] == pytest.approx(0.2 + 1.0 + 0.9)
    st = pd.read_parquet(summary / "statistics.parquet")
    assert {"agreement_technique_mcog_pearson", "mcog_model", "generalisation_spearman"} <= set(st["analysis"])
    assert "control_binomial" not in set(st["analysis"])
    new = {"depth_generalisation_spearman", "depth_validation_spearman", "agreement_model_minmax_spearman"}
    assert new <= set(st["analysis"])
    # The only run did not memorise (below): stats.unmemorised (exclude) leaves it out and every row says so.
    assert (st["n_excluded"] == 1).all() and (st["unmemorised"] == "toy/tiny/seed1").all()
    assert (st.loc[st["analysis"] == "agreement_technique_mcog_pearson", "n"] == 0).all()
    assert {"agreement_technique_mcog_norm_pearson", "mcog_norm_model", "generalisation_mcog_norm_spearman",
            "depth_generalisation_mcog_norm_spearman"} <= set(st["analysis"])
    assert (mc["num_layers"] == 3).all() and mc["mcog_norm"].between(0, 1).all()
    val = pd.read_parquet(summary / "validation.parquet").set_index("variant")
    noisy = val.loc["noisy"]
    assert noisy["n"] == 4 and noisy["accuracy"] == 0.75 and noisy["chance"] == 0.5 and noisy["accuracy_norm"] == 0.5
    assert val.loc["clean", "accuracy"] == 1.0  # the clean twin, next to its noisy model
    flagged = pd.read_parquet(summary / "memorised_runs.parquet").iloc[0]
    assert (flagged["dataset"], flagged["noisy_accuracy"], bool(flagged["memorised"])) == ("toy", 0.5, False)
    clean = pd.read_parquet(summary / "swapping_clean.parquet")
    assert len(clean) == 6 and clean["acc_clean"].between(0, 1).all()  # L = 3: 6 windows
    assert (harness / "results" / "logs" / "stats_statistics.log").exists()
    # The report's copy of every summary table is a CSV with the same rows and columns.
    for table in ("layer_weights", "heatmaps", "probing", "centroids", "centroid_events", "counterfactual", "mcog", "statistics",
                  "validation", "swapping_clean", "memorised_runs"):
        parquet, csv = pd.read_parquet(summary / f"{table}.parquet"), pd.read_csv(summary / f"{table}.csv")
        assert list(csv.columns) == list(parquet.columns) and len(csv) == len(parquet), table
