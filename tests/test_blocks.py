"""Block discovery, replay from a block, layer swapping and pooled hidden states, per family."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from memloc.errors import ModelError
from memloc.models.blocks import (
    FAMILIES,
    SUPPORTED_FAMILIES,
    block_access,
    capture,
    capture_block_inputs,
    copy_blocks,
    forward_from_block,
    freeze,
    pooled_hidden_states,
    pooling,
    replaced_blocks,
    run_with_cache,
    unfreeze,
)
from memloc.models.random import RANDOM_FAMILIES, build_random_classifier, random_config

from builders import LOCAL_ATTENTION, tiny_classifier

VOCAB = 128
LAYERS = 4
ATOL = 1e-5

# Dotted-name prefixes of the head parameters (everything after the last block).
HEAD_PREFIXES = {
    "bert": ("bert.pooler.", "classifier."),
    "roberta": ("classifier.",),
    "xlm-roberta": ("classifier.",),
    "electra": ("classifier.",),
    "mpnet": ("classifier.",),
    "distilbert": ("pre_classifier.", "classifier."),
    "gpt2": ("transformer.ln_f.", "score."),
    "gpt_neo": ("transformer.ln_f.", "score."),
    "gpt_neox": ("gpt_neox.final_layer_norm.", "score."),
    "opt": ("model.decoder.final_layer_norm.", "score."),
    "llama": ("model.norm.", "score."),
    "qwen2": ("model.norm.", "score."),
    "mistral": ("model.norm.", "score."),
}

LENGTHS = [12, 9, 5, 7]


def _model(family: str, seed: int) -> nn.Module:
    return tiny_classifier(family, seed, layers=LAYERS, vocab=VOCAB, hidden=32, **LOCAL_ATTENTION.get(family, {}))


def _batch(lengths=LENGTHS, seed: int = 0):
    """Right-padded batch (pad id 0) of examples with different lengths."""
    gen = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.randint(5, VOCAB, (len(lengths), width), generator=gen)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
        ids[row, n:] = 0
    return ids, mask


@pytest.fixture(scope="module", params=RANDOM_FAMILIES)
def family(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def models(family):
    return _model(family, seed=1), _model(family, seed=2)


def test_every_supported_family_has_a_random_builder():
    assert set(RANDOM_FAMILIES) == set(SUPPORTED_FAMILIES)


def test_random_classifier_is_seeded_and_takes_bert_vocab(family):
    a = build_random_classifier(family, seed=3)
    b = build_random_classifier(family, seed=3)
    assert a.config.vocab_size == 30522 and a.config.pad_token_id == 0
    assert not a.training
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(pa, pb), name
    ids = torch.tensor([[101, 30000, 2054, 102, 0, 0], [101, 7592, 2088, 2003, 30521, 102]])
    with torch.no_grad():
        logits = a(input_ids=ids, attention_mask=(ids != 0).long()).logits
    assert logits.shape == (2, 2) and torch.isfinite(logits).all()


def test_parameters_partition_into_embeddings_blocks_head(family, models):
    model = models[0]
    access = block_access(model)
    assert access.family == family
    assert access.num_layers == LAYERS
    assert pooling(access) == ("last" if access.is_decoder else "first")
    assert access.embeddings and access.embedding_parameters()

    groups = [access.embedding_parameters(), access.head_parameters()]
    groups += [access.block_parameters(i) for i in range(1, LAYERS + 1)]
    assert all(groups), "every group holds parameters"
    seen: dict[int, int] = {}
    for g, params in enumerate(groups):
        for p in params:
            assert id(p) not in seen, f"parameter in groups {seen[id(p)]} and {g}"
            seen[id(p)] = g
    everything = {id(p) for p in model.parameters()}
    assert set(seen) == everything, "no parameter missing, none extra"

    names = {id(p): n for n, p in model.named_parameters()}
    head_names = [names[id(p)] for p in access.head_parameters()]
    assert all(n.startswith(HEAD_PREFIXES[family]) for n in head_names), head_names
    for prefix in HEAD_PREFIXES[family]:
        assert any(n.startswith(prefix) for n in head_names), prefix
    with pytest.raises(ValueError):
        access.block_parameters(0)
    with pytest.raises(ValueError):
        access.block_parameters(LAYERS + 1)


def test_unsupported_model_type_lists_families():
    fake = nn.Linear(2, 2)
    fake.config = SimpleNamespace(model_type="t5")
    with pytest.raises(ModelError) as info:
        block_access(fake)
    message = str(info.value)
    assert "'t5'" in message and "FAMILIES" in message
    for fam in SUPPORTED_FAMILIES:
        assert fam in message
    with pytest.raises(ModelError):
        random_config("t5")


@torch.no_grad()
def test_forward_from_block_reproduces_plain_forward(family, models):
    model = models[0]
    access = block_access(model)
    ids, mask = _batch()
    reference = model(input_ids=ids, attention_mask=mask).logits
    inputs, logits = capture_block_inputs(access, ids, mask)
    assert len(inputs) == LAYERS
    assert all(h.shape[:2] == ids.shape for h in inputs)
    torch.testing.assert_close(logits, reference, atol=ATOL, rtol=0)
    original = access.blocks
    for start in range(1, LAYERS + 1):
        out = forward_from_block(access, start, inputs[start - 1], ids, mask)
        torch.testing.assert_close(out, reference, atol=ATOL, rtol=0, msg=f"start={start}")
        assert getattr(access.blocks_parent, access.blocks_attr) is original
    # A different hidden state really is used (the result is not the plain forward). Not a
    # constant shift: pre-LayerNorm models with a final LayerNorm are invariant to it.
    noise = torch.randn(inputs[1].shape, generator=torch.Generator().manual_seed(0))
    out = forward_from_block(access, 2, inputs[1] + noise, ids, mask)
    assert not torch.allclose(out, reference, atol=1e-4)
    assert all(not block._forward_pre_hooks for block in access.blocks)


@torch.no_grad()
def test_mixed_block_list_equals_copied_blocks(family, models):
    noisy, clean = models
    a, b = block_access(noisy), block_access(clean)
    ids, mask = _batch(seed=1)
    mixed = [a.blocks[0], b.blocks[1], b.blocks[2], a.blocks[3]]

    swapped = copy.deepcopy(noisy)
    s = block_access(swapped)
    copy_blocks(s, b, [2, 3])
    expected = swapped(input_ids=ids, attention_mask=mask).logits
    assert not torch.allclose(expected, noisy(input_ids=ids, attention_mask=mask).logits)

    inputs, _ = capture_block_inputs(a, ids, mask)
    for start in (1, 2):  # block 1 is the noisy model's in both, so its input is shared
        out = forward_from_block(a, start, inputs[start - 1], ids, mask, blocks=mixed)
        torch.testing.assert_close(out, expected, atol=ATOL, rtol=0, msg=f"start={start}")
    # The noisy model itself is untouched.
    torch.testing.assert_close(
        noisy(input_ids=ids, attention_mask=mask).logits, capture_block_inputs(a, ids, mask)[1]
    )
    for i in (2, 3):
        for p, q in zip(s.block_parameters(i), b.block_parameters(i)):
            assert torch.equal(p, q) and p is not q


@torch.no_grad()
def test_pooled_hidden_states_match_single_example_extraction(family, models):
    model = models[0]
    access = block_access(model)
    ids, mask = _batch(seed=2)
    batched = pooled_hidden_states(access, ids, mask, final_norm=False)
    assert batched.shape == (len(LENGTHS), LAYERS + 1, model.config.hidden_size)
    for row, n in enumerate(LENGTHS):
        single_ids = ids[row : row + 1, :n]
        single = pooled_hidden_states(access, single_ids, torch.ones_like(single_ids), final_norm=False)
        torch.testing.assert_close(batched[row], single[0], atol=ATOL, rtol=0, msg=f"row={row}")


@torch.no_grad()
def test_pooled_hidden_states_agree_with_hf_hidden_states_for_bert():
    model = _model("bert", seed=1)
    access = block_access(model)
    ids, mask = _batch(seed=3)
    ours = pooled_hidden_states(access, ids, mask, final_norm=False)
    hf = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    assert len(hf) == LAYERS + 1
    torch.testing.assert_close(ours, torch.stack([h[:, 0] for h in hf], 1), atol=ATOL, rtol=0)


@torch.no_grad()
def test_pooled_hidden_states_decoder_pools_last_non_pad_token():
    model = _model("llama", seed=1)
    access = block_access(model)
    ids, mask = _batch(seed=4)
    ours = pooled_hidden_states(access, ids, mask, final_norm=False)
    hf = model.model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    last = mask.sum(1) - 1
    rows = torch.arange(len(LENGTHS))
    # Layers 0..L-1 are block inputs in both; HF's last entry is after the final norm.
    for layer in range(LAYERS):
        torch.testing.assert_close(ours[:, layer], hf[layer][rows, last], atol=ATOL, rtol=0)


DECODERS = [f for f in RANDOM_FAMILIES if FAMILIES[f].is_decoder]


def _hf_pooled(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor, decoder: bool) -> torch.Tensor:
    """Hugging Face's ``hidden_states`` [B, L+1, d] of the classifier, pooled as memloc pools."""
    hf = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
    assert len(hf) == LAYERS + 1
    index = mask.sum(1) - 1 if decoder else torch.zeros(len(ids), dtype=torch.long)
    return torch.stack([h[torch.arange(len(ids)), index] for h in hf], 1)


