"""Forgetting gradients: batched mean gradient = per-example loop, planted answers, outputs."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from memloc.io import write_parquet
from memloc.localise.gradients import (
    GradientsSettings,
    block_gradients_only,
    block_values,
    draw_clean,
    forgetting_gradients,
    forgetting_objective,
    mean_gradient,
    run_gradients,
)
from memloc.models.blocks import block_access
from memloc.tokens import TokenSet

from builders import random_tokens, tiny_classifier

VOCAB = 100
LAYERS = 3


def tokenset(n: int, seed: int = 0, n_classes: int = 3, min_len: int = 3, max_len: int = 11) -> TokenSet:
    return random_tokens(n, seed, vocab=VOCAB, lengths=(min_len, max_len), n_classes=n_classes)


def tiny(family: str, seed: int = 0, n_classes: int = 3):
    return tiny_classifier(family, seed, layers=LAYERS, vocab=VOCAB, labels=n_classes)


def loop_reference(model, data: TokenSet, loss: str) -> list[list[torch.Tensor]]:
    """Mean gradient per block by a plain per-example loop (batch of one, no padding)."""
    access = block_access(model)
    model.eval()
    total = [[torch.zeros_like(p) for p in access.block_parameters(i)] for i in range(1, LAYERS + 1)]
    for i in range(len(data)):
        batch = data.collate([i])
        labels = batch.pop("labels")
        model.zero_grad(set_to_none=True)
        forgetting_objective(model(**batch).logits, labels, loss).sum().backward()
        for l in range(LAYERS):
            for acc, p in zip(total[l], access.block_parameters(l + 1)):
                if p.grad is not None:
                    acc += p.grad
    model.zero_grad(set_to_none=True)
    return [[g / len(data) for g in block] for block in total]


def flat(grads) -> torch.Tensor:
    return torch.cat([g.flatten() for g in grads])


@pytest.mark.parametrize("family", ["bert", "gpt2"])
@pytest.mark.parametrize("loss", ["ce", "logit"])
def test_batched_mean_gradient_equals_per_example_loop(family, loss):
    model = tiny(family)
    data = tokenset(11, seed=1)
    assert len(set(data.lengths.tolist())) > 3  # batches really are padded
    batched = mean_gradient(model, data, batch_size=4, loss=loss, device=None, precision="fp32")
    reference = loop_reference(model, data, loss)
    assert len(batched) == LAYERS
    for block, (got, want) in enumerate(zip(batched, reference), start=1):
        got, want = flat(got), flat(want)
        assert want.norm() > 0, f"block {block} has no gradient"
        rel = ((got - want).norm() / want.norm()).item()
        assert rel < 1e-5, f"{family} {loss} block {block}: relative error {rel:.2e}"


def test_signed_single_pass_equals_difference_of_means():
    model = tiny("bert", seed=3)
    data = tokenset(16, seed=2)
    noisy, clean = data.subset(np.arange(0, 8)), data.subset(np.arange(8, 16))
    for norm in ("l1", "l2"):
        values = block_values(model, noisy, clean, loss="ce", norm=norm, batch_size=3, device=None, precision="fp32")
        g_noisy = mean_gradient(model, noisy, batch_size=5, loss="ce", device=None, precision="fp32")
        g_clean = mean_gradient(model, clean, batch_size=5, loss="ce", device=None, precision="fp32")
        order = 1 if norm == "l1" else 2
        want = [torch.linalg.vector_norm(flat(a) - flat(b), ord=order).item() for a, b in zip(g_noisy, g_clean)]
        np.testing.assert_allclose(values, want, rtol=1e-5)
        # without the clean set: the norm of the mean memorised gradient
        alone = block_values(model, noisy, None, loss="ce", norm=norm, batch_size=3, device=None, precision="fp32")
        np.testing.assert_allclose(alone, [torch.linalg.vector_norm(flat(a), ord=order).item() for a in g_noisy], rtol=1e-5)


def test_gradients_reach_frozen_blocks_and_flags_are_restored():
    model = tiny("bert")
    access = block_access(model)
    for p in model.parameters():  # the frozen variant: nothing but the head trains
        p.requires_grad_(False)
    for p in access.head_parameters():
        p.requires_grad_(True)
    model.train()
    values = block_values(model, tokenset(6, seed=4), None, loss="ce", norm="l1", batch_size=4, device=None, precision="fp32")
    assert (values > 0).all()
    assert model.training
    assert all(not p.requires_grad for i in range(1, LAYERS + 1) for p in access.block_parameters(i))
    assert all(p.requires_grad for p in access.head_parameters())
    assert all(p.grad is None for p in model.parameters())
    with block_gradients_only(model) as blocks:
        assert not model.training and len(blocks) == LAYERS
        assert not any(p.requires_grad for p in access.embedding_parameters())


def test_identical_memorised_and_clean_sets_give_zero():
    data = tokenset(6, seed=5)
    both = TokenSet(
        np.arange(12), data.input_ids + data.input_ids, None, np.concatenate([data.labels, data.labels]), 0
    )
    memorised = np.arange(12) < 6
    settings = GradientsSettings.with_defaults(loss="ce", divide_frozen=False, batch_size=4)
    raw, _ = forgetting_gradients(tiny("bert"), None, both, memorised, settings, None)
    assert (raw["n_clean"] == 6).all()
    alone = block_values(tiny("bert"), data, None, loss="ce", norm="l1", batch_size=32, device=None, precision="fp32")
    assert raw["value_noisy_model"].max() < 1e-6 * alone.max()


def reparametrised(model, k: int, c: float):
    """The same function, but block k's value projection scaled by c and its output by 1/c.

    Attention is linear in the values, so the output of block k (and of every block) is unchanged;
    only the gradient of block k's own parameters changes (value grad x 1/c, output x c).
    """
    out = copy.deepcopy(model)
    block = block_access(out).block(k)
    with torch.no_grad():
        block.attention.self.value.weight.mul_(c)
        block.attention.self.value.bias.mul_(c)
        block.attention.output.dense.weight.div_(c)
    return out


@pytest.mark.parametrize("k", [1, 2, 3])
def test_planted_block_ranks_top(k):
    frozen = tiny("bert", seed=7)
    noisy = reparametrised(frozen, k, c=0.05)
    data = tokenset(20, seed=6)
    memorised = np.zeros(20, dtype=bool)
    memorised[:6] = True
    x = data.collate(np.arange(20))
    x.pop("labels")
    with torch.no_grad():  # the planted pair computes the same function
        torch.testing.assert_close(noisy(**x).logits, frozen(**x).logits, rtol=1e-4, atol=1e-5)
    settings = GradientsSettings.with_defaults(batch_size=8, seed=0)
    raw, weights = forgetting_gradients(noisy, frozen, data, memorised, settings, None)
    assert np.isclose(weights.sum(), 1.0)
    assert int(np.argmax(weights)) + 1 == k
    others = np.delete(raw["ratio"].to_numpy(), k - 1)
    np.testing.assert_allclose(others, 1.0, rtol=1e-3)  # untouched blocks: same gradient as frozen
    assert raw.loc[k - 1, "ratio"] > 1.2


def test_raw_table_weights_and_clean_draw():
    model, frozen = tiny("bert", seed=1), tiny("bert", seed=2)
    data = tokenset(30, seed=8)
    memorised = np.zeros(30, dtype=bool)
    memorised[[1, 5, 9, 20]] = True
    for loss, norm in [("ce", "l1"), ("logit", "l2")]:
        settings = GradientsSettings.with_defaults(loss=loss, norm=norm, batch_size=8, seed=3)
        raw, weights = forgetting_gradients(model, frozen, data, memorised, settings, None)
        assert list(raw.columns) == [
            "layer", "value_noisy_model", "value_frozen_model", "ratio", "weight", "n_memorised", "n_clean"
        ]
        assert raw["layer"].tolist() == [1, 2, 3]
        assert np.isclose(weights.sum(), 1.0) and (weights >= 0).all()
        np.testing.assert_allclose(raw["weight"], weights)
        np.testing.assert_allclose(raw["ratio"], raw["value_noisy_model"] / raw["value_frozen_model"])
        assert (raw["n_memorised"] == 4).all() and (raw["n_clean"] == 4).all()
    drawn = draw_clean(~memorised, 4, seed=3)
    assert len(drawn) == 4 and not memorised[drawn].any()
    np.testing.assert_array_equal(drawn, draw_clean(~memorised, 4, seed=3))
    assert not np.array_equal(drawn, draw_clean(~memorised, 4, seed=4))


def test_run_gradients_writes_tables(tmp_path):
    rng = np.random.default_rng(0)
    n = 24
    label_orig = rng.integers(0, 2, size=n)
    is_noisy = np.zeros(n, dtype=bool)
    is_noisy[:4] = True
    examples = pd.DataFrame(
        {
            "example_id": np.arange(100, 100 + n),
            "split": ["train"] * 20 + ["validation"] * 2 + ["test"] * 2,
            "text_a": ["x"] * n,
            "text_b": [None] * n,
            "label_orig": label_orig,
            "label": np.where(is_noisy, 1 - label_orig, label_orig),
            "is_noisy": is_noisy,
        }
    )
    ids = [rng.integers(5, VOCAB, size=int(rng.integers(3, 9))).astype(np.int32) for _ in range(n)]
    tokens = pd.DataFrame(
        {"example_id": examples["example_id"], "input_ids": ids, "length": [len(x) for x in ids], "truncated": False}
    )
    write_parquet(examples, tmp_path / "examples.parquet")
    write_parquet(tokens, tmp_path / "tokens.parquet", metadata={"pad_token_id": 0})
    tiny("bert", seed=1, n_classes=2).save_pretrained(tmp_path / "memorised")
    tiny("bert", seed=2, n_classes=2).save_pretrained(tmp_path / "frozen")
    settings = {"loss": "ce", "norm": "l1", "subtract_clean": True, "divide_frozen": True, "batch_size": 8,
                "seed": 1, "device": "cpu", "precision": "fp32", "deterministic": False, "max_window": None,
                "eval_batch_size": 16, "auto_precision_min_speedup": 1.2}
    run_gradients(tmp_path / "examples.parquet", tmp_path / "tokens.parquet", tmp_path / "memorised",
                  tmp_path / "frozen", settings, tmp_path / "raw.parquet", tmp_path / "weights.parquet")
    raw = pd.read_parquet(tmp_path / "raw.parquet")
    weights = pd.read_parquet(tmp_path / "weights.parquet")
    assert raw["n_memorised"].iloc[0] == 4 and raw["n_clean"].iloc[0] == 4
    assert weights["layer"].tolist() == [1, 2, 3]
    assert np.isclose(weights["weight"].sum(), 1.0)
    # an explicit memorised set (example ids) replaces the noisy examples
    run_gradients(tmp_path / "examples.parquet", tmp_path / "tokens.parquet", tmp_path / "memorised",
                  tmp_path / "frozen", settings, tmp_path / "raw2.parquet", tmp_path / "weights2.parquet",
                  memorised=[110, 111])
    assert pd.read_parquet(tmp_path / "raw2.parquet")["n_memorised"].iloc[0] == 2
