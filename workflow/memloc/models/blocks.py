"""Family-aware access to the transformer blocks of a Hugging Face sequence classifier.

This is the only module in memloc that knows model families. Everything else talks to a
:class:`BlockAccess`: the ordered blocks 1..L, the embedding modules and the head (every other
parameter: BERT's pooler and classifier, a decoder's final norm and score layer), and a decoder's
final norm, which :func:`pooled_hidden_states` can apply to layer L as Hugging Face's
``hidden_states`` do.

Hooks live here and nowhere else. :func:`capture` records the hidden state entering or leaving
any blocks during a forward; :func:`run_with_cache` runs one forward capturing block inputs and
outputs, optionally stopping at block ``i`` (only the blocks below it run). Running "from block
``start``" (:func:`forward_from_block`) re-uses the classification model's own forward, so
attention masks, rotary position embeddings, the final norm, pooling and the head stay Hugging
Face's: the block list is temporarily replaced by its tail and a forward pre-hook on the first
block of the tail swaps the embedding output for a cached hidden state.

Adding a family: add one :class:`FamilySpec` to :data:`FAMILIES` (dotted paths, relative to
the ``AutoModelForSequenceClassification`` model, of the block ``nn.ModuleList`` and of the
modules holding the input embeddings; whether it is a decoder) and, for tests, a builder in
``memloc/models/random.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from memloc.errors import ModelError


@dataclass(frozen=True)
class FamilySpec:
    """Where a family keeps its parts, as dotted attribute paths from the classifier.

    A path ending in ``?`` is optional: absent or ``None`` modules are skipped (e.g. OPT's
    ``project_in`` exists only when ``word_embed_proj_dim != hidden_size``). ``pooler``: the
    pooler module of the head, where the family has one (BERT's), which layer retraining can
    keep frozen (docs/protocol.md §6.4). ``final_norm``: the modules (part of the head) that the
    family's base model applies, in this order, to the last block's output before returning it
    (and its ``hidden_states[-1]``); none for encoders (docs/protocol.md §6.6).
    """

    blocks: str
    embeddings: tuple[str, ...]
    is_decoder: bool
    pooler: str | None = None
    final_norm: tuple[str, ...] = ()


_LLAMA_LIKE = FamilySpec("model.layers", ("model.embed_tokens",), True, final_norm=("model.norm",))

FAMILIES: dict[str, FamilySpec] = {
    # Encoders: pooled at the first token.
    "bert": FamilySpec("bert.encoder.layer", ("bert.embeddings",), False, pooler="bert.pooler"),
    "roberta": FamilySpec("roberta.encoder.layer", ("roberta.embeddings",), False),
    "xlm-roberta": FamilySpec("roberta.encoder.layer", ("roberta.embeddings",), False),
    "electra": FamilySpec(
        "electra.encoder.layer", ("electra.embeddings", "electra.embeddings_project?"), False
    ),
    # MPNet's relative-position bias table lives on the encoder and is shared by all blocks;
    # it is position information, so it belongs with the (frozen) embeddings.
    "mpnet": FamilySpec(
        "mpnet.encoder.layer",
        ("mpnet.embeddings", "mpnet.encoder.relative_attention_bias"),
        False,
    ),
    "distilbert": FamilySpec("distilbert.transformer.layer", ("distilbert.embeddings",), False),
    # Decoders: pooled at the last non-pad token.
    "gpt2": FamilySpec("transformer.h", ("transformer.wte", "transformer.wpe"), True, final_norm=("transformer.ln_f",)),
    "gpt_neo": FamilySpec("transformer.h", ("transformer.wte", "transformer.wpe"), True, final_norm=("transformer.ln_f",)),
    "gpt_neox": FamilySpec("gpt_neox.layers", ("gpt_neox.embed_in",), True, final_norm=("gpt_neox.final_layer_norm",)),
    # OPT's decoder has no final norm when do_layer_norm_before is false (opt-350m) and a
    # project_out only when word_embed_proj_dim != hidden_size (opt-350m again).
    "opt": FamilySpec(
        "model.decoder.layers",
        (
            "model.decoder.embed_tokens",
            "model.decoder.embed_positions",
            "model.decoder.project_in?",
        ),
        True,
        final_norm=("model.decoder.final_layer_norm?", "model.decoder.project_out?"),
    ),
    "llama": _LLAMA_LIKE,
    "qwen2": _LLAMA_LIKE,
    "mistral": _LLAMA_LIKE,
}

SUPPORTED_FAMILIES: tuple[str, ...] = tuple(FAMILIES)


def unique_parameters(params: Iterable[nn.Parameter]) -> list[nn.Parameter]:
    """``params`` in order, each parameter once (shared modules yield theirs more than once)."""
    seen: set[int] = set()
    out = []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


@dataclass
class BlockAccess:
    """A classifier taken apart into embeddings, blocks 1..L and head.

    ``blocks_parent`` / ``blocks_attr`` locate the block list (``getattr(blocks_parent,
    blocks_attr) is blocks`` outside :func:`replaced_blocks`). ``final_norm``: the modules the
    base model applies to the last block's output (:attr:`FamilySpec.final_norm`, absent optional
    ones left out).
    """

    model: nn.Module
    family: str
    is_decoder: bool
    embeddings: list[nn.Module]
    blocks: nn.ModuleList
    blocks_parent: nn.Module
    blocks_attr: str
    pooler: nn.Module | None = None
    final_norm: tuple[nn.Module, ...] = ()

    @property
    def num_layers(self) -> int:
        return len(self.blocks)

    def block(self, i: int) -> nn.Module:
        """Block ``i`` (1-based)."""
        self._check_index(i)
        return self.blocks[i - 1]

    def embedding_parameters(self) -> list[nn.Parameter]:
        """Parameters of the input embeddings (word/position/type embeddings, their norm)."""
        return unique_parameters(p for m in self.embeddings for p in m.parameters())

    def block_parameters(self, i: int) -> list[nn.Parameter]:
        """Parameters of block ``i`` (1-based)."""
        return unique_parameters(self.block(i).parameters())

    def head_parameters(self) -> list[nn.Parameter]:
        """Every parameter that is neither embedding nor block: the head (always trained)."""
        taken = {id(p) for p in self.embedding_parameters()}
        taken.update(id(p) for p in self.blocks.parameters())
        return unique_parameters(p for p in self.model.parameters() if id(p) not in taken)

    def pooler_parameters(self) -> list[nn.Parameter]:
        """Parameters of the head's pooler (BERT's; none for families without one)."""
        return unique_parameters(self.pooler.parameters()) if self.pooler is not None else []

    def apply_final_norm(self, hidden: torch.Tensor) -> torch.Tensor:
        """``hidden`` (the last block's output, any leading shape) through the final-norm modules.

        Every one acts on each token's vector alone (LayerNorm, RMSNorm, OPT's linear
        ``project_out``), so it may be applied to pooled vectors.
        """
        for module in self.final_norm:
            hidden = module(hidden)
        return hidden

    def _check_index(self, i: int) -> None:
        if not 1 <= i <= self.num_layers:
            raise ValueError(f"block index {i} outside 1..{self.num_layers}")


def _resolve(model: nn.Module, path: str) -> nn.Module | None:
    obj: Any = model
    for name in path.split("."):
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return obj


def _unsupported(model_type: str) -> ModelError:
    return ModelError(
        f"model_type {model_type!r} is not supported for block localisation; supported "
        f"families: {', '.join(SUPPORTED_FAMILIES)}. To add one, add an entry to FAMILIES in "
        "workflow/memloc/models/blocks.py giving the dotted path (from the "
        "AutoModelForSequenceClassification model) of its block nn.ModuleList, the paths of "
        "its input-embedding modules, and whether it is a decoder."
    )


def _modules(model: nn.Module, paths: Iterable[str], what: str, role: str) -> list[nn.Module]:
    """The modules at ``paths`` (a trailing ``?`` marks an optional one, skipped when absent)."""
    found: list[nn.Module] = []
    for path in paths:
        optional = path.endswith("?")
        path = path.rstrip("?")
        module = _resolve(model, path)
        if module is None:
            if optional:
                continue
            raise ModelError(
                f"{what} has no {role} at '{path}'. If the transformers layout changed, update "
                "FAMILIES in workflow/memloc/models/blocks.py."
            )
        found.append(module)
    return found


def block_access(model: nn.Module) -> BlockAccess:
    """Take an ``AutoModelForSequenceClassification`` model apart (dispatch on model_type)."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type not in FAMILIES:
        raise _unsupported(str(model_type))
    spec = FAMILIES[model_type]
    kind = type(model).__name__
    blocks = _resolve(model, spec.blocks)
    if not isinstance(blocks, nn.ModuleList) or len(blocks) == 0:
        raise ModelError(
            f"{kind} (model_type {model_type!r}) has no non-empty block list at "
            f"'{spec.blocks}'; expected an AutoModelForSequenceClassification model. If the "
            "transformers layout changed, update FAMILIES in workflow/memloc/models/blocks.py."
        )
    parent_path, _, attr = spec.blocks.rpartition(".")
    parent = _resolve(model, parent_path) if parent_path else model
    embeddings = _modules(model, spec.embeddings, f"{kind} (model_type {model_type!r})", "embedding module")
    final_norm = _modules(model, spec.final_norm, f"{kind} (model_type {model_type!r})", "final-norm module")
    pooler = _resolve(model, spec.pooler) if spec.pooler else None
    if spec.pooler and pooler is None:
        raise ModelError(
            f"{kind} (model_type {model_type!r}) has no pooler at '{spec.pooler}'. If the transformers "
            "layout changed, update FAMILIES in workflow/memloc/models/blocks.py."
        )
    return BlockAccess(
        model=model,
        family=model_type,
        is_decoder=spec.is_decoder,
        embeddings=embeddings,
        blocks=blocks,
        blocks_parent=parent,
        blocks_attr=attr,
        pooler=pooler,
        final_norm=tuple(final_norm),
    )


