"""The optimiser recipe's published-code options: lr schedule, weight-decay scope, clip scope."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import memloc.training.optim as recipe
from memloc import config as mconf
from memloc.config import block_defaults
from memloc.errors import ConfigError
from memloc.models.blocks import block_access
from memloc.training.loop import Classifier, Settings, classifier_task, train_loop
from memloc.training.optim import make_task_optim, schedule_factor

from builders import learnable_tokens, snapshot, tiny_classifier

CPU = torch.device("cpu")
VOCAB = 50
settings = Settings.with_defaults


# --------------------------------------------------------------------------- schedule


@pytest.mark.parametrize(
    "kind, ratio, total, expected",
    [
        # W = ceil(2.0) = 2: the first step already has lr / 2.
        ("linear", 0.1, 20, [1 / 2, 1.0, 1.0, 17 / 18, 16 / 18]),
        # W = floor(2.0) = 2: the first step has lr 0 (transformers).
        ("hf_linear", 0.1, 20, [0.0, 1 / 2, 1.0, 17 / 18, 16 / 18]),
        # 0.1 * 25 = 2.5: ceil gives W = 3, int() gives W = 2.
        ("linear", 0.1, 25, [1 / 3, 2 / 3, 1.0, 1.0, 21 / 22]),
        ("hf_linear", 0.1, 25, [0.0, 1 / 2, 1.0, 22 / 23, 21 / 23]),
        # No warm-up: both start at the full rate.
        ("linear", 0.0, 5, [1.0, 4 / 5, 3 / 5]),
        ("hf_linear", 0.0, 5, [1.0, 4 / 5, 3 / 5]),
    ],
)
def test_schedule_factors_hand_computed(kind, ratio, total, expected):
    factor = schedule_factor(kind, ratio, total)
    assert [factor(s) for s in range(len(expected))] == pytest.approx(expected, abs=1e-12)
    assert factor(total) == 0.0


@pytest.mark.parametrize("total", [1, 7, 20, 25, 95])
def test_hf_linear_is_transformers_linear_schedule(total):
    """The learning rate of every step equals transformers.get_scheduler("linear", int(0.1 * S))'s."""
    transformers = pytest.importorskip("transformers")
    opts = settings(lr_schedule="hf_linear", warmup_ratio=0.1)
    p = torch.nn.Parameter(torch.zeros(2, 2))
    ours = make_task_optim([p], [p], 1e-3, opts, total, CPU)
    q = torch.nn.Parameter(torch.zeros(2, 2))
    ref_opt = torch.optim.AdamW([q], lr=1e-3)
    ref = transformers.get_scheduler("linear", optimizer=ref_opt, num_warmup_steps=int(0.1 * total), num_training_steps=total)
    for _ in range(total):
        assert ours.optimizer.param_groups[0]["lr"] == pytest.approx(ref_opt.param_groups[0]["lr"], rel=1e-12, abs=1e-15)
        ours.optimizer.step()  # no gradients: a no-op that keeps torch's step-order check quiet
        ref_opt.step()
        ours.scheduler.step()
        ref.step()


# --------------------------------------------------------------------------- weight decay


@pytest.mark.parametrize("scope, bias_decays", [("matrices", False), ("all", True)])
def test_weight_decay_scope(scope, bias_decays):
    """A zero-gradient AdamW step moves a parameter only by decay: w * (1 - lr * wd)."""
    lr, wd = 0.1, 0.5
    opts = settings(weight_decay=wd, weight_decay_scope=scope, warmup_ratio=0.0)
    matrix = torch.nn.Parameter(torch.full((2, 3), 2.0))
    bias = torch.nn.Parameter(torch.full((3,), 2.0))
    optim = make_task_optim([matrix, bias], [matrix, bias], lr, opts, 10, CPU)
    optim.step((matrix.sum() + bias.sum()) * 0.0)
    torch.testing.assert_close(matrix.detach(), torch.full((2, 3), 2.0 * (1 - lr * wd)))
    torch.testing.assert_close(bias.detach(), torch.full((3,), 2.0 * (1 - lr * wd) if bias_decays else 2.0))