@torch.no_grad()
@pytest.mark.parametrize("family", DECODERS)
def test_final_norm_makes_layer_l_hugging_faces_last_hidden_state(family):
    """With final_norm layer L is HF's hidden_states[-1] (after ln_f / final_layer_norm / norm);
    without it layer L is the last block's output; layers 0..L-1 are HF's either way."""
    model = _model(family, seed=1)
    access = block_access(model)
    assert access.final_norm
    ids, mask = _batch(seed=5)
    hf = _hf_pooled(model, ids, mask, decoder=True)
    normed = pooled_hidden_states(access, ids, mask, final_norm=True)
    plain = pooled_hidden_states(access, ids, mask, final_norm=False)
    torch.testing.assert_close(normed, hf, atol=ATOL, rtol=0)
    torch.testing.assert_close(plain[:, :LAYERS], hf[:, :LAYERS], atol=ATOL, rtol=0)
    assert not torch.allclose(plain[:, LAYERS], hf[:, LAYERS], atol=1e-3)
    last = run_with_cache(access, {"input_ids": ids, "attention_mask": mask}, block_outputs=[LAYERS]).outputs[LAYERS]
    torch.testing.assert_close(plain[:, LAYERS], last[torch.arange(len(LENGTHS)), mask.sum(1) - 1], atol=0, rtol=0)
    # The norm acts per token: normalising the pooled vector equals pooling the normalised sequence.
    torch.testing.assert_close(access.apply_final_norm(plain[:, LAYERS]), normed[:, LAYERS], atol=0, rtol=0)


