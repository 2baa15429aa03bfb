"""Fine-tuning loop: learning, frozen parameters, resume after a kill, determinism, outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from memloc.config import block_defaults
from memloc.errors import ConfigError
from memloc.models.blocks import block_access
from memloc.tokens import TokenSet
from memloc.training.batching import train_batches
from memloc.training.finetune import trainable_parameters
from memloc.training.loop import Classifier, Settings, fit
from memloc.training.metrics import macro_f1

from builders import assert_resume_equals_uninterrupted, killed_at, learnable_tokens, tiny_classifier
from builders import snapshot as state

VOCAB = 200
CPU = torch.device("cpu")


def toy_tokenset(n=96, seed=0, n_classes=2) -> TokenSet:
    """Sequences whose label is the class of their second token: learnable by a tiny model."""
    return learnable_tokens(n, seed, vocab=VOCAB, lengths=(4, 11), n_classes=n_classes)


def tiny_model(model_type="bert", seed=0):
    return tiny_classifier(model_type, seed, layers=2, vocab=VOCAB, hidden=32)


settings = Settings.with_defaults
SETTINGS = settings(epochs=6, learning_rate=3e-3, batch_size=8, eval_batch_size=32, warmup_ratio=0.1)


def test_loss_falls_and_train_f1_rises():
    data = toy_tokenset()
    torch.manual_seed(0)
    model = tiny_model()
    res = fit(model, trainable_parameters(model, "noisy", True), data, SETTINGS, seed=1, device=CPU, n_classes=2)
    train = res.trace[res.trace.split == "train"].sort_values("epoch")
    assert train["loss"].iloc[-1] < train["loss"].iloc[0] * 0.7
    assert train["macro_f1"].iloc[-1] > 0.9
    assert res.trace["memorised_epoch"].sum() == 1


@pytest.mark.parametrize("variant", ["noisy", "frozen"])
def test_frozen_parameters_unchanged_bit_for_bit(variant):
    data = toy_tokenset()
    model = tiny_model("gpt2")
    before = state(model)
    fit(model, trainable_parameters(model, variant, True), data, settings(epochs=1, batch_size=8), 1, CPU, 2)
    access = block_access(model)
    names = {id(p): n for n, p in model.named_parameters()}
    emb = {names[id(p)] for p in access.embedding_parameters()}
    blocks = {names[id(p)] for i in range(1, access.num_layers + 1) for p in access.block_parameters(i)}
    head = {names[id(p)] for p in access.head_parameters()}
    after = model.state_dict()
    for n in emb:
        assert torch.equal(before[n], after[n]), f"embedding parameter {n} changed"
    if variant == "frozen":
        for n in blocks:
            assert torch.equal(before[n], after[n]), f"block parameter {n} changed in the frozen variant"
    else:
        assert any(not torch.equal(before[n], after[n]) for n in blocks)
    assert any(not torch.equal(before[n], after[n]) for n in head)


@pytest.mark.parametrize("trace", [True, False])  # untraced: subset models skip the per-epoch evaluation
def test_resume_after_kill_equals_uninterrupted(tmp_path, trace):
    data = toy_tokenset()
    opts = settings(epochs=4, learning_rate=3e-3, batch_size=8)

    def run(work_dir, kill_at):
        torch.manual_seed(5)
        model = tiny_model(seed=3)
        order = killed_at(lambda seed, epoch: train_batches(data.lengths, opts.batch_size, seed, epoch, True), kill_at)
        res = fit(model, trainable_parameters(model, "noisy", True), data, opts, 7, CPU, 2, work_dir=work_dir, batch_fn=order,
                  trace=trace)
        return Classifier(model).snapshot(), res

    columns = ["epoch", "split", "loss", "accuracy", "macro_f1"] if trace else []
    assert_resume_equals_uninterrupted(run, tmp_path / "work", columns)


def test_untraced_fit_trains_the_traced_weights_bit_for_bit():
    """Subset models skip the per-epoch evaluation; their weights must not change by it."""
    data = toy_tokenset()

    def run(trace):
        torch.manual_seed(0)
        model = tiny_model()
        opts = settings(epochs=3, batch_size=8)
        res = fit(model, trainable_parameters(model, "noisy", True), data, opts, 1, CPU, 2, trace=trace)
        return state(model), res

    (traced, with_trace), (untraced, without) = run(True), run(False)
    assert all(torch.equal(traced[k], untraced[k]) for k in traced)
    assert len(with_trace.trace) and without.trace.empty and without.epochs_trained == 3


def test_same_seed_same_weights_different_seed_differs():
    data = toy_tokenset()

    def run(seed):
        torch.manual_seed(0)
        model = tiny_model()
        fit(model, trainable_parameters(model, "noisy", True), data, settings(epochs=1, batch_size=8), seed, CPU, 2)
        return state(model)

    a, b, c = run(1), run(1), run(2)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_length_buckets_cover_every_example_once_per_epoch():
    lengths = np.random.default_rng(0).integers(3, 60, size=203)
    for bucket in (True, False):
        batches = train_batches(lengths, 16, seed=1, epoch=2, bucket=bucket)
        flat = np.concatenate(batches)
        assert sorted(flat.tolist()) == list(range(203))
    bucketed = train_batches(lengths, 16, 1, 2, True)
    plain = train_batches(lengths, 16, 1, 2, False)

    def pad(bs):
        return sum(lengths[b].max() * len(b) - lengths[b].sum() for b in bs)

    assert pad(bucketed) < pad(plain) / 2


def test_macro_f1_hand_computed():
    y = np.array([0, 0, 1, 1, 2])
    p = np.array([0, 1, 1, 1, 0])
    # class 0: tp1 fp1 fn1 -> 0.5; class 1: tp2 fp1 fn0 -> 0.8; class 2: tp0 fn1 -> 0
    assert macro_f1(y, p) == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_settings_have_no_defaults_of_their_own():
    """Settings come from a validated config; a block that lacks a key names it instead of guessing."""
    full = {**block_defaults("training"), "epochs": 3}
    assert Settings.from_dict(full).epochs == 3
    full.pop("memorised_f1")
    with pytest.raises(ConfigError, match="memorised_f1"):
        Settings.from_dict(full)


def test_fit_returns_the_final_and_memorised_logits_bit_for_bit():
    """The predictions tables reuse the trace's evaluation logits: they must be what a fresh pass gives."""
    from memloc.training.evaluation import predict_logits

    data, val = toy_tokenset(), toy_tokenset(n=40, seed=9)
    torch.manual_seed(0)
    model = tiny_model()
    opts = settings(epochs=6, learning_rate=3e-3, batch_size=8, eval_batch_size=16, memorised_f1=0.8)
    res = fit(model, trainable_parameters(model, "noisy", True), data, opts, 1, CPU, 2, eval_sets={"validation": val})
    assert res.memorised_reached and res.memorised_epoch < opts.epochs
    for logits, weights in ((res.final_logits, None), (res.memorised_logits, res.memorised_state)):
        if weights is not None:
            model.load_state_dict(weights)
        assert set(logits) == {"train", "validation"}
        for split, ts in (("train", data), ("validation", val)):
            assert np.array_equal(logits[split], predict_logits(model, ts, opts.eval_batch_size, CPU))


