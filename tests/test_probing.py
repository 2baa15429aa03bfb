"""Pooled hidden states (batched = one by one) and probing (splits, batched probes, planted layer)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from memloc import config as mconf
from memloc.errors import ConfigError
from memloc.io import write_parquet
from memloc.localise import probing
from memloc.localise.hidden import normalise, pooled_states
from memloc.localise.probes import (
    _ProbeStack,
    binary_f1_rows,
    macro_f1_rows,
    probe_split,
    random_split,
    split_counts,
    stratified_split,
    train_probes,
)
from memloc.localise.probing import ProbingSettings, probe_layers, probing_weights, run_probing
from memloc.localise.settings import technique_params
from memloc.models.random import build_random_classifier
from memloc.tokens import TokenSet
from memloc.training.metrics import binary_f1

from builders import random_tokens, record_final_norm

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
    batched = pooled_states(model, data, 4, None, "fp32", False)
    single = pooled_states(model, data, 1, None, "fp32", False)
    assert model.training
    assert batched.shape == (9, 3, 16) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-5)
    # original order: the i-th row is example i run alone
    alone = pooled_states(model, data.subset([6]), 1, None, "fp32", False)
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
    kw = probing_settings(hidden_size=8, dropout=0.0, learning_rate=1e-2, epochs=4, batch_size=16).probe_options()
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


def test_run_probing_writes_tables(tmp_path, monkeypatch):
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
                                eval_batch_size=16, deterministic=False, seed=1, final_norm=True).as_dict()
    final_norm = record_final_norm(monkeypatch, probing)
    run_probing(tmp_path / "examples.parquet", tmp_path / "tokens.parquet", tmp_path / "model", tmp_path / "frozen",
                settings, tmp_path / "raw.parquet", tmp_path / "weights.parquet")
    raw = pd.read_parquet(tmp_path / "raw.parquet")
    weights = pd.read_parquet(tmp_path / "weights.parquet")
    assert len(raw) == 3 * 2 + 2
    assert final_norm == [True, True]  # localisation.final_norm reaches both models' states
    assert weights["layer"].tolist() == [1, 2]
    assert raw["test_f1"].between(0, 1).all()


# --------------------------------------------------------------------------- the published probe's options


def test_macro_f1_rows_matches_sklearn_with_and_without_a_mask():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(1)
    t, p = rng.integers(0, 4, size=(5, 40)), rng.integers(0, 4, size=(5, 40))
    p[4] = np.where(t[4] == 3, 0, t[4])  # a class that is never predicted
    keep = rng.random((5, 40)) < 0.5
    got = macro_f1_rows(torch.as_tensor(t), torch.as_tensor(p), 4).numpy()
    np.testing.assert_allclose(got, [f1_score(a, b, average="macro") for a, b in zip(t, p)])
    got = macro_f1_rows(torch.as_tensor(t), torch.as_tensor(p), 4, torch.as_tensor(keep)).numpy()
    np.testing.assert_allclose(got, [f1_score(a[k], b[k], average="macro") for a, b, k in zip(t, p, keep)])
    assert np.isnan(macro_f1_rows(torch.as_tensor(t), torch.as_tensor(p), 4, torch.zeros(5, 40, dtype=torch.bool)).numpy()).all()


def test_random_split_is_unstratified_and_cut_like_the_published_list():
    y = np.array([1] * 10 + [0] * 91)
    parts = random_split(len(y), seed=0)
    assert [len(p) for p in parts] == [70, 10, 21]  # int(0.7 n), int(0.8 n) - int(0.7 n), the rest
    assert len(np.unique(np.concatenate(parts))) == 101
    # unstratified: the test split's positives vary over seeds (stratified: always 2)
    assert len({int(y[random_split(len(y), s)[2]].sum()) for s in range(10)}) > 1
    assert {int(y[probe_split("stratified", y, s)[2]].sum()) for s in range(10)} == {2}
    np.testing.assert_array_equal(probe_split("random", y, 3)[1], random_split(len(y), 3)[1])
    with pytest.raises(ValueError, match="localisation.probing.split"):
        train_probes(torch.zeros(20, 1, 2), np.arange(20) % 2, [0], [1],
                     **probing_settings(epochs=1, split="bogus").probe_options())


def test_standardising_reads_a_small_scale_signal_raw_features_miss():
    """The memorised examples differ only in a dimension 10^6 times smaller than the others."""
    rng = np.random.default_rng(0)
    n = 300
    y = np.zeros(n, dtype=np.int64)
    y[rng.choice(n, 100, replace=False)] = 1
    x = rng.normal(size=(n, 1, 4)).astype(np.float32) * 1e3
    x[:, 0, 0] = (rng.normal(size=n) + 10 * y) * 1e-3
    kw = dict(hidden_size=16, dropout=0.0, learning_rate=1e-2, epochs=15, batch_size=32, split="stratified")
    scaled = train_probes(torch.as_tensor(x), y, [0, 0], [1, 2], **probing_settings(standardise=True, **kw).probe_options())
    raw = train_probes(torch.as_tensor(x), y, [0, 0], [1, 2], **probing_settings(standardise=False, **kw).probe_options())
    assert scaled["test_f1"].min() > 0.9
    assert raw["test_f1"].max() < 0.7


def constant_features(n=200, positives=30):
    """Features that say nothing: a probe can only learn the (weighted) class prior."""
    y = np.zeros(n, dtype=np.int64)
    y[:positives] = 1
    return torch.zeros(n, 1, 3), y


@pytest.mark.parametrize("weights, all_positive", [([0.1, 0.9], True), ([0.33, 0.67], False)])
def test_fixed_class_weights_set_the_prior_the_probe_learns(weights, all_positive):
    """15% positives: weighted masses 0.135 vs 0.085 (predict memorised) and 0.10 vs 0.28 (predict clean)."""
    x, y = constant_features()
    out = train_probes(x, y, [0], [1], **probing_settings(class_weights=weights, hidden_size=4, dropout=0.0,
                                                          learning_rate=5e-2, epochs=20).probe_options())
    p = 6 / 40  # the stratified test split: 6 of 40 memorised
    assert out.loc[0, "test_f1"] == pytest.approx(2 * p / (1 + p) if all_positive else 0.0)


def test_selection_starts_at_select_from_epoch():
    states, _, y = synthetic_states(n=120, layers=2, d=6)
    kw = dict(hidden_size=8, dropout=0.0, learning_rate=1e-2, epochs=6, batch_size=16)
    out = train_probes(torch.as_tensor(states), y, [0, 1, 2], [1, 1, 1],
                       **probing_settings(select_from_epoch=4, **kw).probe_options())
    assert out["best_epoch"].between(4, 6).all()
    with pytest.raises(ConfigError, match="select_from_epoch = 7 exceeds epochs = 6"):
        probing_settings(select_from_epoch=7, **kw)


@pytest.mark.parametrize("fallback, epoch", [("first", 3), ("last", 5)])
def test_a_probe_that_never_scores_keeps_the_first_candidate_or_its_last_epoch(fallback, epoch):
    x, y = constant_features()  # weighted towards clean: F1 0 at every epoch
    out = train_probes(x, y, [0], [1], **probing_settings(class_weights=[0.33, 0.67], selection_fallback=fallback,
                                                          select_from_epoch=3, epochs=5, dropout=0.0).probe_options())
    assert out.loc[0, "best_epoch"] == epoch and out.loc[0, "test_f1"] == 0.0


@pytest.mark.parametrize("position", ["input", "hidden"])
def test_dropout_position(position):
    """Input dropout leaves an all-zero input (and so the output) unchanged; hidden dropout does not."""
    stack = _ProbeStack([1, 2], d=6, h=32, n_classes=3, dropout=0.5, dropout_position=position,
                        device=torch.device("cpu"), dropout_seed=0)
    zeros, ones = torch.zeros(2, 5, 6), torch.ones(2, 5, 6)
    with torch.no_grad():
        assert torch.equal(stack(zeros, train=True), stack(zeros, train=False)) == (position == "input")
        assert not torch.equal(stack(ones, train=True), stack(ones, train=False))
    with pytest.raises(ValueError, match="dropout_position"):
        _ProbeStack([1], 2, 2, 2, 0.1, "output", torch.device("cpu"))
