"""Layer swapping: the cached mixed-block forward equals copying blocks; a planted block is found."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from memloc.io import read_metadata, write_parquet
from memloc.localise.swapping import RAW_COLUMNS, SwappingSettings, run_swapping, swap_windows, swapped_logits
from memloc.localise.windows import window_weights, windows
from memloc.models.blocks import block_access, copy_blocks
from memloc.models.random import RANDOM_FAMILIES
from memloc.tokens import TokenSet

from builders import LOCAL_ATTENTION, amplified, random_tokens, tiny_classifier

VOCAB = 100
LAYERS = 4
ATOL = 1e-5


def tiny(family: str, seed: int, layers: int = LAYERS):
    return tiny_classifier(family, seed, layers=layers, vocab=VOCAB, **LOCAL_ATTENTION.get(family, {}))


def token_set(n: int, seed: int = 0) -> TokenSet:
    """Sequences of different lengths (3..11 tokens), so batches are right-padded; labels all 0."""
    return random_tokens(n, seed, vocab=VOCAB, lengths=(3, 11), n_classes=1)


def naive_swapped_logits(noisy, twin, inputs, window):
    """The reference: a deep copy of the noisy model with the window's blocks copied in."""
    model = copy.deepcopy(noisy)
    copy_blocks(block_access(model), block_access(twin), range(window[0], window[1] + 1))
    with torch.no_grad():
        return model(**inputs).logits


@pytest.mark.parametrize("family", RANDOM_FAMILIES)
def test_cached_forward_equals_copying_blocks(family):
    noisy, twin = amplified(tiny(family, 1)), tiny(family, 2)
    data = token_set(6)
    batch = data.collate(np.arange(6))
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    assert (inputs["attention_mask"] == 0).any(), "the batch is padded"
    wins = windows(LAYERS, None)
    weights_before = {n: copy.deepcopy(m.state_dict()) for n, m in (("noisy", noisy), ("twin", twin))}
    out, base = swapped_logits(block_access(noisy), block_access(twin), inputs, wins)
    assert set(out) == set(wins)
    with torch.no_grad():
        torch.testing.assert_close(base, noisy(**inputs).logits, atol=ATOL, rtol=0)
    for w in wins:
        expected = naive_swapped_logits(noisy, twin, inputs, w)
        torch.testing.assert_close(out[w], expected, atol=ATOL, rtol=0, msg=f"window {w}")
        assert (out[w] - base).abs().max() > 100 * ATOL, f"window {w} changed nothing"
    # max_window: the longest window per start is shorter than L - start + 1.
    short = windows(LAYERS, max_window=2)
    out2, _ = swapped_logits(block_access(noisy), block_access(twin), inputs, short)
    assert set(out2) == set(short)
    for w in short:
        torch.testing.assert_close(out2[w], out[w], atol=ATOL, rtol=0)
    # Neither model was modified and no hook is left behind.
    for model in (noisy, twin):
        access = block_access(model)
        assert len(access.blocks) == LAYERS
        assert all(not b._forward_pre_hooks for b in access.blocks)
    # Bit for bit: the weights. (A repeated forward pass need not be: some CPU kernels, e.g.
    # GPT-Neo's attention on AMD EPYC, differ in the last bit between calls.)
    for name, model in (("noisy", noisy), ("twin", twin)):
        for k, v in model.state_dict().items():
            assert torch.equal(v, weights_before[name][k]), f"{name} {k} changed"
    with torch.no_grad():
        torch.testing.assert_close(noisy(**inputs).logits, base, atol=ATOL, rtol=0)


def planted_pair(n: int = 48):
    """A clean model and a "noisy" copy that differs only in block 2, which flips predictions.

    Returns ``(noisy, clean, data, memorised)``: data labelled with the noisy model's
    predictions; memorised = the examples whose prediction block 2 flips. Near-ties are dropped
    so that argmax is stable under rounding.
    """
    clean = tiny("bert", 3)
    noisy = copy.deepcopy(clean)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in block_access(noisy).block(2).parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.5)
    data = token_set(n, seed=1)
    batch = data.collate(np.arange(n))
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        ln, lc = noisy(**inputs).logits, clean(**inputs).logits
    margin = torch.minimum((ln[:, 0] - ln[:, 1]).abs(), (lc[:, 0] - lc[:, 1]).abs())
    keep = np.flatnonzero(margin.numpy() > 1e-3)
    pred_noisy, pred_clean = ln.argmax(-1).numpy()[keep], lc.argmax(-1).numpy()[keep]
    data = data.subset(keep).with_labels(pred_noisy)
    memorised = pred_noisy != pred_clean
    assert 3 <= memorised.sum() <= len(keep) - 3, "the planted block flips some but not all predictions"
    return noisy, clean, data, memorised


def test_planted_block_2_ranks_top():
    noisy, clean, data, memorised = planted_pair()
    raw, unswapped = swap_windows(noisy, clean, data, memorised, SwappingSettings.with_defaults(eval_batch_size=16), "cpu")
    assert list(raw.columns) == list(RAW_COLUMNS)
    assert len(raw) == 10 and list(zip(raw.start, raw.end)) == windows(LAYERS, None)
    assert (raw["size"] == raw["end"] - raw["start"] + 1).all()
    contains_2 = (raw.start <= 2) & (2 <= raw.end)
    # Swapping block 2 back turns the noisy model into the clean one: every flip is undone.
    np.testing.assert_array_equal(raw["error"].to_numpy(), contains_2.astype(float).to_numpy())
    np.testing.assert_array_equal(raw["acc_clean"].to_numpy(), np.ones(len(raw)))
    assert unswapped == {"acc_memorised": 1.0, "acc_clean": 1.0, "n_memorised": int(memorised.sum()),
                         "n_clean": int((~memorised).sum())}
    w = window_weights(raw, LAYERS)
    np.testing.assert_allclose(w, [0.75, 1.0, 0.625, 0.5])  # by hand, see test_windows
    assert int(np.argmax(w)) + 1 == 2