# --------------------------------------------------------------------------- clip scope


def _model():
    """Tiny BERT without dropout, so a reference forward reproduces the loop's."""
    return tiny_classifier(
        "bert", 3, layers=2, vocab=VOCAB, hidden=16, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )


def _trainable(access):
    """A control-like split: block 2 and the head train; embeddings and block 1 are frozen."""
    return access.block_parameters(2) + access.head_parameters()


def _planted_gradients(model, data, idx):
    """Every parameter's gradient of the batch loss (all of them requiring grad), computed apart."""
    ref = copy.deepcopy(model)
    ref.train()
    for p in ref.parameters():
        p.requires_grad_(True)
    batch = data.collate(idx)
    logits = ref(**{k: v for k, v in batch.items() if k != "labels"}).logits
    torch.nn.functional.cross_entropy(logits.float(), batch["labels"]).backward()
    return {n: p.grad.clone() for n, p in ref.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("scope", ["trainable", "all"])
def test_clip_scope_norm_counts_frozen_gradients_only_with_all(scope, monkeypatch):
    """Planted: the clipped norm is over the trainable gradients or over every gradient; the trainable
    gradients are scaled by max_norm / norm; frozen parameters never change."""
    data = learnable_tokens(16, 0, vocab=VOCAB, lengths=(4, 8))
    model = _model()
    access = block_access(model)
    names = {id(p): n for n, p in model.named_parameters()}
    trainable = _trainable(access)
    trainable_names = {names[id(p)] for p in trainable}
    idx = np.arange(8)
    grads = _planted_gradients(model, data, idx)
    norm_all = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads.values()]))
    norm_trainable = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(grads[n]) for n in trainable_names]))
    assert norm_all > norm_trainable * 1.01  # the frozen gradients matter
    expected_norm = norm_all if scope == "all" else norm_trainable
    max_norm = float(norm_trainable) / 10  # clipping is active either way

    seen = {}
    original = torch.nn.utils.clip_grad_norm_

    def recording_clip(params, max_norm, *args, **kwargs):
        params = list(params)
        total = original(params, max_norm, *args, **kwargs)
        seen["norm"] = float(total)
        seen["clipped"] = {names[id(p)]: p.grad.clone() for p in params if p.grad is not None and names[id(p)] in trainable_names}
        seen["with_grad"] = {names[id(p)] for p in params if p.grad is not None}
        return total

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recording_clip)
    before = snapshot(model)
    opts = settings(epochs=1, learning_rate=1e-3, max_grad_norm=max_norm, clip_scope=scope, warmup_ratio=0.0)
    task = classifier_task(model, data, trainable, 1e-3, CPU)
    train_loop(Classifier(model), {"main": task}, lambda epoch: [("main", idx)], opts, CPU)

    assert seen["norm"] == pytest.approx(float(expected_norm), rel=1e-5)
    factor = max_norm / (float(expected_norm) + 1e-6)
    for n in trainable_names:
        torch.testing.assert_close(seen["clipped"][n], grads[n] * factor, rtol=1e-4, atol=1e-9)
    frozen_names = set(grads) - trainable_names
    assert (seen["with_grad"] >= frozen_names) == (scope == "all")
    after = model.state_dict()
    for n in frozen_names:
        assert torch.equal(before[n], after[n]), f"frozen {n} changed"
    assert all(not torch.equal(before[n], after[n]) for n in trainable_names if n.endswith("weight"))
    assert not any(p.requires_grad or p.grad is not None for p in model.parameters())


