"""Centroid analysis: projections by hand, event layers, a planted crossing and initiation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from memloc.check import check_frame, load_schema
from memloc.check.schemas import SCHEMA_DIR
from memloc.errors import ConfigError
from memloc.io import write_parquet
from memloc.localise import centroids
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

from builders import record_final_norm

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
    five, three = np.arange(5), np.arange(3)
    assert crossing_layer(np.array([0.9, 0.7, 0.45, 0.6, 0.2]), five, "first_below") == 2  # first drop, even if it comes back
    assert np.isnan(crossing_layer(np.array([0.9, 0.5, 0.6]), three, "first_below"))  # 0.5 is not below 0.5
    a_high = np.array([0.9, 0.2, 0.8, 0.1, 0.1])
    b_low = np.array([0.1, 0.8, 0.2, 0.9, 0.9])
    assert initiation_layer(a_high, b_low, five) == 3  # separated at 1, lost at 2, for good from 3
    assert initiation_layer(a_high, b_low, five + 1) == 4  # layers 1..L: the same position, its own number
    assert initiation_layer(np.zeros(3), np.ones(3), three) == 0
    assert np.isnan(initiation_layer(np.array([0.0, 0.0, 2.0]), np.ones(3), three))


def test_last_downward_crossing():
    """The notebook's rule: the last drop from above 0.5 to below it; the layer before the first
    analysed layer counts as above; a curve that ends above 0.5 keeps its last drop."""
    five = np.arange(5)
    curve = np.array([0.3, 0.8, 0.7, 0.4, 0.2])  # below at the embeddings, back above, then for good
    assert crossing_layer(curve, five, "first_below") == 0
    assert crossing_layer(curve, five, "last_downward") == 3
    assert crossing_layer(curve[1:], five[1:], "last_downward") == 3  # layers 1..L
    assert crossing_layer(np.array([0.9, 0.4, 0.6]), five[:3], "last_downward") == 1  # ends above: the last drop
    assert crossing_layer(np.array([0.4, 0.3]), five[:2], "last_downward") == 0  # below from the start
    assert crossing_layer(np.array([0.9, 0.45, 0.4, 0.9, 0.3]), five, "last_downward") == 4  # 0.45 -> 0.4 is no drop
    assert np.isnan(crossing_layer(np.array([0.9, 0.5, 0.3]), five[:3], "last_downward"))  # 0.5 is not above 0.5
    with pytest.raises(ConfigError, match="localisation.centroids.crossing"):
        crossing_layer(curve, five, "median")


def test_settings_reject_unknown_values():
    with pytest.raises(ConfigError, match=r"localisation.centroids.pooling is 'seed'; expected one of per_pair, pooled"):
        CentroidsSettings.with_defaults(pooling="seed")
    with pytest.raises(ConfigError, match=r"localisation.centroids.layers"):
        CentroidsSettings.with_defaults(layers="1..L")


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


PAPER = {"layers": "blocks", "pooling": "pooled", "crossing": "last_downward", "final_norm": True}
DEFAULT = {"layers": "with_embeddings", "pooling": "per_pair", "crossing": "first_below", "final_norm": False}


@pytest.mark.parametrize("protocol", [DEFAULT, PAPER], ids=["default", "paper"])
def test_run_centroids_writes_tables(tmp_path, monkeypatch, protocol):
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
                "auto_precision_min_speedup": 1.2, "deterministic": False, "seed": 1, **protocol}
    final_norm = record_final_norm(monkeypatch, centroids)
    run_centroids(tmp_path / "examples.parquet", tmp_path / "tokens.parquet", tmp_path / "model", settings,
                  tmp_path / "raw.parquet", tmp_path / "events.parquet")
    raw = pd.read_parquet(tmp_path / "raw.parquet")
    events = pd.read_parquet(tmp_path / "events.parquet")
    assert final_norm == [protocol["final_norm"]]
    assert events.loc[events["scope"] == "pair", "n_noisy"].sum() == 6
    for table, name in ((raw, "localisation_centroids"), (events, "localisation_centroid_events")):
        assert check_frame(table, load_schema(SCHEMA_DIR / f"{name}.yaml")) == [], name
    if protocol is DEFAULT:
        assert set(raw["layer"]) == {0, 1, 2}
        assert events["scope"].tolist()[-1] == "mean"
    else:
        assert set(raw["layer"]) == {1, 2}
        assert events["scope"].tolist()[-2:] == ["mean", "pooled"]
        assert events.iloc[-1]["n_noisy"] == 6 and set(raw["scope"]) == {"pair", "pooled"}


CENTRES = {0: np.zeros(3), 1: np.eye(3)[0], 2: np.eye(3)[1]}


def line_states(paths: dict[tuple[int, int], list[list[float]]], n_layers: int, classes=(0, 1, 2)):
    """States ``[N, n_layers, 3]`` with planted positions. Class c's four clean examples sit around
    ``CENTRES[c]`` (their centroid): spread (+-0.8, +-0.8) in the plane of the centres at layer 0
    (the classes overlap), +-0.3 along the third axis after (every clean position exactly 0 or 1).
    ``paths[(a, b)]`` lists, per noisy example labelled a and originally b, its position on the
    a -> b line at each layer."""
    corners = [(0.8, 0.8, 0), (-0.8, 0.8, 0), (0.8, -0.8, 0), (-0.8, -0.8, 0)]
    off = [(0, 0, 0.3), (0, 0, -0.3), (0, 0, 0.3), (0, 0, -0.3)]
    rows, labels, orig = [], [], []
    for c in classes:
        for k in range(4):
            rows.append([CENTRES[c] + np.array(corners[k] if layer == 0 else off[k]) for layer in range(n_layers)])
            labels.append(c)
            orig.append(c)
    for (a, b), examples in paths.items():
        for path in examples:
            rows.append([CENTRES[a] + p * (CENTRES[b] - CENTRES[a]) for p in path])
            labels.append(a)
            orig.append(b)
    labels, orig = np.array(labels), np.array(orig)
    return np.array(rows, dtype=np.float32), labels, orig, labels != orig


def events_with(states, labels, orig, noisy, **changes):
    return centroid_analysis(states, labels, orig, noisy, CentroidsSettings.with_defaults(**changes))


@pytest.mark.parametrize(
    "layers, crossing, expected",
    [("with_embeddings", "first_below", 0), ("blocks", "first_below", 2),
     ("with_embeddings", "last_downward", 4), ("blocks", "last_downward", 4)],
)
def test_planted_decoder_like_crossing(layers, crossing, expected):
    """Memorised examples sit with their training label at the embeddings, with their original
    class at layer 1, dip to the training label at 2, go back at 3 and cross for good at 4."""
    states, labels, orig, noisy = line_states({(0, 1): [[0, 1, 0, 1, 0, 0]] * 3}, 6, classes=(0, 1))
    raw, events = events_with(states, labels, orig, noisy, layers=layers, crossing=crossing)
    pair = events[events["scope"] == "pair"].iloc[0]
    assert pair["crossing_layer"] == expected
    assert pair["initiation_layer"] == 1  # the classes overlap at layer 0 only
    assert sorted(set(raw["layer"])) == (list(range(6)) if layers == "with_embeddings" else list(range(1, 6)))


def test_blocks_skip_the_embeddings():
    """With layers 1..L the embedding output is not analysed: a pair separated from layer 1 on
    initiates at 1 either way, a pair separated everywhere but the embeddings at 1 (not 0)."""
    states, labels, orig, noisy = line_states({(0, 1): [[1, 1, 0.2]] * 2}, 3, classes=(0, 1))
    states[:, 0] = states[:, 1]  # the embedding output already separates the classes
    _, full = events_with(states, labels, orig, noisy)
    _, blocks = events_with(states, labels, orig, noisy, layers="blocks")
    assert full.iloc[0]["initiation_layer"] == 0 and blocks.iloc[0]["initiation_layer"] == 1
    assert full.iloc[0]["crossing_layer"] == blocks.iloc[0]["crossing_layer"] == 2


def pooling_example():
    """Three memorised examples of pair 0 -> 1 cross at layer 2, one of pair 0 -> 2 at layer 1.
    Pooled (weighted by examples), the mean is 0.675 at layer 1 and 0.3 at layer 2: the pooled
    crossing is 2, where an unweighted mean of the two pairs' curves (0.45 at layer 1) would say 1."""
    return line_states({(0, 1): [[1, 0.9, 0.4, 0.2]] * 3, (0, 2): [[1, 0.0, 0.0, 0.0]]}, 4)


