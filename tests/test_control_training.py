"""Control models: the main task changes only blocks i, j and its head; the auxiliary task every
block and its own head; blocks are shared; resume; the job writes finetune's outputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from memloc.control.multitask import (
    AUX,
    AUX_HEAD_FILE,
    MAIN,
    ControlModel,
    ControlSettings,
    control_batches,
    fit_control,
    load_aux_head,
    run_control,
)
from memloc.io import read_metadata, write_parquet
from memloc.models.blocks import block_access
from memloc.models.loading import load_classifier
from memloc.tokens import TokenSet
from memloc.training.loop import Settings, classifier_task, train_loop

from builders import assert_resume_equals_uninterrupted, killed_at, learnable_tokens, snapshot, tiny_classifier

VOCAB = 200
CPU = torch.device("cpu")
PAIR = (2, 3)


def toy_tokenset(n=48, seed=0, n_classes=2, offset=0) -> TokenSet:
    """Label = class of the second token (as in test_training.py)."""
    return learnable_tokens(n, seed, vocab=VOCAB, lengths=(4, 9), n_classes=n_classes, offset=offset)


def tiny(num_labels, seed=0, family="bert"):
    return tiny_classifier(family, seed, layers=4, vocab=VOCAB, hidden=32, labels=num_labels)


def control_model(pair=PAIR, family="bert", share_pooler_and_norm=False):
    # Both classifiers come from the same "pretrained" body (seed 0), heads differ in size.
    return ControlModel(tiny(2, family=family), tiny(3, family=family), pair, share_pooler_and_norm)


def names_of(model, params):
    ids = {id(p) for p in params}
    return {n for n, p in model.named_parameters() if id(p) in ids}


settings = Settings.with_defaults
control_settings = ControlSettings.with_defaults
SETTINGS = settings(epochs=3, learning_rate=1e-3, batch_size=8, eval_batch_size=32, weight_decay=0.01)


# The published code's optimiser recipe (docs/protocol.md §4.5): every option that differs from memloc's.
PUBLISHED_RECIPE = dict(weight_decay_scope="all", clip_scope="all", lr_schedule="hf_linear")
RECIPES = pytest.mark.parametrize("recipe", [{}, PUBLISHED_RECIPE], ids=["memloc", "published"])


def one_step(cm, task, data, lr=1e-3, **recipe):
    """One optimiser step of ``task`` on the first 8 examples, through the training loop."""
    tasks = {task: classifier_task(cm.model_of(task), data, cm.parameters_of(task), lr, CPU)}
    res = train_loop(cm, tasks, lambda epoch: [(task, np.arange(8))], settings(epochs=1, weight_decay=0.01, **recipe), CPU)
    return res.epoch_losses[0][0]


def test_blocks_are_shared_and_embeddings_identical():
    cm = control_model()
    main, aux = block_access(cm.main), block_access(cm.aux)
    assert aux.blocks is main.blocks
    assert all(a is b for a, b in zip(aux.blocks, main.blocks))
    assert {id(p) for p in aux.blocks.parameters()} == {id(p) for p in main.blocks.parameters()}
    for a, b in zip(main.embedding_parameters(), aux.embedding_parameters()):
        assert a is not b and torch.equal(a, b)
    assert not {id(p) for p in main.head_parameters()} & {id(p) for p in aux.head_parameters()}
    # a change to a main block is seen by the auxiliary forward
    batch = toy_tokenset().collate(np.arange(4))
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    cm.main.eval(), cm.aux.eval()
    before = cm.aux(**inputs).logits.detach().clone()
    with torch.no_grad():
        main.block(4).output.dense.weight.add_(0.5)
    assert not torch.equal(before, cm.aux(**inputs).logits)


@RECIPES
@pytest.mark.parametrize("family", ["bert", "gpt2", "llama"])
def test_main_step_changes_only_blocks_i_j_and_main_head(family, recipe):
    cm = control_model(family=family)
    access = block_access(cm.main)
    before_main, before_aux = snapshot(cm.main), snapshot(cm.aux)
    one_step(cm, MAIN, toy_tokenset(), **recipe)
    after_main, after_aux = cm.main.state_dict(), cm.aux.state_dict()
    for b in range(1, 5):
        names = names_of(cm.main, access.block_parameters(b))
        changed = [n for n in names if not torch.equal(before_main[n], after_main[n])]
        if b in PAIR:
            assert len(changed) >= len(names) // 2, f"block {b}: only {changed} changed"
        else:
            assert not changed, f"block {b} changed in a main-task step: {changed}"
    for n in names_of(cm.main, access.embedding_parameters()):
        assert torch.equal(before_main[n], after_main[n])
    head = names_of(cm.main, access.head_parameters())
    assert any(not torch.equal(before_main[n], after_main[n]) for n in head)
    for n in names_of(cm.aux, block_access(cm.aux).head_parameters()):
        assert torch.equal(before_aux[n], after_aux[n]), f"auxiliary head {n} changed in a main step"


@RECIPES
@pytest.mark.parametrize("family", ["bert", "gpt2", "llama"])
def test_aux_step_changes_every_block_and_aux_head_not_main_head(family, recipe):
    cm = control_model(family=family)
    main, aux = block_access(cm.main), block_access(cm.aux)
    before_main, before_aux = snapshot(cm.main), snapshot(cm.aux)
    one_step(cm, AUX, toy_tokenset(n_classes=3), **recipe)
    after_main, after_aux = cm.main.state_dict(), cm.aux.state_dict()
    for b in range(1, 5):
        names = names_of(cm.main, main.block_parameters(b))
        assert any(not torch.equal(before_main[n], after_main[n]) for n in names), f"block {b} unchanged"
    for n in names_of(cm.main, main.head_parameters()):
        assert torch.equal(before_main[n], after_main[n]), f"main head {n} changed in an auxiliary step"
    for n in names_of(cm.main, main.embedding_parameters()):
        assert torch.equal(before_main[n], after_main[n])
    aux_head = names_of(cm.aux, aux.head_parameters())
    assert any(not torch.equal(before_aux[n], after_aux[n]) for n in aux_head)


@pytest.mark.parametrize("task", [MAIN, AUX])
def test_clip_scope_all_clips_over_every_gradient_of_the_step(task, monkeypatch):
    """As the published control (one model, one clip over all its parameters per step): a step's
    norm counts the frozen embeddings and blocks of its own forward; the other task's head has none."""
    cm = control_model()
    clipped: list[set[int]] = []
    original = torch.nn.utils.clip_grad_norm_

    def recording_clip(params, *args, **kwargs):
        params = list(params)
        assert len({id(p) for p in params}) == len(params)  # shared blocks counted once
        clipped.append({id(p) for p in params if p.grad is not None})
        return original(params, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recording_clip)
    data = toy_tokenset(n_classes=2 if task == MAIN else 3)
    one_step(cm, task, data, **PUBLISHED_RECIPE)
    own, other = (cm.main, cm.aux) if task == MAIN else (cm.aux, cm.main)
    own_access, other_access = block_access(own), block_access(other)
    expected = {id(p) for p in own.parameters()}
    assert clipped == [expected]
    assert not expected & {id(p) for p in other_access.head_parameters() + other_access.embedding_parameters()}
    assert {id(p) for p in own_access.embedding_parameters()} <= clipped[0]


