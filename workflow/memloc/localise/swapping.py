"""Layer swapping (docs/protocol.md §6.3): put each window of the clean twin's blocks into the noisy model.

For a window ``(s, e)`` the noisy model's blocks ``s..e`` are replaced by the clean twin's
(embeddings, other blocks and head stay the noisy model's). Error = 1 - accuracy on the memorised
examples with respect to their perturbed training labels; accuracy on the clean training
examples is recorded alongside (it should stay near the unswapped model's).

No weights are copied. Per batch:

1. one forward of the noisy model captures the input to every block
   (:func:`~memloc.models.blocks.capture_block_inputs`); the input to block ``s`` is the same
   for every window starting at ``s``, because blocks below ``s`` are the noisy model's;
2. per start ``s``, one forward from block ``s`` through the mixed block list
   ``twin[s..e_max] + noisy[e_max+1..L]`` gives the window ``(s, e_max)`` and, captured on the
   twin blocks (:func:`~memloc.models.blocks.capture`), the output of ``twin[s..e]`` for every shorter window ``(s, e)``;
3. each shorter window then runs only the noisy blocks ``e+1..L`` and the head.

For L = 12 this runs L + L(L+1)(L+2)/6 = 12 + 364 block forwards per batch instead of
78 * 12 = 936 for copying each window into the model and running it whole, or 650 + 12 for one
mixed-list forward per window (measured in benchmarks/bench_windows.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from memloc.device import autocast
from memloc.localise.common import (
    MemorisedSpec,
    check_twins,
    job_precision,
    provenance,
    split_inputs,
    start_job,
    weights_frame,
    write_outputs,
)
from memloc.localise.settings import JobSettings
from memloc.localise.windows import window_weights, windows
from memloc.models.blocks import BlockAccess, block_access, capture, capture_block_inputs, forward_from_block
from memloc.models.loading import load_classifier
from memloc.tokens import TokenSet
from memloc.training.batching import eval_batches
from memloc.training.evaluation import model_inputs

log = logging.getLogger("memloc.localise.swapping")

TECHNIQUE = "swapping"
RAW_COLUMNS = ("start", "size", "end", "error", "acc_memorised", "acc_clean", "n_memorised", "n_clean")


@dataclass(frozen=True)
class SwappingSettings(JobSettings):
    """Swapping has no keys of its own (``localisation.swapping`` is empty): the shared ones."""

    technique: ClassVar[str] = TECHNIQUE


def _by_start(wins: Iterable[tuple[int, int]]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for s, e in wins:
        out.setdefault(s, []).append(e)
    return out


@torch.no_grad()
def swapped_logits(
    noisy: BlockAccess,
    twin: BlockAccess,
    inputs: dict[str, torch.Tensor],
    wins: Iterable[tuple[int, int]],
) -> tuple[dict[tuple[int, int], torch.Tensor], torch.Tensor]:
    """Logits of the noisy model with each window's blocks taken from ``twin``, for one batch.

    Returns ``({(start, end): logits}, unswapped logits)``. Both models must be in eval mode
    (the caller's) and on the device of ``inputs``.
    """
    ids, mask, extra = split_inputs(inputs)
    hidden, base = capture_block_inputs(noisy, ids, mask, **extra)
    noisy_blocks, twin_blocks = list(noisy.blocks), list(twin.blocks)
    out: dict[tuple[int, int], torch.Tensor] = {}
    for s, ends in _by_start(wins).items():
        e_max = max(ends)
        shorter = sorted(e for e in set(ends) if e < e_max)
        # The input to twin block e + 1 (list position e) is the output of twin blocks s..e.
        with capture({e: twin_blocks[e] for e in shorter}) as captured:
            chain = noisy_blocks[: s - 1] + twin_blocks[s - 1 : e_max] + noisy_blocks[e_max:]
            out[(s, e_max)] = forward_from_block(noisy, s, hidden[s - 1], ids, mask, blocks=chain, **extra)
        for e in shorter:
            out[(s, e)] = forward_from_block(noisy, e + 1, captured[e], ids, mask, **extra)
    return out, base


def swap_windows(
    noisy_model,
    twin_model,
    data: TokenSet,
    memorised: np.ndarray,
    settings: SwappingSettings,
    device: torch.device | str,
    clean: np.ndarray | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Swap every window (up to ``settings.max_window`` blocks) and score it on ``data``.

    ``data`` holds the examples with their perturbed training labels; ``memorised`` (bool mask
    over ``data``) marks the memorised ones and ``clean`` (default: the rest) the clean ones.
    Returns the raw table (one row per window, columns :data:`RAW_COLUMNS`) and the unswapped
    model's accuracies. Batches hold ``settings.eval_batch_size`` examples and run in
    ``settings.precision``.
    """
    device = torch.device(device)
    memorised = np.asarray(memorised, dtype=bool)
    clean = ~memorised if clean is None else np.asarray(clean, dtype=bool)
    if len(memorised) != len(data) or len(clean) != len(data):
        raise ValueError("memorised / clean masks must have one entry per example of data")
    if (memorised & clean).any():
        raise ValueError("an example cannot be both memorised and clean")
    noisy, twin = block_access(noisy_model), block_access(twin_model)
    check_twins(noisy, twin, "layer swapping")
    noisy_model.eval().to(device)
    twin_model.eval().to(device)
    L = noisy.num_layers
    wins = windows(L, settings.max_window)
    keep = np.flatnonzero(memorised | clean)
    data, memorised, clean = data.subset(keep), memorised[keep], clean[keep]

    index = {w: i for i, w in enumerate(wins)}
    right_mem = np.zeros(len(wins), dtype=np.int64)
    right_clean = np.zeros(len(wins), dtype=np.int64)
    base_mem = base_clean = 0
    batches = eval_batches(data.lengths, settings.eval_batch_size)
    t0 = time.perf_counter()
    every = max(1, len(batches) // 10)
    for b, idx in enumerate(batches):
        batch = data.collate(idx)
        labels = batch["labels"].to(device)
        m = torch.from_numpy(memorised[idx]).to(device)
        c = torch.from_numpy(clean[idx]).to(device)
        with autocast(device, settings.precision):
            logits, base = swapped_logits(noisy, twin, model_inputs(batch, device), wins)
        ok = base.argmax(-1) == labels
        base_mem += int((ok & m).sum())
        base_clean += int((ok & c).sum())
        for w, lg in logits.items():
            ok = lg.argmax(-1) == labels
            right_mem[index[w]] += int((ok & m).sum())
            right_clean[index[w]] += int((ok & c).sum())
        if (b + 1) % every == 0 or b + 1 == len(batches):
            log.info("swapping: %d/%d batches, %d windows, %.1fs", b + 1, len(batches), len(wins), time.perf_counter() - t0)

    n_mem, n_clean = int(memorised.sum()), int(clean.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        acc_mem = right_mem / n_mem if n_mem else np.full(len(wins), np.nan)
        acc_clean = right_clean / n_clean if n_clean else np.full(len(wins), np.nan)
    starts = np.array([s for s, _ in wins], dtype=np.int64)
    ends = np.array([e for _, e in wins], dtype=np.int64)
    raw = pd.DataFrame(
        {
            "start": starts,
            "size": ends - starts + 1,
            "end": ends,
            "error": 1.0 - acc_mem,
            "acc_memorised": acc_mem,
            "acc_clean": acc_clean,
            "n_memorised": n_mem,
            "n_clean": n_clean,
        }
    )
    unswapped = {
        "acc_memorised": base_mem / n_mem if n_mem else float("nan"),
        "acc_clean": base_clean / n_clean if n_clean else float("nan"),
        "n_memorised": n_mem,
        "n_clean": n_clean,
    }
    return raw, unswapped


def run_swapping(
    examples_path: str | Path,
    tokens_path: str | Path,
    model_dir: str | Path,
    twin_dir: str | Path,
    settings: Mapping[str, Any] | SwappingSettings,
    raw_path: str | Path,
    weights_path: str | Path,
    memorised: MemorisedSpec = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One swapping job: load the noisy model and its clean twin, swap every window, write outputs.

    ``settings``: :class:`SwappingSettings` or the rule's params dict. ``memorised``: see
    :mod:`memloc.localise.common` (default: the noisy training examples).
    """
    t0 = time.perf_counter()
    settings = SwappingSettings.from_dict(settings)
    device, job = start_job(settings, examples_path, tokens_path, memorised)
    noisy = load_classifier(model_dir)
    twin = load_classifier(twin_dir)
    L = block_access(noisy).num_layers
    log.info(
        "swapping %s <- %s: %d blocks, %d windows, %d memorised / %d clean training examples, device %s",
        model_dir, twin_dir, L, len(windows(L, settings.max_window)), int(job.memorised.sum()), int(job.clean.sum()), device,
    )
    choice = job_precision(settings, noisy, job.train, settings.eval_batch_size, device)
    raw, unswapped = swap_windows(noisy, twin, job.train, job.memorised, choice.apply(settings), device, job.clean)
    weights = weights_frame(window_weights(raw, L), TECHNIQUE)
    log.info(
        "unswapped: memorised acc %.4f, clean acc %.4f; weights %s",
        unswapped["acc_memorised"], unswapped["acc_clean"], np.round(weights["weight"].to_numpy(), 3).tolist(),
    )
    meta = provenance(
        TECHNIQUE,
        settings,
        {"examples": examples_path, "tokens": tokens_path, "model": model_dir, "twin": twin_dir},
        num_layers=L,
        family=block_access(noisy).family,
        memorised_set=job.memorised_source,
        unswapped=unswapped,
        precision=choice.record(),
        seconds=round(time.perf_counter() - t0, 2),
    )
    write_outputs(raw, weights, raw_path, weights_path, meta)
    return raw, weights