def test_per_pair_events_have_no_pooled_row():
    raw, events = events_with(*pooling_example())
    assert events["scope"].tolist() == ["pair", "pair", "mean"]
    assert events["crossing_layer"].tolist() == [2.0, 1.0, 1.5]
    assert "scope" not in raw and len(raw) == 2 * 3 * 4  # the two pairs with memorised examples


def test_pooled_over_pairs_of_unequal_size():
    raw, events = events_with(*pooling_example(), pooling="pooled")
    assert events["scope"].tolist() == ["pair", "pair", "mean", "pooled"]
    pooled = events[events["scope"] == "pooled"].iloc[0]
    assert pooled["crossing_layer"] == 2  # weighted by examples, not pairs
    assert pooled["initiation_layer"] == 1
    assert pooled["n_noisy"] == 4 and pd.isna(pooled["class_a"])
    # every ordered pair of the three classes pools its clean positions, memorised examples or not
    assert pooled["n_pairs_crossing"] == pooled["n_pairs_initiation"] == 6
    assert events[events["scope"] == "mean"].iloc[0]["crossing_layer"] == 1.5  # the per-pair mean is kept
    rows = raw[raw["scope"] == "pooled"].set_index(["group", "layer"])
    np.testing.assert_allclose(rows.loc[("noisy", 1), "mean"], 0.675, atol=1e-6)
    np.testing.assert_allclose(rows.loc[("noisy", 2), "mean"], 0.3, atol=1e-6)
    assert rows.loc[("clean_a", 1), "n"] == 6 * 4 and rows.loc[("noisy", 1), "n"] == 4
    pairs = raw[raw["scope"] == "pair"]
    assert len(pairs[["class_a", "class_b"]].drop_duplicates()) == 6
    assert set(pairs.loc[pairs["group"] == "noisy", "class_b"]) == {1, 2}


def test_pooled_without_memorised_examples():
    states, labels, orig, noisy = line_states({}, 3, classes=(0, 1))
    raw, events = events_with(states, labels, orig, noisy, pooling="pooled")
    pooled = events[events["scope"] == "pooled"].iloc[0]
    assert np.isnan(pooled["crossing_layer"]) and pooled["initiation_layer"] == 1 and pooled["n_noisy"] == 0
    assert set(raw["group"]) == {"clean_a", "clean_b"}