@pytest.mark.parametrize("family, shared", [("bert", {"pooler"}), ("gpt2", {"ln_f"}), ("llama", {"norm"})])
def test_share_pooler_and_norm_leaves_only_the_classification_layers_apart(family, shared):
    """The published control is one model with two classification layers: with the option, BERT's
    pooler / a decoder's final norm is one module, trained by both tasks; the classifiers stay apart."""
    cm = control_model(family=family, share_pooler_and_norm=True)
    main, aux = block_access(cm.main), block_access(cm.aux)
    for path in shared:
        assert cm.aux.base_model.get_submodule(path) is cm.main.base_model.get_submodule(path)
    common = {id(p) for p in main.head_parameters()} & {id(p) for p in aux.head_parameters()}
    body = {id(p) for path in shared for p in cm.main.base_model.get_submodule(path).parameters()}
    assert common == body
    names = names_of(cm.main, [p for p in main.head_parameters() if id(p) in body])
    aux_classifier = {n: p for n, p in cm.aux.named_parameters() if id(p) in common ^ {id(q) for q in aux.head_parameters()}}
    assert aux_classifier
    for task, data in ((MAIN, toy_tokenset()), (AUX, toy_tokenset(n_classes=3))):
        before = snapshot(cm.main)
        classifier_before = {n: p.detach().clone() for n, p in aux_classifier.items()}
        one_step(cm, task, data)
        after = cm.main.state_dict()
        assert all(not torch.equal(before[n], after[n]) for n in names if n.endswith("weight")), f"{task} step"
        moved = [n for n, p in aux_classifier.items() if not torch.equal(classifier_before[n], p)]
        assert bool(moved) == (task == AUX)  # the auxiliary classification layer trains in auxiliary steps only
    separate = control_model(family=family)
    assert not {id(p) for p in block_access(separate.main).head_parameters()} & {
        id(p) for p in block_access(separate.aux).head_parameters()
    }