def test_predictions_table_uses_known_logits_and_computes_the_rest():
    from memloc.training.finetune import predictions_table

    data, val = toy_tokenset(n=8), toy_tokenset(n=6, seed=9)
    planted = np.tile(np.array([[0.0, 5.0]], dtype=np.float32), (len(data), 1))
    noisy = {"train": np.zeros(len(data), bool), "validation": np.zeros(len(val), bool)}
    table = predictions_table(tiny_model(), {"train": data, "validation": val}, SETTINGS, CPU, "final", noisy, {"train": planted})
    train = table[table.split == "train"]
    assert (train["pred"] == 1).all()
    assert np.allclose(train["p_label"], np.where(data.labels == 1, 1, 0) + np.where(data.labels == 1, -1, 1) / (1 + np.exp(5.0)))
    assert len(table[table.split == "validation"]) == len(val)


def test_final_logits_after_an_early_stop_are_those_of_the_final_weights():
    """Under `stopping: memorised` training ends before `epochs`: the reused logits must still be
    the last trained epoch's (and the memorised checkpoint's), not an earlier epoch's."""
    from memloc.training.evaluation import predict_logits
    from memloc.training.stopping import stop_rule

    data, val = toy_tokenset(), toy_tokenset(n=40, seed=9)
    torch.manual_seed(0)
    model = tiny_model()
    opts = settings(epochs=6, learning_rate=3e-3, batch_size=8, eval_batch_size=16, memorised_f1=0.3,
                    stopping="memorised", memorised_accuracy=0.01, extra_epochs=2)
    noisy = np.zeros(len(data), dtype=bool)
    noisy[:5] = True
    res = fit(model, trainable_parameters(model, "noisy", True), data, opts, 1, CPU, 2, eval_sets={"validation": val},
              train_groups={"train_noisy": noisy, "train_clean": ~noisy}, stop=stop_rule("noisy", opts, None))
    assert res.epochs_trained == 3 < opts.epochs  # threshold at epoch 1, two extra epochs
    for split, ts in (("train", data), ("validation", val)):
        assert np.array_equal(res.final_logits[split], predict_logits(model, ts, opts.eval_batch_size, CPU))
    assert res.memorised_reached and res.memorised_epoch < res.epochs_trained
    model.load_state_dict(res.memorised_state)
    assert np.array_equal(res.memorised_logits["train"], predict_logits(model, data, opts.eval_batch_size, CPU))