def pooling(access: BlockAccess) -> str:
    """``"first"`` (first token) for encoders, ``"last"`` (last non-pad token) for decoders."""
    return "last" if access.is_decoder else "first"


# --------------------------------------------------------------------------- block lists


@contextmanager
def replaced_blocks(access: BlockAccess, modules: Sequence[nn.Module]) -> Iterator[nn.ModuleList]:
    """Temporarily make ``modules`` the model's block list; the original is always restored.

    ``modules`` may be shorter than L and may mix blocks of several models of the same
    architecture (the modules are referenced, not copied or re-parented).
    """
    original = getattr(access.blocks_parent, access.blocks_attr)
    replacement = nn.ModuleList(list(modules))
    setattr(access.blocks_parent, access.blocks_attr, replacement)
    try:
        yield replacement
    finally:
        setattr(access.blocks_parent, access.blocks_attr, original)


@contextmanager
def _layer_types_from(access: BlockAccess, start: int) -> Iterator[None]:
    """Shift per-layer config lists that the forward indexes by position in the block list.

    Qwen2 (and any family with ``config.layer_types``) picks each block's attention mask as
    ``layer_types[i]`` with ``i`` the position in the (replaced) list; with the tail starting at
    block ``start`` position 0 must read ``layer_types[start - 1]``.
    """
    config = access.model.config
    types = getattr(config, "layer_types", None)
    if start == 1 or not isinstance(types, (list, tuple)) or len(types) != access.num_layers:
        yield
        return
    original = types
    config.layer_types = list(types[start - 1 :])
    try:
        yield
    finally:
        config.layer_types = original


