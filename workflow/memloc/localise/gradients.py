"""Forgetting gradients (docs/protocol.md §6.5): which blocks would move most to forget the memorised set.

At the ``memorised`` checkpoint, in eval mode, take the mean gradient of the forgetting objective

* ``loss="ce"``: the negated cross-entropy of the training label, ``-CE(z, y) = log p(y)``;
* ``loss="logit"``: the negated raw logit of the label, ``-z_y`` (what the published code computed
  by applying ``NLLLoss`` to logits)

over the memorised (noisy) training examples and over an equally large seeded random set of clean
training examples. Block l's value is the L1 (option L2) norm, over all of its parameters, of
(mean memorised gradient - mean clean gradient); the same value for the ``frozen`` model (blocks at
their pretrained weights, head trained) divides it, and the ratios are normalised to sum to 1.
Norms are invariant to the objective's sign, so the sign convention only matters for readers.

The mean gradient is the gradient of the mean objective, so it is accumulated over length-sorted
padded batches as ``backward(sum(objective) / n)``: no per-example loop. With ``subtract_clean``
both sets go through one accumulation (``+1/n_memorised`` and ``-1/n_clean``), so the difference
lands directly in ``.grad`` without extra copies of the parameters.

Fine-tuning freezes the embeddings and the frozen variant freezes every block; gradients are
switched on for the block parameters only (embeddings and head keep ``requires_grad=False``, which
skips their parameter gradients but still back-propagates through them) and every flag is restored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from memloc.device import autocast
from memloc.localise.common import MemorisedSpec, job_precision, provenance, start_job, weights_frame, write_outputs
from memloc.localise.hidden import normalise
from memloc.localise.settings import JobSettings
from memloc.models.blocks import block_access
from memloc.models.loading import load_classifier
from memloc.tokens import TokenSet
from memloc.training.batching import eval_batches

log = logging.getLogger("memloc.localise.gradients")

LOSSES = ("ce", "logit")
NORMS = ("l1", "l2")


@dataclass(frozen=True)
class GradientsSettings(JobSettings):
    """``localisation.gradients`` plus the shared keys.

    ``seed`` (shared: the run's training seed) seeds the clean draw, as the published code did.
    """

    technique: ClassVar[str] = "gradients"

    loss: str
    norm: str
    subtract_clean: bool
    divide_frozen: bool
    batch_size: int


def forgetting_objective(logits: torch.Tensor, labels: torch.Tensor, loss: str) -> torch.Tensor:
    """Per-example forgetting objective ``[B]`` (float32): ``-CE`` or ``-logit of the label``."""
    logits = logits.float()
    if loss == "ce":
        return -F.cross_entropy(logits, labels, reduction="none")
    if loss == "logit":
        return -logits.gather(1, labels[:, None]).squeeze(1)
    raise ValueError(f"unknown gradients loss {loss!r}; expected one of {LOSSES}")


@contextmanager
def block_gradients_only(model: torch.nn.Module) -> Iterator[list[list[torch.nn.Parameter]]]:
    """Gradients on for the block parameters only, ``.grad`` cleared; everything restored after.

    Yields the parameters of blocks 1..L (``params[l - 1]`` is block l). The model is put in eval
    mode inside the block.
    """
    access = block_access(model)
    flags = [(p, p.requires_grad) for p in model.parameters()]
    was_training = model.training
    blocks = [access.block_parameters(i) for i in range(1, access.num_layers + 1)]
    try:
        for p, _ in flags:
            p.requires_grad_(False)
            p.grad = None
        for params in blocks:
            for p in params:
                p.requires_grad_(True)
        model.eval()
        yield blocks
    finally:
        for p, flag in flags:
            p.grad = None
            p.requires_grad_(flag)
        model.train(was_training)


def accumulate_mean_gradient(
    model: torch.nn.Module,
    data: TokenSet,
    scale: float,
    *,
    batch_size: int,
    loss: str,
    device: torch.device | None,
    precision: str,
) -> None:
    """Add ``scale *`` (gradient of the mean objective over ``data``) to ``.grad`` of the model.

    Only parameters with ``requires_grad`` receive it (see :func:`block_gradients_only`).
    """
    n = len(data)
    if n == 0:
        return
    device = next(model.parameters()).device if device is None else device
    for idx in eval_batches(data.lengths, batch_size):
        batch = data.collate(idx)
        labels = batch.pop("labels").to(device)
        inputs = {k: v.to(device) for k, v in batch.items()}
        with autocast(device, precision):
            logits = model(**inputs).logits
        objective = forgetting_objective(logits, labels, loss)
        (objective.sum() * (scale / n)).backward()


def mean_gradient(
    model: torch.nn.Module,
    data: TokenSet,
    *,
    batch_size: int,
    loss: str,
    device: torch.device | None,
    precision: str,
) -> list[list[torch.Tensor]]:
    """Mean gradient of the forgetting objective over ``data``, per block: ``grads[l - 1][k]``."""
    with block_gradients_only(model) as blocks:
        accumulate_mean_gradient(
            model, data, 1.0, batch_size=batch_size, loss=loss, device=device, precision=precision
        )
        return [[_grad(p).detach().clone() for p in params] for params in blocks]


def _grad(p: torch.nn.Parameter) -> torch.Tensor:
    # A parameter the objective does not reach (e.g. an unused bias) has gradient zero.
    return p.grad if p.grad is not None else torch.zeros_like(p)


def block_norm(grads: Sequence[torch.Tensor], norm: str) -> float:
    """L1 or L2 norm over all tensors of one block, accumulated in float64."""
    if norm == "l1":
        return float(sum(torch.linalg.vector_norm(g, ord=1, dtype=torch.float64).item() for g in grads))
    if norm == "l2":
        return float(np.sqrt(sum(torch.linalg.vector_norm(g, ord=2, dtype=torch.float64).item() ** 2 for g in grads)))
    raise ValueError(f"unknown gradients norm {norm!r}; expected one of {NORMS}")


def block_values(
    model: torch.nn.Module,
    memorised: TokenSet,
    clean: TokenSet | None,
    *,
    loss: str,
    norm: str,
    batch_size: int,
    device: torch.device | None,
    precision: str,
) -> np.ndarray:
    """Per-block norm ``[L]`` of (mean memorised gradient - mean clean gradient).

    ``clean=None`` gives the norm of the mean memorised gradient alone.
    """
    if len(memorised) == 0:
        raise ValueError("forgetting gradients need at least one memorised example")
    kwargs = dict(batch_size=batch_size, loss=loss, device=device, precision=precision)
    with block_gradients_only(model) as blocks:
        accumulate_mean_gradient(model, memorised, 1.0, **kwargs)
        if clean is not None:
            accumulate_mean_gradient(model, clean, -1.0, **kwargs)
        return np.array([block_norm([_grad(p) for p in params], norm) for params in blocks])


def draw_clean(clean_mask: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Positions of ``min(n, available)`` clean examples, drawn without replacement (seeded), sorted."""
    candidates = np.flatnonzero(clean_mask)
    k = min(int(n), len(candidates))
    if k < n:
        log.warning("only %d clean examples for %d memorised ones; using all of them", len(candidates), n)
    rng = np.random.default_rng([int(seed), 0x67726164])
    return np.sort(rng.choice(candidates, size=k, replace=False))


def forgetting_gradients(
    model: torch.nn.Module,
    frozen: torch.nn.Module | None,
    data: TokenSet,
    memorised: np.ndarray,
    settings: GradientsSettings,
    device: torch.device | None,
    clean: np.ndarray | None = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Per-layer raw table and weights (sum 1) for the model and its frozen baseline.

    ``data`` holds the training examples with their training labels; ``memorised`` is a boolean
    mask over it (the memorised set) and ``clean`` the mask of candidates for the clean draw
    (default: ``~memorised``). ``settings`` gives the objective, the norm, the two corrections,
    the batch size, the precision and, in ``seed``, the seed of the clean draw. ``device`` is
    where the inputs go (None: the model's device). ``frozen`` may be None only without
    ``divide_frozen``.
    """
    loss, norm, subtract_clean, divide_frozen = settings.loss, settings.norm, settings.subtract_clean, settings.divide_frozen
    if loss not in LOSSES:
        raise ValueError(f"unknown gradients loss {loss!r}; expected one of {LOSSES}")
    if norm not in NORMS:
        raise ValueError(f"unknown gradients norm {norm!r}; expected one of {NORMS}")
    if divide_frozen and frozen is None:
        raise ValueError("divide_frozen needs the frozen model")
    memorised = np.asarray(memorised, dtype=bool)
    clean_mask = ~memorised if clean is None else np.asarray(clean, dtype=bool) & ~memorised
    mem_idx = np.flatnonzero(memorised)
    clean_idx = draw_clean(clean_mask, len(mem_idx), settings.seed) if subtract_clean else np.array([], dtype=np.int64)
    mem_set = data.subset(mem_idx)
    clean_set = data.subset(clean_idx) if subtract_clean else None
    log.info(
        "forgetting gradients: %d memorised, %d clean examples; loss=%s norm=%s subtract_clean=%s divide_frozen=%s",
        len(mem_idx), len(clean_idx), loss, norm, subtract_clean, divide_frozen,
    )
    kwargs = dict(loss=loss, norm=norm, batch_size=settings.batch_size, device=device, precision=settings.precision)
    noisy_values = block_values(model, mem_set, clean_set, **kwargs)
    L = len(noisy_values)
    if divide_frozen:
        frozen_values = block_values(frozen, mem_set, clean_set, **kwargs)
        if len(frozen_values) != L:
            raise ValueError(f"the frozen model has {len(frozen_values)} blocks, the model {L}")
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = noisy_values / frozen_values
        bad = ~np.isfinite(ratio)
        if bad.any():
            log.warning("frozen-model gradient norm is zero at layers %s; their ratio counts as 0",
                        (np.flatnonzero(bad) + 1).tolist())
            ratio = np.where(bad, 0.0, ratio)
    else:
        frozen_values = np.full(L, np.nan)
        ratio = noisy_values.copy()
    weights = normalise(ratio)
    raw = pd.DataFrame(
        {
            "layer": np.arange(1, L + 1),
            "value_noisy_model": noisy_values,
            "value_frozen_model": frozen_values,
            "ratio": ratio,
            "weight": weights,
            "n_memorised": len(mem_idx),
            "n_clean": len(clean_idx),
        }
    )
    for layer, v, fz, w in zip(raw["layer"], noisy_values, frozen_values, weights):
        log.info("layer %2d: value %.6g frozen %.6g weight %.4f", layer, v, fz, w)
    return raw, weights


def run_gradients(
    examples_path: str | Path,
    tokens_path: str | Path,
    model_dir: str | Path,
    frozen_dir: str | Path,
    settings: Mapping[str, Any] | GradientsSettings,
    raw_path: str | Path,
    weights_path: str | Path,
    memorised: MemorisedSpec = None,
) -> pd.DataFrame:
    """The ``gradients`` rule: load both checkpoints, compute, write raw table and weights.

    ``settings``: :class:`GradientsSettings` or the rule's params dict. ``memorised``: the
    memorised set (default the noisy training examples; see
    :func:`memloc.localise.common.memorised_mask`).
    """
    s = GradientsSettings.from_dict(settings)
    device, job = start_job(s, examples_path, tokens_path, memorised)
    model = load_classifier(model_dir).to(device)
    frozen = load_classifier(frozen_dir).to(device) if s.divide_frozen else None
    choice = job_precision(s, model, job.train, s.batch_size, device)
    raw, weights = forgetting_gradients(model, frozen, job.train, job.memorised, choice.apply(s), device, job.clean)
    meta = provenance(
        "gradients",
        s,
        {"examples": examples_path, "tokens": tokens_path, "model": model_dir, "frozen": frozen_dir},
        memorised=job.memorised_source,
        precision=choice.record(),
    )
    write_outputs(raw, weights_frame(weights, "gradients"), raw_path, weights_path, meta)
    return raw
