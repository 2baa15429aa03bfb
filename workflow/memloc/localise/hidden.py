"""Pooled hidden states of every example at every layer, in one batched pass per model.

Probing and centroid analysis both read the pooled representation of each example at layers
0..L (layer 0 = embedding output, layer l = output of block l, layer L optionally after a
decoder's final norm (``localisation.final_norm``); first token for encoders, last non-pad token
for decoders; see :func:`memloc.models.blocks.pooled_hidden_states`). They are
computed here once per model with length-sorted batches and returned in the caller's order.

:func:`normalise` (values -> weights summing to 1) is shared by gradients and probing.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from memloc.device import autocast
from memloc.models.blocks import block_access, pooled_hidden_states
from memloc.tokens import TokenSet
from memloc.training.batching import eval_batches

log = logging.getLogger("memloc.localise")


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter."""
    return next(model.parameters()).device


@torch.no_grad()
def pooled_states(
    model: torch.nn.Module,
    data: TokenSet,
    batch_size: int,
    device: torch.device | str | None,
    precision: str,
    final_norm: bool,
) -> np.ndarray:
    """Pooled hidden states ``[N, L+1, d]`` (float32) of every example of ``data``, in its order.

    ``final_norm``: layer L after the decoder's final norm (``localisation.final_norm``).

    One forward per length-sorted batch (eval mode, no grad); the model's train/eval mode is
    restored afterwards. ``device`` is where the inputs go (None: the model's device); the
    model itself is not moved.
    """
    access = block_access(model)
    device = model_device(model) if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    out: np.ndarray | None = None
    try:
        for idx in eval_batches(data.lengths, batch_size):
            batch = data.collate(idx)
            extra = {}
            if "token_type_ids" in batch:
                extra["token_type_ids"] = batch["token_type_ids"].to(device)
            with autocast(device, precision):
                states = pooled_hidden_states(
                    access,
                    batch["input_ids"].to(device),
                    batch["attention_mask"].to(device),
                    final_norm=final_norm,
                    **extra,
                )
            states = states.float().cpu().numpy()
            if out is None:
                out = np.empty((len(data), *states.shape[1:]), dtype=np.float32)
            out[idx] = states
    finally:
        model.train(was_training)
    if out is None:
        d = int(getattr(model.config, "hidden_size", 0) or 0)
        return np.empty((0, access.num_layers + 1, d), dtype=np.float32)
    return out


# --------------------------------------------------------------------------- weights


def normalise(values: np.ndarray) -> np.ndarray:
    """``values / sum(values)`` (NaNs count as 0); all zeros stay zeros (logged)."""
    v = np.nan_to_num(np.asarray(values, dtype=float), nan=0.0)
    total = v.sum()
    if not total > 0:
        log.warning("all layer values are zero; weights are all zero (M-CoG undefined)")
        return np.zeros_like(v)
    return v / total