def _hidden_from_call(args: tuple, kwargs: dict) -> torch.Tensor:
    if args:
        return args[0]
    if "hidden_states" in kwargs:
        return kwargs["hidden_states"]
    raise ModelError(
        "a transformer block was called without hidden_states (neither positional nor keyword); "
        "the transformers layout changed: update workflow/memloc/models/blocks.py."
    )


def _hidden_from_output(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    hidden = getattr(output, "hidden_states", None)
    if isinstance(hidden, torch.Tensor):
        return hidden
    raise ModelError(
        f"cannot read the hidden state from a block output of type {type(output).__name__}; "
        "update workflow/memloc/models/blocks.py."
    )


def _forward_kwargs(access: BlockAccess, extra: dict) -> dict:
    kwargs = dict(extra)
    if access.is_decoder:
        # Caches index layers by layer_idx / num_hidden_layers; never build one.
        kwargs.setdefault("use_cache", False)
    return kwargs


def _logits(output: Any) -> torch.Tensor:
    return output.logits if hasattr(output, "logits") else output[0]


# --------------------------------------------------------------------------- hooks: capture, stop

Keep = Callable[[torch.Tensor], torch.Tensor]


def _detached(hidden: torch.Tensor) -> torch.Tensor:
    return hidden.detach()


def _copied(hidden: torch.Tensor) -> torch.Tensor:
    return hidden.detach().clone()


class _Stop(Exception):
    """Raised by the stop hook of :func:`run_with_cache` to end a forward pass early."""


@contextmanager
def capture(modules: Mapping[Hashable, nn.Module], what: str = "input", keep: Keep = _detached) -> Iterator[dict]:
    """Record the hidden state entering (``what="input"``) or leaving (``"output"``) each module.

    Yields a dict that forwards run inside the ``with`` block fill with ``{key: keep(hidden)}``
    for each ``modules[key]``; ``keep`` decides what is stored (default: the detached tensor, not
    a copy). The modules may belong to any model, e.g. the blocks of a clean twin running in a
    mixed block list. The hooks are removed on exit, where a module that was never called raises
    ModelError. This and :func:`forward_from_block` are the only places memloc registers hooks.
    """
    if what not in ("input", "output"):
        raise ValueError(f"capture: what={what!r}; expected 'input' or 'output'")
    store: dict = {}

    def hook_for(key):
        if what == "input":
            def pre_hook(module, args, kwargs):
                store[key] = keep(_hidden_from_call(args, kwargs))

            return pre_hook

        def post_hook(module, args, kwargs, output):
            store[key] = keep(_hidden_from_output(output))

        return post_hook

    register = "register_forward_pre_hook" if what == "input" else "register_forward_hook"
    handles = [getattr(module, register)(hook_for(key), with_kwargs=True) for key, module in modules.items()]
    try:
        yield store
    finally:
        for handle in handles:
            handle.remove()
    missing = [key for key in modules if key not in store]
    if missing:
        raise ModelError(f"capture: no {what} hidden state for {missing}; the forward pass never reached them")


@dataclass
class Cache:
    """What :func:`run_with_cache` captured; keys are block indices (1-based)."""

    inputs: dict[int, torch.Tensor]  # hidden state entering block i
    outputs: dict[int, torch.Tensor]  # hidden state leaving block i (before any final norm)
    logits: torch.Tensor | None  # None when the forward was stopped early


@torch.no_grad()
def run_with_cache(
    access: BlockAccess,
    batch: Mapping[str, torch.Tensor],
    *,
    block_inputs: Iterable[int] = (),
    block_outputs: Iterable[int] = (),
    stop_at: int | None = None,
    keep: Keep = _detached,
) -> Cache:
    """One forward of the model on ``batch`` (its keyword inputs), capturing block inputs and outputs.

    No grad; train/eval mode is the caller's. ``stop_at=i`` ends the forward when block ``i`` is
    called, after capturing its input, so only the embeddings and blocks ``1..i-1`` run (the
    logits are then None). ``keep``: see :func:`capture`.
    """
    block_inputs, block_outputs = list(block_inputs), list(block_outputs)
    if stop_at is not None:
        access._check_index(stop_at)
        late = [i for i in block_inputs if i > stop_at] + [i for i in block_outputs if i >= stop_at]
        if late:
            raise ValueError(f"run_with_cache: blocks {late} run after stop_at={stop_at}; nothing to capture there")

    def stop(module, args, kwargs):
        raise _Stop

    logits = None
    with (
        capture({i: access.block(i) for i in block_inputs}, "input", keep) as inputs,
        capture({i: access.block(i) for i in block_outputs}, "output", keep) as outputs,
    ):
        # Registered after the capture hooks, so block stop_at's input is recorded before stopping.
        handle = None if stop_at is None else access.block(stop_at).register_forward_pre_hook(stop, with_kwargs=True)
        try:
            logits = _logits(access.model(**_forward_kwargs(access, dict(batch))))
        except _Stop:
            pass
        finally:
            if handle is not None:
                handle.remove()
    return Cache(inputs, outputs, logits)


# --------------------------------------------------------------------------- uses: replay, pooled states


def capture_block_inputs(
    access: BlockAccess,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    **extra: Any,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """One forward (no grad): the hidden-state input to every block 1..L, and the logits.

    Returns ``(inputs, logits)``; ``inputs[l - 1]`` is the input to block ``l`` ([B, T, d], a
    copy), to be passed as ``hidden`` to :func:`forward_from_block` with the same batch.
    """
    layers = range(1, access.num_layers + 1)
    cache = run_with_cache(
        access, {"input_ids": input_ids, "attention_mask": attention_mask, **extra}, block_inputs=layers, keep=_copied
    )
    return [cache.inputs[i] for i in layers], cache.logits  # type: ignore[return-value]


def forward_from_block(
    access: BlockAccess,
    start: int,
    hidden: torch.Tensor,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    blocks: Sequence[nn.Module] | None = None,
    **extra: Any,
) -> torch.Tensor:
    """Logits of the model run from block ``start`` on, with ``hidden`` as that block's input.

    ``blocks`` (length L, default the model's own) may mix blocks of models of the same
    architecture; ``blocks[start - 1:]`` run in place of the model's list. Masks, position
    embeddings, final norm, pooling and head are the model's own forward. Grad mode and
    train/eval mode are the caller's.
    """
    L = access.num_layers
    if not 1 <= start <= L:
        raise ValueError(f"start={start} outside 1..{L}")
    chain = list(access.blocks) if blocks is None else list(blocks)
    if len(chain) != L:
        raise ModelError(f"forward_from_block: got {len(chain)} blocks, the model has {L}")
    tail = chain[start - 1 :]
    fired = False

    def inject(module, args, kwargs):
        nonlocal fired
        if fired:  # the same module may occur again further down the list
            return None
        fired = True
        current = _hidden_from_call(args, kwargs)
        if current.shape != hidden.shape:
            raise ModelError(
                f"forward_from_block: hidden has shape {tuple(hidden.shape)} but block {start} "
                f"receives {tuple(current.shape)}; pass the same batch that was captured."
            )
        value = hidden.to(dtype=current.dtype, device=current.device)
        if args:
            return (value, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": value}

    handle = tail[0].register_forward_pre_hook(inject, with_kwargs=True, prepend=True)
    try:
        with replaced_blocks(access, tail), _layer_types_from(access, start):
            output = access.model(
                input_ids=input_ids, attention_mask=attention_mask, **_forward_kwargs(access, extra)
            )
    finally:
        handle.remove()
    if not fired:
        raise ModelError(f"forward_from_block: block {start} of {access.family} was never called")
    return _logits(output)


@torch.no_grad()
def pooled_hidden_states(
    access: BlockAccess,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    *,
    final_norm: bool,
    **extra: Any,
) -> torch.Tensor:
    """Pooled hidden states [B, L+1, d] from one batched forward (no grad).

    Layer 0 is the input to block 1 (embedding output), layer l the output of block l. With
    ``final_norm`` layer L also passes through the family's final norm
    (:meth:`BlockAccess.apply_final_norm`), as in Hugging Face's ``hidden_states[-1]``;
    without it every layer is before any final norm (encoders have none: the same either way).
    Encoders pool the first token; decoders the last non-pad token, assuming right padding
    (index ``attention_mask.sum(1) - 1``).
    """
    batch, length = input_ids.shape[:2]
    if access.is_decoder:
        if attention_mask is None:
            index = torch.full((batch,), length - 1, dtype=torch.long)
        else:
            index = attention_mask.long().sum(1) - 1
            if (index < 0).any():
                raise ModelError("pooled_hidden_states: an example has an all-zero attention mask")
    else:
        index = torch.zeros(batch, dtype=torch.long)
    rows = torch.arange(batch)

    def pool(h: torch.Tensor) -> torch.Tensor:
        return h[rows.to(h.device), index.to(h.device)].detach()

    layers = range(1, access.num_layers + 1)
    cache = run_with_cache(
        access,
        {"input_ids": input_ids, "attention_mask": attention_mask, **extra},
        block_inputs=[1],
        block_outputs=layers,
        keep=pool,
    )
    top = access.num_layers
    if final_norm:
        cache.outputs[top] = access.apply_final_norm(cache.outputs[top])
        if cache.outputs[top].shape != cache.inputs[1].shape:
            raise ModelError(
                f"pooled_hidden_states: {access.family}'s final norm maps width {cache.inputs[1].shape[-1]} to "
                f"{cache.outputs[top].shape[-1]} (OPT's project_out), so layer L cannot be stacked with the others; "
                "set localisation.final_norm: false for this model."
            )
    return torch.stack([cache.inputs[1], *(cache.outputs[i] for i in layers)], dim=1)


# --------------------------------------------------------------------------- weights


def copy_blocks(dst: BlockAccess, src: BlockAccess, indices: Iterable[int]) -> None:
    """Copy the weights of blocks ``indices`` (1-based) from ``src`` into ``dst`` in place.

    Both models must share family and block structure (e.g. pretrained -> fine-tuned, clean
    twin -> noisy model). Parameter objects of ``dst`` are kept, so optimisers stay valid.
    """
    if dst.family != src.family or dst.num_layers != src.num_layers:
        raise ModelError(
            f"copy_blocks: source ({src.family}, {src.num_layers} blocks) and destination "
            f"({dst.family}, {dst.num_layers} blocks) differ in architecture"
        )
    with torch.no_grad():
        for i in indices:
            target, source = dst.block(i), src.block(i)
            try:
                target.load_state_dict(source.state_dict(), strict=True)
            except RuntimeError as exc:
                raise ModelError(f"copy_blocks: block {i} differs in shape: {exc}") from exc


def freeze(params: Iterable[nn.Parameter]) -> None:
    """Stop gradients for ``params``."""
    for p in params:
        p.requires_grad_(False)


def unfreeze(params: Iterable[nn.Parameter]) -> None:
    """Let gradients flow into ``params``."""
    for p in params:
        p.requires_grad_(True)
