"""Layer retraining: cached-prefix forward, what a window's retraining may change, normalisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import memloc.localise.retraining as retraining
from memloc import config as mconf
from memloc.errors import ConfigError
from memloc.io import read_metadata, write_parquet
from memloc.localise.retraining import (
    RAW_COLUMNS,
    RetrainSettings,
    compute_prefix_cache,
    heldout_split,
    retrain_window,
    retrain_windows,
    run_retraining,
    set_train_modes,
    window_logits,
)
from memloc.models.blocks import block_access, capture_block_inputs
from memloc.models.random import RANDOM_FAMILIES
from memloc.tokens import TokenSet

from builders import amplified, learnable_tokens, snapshot, tiny_classifier

VOCAB = 60
ATOL = 1e-5
CPU = torch.device("cpu")


def tiny(family="bert", seed=0, layers=3, **overrides):
    return tiny_classifier(family, seed, layers=layers, vocab=VOCAB, **overrides)


def toy_data(n=40, seed=0) -> TokenSet:
    """Label = class of the second token (learnable); lengths 3..10 so batches are padded."""
    return learnable_tokens(n, seed, vocab=VOCAB, lengths=(3, 10))


# --------------------------------------------------------------------------- cached prefix


# Families whose random configs have dropout (GPT-Neo, GPT-NeoX and llama-like ones have none).
DROPOUT_FAMILIES = ("bert", "roberta", "xlm-roberta", "electra", "mpnet", "distilbert", "gpt2", "opt")


@pytest.mark.parametrize("family", RANDOM_FAMILIES)
def test_cached_prefix_forward_equals_naive_forward(family):
    """Train mode with dropout: the window and above train, the prefix runs in eval mode.

    The naive reference is the plain forward of the whole model with the same modes; logits and
    the gradients of the window and head agree, for every window start.
    """
    model = amplified(tiny(family, seed=1, layers=3))
    access = block_access(model)
    data = toy_data(10)
    idx = np.arange(len(data))
    batch = data.collate(idx)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    assert (inputs["attention_mask"] == 0).any()
    full, _ = capture_block_inputs(access, inputs["input_ids"], inputs["attention_mask"])
    with torch.no_grad():
        eval_logits = model(**inputs).logits
    for start in range(1, access.num_layers + 1):
        cache = compute_prefix_cache(access, start, data, batch_size=4, device=CPU, precision="fp32")
        for i, n in enumerate(data.lengths):  # the cache holds the eval-mode input to block `start`
            torch.testing.assert_close(cache.batch([i], CPU)[0], full[start - 1][i, :n], atol=ATOL, rtol=0)
        results = []
        for cached in (False, True):
            model.zero_grad(set_to_none=True)
            set_train_modes(access, start)
            torch.manual_seed(123)
            logits = window_logits(access, start, inputs, cache if cached else None, idx)
            torch.nn.functional.cross_entropy(logits, batch["labels"]).backward()
            grads = [p.grad.clone() for p in access.block_parameters(start) + access.head_parameters()]
            results.append((logits.detach(), grads))
        (naive, g_naive), (fast, g_fast) = results
        torch.testing.assert_close(fast, naive, atol=ATOL, rtol=0, msg=f"start={start}")
        for a, b in zip(g_fast, g_naive):
            torch.testing.assert_close(a, b, atol=ATOL, rtol=1e-4)
        if family in DROPOUT_FAMILIES:
            assert (naive - eval_logits).abs().max() > 100 * ATOL, "dropout is active in the window"
    model.eval()


def test_train_modes_split_prefix_and_rest():
    model = tiny("bert", layers=3)
    access = block_access(model)
    set_train_modes(access, 2)
    assert not model.bert.embeddings.training and not model.bert.embeddings.dropout.training
    assert not access.block(1).training and not access.block(1).output.dropout.training
    assert access.block(2).training and access.block(3).attention.self.training
    assert model.bert.pooler.training and model.classifier.training and model.dropout.training
    gpt = tiny("gpt2", layers=2)
    set_train_modes(block_access(gpt), 1)
    assert not gpt.transformer.drop.training  # embedding dropout belongs to the prefix
    assert gpt.transformer.h[0].training and gpt.transformer.ln_f.training and gpt.score.training


# --------------------------------------------------------------------------- one window


SHORT = RetrainSettings.with_defaults(epochs=2, learning_rate=1e-3, batch_size=8, warmup_ratio=0.1, eval_batch_size=16)


@pytest.mark.parametrize("cache_prefix", [True, False])
def test_retraining_a_window_changes_only_window_and_head(cache_prefix):
    noisy, pretrained = tiny(seed=1, layers=3), tiny(seed=2, layers=3)
    access, pre = block_access(noisy), block_access(pretrained)
    before = {id(p): p.detach().clone() for p in noisy.parameters()}
    data = toy_data(24)
    start, end = 2, 2
    cache = compute_prefix_cache(access, start, data, 8, CPU, "fp32") if cache_prefix else None
    loss = retrain_window(access, pre, start, end, data, np.arange(len(data)), SHORT, CPU, cache)
    assert np.isfinite(loss)
    window = {id(p) for p in access.block_parameters(2)}
    head = {id(p) for p in access.head_parameters()}
    for name, p in noisy.named_parameters():
        if id(p) in window or id(p) in head:
            continue
        assert torch.equal(p, before[id(p)]), f"{name} changed"
    for p, q in zip(access.block_parameters(2), pre.block_parameters(2)):
        assert not torch.equal(p, before[id(p)])  # reset ...
        if p.ndim >= 2:
            assert not torch.equal(p, q)  # ... and trained
    assert any(not torch.equal(p, before[id(p)]) for p in access.head_parameters())
    assert not any(p.requires_grad for p in noisy.parameters()) and not noisy.training


def test_cached_training_equals_uncached_training_without_dropout():
    """With dropout off, training on cached prefix states is the ordinary training."""
    no_dropout = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    pretrained = tiny(seed=2, layers=3, **no_dropout)
    data = toy_data(24)
    trained = []
    for cache_prefix in (True, False):
        noisy = tiny(seed=1, layers=3, **no_dropout)
        access = block_access(noisy)
        cache = compute_prefix_cache(access, 3, data, 8, CPU, "fp32") if cache_prefix else None
        retrain_window(access, block_access(pretrained), 3, 3, data, np.arange(len(data)), SHORT, CPU, cache)
        trained.append(snapshot(noisy))
    for k in trained[0]:
        torch.testing.assert_close(trained[0][k], trained[1][k], atol=ATOL, rtol=1e-4, msg=k)


def test_heldout_split_is_seeded_and_disjoint():
    clean = np.arange(5, 45)
    train, held = heldout_split(clean, 7, seed=3)
    assert len(held) == 7 and len(train) == 33
    assert not set(train) & set(held) and set(train) | set(held) == set(clean)
    again = heldout_split(clean, 7, seed=3)
    assert np.array_equal(again[1], held)
    assert not np.array_equal(heldout_split(clean, 7, seed=4)[1], held)
    with pytest.raises(ValueError):
        heldout_split(clean, 40, seed=0)


# --------------------------------------------------------------------------- all windows


def planted_job(n=40, n_mem=6):
    """Examples whose memorised labels contradict the learnable rule."""
    data = toy_data(n, seed=5)
    memorised = np.zeros(n, dtype=bool)
    memorised[:n_mem] = True
    labels = data.labels.copy()
    labels[memorised] = 1 - labels[memorised]
    return data.with_labels(labels), memorised


def test_retrain_windows_normalises_against_all_blocks_and_is_deterministic(tmp_path, monkeypatch):
    data, memorised = planted_job()
    noisy, pretrained = tiny(seed=1, layers=3), tiny(seed=2, layers=3)
    raw, summary = retrain_windows(noisy, pretrained, data, memorised, SHORT)
    assert list(raw.columns) == list(RAW_COLUMNS) + ["seconds"]
    assert list(zip(raw.start, raw.end)) == [(1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3)]
    a_all = summary["a_all"]
    assert 0 <= a_all < 1
    assert summary["n_memorised"] == 6 and summary["n_heldout_clean"] == 6 and summary["n_train_clean"] == 28
    everything = raw[(raw.start == 1) & (raw.end == 3)].iloc[0]
    assert everything["acc_memorised"] == a_all
    # By construction of the normalisation: a' = 0, so error = 1, for the window of all blocks.
    assert everything["acc_memorised_norm"] == 0.0 and everything["error"] == 1.0
    np.testing.assert_allclose(raw["acc_memorised_norm"], (raw["acc_memorised"] - a_all) / (1 - a_all))
    np.testing.assert_allclose(raw["error"], 1 - raw["acc_memorised_norm"])
    assert raw["final_train_loss"].notna().all() and raw["acc_heldout_clean"].between(0, 1).all()

    # Same seed, same table (a fresh noisy model: retrain_windows restores it, check that too).
    again, _ = retrain_windows(noisy, pretrained, data, memorised, SHORT)
    pd.testing.assert_frame_equal(again.drop(columns="seconds"), raw.drop(columns="seconds"))

    # Killed after three windows, resumed from the progress file: the same table again.
    progress = tmp_path / "progress.jsonl"
    real = retraining.retrain_window
    calls = {"n": 0}

    def dies_after_three(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(retraining, "retrain_window", dies_after_three)
    with pytest.raises(KeyboardInterrupt):
        retrain_windows(noisy, pretrained, data, memorised, SHORT, progress_path=progress)
    assert len(progress.read_text().splitlines()) == 1 + 3
    monkeypatch.setattr(retraining, "retrain_window", real)
    resumed, _ = retrain_windows(noisy, pretrained, data, memorised, SHORT, progress_path=progress)
    pd.testing.assert_frame_equal(resumed.drop(columns="seconds"), raw.drop(columns="seconds"))
    assert not progress.exists()


def test_retraining_resolves_auto_once_and_a_resumed_job_keeps_it(tmp_path, monkeypatch):
    """Every window of a job runs in the one precision chosen at its start; the progress file keeps
    it, so a job resumed on a machine that now measures bf16 slower still finishes in bf16."""
    import dataclasses

    import memloc.precision as mprec

    def measured(ratio):
        probes = []
        monkeypatch.setattr(mprec, "measure_bf16_speedup", lambda device, shape: probes.append(shape) or (ratio, 1.0, 3))
        return probes

    data, memorised = planted_job()
    noisy, pretrained = tiny(seed=1, layers=3), tiny(seed=2, layers=3)
    opts = dataclasses.replace(SHORT, epochs=1, max_window=1, precision="auto")
    real, used = retraining.retrain_window, []

    def recording(*args, **kwargs):
        used.append(args[6].precision)
        if len(used) == 2 and kill["on"]:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    kill = {"on": True}
    monkeypatch.setattr(retraining, "retrain_window", recording)
    progress = tmp_path / "progress.jsonl"
    probes = measured(2.0)
    with pytest.raises(KeyboardInterrupt):
        retrain_windows(noisy, pretrained, data, memorised, opts, progress_path=progress)
    assert len(probes) == 1
    kill["on"], probes = False, measured(0.5)
    _, summary = retrain_windows(noisy, pretrained, data, memorised, opts, progress_path=progress)
    assert probes == [] and set(used) == {"bf16"} and len(used) == 2 + 3  # (1,1) again, then (2,2), (3,3), (1,3)
    assert (summary["precision"]["requested"], summary["precision"]["resolved"]) == ("auto", "bf16")


def test_run_retraining_end_to_end(tmp_path):
    data, memorised = planted_job()
    n = len(data)
    examples = pd.DataFrame(
        {
            "example_id": data.example_ids,
            "split": "train",
            "text_a": "x",
            "text_b": None,
            "label_orig": np.where(memorised, 1 - data.labels, data.labels),
            "label": data.labels,
            "is_noisy": memorised,
        }
    )
    write_parquet(examples, tmp_path / "examples.parquet")
    tokens = pd.DataFrame({"example_id": data.example_ids, "input_ids": data.input_ids, "length": data.lengths})
    write_parquet(tokens, tmp_path / "tokens.parquet", metadata={"pad_token_id": 0})
    tiny(seed=1, layers=3).save_pretrained(tmp_path / "noisy")
    tiny(seed=2, layers=3).save_pretrained(tmp_path / "pretrained")
    settings = {**SHORT.__dict__, "max_window": 1, "epochs": 1, "cache_prefix": True, "device": "cpu"}
    raw, weights = run_retraining(
        tmp_path / "examples.parquet", tmp_path / "tokens.parquet", tmp_path / "noisy", tmp_path / "pretrained",
        settings, tmp_path / "r.parquet", tmp_path / "r.weights.parquet",
    )
    assert list(zip(raw.start, raw.end)) == [(1, 1), (2, 2), (3, 3)]  # the all-blocks window is metadata only
    assert weights["layer"].tolist() == [1, 2, 3] and (weights["technique"] == "retraining").all()
    np.testing.assert_allclose(weights["weight"], raw["error"])  # single-block windows: w_l = error
    meta = read_metadata(tmp_path / "r.parquet")
    assert meta["technique"] == "retraining" and meta["all_layers"]["end"] == 3
    assert meta["a_all"] == meta["all_layers"]["acc_memorised"]
    assert meta["n_memorised"] == n - meta["n_train_clean"] - meta["n_heldout_clean"] == memorised.sum()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "r.parquet"), raw)


# --------------------------------------------------------------------------- the published recipe


def test_retraining_with_dropout_in_all_blocks():
    """`cache_prefix: false` is the published mode: for every window, each training forward runs
    every module (embeddings and their dropout, the frozen prefix, the window, the blocks above,
    the head) in train mode, the window starts from the pretrained weights and every other block
    from the analysed model's."""
    data, memorised = planted_job(n=24, n_mem=4)
    noisy, pretrained = tiny(seed=1, layers=3), tiny(seed=2, layers=3)
    access, pre = block_access(noisy), block_access(pretrained)
    noisy_blocks = [[p.detach().clone() for p in access.block_parameters(b)] for b in (1, 2, 3)]
    pre_blocks = [[p.detach().clone() for p in pre.block_parameters(b)] for b in (1, 2, 3)]
    modules = dict(noisy.named_modules())
    modes: dict[str, set[bool]] = {n: set() for n in modules}
    firsts: list[tuple[int, int, list[bool]]] = []
    real = retraining.retrain_window

    def record(name):
        def hook(module, args):
            if torch.is_grad_enabled():  # a training forward, not an evaluation
                modes[name].add(module.training)

        return hook

    def checked_window(acc, pre_acc, start, end, *args, **kwargs):
        def first_forward(module, args):
            if torch.is_grad_enabled() and not any(f[:2] == (start, end) for f in firsts):
                same = []
                for b in (1, 2, 3):
                    want = pre_blocks[b - 1] if start <= b <= end else noisy_blocks[b - 1]
                    same.append(all(torch.equal(p, q) for p, q in zip(acc.block_parameters(b), want)))
                firsts.append((start, end, same))

        handle = acc.model.register_forward_pre_hook(first_forward)
        try:
            return real(acc, pre_acc, start, end, *args, **kwargs)
        finally:
            handle.remove()

    handles = [m.register_forward_pre_hook(record(n)) for n, m in modules.items()]
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(retraining, "retrain_window", checked_window)
            opts = RetrainSettings.from_dict({**SHORT.__dict__, "epochs": 1, "max_window": 1, "cache_prefix": False})
            retrain_windows(noisy, pretrained, data, memorised, opts)
    finally:
        for h in handles:
            h.remove()
    ran = {n for n, m in modes.items() if m}
    prefix = {"bert.embeddings.dropout", "bert.encoder.layer.0.attention.self", "bert.encoder.layer.0.output.dropout"}
    assert prefix | {"bert.encoder.layer.2.output.dropout", "dropout"} <= ran
    assert all(modes[n] == {True} for n in ran), {n: modes[n] for n in ran if modes[n] != {True}}
    assert sorted(f[:2] for f in firsts) == [(1, 1), (1, 3), (2, 2), (3, 3)]
    assert all(all(same) for _, _, same in firsts), firsts