def _write_job(tmp_path, noisy, clean, data, memorised):
    n = len(data)
    examples = pd.DataFrame(
        {
            "example_id": np.concatenate([data.example_ids, [900, 901]]),
            "split": ["train"] * n + ["validation", "test"],
            "text_a": ["x"] * (n + 2),
            "text_b": [None] * (n + 2),
            "label_orig": np.concatenate([np.where(memorised, 1 - data.labels, data.labels), [0, 1]]),
            "label": np.concatenate([data.labels, [0, 1]]),
            "is_noisy": np.concatenate([memorised, [False, False]]),
        }
    )
    write_parquet(examples, tmp_path / "examples.parquet")
    ids = list(data.input_ids) + [np.array([7, 8, 9]), np.array([7, 8])]
    tokens = pd.DataFrame(
        {"example_id": examples["example_id"], "input_ids": ids, "length": [len(x) for x in ids], "truncated": False}
    )
    write_parquet(tokens, tmp_path / "tokens.parquet", metadata={"pad_token_id": 0})
    noisy.save_pretrained(tmp_path / "noisy")
    clean.save_pretrained(tmp_path / "clean")


def test_run_swapping_writes_tables_with_provenance(tmp_path):
    noisy, clean, data, memorised = planted_pair()
    _write_job(tmp_path, noisy, clean, data, memorised)
    settings = {"max_window": None, "eval_batch_size": 8, "device": "cpu", "precision": "fp32", "auto_precision_min_speedup": 1.2,
                "deterministic": True, "seed": 0}
    raw, weights = run_swapping(
        tmp_path / "examples.parquet", tmp_path / "tokens.parquet", tmp_path / "noisy", tmp_path / "clean",
        settings, tmp_path / "out" / "seed0.parquet", tmp_path / "out" / "seed0.weights.parquet",
    )
    on_disk = pd.read_parquet(tmp_path / "out" / "seed0.parquet")
    pd.testing.assert_frame_equal(on_disk, raw)
    w = pd.read_parquet(tmp_path / "out" / "seed0.weights.parquet")
    assert w["layer"].tolist() == [1, 2, 3, 4] and (w["technique"] == "swapping").all()
    assert w.loc[w["weight"].idxmax(), "layer"] == 2
    meta = read_metadata(tmp_path / "out" / "seed0.parquet")
    assert meta["technique"] == "swapping" and meta["num_layers"] == LAYERS
    assert meta["unswapped"]["acc_memorised"] == 1.0 and meta["memorised_set"] == "is_noisy"
    assert meta["settings"] == settings
    assert (raw["n_memorised"] == memorised.sum()).all()

    # An explicit memorised set (here: half of the flipped examples) replaces is_noisy; the
    # other noisy examples then belong to neither group.
    chosen = data.example_ids[memorised][: max(1, memorised.sum() // 2)]
    raw2, _ = run_swapping(
        tmp_path / "examples.parquet", tmp_path / "tokens.parquet", tmp_path / "noisy", tmp_path / "clean",
        {**settings, "max_window": 1}, tmp_path / "o2.parquet", tmp_path / "o2.weights.parquet", memorised=chosen,
    )
    assert len(raw2) == LAYERS
    assert (raw2["n_memorised"] == len(chosen)).all() and (raw2["n_clean"] == (~memorised).sum()).all()
    assert read_metadata(tmp_path / "o2.parquet")["memorised_set"] == "explicit ids"


def test_run_swapping_resolves_auto_once_and_records_it(tmp_path, monkeypatch):
    """``precision: auto`` in a localisation job: one probe (planted 2x), every forward in bf16, the
    choice in the metadata beside the requested settings (docs/protocol.md §6.1)."""
    import memloc.device as mdev
    import memloc.localise.swapping as swapping
    import memloc.precision as mprec

    probes, used = [], []
    monkeypatch.setattr(mprec, "measure_bf16_speedup", lambda device, shape: probes.append(shape) or (2.0, 1.0, 3))
    monkeypatch.setattr(swapping, "autocast", lambda device, prec: used.append(prec) or mdev.autocast(device, prec))
    noisy, clean, data, memorised = planted_pair()
    _write_job(tmp_path, noisy, clean, data, memorised)
    settings = {"max_window": 1, "eval_batch_size": 8, "device": "cpu", "precision": "auto", "auto_precision_min_speedup": 1.2,
                "deterministic": True, "seed": 0}
    run_swapping(tmp_path / "examples.parquet", tmp_path / "tokens.parquet", tmp_path / "noisy", tmp_path / "clean",
                 settings, tmp_path / "raw.parquet", tmp_path / "weights.parquet")
    assert len(probes) == 1 and used and set(used) == {"bf16"}
    meta = read_metadata(tmp_path / "raw.parquet")
    assert meta["settings"]["precision"] == "auto"
    assert (meta["precision"]["resolved"], meta["precision"]["precision_probe"]["bf16_speedup"]) == ("bf16", 2.0)
