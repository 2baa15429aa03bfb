"""Tiny randomly initialised classifiers for every supported family (tests, offline runs).

Nothing here touches the network: configs are built in code and weights are drawn from a
seeded generator, so the same ``(model_type, sizes, seed)`` always gives the same model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import transformers
from transformers import AutoModelForSequenceClassification, PretrainedConfig

from memloc.errors import ModelError

# A builder maps the sizes to (transformers config class name, constructor kwargs).
_Builder = Callable[..., tuple[str, dict[str, Any]]]

# The tokenizer used with random models is bert-base-uncased's vocabulary (pad id 0).
BERT_VOCAB_SIZE = 30522


def _bert_like(cls_name: str) -> _Builder:
    def build(*, num_layers, hidden_size, num_heads, vocab_size, pad_token_id, max_positions):
        extra: dict[str, Any] = {}
        if cls_name in ("RobertaConfig", "XLMRobertaConfig"):
            # RoBERTa numbers positions from padding_idx + 1, so it needs two extra slots.
            max_positions += 2
        if cls_name == "ElectraConfig":
            # ELECTRA factorises its embeddings (embedding_size < hidden_size, then a projection);
            # keep that shape so the projection is exercised.
            extra["embedding_size"] = max(hidden_size // 2, 2)
        return cls_name, dict(
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            intermediate_size=4 * hidden_size,
            max_position_embeddings=max_positions,
            pad_token_id=pad_token_id,
            **extra,
        )

    return build


def _distilbert(*, num_layers, hidden_size, num_heads, vocab_size, pad_token_id, max_positions):
    return "DistilBertConfig", dict(
        vocab_size=vocab_size,
        dim=hidden_size,
        n_layers=num_layers,
        n_heads=num_heads,
        hidden_dim=4 * hidden_size,
        max_position_embeddings=max_positions,
        pad_token_id=pad_token_id,
    )


def _gpt2(*, num_layers, hidden_size, num_heads, vocab_size, pad_token_id, max_positions):
    return "GPT2Config", dict(
        vocab_size=vocab_size,
        n_embd=hidden_size,
        n_layer=num_layers,
        n_head=num_heads,
        n_positions=max_positions,
        pad_token_id=pad_token_id,
        bos_token_id=None,
        eos_token_id=None,
    )


def _gpt_neo(*, num_layers, hidden_size, num_heads, vocab_size, pad_token_id, max_positions):
    # Alternate global / local attention like the released checkpoints.
    attention_types: list = [[["global", "local"], num_layers // 2]]
    if num_layers % 2:
        attention_types.append([["global"], 1])
    return "GPTNeoConfig", dict(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        num_heads=num_heads,
        attention_types=attention_types,
        intermediate_size=4 * hidden_size,
        max_position_embeddings=max_positions,
        window_size=256,
        pad_token_id=pad_token_id,
        bos_token_id=None,
        eos_token_id=None,
    )


def _gpt_neox(*, num_layers, hidden_size, num_heads, vocab_size, pad_token_id, max_positions):
    return "GPTNeoXConfig", dict(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=4 * hidden_size,
        max_position_embeddings=max_positions,
        pad_token_id=pad_token_id,
        bos_token_id=None,
        eos_token_id=None,
    )


def _opt(*, num_layers, hidden_size, num_heads, vocab_size, pad_token_id, max_positions):
    return "OPTConfig", dict(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        word_embed_proj_dim=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        ffn_dim=4 * hidden_size,
        max_position_embeddings=max_positions,
        pad_token_id=pad_token_id,
        bos_token_id=None,
        eos_token_id=None,
    )


def _llama_like(cls_name: str) -> _Builder:
    def build(*, num_layers, hidden_size, num_heads, vocab_size, pad_token_id, max_positions):
        return cls_name, dict(
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            intermediate_size=4 * hidden_size,
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            num_key_value_heads=num_heads,
            max_position_embeddings=max_positions,
            pad_token_id=pad_token_id,
            bos_token_id=None,
            eos_token_id=None,
        )

    return build


_BUILDERS: dict[str, _Builder] = {
    "bert": _bert_like("BertConfig"),
    "roberta": _bert_like("RobertaConfig"),
    "xlm-roberta": _bert_like("XLMRobertaConfig"),
    "electra": _bert_like("ElectraConfig"),
    "mpnet": _bert_like("MPNetConfig"),
    "distilbert": _distilbert,
    "gpt2": _gpt2,
    "gpt_neo": _gpt_neo,
    "gpt_neox": _gpt_neox,
    "opt": _opt,
    "llama": _llama_like("LlamaConfig"),
    "qwen2": _llama_like("Qwen2Config"),
    "mistral": _llama_like("MistralConfig"),
}

RANDOM_FAMILIES: tuple[str, ...] = tuple(_BUILDERS)


def random_config(
    model_type: str,
    num_layers: int = 4,
    hidden_size: int = 32,
    num_heads: int = 2,
    vocab_size: int = BERT_VOCAB_SIZE,
    num_labels: int = 2,
    pad_token_id: int = 0,
    max_positions: int = 512,
    **overrides: Any,
) -> PretrainedConfig:
    """A tiny config of family ``model_type``; ``overrides`` go to the config constructor.

    Overrides are constructor arguments, so derived fields follow them (e.g. Qwen2's
    ``layer_types`` from ``use_sliding_window`` / ``max_window_layers``).

    Every config, decoders included, carries ``pad_token_id`` so that Hugging Face's
    sequence-classification pooling (last non-pad token for decoders) works.
    """
    if model_type not in _BUILDERS:
        raise ModelError(
            f"random_config: no random config for model_type {model_type!r}; "
            f"supported: {', '.join(RANDOM_FAMILIES)}. Add a builder to _BUILDERS in "
            "memloc/models/random.py (and the family to memloc/models/blocks.py)."
        )
    if hidden_size % num_heads:
        raise ModelError(
            f"random_config: hidden_size={hidden_size} must be divisible by num_heads={num_heads}."
        )
    if not 0 <= pad_token_id < vocab_size:
        raise ModelError(
            f"random_config: pad_token_id={pad_token_id} must lie in [0, vocab_size={vocab_size})."
        )
    cls_name, kwargs = _BUILDERS[model_type](
        num_layers=num_layers,
        hidden_size=hidden_size,
        num_heads=num_heads,
        vocab_size=vocab_size,
        pad_token_id=pad_token_id,
        max_positions=max_positions,
    )
    kwargs.update(num_labels=num_labels)
    kwargs.update(overrides)
    return getattr(transformers, cls_name)(**kwargs)


def build_random_classifier(
    model_type: str,
    num_layers: int = 4,
    hidden_size: int = 32,
    num_heads: int = 2,
    vocab_size: int = BERT_VOCAB_SIZE,
    num_labels: int = 2,
    pad_token_id: int = 0,
    *,
    seed: int = 0,
    **overrides: Any,
) -> torch.nn.Module:
    """``AutoModelForSequenceClassification.from_config`` of :func:`random_config`, seeded.

    The global RNG state is left untouched. The model is returned in eval mode.
    """
    config = random_config(
        model_type,
        num_layers=num_layers,
        hidden_size=hidden_size,
        num_heads=num_heads,
        vocab_size=vocab_size,
        num_labels=num_labels,
        pad_token_id=pad_token_id,
        **overrides,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_config(config)
    model.eval()
    return model