def test_clip_scope_all_keeps_the_optimiser_to_the_trained_parameters():
    model = _model()
    access = block_access(model)
    trainable = _trainable(access)
    opts = settings(clip_scope="all")
    optim = make_task_optim(trainable, list(model.parameters()), 1e-3, opts, 4, CPU)
    held = [p for g in optim.optimizer.param_groups for p in g["params"]]
    assert {id(p) for p in held} == {id(p) for p in trainable}
    for p in model.parameters():
        p.requires_grad_(True)
    batch = learnable_tokens(8, 0, vocab=VOCAB, lengths=(4, 8)).collate(np.arange(8))
    model.train()
    loss = torch.nn.functional.cross_entropy(model(**{k: v for k, v in batch.items() if k != "labels"}).logits, batch["labels"])
    optim.step(loss)
    assert all(p.grad is None for p in model.parameters())  # every gradient cleared, frozen ones too
    assert set(optim.optimizer.state) == {p for p in trainable if p in optim.optimizer.state}
    assert not any(p in optim.optimizer.state for p in access.embedding_parameters() + access.block_parameters(1))


def test_schema_defaults_keep_memlocs_recipe():
    """The published code's options are opt-in (config/paper.yaml); the defaults are memloc's recipe."""
    keys = ("lr_schedule", "weight_decay_scope", "clip_scope")
    training = block_defaults("training")
    assert [training[k] for k in keys] == ["linear", "matrices", "trainable"]
    retraining = block_defaults("localisation")["retraining"]
    assert [retraining[k] for k in keys] == ["linear", "matrices", "trainable"]
    assert retraining["freeze_pooler"] is False and retraining["cache_prefix"] is True
    assert block_defaults("counterfactual")["stratify"] is True


def test_recipe_options_override_per_model():
    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
    model = raw["run"]["models"][0]
    recipe = {"weight_decay_scope": "all", "clip_scope": "all", "lr_schedule": "hf_linear"}
    raw["models"][model]["training"] = {**raw["models"][model].get("training", {}), **recipe}
    cfg = mconf.validate(raw, source="config.yaml")
    effective = mconf.model_spec(cfg, model)["training"]
    assert {k: effective[k] for k in recipe} == recipe
    assert Settings.from_dict(effective).clip_scope == "all"
    raw["models"][model]["training"]["clip_scope"] = "frozen"
    with pytest.raises(ConfigError, match="clip_scope"):
        mconf.validate(raw, source="config.yaml")


def test_a_data_set_overrides_training_for_every_model_over_the_models_own():
    """A task that memorises slowly gets its own epoch cap; other tasks keep the model's settings."""
    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
    model, dataset = raw["run"]["models"][0], raw["run"]["datasets"][0]
    raw["models"][model]["training"] = {**raw["models"][model].get("training", {}), "epochs": 7, "learning_rate": 5e-5}
    raw["datasets"]["other"] = copy.deepcopy(raw["datasets"][dataset])
    raw["datasets"][dataset]["training"] = {"epochs": 20}
    cfg = mconf.validate(copy.deepcopy(raw), source="config.yaml")
    slow = mconf.model_spec(cfg, model, dataset)["training"]
    assert (slow["epochs"], slow["learning_rate"]) == (20, 5e-5)
    assert mconf.model_spec(cfg, model, "other")["training"]["epochs"] == 7
    assert mconf.model_spec(cfg, model)["training"]["epochs"] == 7
    raw["datasets"][dataset]["training"] = {"epoch": 20}
    with pytest.raises(ConfigError, match=f"datasets.{dataset}.training"):
        mconf.validate(raw, source="config.yaml")


def test_clip_scope_all_refuses_the_fp16_grad_scaler(monkeypatch):
    """The scaler would unscale and overflow-check only the trained parameters' gradients."""
    monkeypatch.setattr(recipe, "needs_grad_scaler", lambda device, precision: True)
    model = _model()
    trainable = _trainable(block_access(model))
    with pytest.raises(ConfigError, match="clip_scope: all .*fp16.*training.precision"):
        make_task_optim(trainable, list(model.parameters()), 1e-3, settings(clip_scope="all", precision="fp16"), 4, CPU)