@pytest.mark.parametrize("freeze_pooler", [False, True])
def test_freeze_pooler_keeps_berts_pooler_and_trains_the_classifier(freeze_pooler):
    noisy, pretrained = tiny(seed=1, layers=3), tiny(seed=2, layers=3)
    access = block_access(noisy)
    pooler = [p.detach().clone() for p in noisy.bert.pooler.parameters()]
    classifier = noisy.classifier.weight.detach().clone()
    opts = RetrainSettings.from_dict({**SHORT.__dict__, "freeze_pooler": freeze_pooler})
    retrain_window(access, block_access(pretrained), 2, 2, toy_data(24), np.arange(24), opts, CPU)
    unchanged = [torch.equal(p, q) for p, q in zip(noisy.bert.pooler.parameters(), pooler)]
    assert all(unchanged) if freeze_pooler else not any(unchanged)
    assert not torch.equal(noisy.classifier.weight, classifier)
    gpt = tiny("gpt2", seed=1, layers=2)  # no pooler: the final norm and score layer always train
    params = retraining.trainable_parameters(block_access(gpt), 1, 1, freeze_pooler=True)
    assert {id(p) for p in block_access(gpt).head_parameters()} <= {id(p) for p in params}


def test_clip_scope_all_counts_the_frozen_blocks_and_needs_the_plain_forward(monkeypatch):
    noisy, pretrained = tiny(seed=1, layers=3), tiny(seed=2, layers=3)
    access, pre = block_access(noisy), block_access(pretrained)
    data = toy_data(16)
    opts = RetrainSettings.from_dict({**SHORT.__dict__, "epochs": 1, "clip_scope": "all", "freeze_pooler": True})
    cache = compute_prefix_cache(access, 2, data, 8, CPU, "fp32")
    with pytest.raises(ValueError, match="cache_prefix"):
        retrain_window(access, pre, 2, 2, data, np.arange(16), opts, CPU, cache)
    clipped: list[set[int]] = []
    original = torch.nn.utils.clip_grad_norm_

    def recording_clip(params, *args, **kwargs):
        params = list(params)
        clipped.append({id(p) for p in params if p.grad is not None})
        return original(params, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recording_clip)
    before = snapshot(noisy)
    retrain_window(access, pre, 2, 2, data, np.arange(16), opts, CPU)
    frozen = access.embedding_parameters() + access.block_parameters(1) + access.block_parameters(3) + access.pooler_parameters()
    assert clipped and all({id(p) for p in frozen} <= ids for ids in clipped)
    names = {id(p): n for n, p in noisy.named_parameters()}
    after = noisy.state_dict()
    assert all(torch.equal(before[names[id(p)]], after[names[id(p)]]) for p in frozen)


def test_clip_scope_all_with_a_cached_prefix_is_a_config_error():
    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
    loc = raw.setdefault("localisation", {})
    loc["retraining"] = {**loc.get("retraining", {}), "clip_scope": "all"}
    with pytest.raises(ConfigError, match=r"config\.yaml: localisation\.retraining\.clip_scope = all .*cache_prefix: false"):
        mconf.validate(raw, source="config.yaml")
    loc["retraining"]["cache_prefix"] = False
    assert mconf.validate(raw, source="config.yaml")["localisation"]["retraining"]["clip_scope"] == "all"