@torch.no_grad()
def test_final_norm_changes_nothing_for_an_encoder():
    model = _model("bert", seed=1)
    access = block_access(model)
    ids, mask = _batch(seed=6)
    assert access.final_norm == ()
    normed = pooled_hidden_states(access, ids, mask, final_norm=True)
    assert torch.equal(normed, pooled_hidden_states(access, ids, mask, final_norm=False))
    torch.testing.assert_close(normed, _hf_pooled(model, ids, mask, decoder=False), atol=ATOL, rtol=0)


@torch.no_grad()
def test_final_norm_of_opt_without_a_final_layer_norm_and_with_project_out():
    """OPT's final_layer_norm is absent for post-norm models (opt-350m); its project_out changes
    the width, which the stacked layers cannot hold: a clear error naming the key."""
    ids, mask = _batch(seed=7)
    post_norm = tiny_classifier("opt", 1, layers=LAYERS, vocab=VOCAB, hidden=32, do_layer_norm_before=False)
    access = block_access(post_norm)
    assert access.final_norm == ()
    normed = pooled_hidden_states(access, ids, mask, final_norm=True)
    assert torch.equal(normed, pooled_hidden_states(access, ids, mask, final_norm=False))
    torch.testing.assert_close(normed, _hf_pooled(post_norm, ids, mask, decoder=True), atol=ATOL, rtol=0)

    projected = block_access(tiny_classifier("opt", 1, layers=LAYERS, vocab=VOCAB, hidden=32, word_embed_proj_dim=16))
    assert [type(m).__name__ for m in projected.final_norm] == ["LayerNorm", "Linear"]
    assert pooled_hidden_states(projected, ids, mask, final_norm=False).shape == (len(LENGTHS), LAYERS + 1, 32)
    with pytest.raises(ModelError, match=r"width 32 to 16.*localisation\.final_norm: false"):
        pooled_hidden_states(projected, ids, mask, final_norm=True)