def test_control_batches_cover_both_tasks_once_and_are_seeded():
    main, aux = toy_tokenset(50), toy_tokenset(30, seed=1)
    b1 = control_batches(main.lengths, aux.lengths, 8, seed=3, epoch=1)
    again = control_batches(main.lengths, aux.lengths, 8, seed=3, epoch=1)
    assert len(again) == len(b1) and all(t == u and np.array_equal(x, y) for (t, x), (u, y) in zip(b1, again))
    for task, n in ((MAIN, 50), (AUX, 30)):
        idx = np.concatenate([i for t, i in b1 if t == task])
        assert sorted(idx.tolist()) == list(range(n))
    tasks = [t for t, _ in b1]
    assert tasks != sorted(tasks) and tasks != sorted(tasks, reverse=True)  # interleaved
    b2 = control_batches(main.lengths, aux.lengths, 8, seed=3, epoch=2)
    assert [t for t, _ in b2] != tasks or any(not np.array_equal(x, y) for (_, x), (_, y) in zip(b1, b2))


def test_resume_after_kill_equals_uninterrupted(tmp_path):
    main_data, aux_data = toy_tokenset(32), toy_tokenset(24, seed=1, n_classes=3)
    control = control_settings(auxiliary_learning_rate=5e-4)

    def run(work_dir, kill_at):
        torch.manual_seed(5)
        cm = control_model()
        order = killed_at(lambda seed, epoch: control_batches(main_data.lengths, aux_data.lengths, 8, seed, epoch), kill_at)
        res = fit_control(cm, main_data, aux_data, SETTINGS, control, 7, CPU, 2, 3,
                          aux_eval_sets={"aux_validation": aux_data}, work_dir=work_dir, batch_fn=order)
        return cm.snapshot(), res

    res = assert_resume_equals_uninterrupted(run, tmp_path / "work", ["epoch", "split", "task", "loss", "accuracy", "macro_f1"])
    assert {"train", "aux_train", "aux_validation"} <= set(res.trace.split)


def write_toy_inputs(tmp_path):
    """examples + tokens parquet for a main and an auxiliary data set, and a pretrained dir."""
    pretrained = tmp_path / "pretrained"
    tiny(2).base_model.save_pretrained(pretrained)  # like `materialise`: the body, no head
    paths = {}
    for name, n, k, seed in (("main", 40, 2, 0), ("aux", 30, 3, 1)):
        ts = toy_tokenset(n, seed=seed, n_classes=k)
        split = np.array(["train"] * (n - 10) + ["validation"] * 5 + ["test"] * 5)
        label = ts.labels.copy()
        noisy = np.zeros(n, dtype=bool)
        if name == "main":
            noisy[:4] = True
            label[:4] = 1 - label[:4]
        ex = pd.DataFrame({"example_id": ts.example_ids, "split": split, "text_a": "x", "text_b": None,
                           "label_orig": ts.labels, "label": label, "is_noisy": noisy})
        tok = pd.DataFrame({"example_id": ts.example_ids, "input_ids": ts.input_ids,
                            "length": [len(x) for x in ts.input_ids], "truncated": False})
        write_parquet(ex, tmp_path / f"{name}.parquet")
        write_parquet(tok, tmp_path / f"{name}.tokens.parquet", metadata={"pad_token_id": 0})
        paths[name] = (str(tmp_path / f"{name}.parquet"), str(tmp_path / f"{name}.tokens.parquet"))
    return pretrained, paths


