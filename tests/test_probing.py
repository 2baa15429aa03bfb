"""Pooled hidden states (batched = one by one) and probing (splits, batched probes, planted layer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from memloc import config as mconf
from memloc.io import write_parquet
from memloc.localise.hidden import normalise, pooled_states
from memloc.localise.probing import (
    ProbingSettings,
    binary_f1_rows,
    probe_layers,
    probing_weights,
    run_probing,
    split_counts,
    stratified_split,
    train_probes,
)
from memloc.localise.settings import technique_params
from memloc.models.random import build_random_classifier
from memloc.tokens import TokenSet
from memloc.training.metrics import binary_f1

from builders import random_tokens

VOCAB = 100


def probing_settings(**overrides) -> ProbingSettings:
    """The settings the rule builds from the default config (on the CPU, run seed 0), with ``overrides``."""
    cfg = mconf.validate(yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text()))
    params = {**technique_params(cfg, "probing", cfg["run"]["models"][0], seed=0), "device": "cpu"}
    return ProbingSettings.from_dict({**params, **overrides})


def tokenset(n: int, seed: int = 0, with_types: bool = False) -> TokenSet:
    return random_tokens(n, seed, vocab=VOCAB, lengths=(2, 11), with_types=with_types)


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama"])
def test_pooled_states_batched_equal_one_by_one(family):
    model = build_random_classifier(family, num_layers=2, hidden_size=16, num_heads=2, vocab_size=VOCAB, seed=2)
    model.train()  # pooled_states must switch dropout off itself, and restore the mode
    data = tokenset(9, seed=3, with_types=family == "bert")
    batched = pooled_states(model, data, 4, None, "fp32")
    single = pooled_states(model, data, 1, None, "fp32")
    assert model.training
    assert batched.shape == (9, 3, 16) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-5)
    # original order: the i-th row is example i run alone
    alone = pooled_states(model, data.subset([6]), 1, None, "fp32")
    np.testing.assert_allclose(batched[6], alone[0], rtol=1e-5, atol=1e-5)


def test_split_counts_and_stratified_split():
    assert split_counts(100) == (70, 10, 20)
    assert split_counts(3) == (1, 1, 1)
    assert split_counts(1) == (1, 0, 0)
    y = np.array([1] * 30 + [0] * 170)
    parts = stratified_split(y, seed=1)
    assert sum(len(p) for p in parts) == 200
    assert len(np.unique(np.concatenate(parts))) == 200
    assert [int(y[p].sum()) for p in parts] == [21, 3, 6]
    assert [len(p) for p in parts] == [140, 20, 40]
    other = stratified_split(y, seed=2)
    assert [len(p) for p in other] == [len(p) for p in parts]  # same sizes for every seed
    assert not np.array_equal(other[0], parts[0])
    np.testing.assert_array_equal(stratified_split(y, seed=1)[2], parts[2])


def test_binary_f1_rows_matches_numpy():
    rng = np.random.default_rng(0)
    t, p = rng.random((4, 30)) < 0.3, rng.random((4, 30)) < 0.4
    t[3] = False
    p[3] = False  # undefined -> 0
    got = binary_f1_rows(torch.as_tensor(t), torch.as_tensor(p)).numpy()
    np.testing.assert_allclose(got, [binary_f1(a.astype(int), b.astype(int)) for a, b in zip(t, p)])


def test_probing_weights_hand_computed():
    curve = np.array([0.9, 0.3, 0.25, 0.6])  # layers 0..3; layer 0 is not used
    np.testing.assert_allclose(probing_weights(curve, 0.1), [0.2, 0.0, 0.35])
    np.testing.assert_allclose(normalise(probing_weights(curve, 0.1)), [0.2 / 0.55, 0.0, 0.35 / 0.55])
    assert (normalise(np.zeros(3)) == 0).all()


def synthetic_states(n=300, layers=5, d=8, first=3, seed=0):
    """Gaussian states; from layer ``first`` on the memorised examples are shifted along one axis."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=bool)
    y[rng.choice(n, n // 6, replace=False)] = True
    states = rng.normal(size=(n, layers + 1, d)).astype(np.float32)
    states *= (10.0 ** np.arange(layers + 1))[None, :, None].astype(np.float32)  # scales grow with depth
    for layer in range(first, layers + 1):
        states[y, layer, 0] += 5 * 10.0**layer
    return states, rng.normal(size=(n, d)).astype(np.float32), y


def test_probes_trained_together_equal_probes_trained_alone():
    states, _, y = synthetic_states(n=120, layers=2, d=6)
    features = torch.as_tensor(states)
    kw = dict(hidden_size=8, dropout=0.0, learning_rate=1e-2, weight_decay=1e-5, epochs=4, batch_size=16)
    together = train_probes(features, y, [0, 2, 2], [1, 1, 2], **kw)
    for p, (f, s) in enumerate([(0, 1), (2, 1), (2, 2)]):
        alone = train_probes(features, y, [f], [s], **kw)
        for col in ("val_f1", "test_f1", "best_epoch"):
            assert together.loc[p, col] == pytest.approx(alone.loc[0, col], abs=1e-9), (p, col)


def test_planted_layer_gets_the_weight():
    states, frozen, y = synthetic_states()
    raw, weights = probe_layers(
        states, frozen, y, probing_settings(seeds=[1, 2], hidden_size=16, epochs=10, learning_rate=1e-2, batch_size=32)
    )
    assert set(raw.columns) >= {"layer", "probe_seed", "model", "val_f1", "test_f1", "best_epoch", "mean_test_f1", "weight"}
    assert len(raw) == 6 * 2 + 2
    assert set(raw.loc[raw["model"] == "frozen", "layer"]) == {1}
    curve = raw[raw["model"] == "noisy"].groupby("layer")["test_f1"].mean()
    assert curve[3] > 0.85 and curve[3] - curve[2] > 0.4  # the F1 jumps at layer 3
    assert curve[:3].max() < 0.6
    assert int(np.argmax(weights)) + 1 == 3 and weights[2] > 0.6
    assert np.isclose(weights.sum(), 1.0)
    noisy_rows = raw[(raw["model"] == "noisy") & (raw["layer"] >= 1)].drop_duplicates("layer").sort_values("layer")
    np.testing.assert_allclose(noisy_rows["weight"], weights)
    assert raw["best_epoch"].between(1, 10).all()


def test_run_probing_writes_tables(tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    label_orig = rng.integers(0, 2, size=n)
    is_noisy = np.zeros(n, dtype=bool)
    is_noisy[:12] = True
    examples = pd.DataFrame(
        {
            "example_id": np.arange(n),
            "split": ["train"] * 50 + ["validation"] * 5 + ["test"] * 5,
            "text_a": ["x"] * n,
            "text_b": [None] * n,
            "label_orig": label_orig,
            "label": np.where(is_noisy, 1 - label_orig, label_orig),
            "is_noisy": is_noisy,
        }
    )
    ids = [rng.integers(5, VOCAB, size=int(rng.integers(3, 9))).astype(np.int32) for _ in range(n)]
    tokens = pd.DataFrame({"example_id": np.arange(n), "input_ids": ids, "length": [len(x) for x in ids], "truncated": False})
    write_parquet(examples, tmp_path / "examples.parquet")
    write_parquet(tokens, tmp_path / "tokens.parquet", metadata={"pad_token_id": 0})
    for name, seed in [("model", 1), ("frozen", 2)]:
        build_random_classifier(
            "bert", num_layers=2, hidden_size=16, num_heads=2, vocab_size=VOCAB, seed=seed
        ).save_pretrained(tmp_path / name)
    settings = probing_settings(seeds=[1, 2], hidden_size=8, learning_rate=1e-3, epochs=2, batch_size=16,
                                eval_batch_size=16, deterministic=False, seed=1).as_dict()
    run_probing(tmp_path / "examples.parquet", tmp_path / "tokens.parquet", tmp_path / "model", tmp_path / "frozen",
                settings, tmp_path / "raw.parquet", tmp_path / "weights.parquet")
    raw = pd.read_parquet(tmp_path / "raw.parquet")
    weights = pd.read_parquet(tmp_path / "weights.parquet")
    assert len(raw) == 3 * 2 + 2
    assert weights["layer"].tolist() == [1, 2]
    assert raw["test_f1"].between(0, 1).all()
