"""Centroid analysis: projections by hand, event layers, a planted crossing and initiation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from memloc.io import write_parquet
from memloc.localise.centroids import (
    CentroidsSettings,
    centroid_analysis,
    class_pairs,
    crossing_layer,
    initiation_layer,
    project,
    run_centroids,
)
from memloc.models.random import build_random_classifier

ALL_PAIRS = CentroidsSettings.with_defaults(max_pairs=None)


def test_projection_hand_computed():
    c_a, c_b = np.array([1.0, 1.0, 0.0]), np.array([3.0, 1.0, 0.0])  # axis (2, 0, 0), |axis|^2 = 4
    x = np.array([[1.0, 1.0, 0.0], [3.0, 1.0, 0.0], [2.0, 7.0, -3.0], [-1.0, 0.0, 5.0], [4.0, 1.0, 1.0]])
    np.testing.assert_allclose(project(x, c_a, c_b), [0.0, 1.0, 0.5, -1.0, 1.5])
    # an oblique axis: c_a = 0, c_b = (1, 1); x = (2, 0) -> (2*1 + 0*1) / 2 = 1
    assert project(np.array([2.0, 0.0]), np.zeros(2), np.ones(2)) == pytest.approx(1.0)
    # per layer broadcasting: x [n, layers, d] with centroids [layers, d]
    xs = np.stack([x, 2 * x], axis=1)
    got = project(xs, np.stack([c_a, 2 * c_a]), np.stack([c_b, 2 * c_b]))
    np.testing.assert_allclose(got[:, 0], got[:, 1])
    assert np.isnan(project(x, c_a, c_a)).all()


def test_event_layers():
    assert crossing_layer(np.array([0.9, 0.7, 0.45, 0.6, 0.2])) == 2  # first drop, even if it comes back
    assert np.isnan(crossing_layer(np.array([0.9, 0.5, 0.6])))  # 0.5 is not below 0.5
    a_high = np.array([0.9, 0.2, 0.8, 0.1, 0.1])
    b_low = np.array([0.1, 0.8, 0.2, 0.9, 0.9])
    assert initiation_layer(a_high, b_low) == 3  # separated at 1, lost at 2, for good from 3
    assert initiation_layer(np.zeros(3), np.ones(3)) == 0
    assert np.isnan(initiation_layer(np.array([0.0, 0.0, 2.0]), np.ones(3)))


def test_class_pairs_order_and_limit():
    labels = np.array([0, 0, 1, 1, 2, 2, 0, 1])
    orig = np.array([0, 1, 1, 0, 2, 0, 1, 1])
    noisy = labels != orig
    pairs = class_pairs(labels, orig, noisy, None)
    assert len(pairs) == 6
    assert pairs[0] == (0, 1, 2)  # two examples labelled 0 that were 1
    assert pairs[1:3] == [(1, 0, 1), (2, 0, 1)]
    assert class_pairs(labels, orig, noisy, 2) == pairs[:2]


def planted(seed=0, n_clean=60, n_noisy=12, d=4):
    """3 layers + embeddings. Class 0 sits at 0, class 1 along e0 (overlapping at layer 0,
    separated from layer 1). Memorised examples labelled 0 (originally 1) sit with class 1 up to
    layer 1 and with class 0 from layer 2. Class 2 has no memorised examples."""
    rng = np.random.default_rng(seed)
    e0 = np.eye(d)[0]
    centre = {0: [0, 0, 0, 0], 1: [1, 6, 6, 6], 2: [-3, -6, -6, -6]}
    spread = [1.0, 0.5, 0.5, 0.5]
    rows, labels, orig = [], [], []
    for c in (0, 1, 2):
        for _ in range(n_clean):
            rows.append([centre[c][l] * e0 + spread[l] * rng.normal(size=d) for l in range(4)])
            labels.append(c)
            orig.append(c)
    for _ in range(n_noisy):
        path = [1, 1, 0, 0]
        rows.append([centre[path[l]][l] * e0 + spread[l] * rng.normal(size=d) for l in range(4)])
        labels.append(0)
        orig.append(1)
    labels, orig = np.array(labels), np.array(orig)
    return np.array(rows, dtype=np.float32), labels, orig, labels != orig


def test_planted_crossing_and_initiation():
    states, labels, orig, noisy = planted()
    raw, events = centroid_analysis(states, labels, orig, noisy, ALL_PAIRS)
    pairs = events[events["scope"] == "pair"]
    assert len(pairs) == 1  # every other pair has no memorised examples
    row = pairs.iloc[0]
    assert (row["class_a"], row["class_b"], row["n_noisy"]) == (0, 1, 12)
    assert row["crossing_layer"] == 2
    assert row["initiation_layer"] == 1
    mean = events[events["scope"] == "mean"].iloc[0]
    assert mean["crossing_layer"] == 2 and mean["initiation_layer"] == 1
    assert pd.isna(mean["class_a"])
    noisy_mean = raw[raw["group"] == "noisy"].sort_values("layer")["mean"].to_numpy()
    assert noisy_mean[0] > 0.5 and noisy_mean[1] > 0.5 and noisy_mean[2] < 0.5
    # the clean groups define the scale: mean 0 and 1 exactly
    for group, value in (("clean_a", 0.0), ("clean_b", 1.0)):
        np.testing.assert_allclose(raw.loc[raw["group"] == group, "mean"], value, atol=1e-6)
    assert set(raw.columns) >= {"class_a", "class_b", "layer", "group", "n", "mean", "p12_5", "p87_5"}
    assert len(raw) == 3 * 4


def test_raw_values_hand_computed():
    # one layer, d = 1: class 0 at {0, 2} (centroid 1), class 1 at {5, 7} (centroid 6), noisy at 3.5
    states = np.array([[0.0], [2.0], [5.0], [7.0], [3.5]])[:, None, :]
    labels = np.array([0, 0, 1, 1, 0])
    orig = np.array([0, 0, 1, 1, 1])
    raw, events = centroid_analysis(states, labels, orig, labels != orig, ALL_PAIRS)
    pair = raw[(raw["class_a"] == 0) & (raw["class_b"] == 1)].set_index("group")
    assert pair.loc["noisy", "mean"] == pytest.approx(0.5)
    assert pair.loc["clean_a", "p12_5"] == pytest.approx(-0.2 + 0.125 * 0.4)  # positions -0.2, 0.2
    assert pair.loc["clean_b", "p87_5"] == pytest.approx(0.8 + 0.875 * 0.4)  # positions 0.8, 1.2
    ev = events[events["scope"] == "pair"].iloc[0]
    assert np.isnan(ev["crossing_layer"])  # 0.5 is not below 0.5
    assert ev["initiation_layer"] == 0


def test_run_centroids_writes_tables(tmp_path):
    rng = np.random.default_rng(0)
    n = 40
    label_orig = rng.integers(0, 2, size=n)
    is_noisy = np.zeros(n, dtype=bool)
    is_noisy[:6] = True
    examples = pd.DataFrame(
        {
            "example_id": np.arange(n),
            "split": ["train"] * 36 + ["validation"] * 2 + ["test"] * 2,
            "text_a": ["x"] * n,
            "text_b": [None] * n,
            "label_orig": label_orig,
            "label": np.where(is_noisy, 1 - label_orig, label_orig),
            "is_noisy": is_noisy,
        }
    )
    ids = [rng.integers(5, 100, size=int(rng.integers(3, 9))).astype(np.int32) for _ in range(n)]
    tokens = pd.DataFrame({"example_id": np.arange(n), "input_ids": ids, "length": [len(x) for x in ids], "truncated": False})
    write_parquet(examples, tmp_path / "examples.parquet")
    write_parquet(tokens, tmp_path / "tokens.parquet", metadata={"pad_token_id": 0})
    build_random_classifier(
        "bert", num_layers=2, hidden_size=16, num_heads=2, vocab_size=100, seed=1
    ).save_pretrained(tmp_path / "model")
    settings = {"max_pairs": None, "max_window": None, "eval_batch_size": 16, "device": "cpu", "precision": "fp32",
                "deterministic": False, "seed": 1}
    run_centroids(tmp_path / "examples.parquet", tmp_path / "tokens.parquet", tmp_path / "model", settings,
                  tmp_path / "raw.parquet", tmp_path / "events.parquet")
    raw = pd.read_parquet(tmp_path / "raw.parquet")
    events = pd.read_parquet(tmp_path / "events.parquet")
    assert set(raw["layer"]) == {0, 1, 2}
    assert events["scope"].tolist()[-1] == "mean"
    assert events.loc[events["scope"] == "pair", "n_noisy"].sum() == 6