def test_run_with_cache_captures_and_stops_at_a_block():
    access = block_access(_model("llama", seed=1))
    ids, mask = _batch()
    batch = {"input_ids": ids, "attention_mask": mask}
    layers = range(1, LAYERS + 1)
    full = run_with_cache(access, batch, block_inputs=layers, block_outputs=layers)
    with torch.no_grad():
        torch.testing.assert_close(full.logits, access.model(**batch).logits, atol=0, rtol=0)
    for i in range(1, LAYERS):  # block i's output is block i + 1's input
        assert torch.equal(full.outputs[i], full.inputs[i + 1])
    # Stopping at block 3 runs blocks 1 and 2 only: blocks 3 and 4 never produce an output.
    with pytest.raises(ModelError, match=r"\[3, 4\]"):
        with capture({i: access.block(i) for i in layers}, "output") as ran:
            stopped = run_with_cache(access, batch, block_inputs=[3], stop_at=3)
    assert sorted(ran) == [1, 2] and stopped.logits is None
    assert torch.equal(stopped.inputs[3], full.inputs[3])
    with pytest.raises(ValueError, match="after stop_at"):
        run_with_cache(access, batch, block_outputs=[3], stop_at=3)
    assert all(not b._forward_pre_hooks and not b._forward_hooks for b in access.blocks)


def test_replaced_blocks_restores_on_exception(models):
    model = models[0]
    access = block_access(model)
    original = getattr(access.blocks_parent, access.blocks_attr)
    with pytest.raises(RuntimeError, match="boom"):
        with replaced_blocks(access, list(original)[2:]) as tail:
            assert getattr(access.blocks_parent, access.blocks_attr) is tail
            assert len(tail) == LAYERS - 2
            raise RuntimeError("boom")
    assert getattr(access.blocks_parent, access.blocks_attr) is original
    assert access.blocks is original and len(original) == LAYERS
    # The replacement did not re-parent the blocks: state_dict keys are unchanged.
    assert len(model.state_dict()) == len(copy.deepcopy(model).state_dict())


def test_forward_from_block_failure_leaves_model_intact():
    model = _model("qwen2", seed=1)
    access = block_access(model)
    layer_types = list(model.config.layer_types)
    ids, mask = _batch()
    inputs, reference = capture_block_inputs(access, ids, mask)
    with pytest.raises(ModelError, match="shape"):
        forward_from_block(access, 3, inputs[2][:2], ids, mask)
    assert getattr(access.blocks_parent, access.blocks_attr) is access.blocks
    assert model.config.layer_types == layer_types
    assert all(not block._forward_pre_hooks for block in access.blocks)
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids, attention_mask=mask).logits, reference)
    with pytest.raises(ValueError):
        forward_from_block(access, 0, inputs[0], ids, mask)
    with pytest.raises(ModelError):
        forward_from_block(access, 1, inputs[0], ids, mask, blocks=list(access.blocks)[:3])


def test_copy_blocks_rejects_other_architecture():
    bert = block_access(_model("bert", seed=1))
    with pytest.raises(ModelError):
        copy_blocks(bert, block_access(_model("roberta", seed=1)), [1])
    deeper = block_access(build_random_classifier("bert", num_layers=6, vocab_size=VOCAB, seed=1))
    with pytest.raises(ModelError):
        copy_blocks(bert, deeper, [1])


def test_freeze_and_unfreeze():
    access = block_access(_model("gpt2", seed=1))
    freeze(access.model.parameters())
    unfreeze(access.block_parameters(2))
    unfreeze(access.head_parameters())
    trainable = {id(p) for p in access.model.parameters() if p.requires_grad}
    expected = {id(p) for p in access.block_parameters(2) + access.head_parameters()}
    assert trainable == expected