@pytest.mark.parametrize("share", [False, True], ids=["own_pooler", "shared_pooler"])
def test_run_control_writes_finetune_outputs(tmp_path, monkeypatch, share):
    import memloc.precision as mprec

    # precision: auto, its probe planted at 2x: the job trains in bf16 and records the choice.
    monkeypatch.setattr(mprec, "measure_bf16_speedup", lambda device, shape: (2.0, 1.0, 3))
    pretrained, paths = write_toy_inputs(tmp_path)
    out = tmp_path / "models" / "toy" / "tiny" / "control-2-3" / "seed1"
    settings_ = settings(epochs=2, learning_rate=1e-3, batch_size=8, eval_batch_size=32, device="cpu", precision="auto")
    control = control_settings(auxiliary_learning_rate=5e-4, auxiliary_max_train_examples=12, share_pooler_and_norm=share)
    res = run_control(*paths["main"], *paths["aux"], str(pretrained), "control-2-3", 1, settings_, control,
                      str(out), str(tmp_path / "work"))
    assert not (tmp_path / "work").exists()
    for ckpt in ("final", "memorised"):
        model = load_classifier(out / ckpt)
        assert model.config.num_labels == 2
        info = json.loads((out / ckpt / "memloc.json").read_text())
        assert info["control_pair"] == [2, 3] and info["checkpoint"] == ckpt and info["auxiliary_num_labels"] == 3
        assert (info["precision"]["requested"], info["precision"]["resolved"]) == ("auto", "bf16")
        head = load_aux_head(out / ckpt)
        assert any(k.endswith("classifier.weight") and v.shape[0] == 3 for k, v in head.items())
        if share:  # the saved auxiliary head holds the shared pooler, equal to the main model's
            assert torch.equal(head["bert.pooler.dense.weight"], model.bert.pooler.dense.weight)
        assert (out / ckpt / AUX_HEAD_FILE).is_file()
        # the embeddings stay the pretrained ones
        ref = load_classifier(pretrained)
        for (n, a), (_, b) in zip(block_access(model).embeddings[0].named_parameters(),
                                  block_access(ref).embeddings[0].named_parameters()):
            assert torch.equal(a, b), n
    trace = pd.read_parquet(out / "trace.parquet")
    assert set(trace.split) == {"train", "train_noisy", "train_clean", "validation", "aux_train", "aux_validation"}
    assert set(trace.epoch) == {1, 2}
    assert trace.loc[trace.split == "aux_train", "n"].iloc[0] == 12
    preds = pd.read_parquet(out / "predictions.parquet")
    assert {"example_id", "split", "label", "pred", "p_label", "correct", "checkpoint"} <= set(preds.columns)
    assert set(preds.checkpoint) == {"final", "memorised"}
    assert res.memorised_epoch in (1, 2) and res.precision.resolved == "bf16"
    assert read_metadata(out / "trace.parquet")["precision"]["precision_probe"]["bf16_speedup"] == 2.0


@pytest.mark.parametrize("family", ["bert", "gpt2"])
def test_control_frozen_main_step_changes_only_the_main_head(family):
    """control-frozen (pair None): a main step leaves every block as it was, only the main head learns."""
    cm = control_model(pair=None, family=family)
    access = block_access(cm.main)
    before = snapshot(cm.main)
    one_step(cm, MAIN, toy_tokenset())
    after = cm.main.state_dict()
    for b in range(1, 5):
        changed = [n for n in names_of(cm.main, access.block_parameters(b)) if not torch.equal(before[n], after[n])]
        assert not changed, f"block {b} changed in a control-frozen main step: {changed}"
    assert any(not torch.equal(before[n], after[n]) for n in names_of(cm.main, access.head_parameters()))
    assert {id(p) for p in cm.main_parameters()} == {id(p) for p in access.head_parameters()}


def test_run_control_frozen_baseline_trains_blocks_through_the_auxiliary_task_only(tmp_path):
    """The control baseline: noisy labels, no target pair; its blocks move (the auxiliary task) while
    a run without auxiliary examples would leave them pretrained."""
    pretrained, paths = write_toy_inputs(tmp_path)
    out = tmp_path / "models" / "toy" / "tiny" / "control-frozen" / "seed1"
    settings_ = settings(epochs=2, learning_rate=1e-3, batch_size=8, eval_batch_size=32, device="cpu")
    control = control_settings(auxiliary_learning_rate=5e-4)
    run_control(*paths["main"], *paths["aux"], str(pretrained), "control-frozen", 1, settings_, control,
                str(out), str(tmp_path / "work"))
    info = json.loads((out / "final" / "memloc.json").read_text())
    assert info["variant"] == "control-frozen" and info["control_pair"] == [] and info["trained_labels"] == "label"
    model, ref = block_access(load_classifier(out / "final")), block_access(load_classifier(pretrained))
    for b in range(1, 5):
        moved = [not torch.equal(p, q) for p, q in zip(model.block_parameters(b), ref.block_parameters(b))]
        assert any(moved), f"block {b} never changed: the auxiliary task must train every block"
    trace = pd.read_parquet(out / "trace.parquet")
    assert {"aux_train", "train_noisy"} <= set(trace.split)
