"""Layer retraining (docs/protocol.md §6.4): reset each window to its pretrained weights and retrain it.

For a window ``(s, e)``: start from the noisy model (its full state, head included, is reloaded
for every window), reset blocks ``s..e`` to the pretrained weights and train them together with
the head (without BERT's pooler when ``freeze_pooler``) on clean training examples, every other
block and the embeddings frozen (the shared loop's AdamW, schedule and clipping; with
``clip_scope: all`` the frozen parameters' gradients count in the clipped norm, which needs
``cache_prefix: false``). As many clean training examples as there are memorised ones are held
out (seeded) and never trained on. Then

- ``a`` = accuracy on the memorised examples with respect to their perturbed labels;
- ``a_all`` = ``a`` of the window of all L blocks (always trained, even above ``max_window``);
- ``a' = (a - a_all) / (1 - a_all)`` and ``error = 1 - a'``. By construction the all-blocks
  window has ``a' = 0``, error 1. A window that holds the memorisation (retraining it forgets the
  perturbed labels as thoroughly as retraining everything) scores near 1; a window whose
  retraining leaves the memorised labels in place (``a`` near 1) scores near 0.

Cached prefix (``cache_prefix``, default on). Blocks below the window are frozen and never
reset for any window starting at ``s``, so their output, the input to block ``s``, is computed
once per window start for every training and evaluation example and reused by every window with
that start and every epoch; training runs :func:`~memloc.models.blocks.forward_from_block` from
block ``s``. **The cached prefix (embeddings, their dropout and blocks 1..s-1) runs without
dropout** (eval mode), while the window, the blocks above it and the head run in train mode with
dropout as usual (:func:`set_train_modes`; containers such as OPT's decoder are in eval mode too,
which also turns off OPT's LayerDrop, 0 by default). Without ``cache_prefix`` the whole model
runs in train mode, so the frozen prefix applies dropout as in ordinary fine-tuning. Evaluation
runs in eval mode and is the same either way.

The cache holds one hidden state per real token of every example (``sum(lengths) * d`` numbers)
for one window start at a time; it stays on the training device when it takes under a third of
the free GPU memory, otherwise it lives in CPU memory and is moved per batch.

Determinism: the held-out set, batch order (seed, epoch) and every window's RNG stream (seed,
start, end) depend only on the seed, so a window's result does not depend on which other windows
ran before it, and a resumed job (``progress_path``) ends with the same table.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import pandas as pd
import torch

from memloc.device import autocast
from memloc.io import stable_hash, write_text
from memloc.localise.common import (
    MemorisedSpec,
    block_input,
    check_twins,
    provenance,
    split_inputs,
    start_job,
    weights_frame,
    write_outputs,
)
from memloc.localise.settings import JobSettings
from memloc.localise.windows import window_weights, windows
from memloc.models.blocks import BlockAccess, block_access, copy_blocks, forward_from_block
from memloc.models.loading import load_classifier
from memloc.precision import PrecisionChoice, probe_shape, resolve_precision
from memloc.tokens import TokenSet
from memloc.training.batching import eval_batches, train_batches
from memloc.training.evaluation import model_inputs
from memloc.training.loop import Classifier, Task, train_loop

log = logging.getLogger("memloc.localise.retraining")

TECHNIQUE = "retraining"
RAW_COLUMNS = (
    "start", "size", "end", "acc_memorised", "acc_memorised_norm", "error",
    "acc_heldout_clean", "final_train_loss",
)


@dataclass(frozen=True)
class RetrainSettings(JobSettings):
    """``localisation.retraining``: the recipe of each window's retraining (the shared loop's)."""

    technique: ClassVar[str] = TECHNIQUE

    epochs: int
    learning_rate: float
    batch_size: int
    warmup_ratio: float
    lr_schedule: str
    weight_decay: float
    weight_decay_scope: str
    max_grad_norm: float
    clip_scope: str
    freeze_pooler: bool
    length_buckets: bool
    cache_prefix: bool


# --------------------------------------------------------------------------- modes and cache


def set_train_modes(access: BlockAccess, start: int) -> None:
    """Train mode for blocks ``start..L`` and the head; eval mode for everything below.

    The head is every module whose parameters are all head parameters, plus parameter-free
    modules outside the base model (e.g. BERT's classifier dropout). Everything else (the
    embeddings, embedding dropout such as GPT-2's ``transformer.drop``, blocks ``1..start-1``,
    the containers) is in eval mode, so the prefix computes exactly what the cache holds and
    consumes no random numbers.
    """
    model = access.model
    model.eval()
    head = {id(p) for p in access.head_parameters()}
    base = getattr(model, "base_model", model)
    in_base = {id(m) for m in base.modules()} if base is not model else set()
    roots: list[torch.nn.Module] = list(access.blocks[start - 1 :])
    for module in model.modules():
        params = list(module.parameters())
        if params and all(id(p) in head for p in params):
            roots.append(module)
        elif not params and id(module) not in in_base and module is not model:
            roots.append(module)
    for module in roots:
        module.train()


class PrefixCache:
    """The input to block ``start`` of every example of a :class:`TokenSet` (eval mode).

    Stored flat, one row per real token, so right-padded batches of any composition can be
    rebuilt; padding positions are zeros (masked out by attention, ignored by pooling).
    """

    def __init__(self, start: int, flat: torch.Tensor, lengths: np.ndarray):
        self.start = start
        self.flat = flat
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])

    @property
    def nbytes(self) -> int:
        return self.flat.numel() * self.flat.element_size()

    def batch(self, idx, device: torch.device) -> torch.Tensor:
        """Right-padded hidden states ``[B, max length, d]`` of the examples at ``idx``."""
        idx = np.asarray(idx, dtype=np.int64)
        width = int(self.lengths[idx].max())
        out = self.flat.new_zeros((len(idx), width, self.flat.shape[1]))
        for row, i in enumerate(idx):
            n = self.lengths[i]
            out[row, :n] = self.flat[self.offsets[i] : self.offsets[i] + n]
        return out.to(device, non_blocking=True)


def _cache_device(nbytes: int, device: torch.device) -> torch.device:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if nbytes < free / 3:
            return device
    elif device.type != "mps":
        return device
    return torch.device("cpu")


@torch.no_grad()
def compute_prefix_cache(
    access: BlockAccess, start: int, data: TokenSet, batch_size: int, device: torch.device, precision: str
) -> PrefixCache:
    """Run the embeddings and blocks ``1..start-1`` once (eval mode) over every example of ``data``."""
    was_training = access.model.training
    access.model.eval()
    lengths = data.lengths
    rows: list[torch.Tensor | None] = [None] * len(data)
    for idx in eval_batches(lengths, batch_size):
        batch = data.collate(idx)
        with autocast(device, precision):
            hidden = block_input(access, start, model_inputs(batch, device))
        for row, i in enumerate(idx):
            rows[i] = hidden[row, : lengths[i]]
    flat = torch.cat(rows, dim=0)  # type: ignore[arg-type]
    target = _cache_device(flat.numel() * flat.element_size(), device)
    access.model.train(was_training)
    return PrefixCache(start, flat.to(target), lengths)


# --------------------------------------------------------------------------- one window


def window_seed(seed: int, start: int, end: int) -> int:
    """The RNG seed of one window's training (independent of the other windows)."""
    return int(np.random.SeedSequence([int(seed), int(start), int(end), 0x72657472]).generate_state(1)[0])


def window_logits(
    access: BlockAccess, start: int, inputs: dict[str, torch.Tensor], cache: PrefixCache | None, idx
) -> torch.Tensor:
    """Logits of one batch: from block ``start`` on cached hidden states, or the plain forward."""
    if cache is None:
        return access.model(**inputs).logits
    if cache.start != start:
        raise ValueError(f"prefix cache is for block {cache.start}, not {start}")
    ids, mask, extra = split_inputs(inputs)
    hidden = cache.batch(idx, ids.device)
    return forward_from_block(access, start, hidden, ids, mask, **extra)


def trainable_parameters(access: BlockAccess, start: int, end: int, freeze_pooler: bool) -> list[torch.nn.Parameter]:
    """Blocks ``start..end`` and the head (without BERT's pooler when ``freeze_pooler``)."""
    params = [p for i in range(start, end + 1) for p in access.block_parameters(i)]
    frozen = {id(p) for p in access.pooler_parameters()} if freeze_pooler else set()
    return params + [p for p in access.head_parameters() if id(p) not in frozen]


def retrain_window(
    access: BlockAccess,
    pretrained: BlockAccess,
    start: int,
    end: int,
    data: TokenSet,
    train_idx: np.ndarray,
    settings: RetrainSettings,
    device: torch.device,
    cache: PrefixCache | None = None,
) -> float:
    """Reset blocks ``start..end`` of ``access.model`` to ``pretrained`` and retrain them and the head
    (:func:`trainable_parameters`).

    Trains in place on ``data`` at positions ``train_idx`` (``cache``, if given, covers all of
    ``data``). Returns the mean training loss of the last epoch. Every other parameter keeps its
    value bit for bit.
    """
    model = access.model
    if cache is not None and settings.clip_scope == "all":
        raise ValueError("clip_scope 'all' needs the prefix's gradients: retrain without a prefix cache (cache_prefix: false)")
    copy_blocks(access, pretrained, range(start, end + 1))
    lengths = data.lengths[train_idx]

    def batches_for(epoch: int) -> list[tuple[str, np.ndarray]]:
        order = train_batches(lengths, settings.batch_size, settings.seed, epoch, settings.length_buckets)
        return [("window", train_idx[b]) for b in order]

    def forward(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        batch = data.collate(idx)
        labels = batch["labels"].to(device)
        return window_logits(access, start, model_inputs(batch, device), cache, idx), labels

    torch.manual_seed(window_seed(settings.seed, start, end))
    train_mode = (lambda: set_train_modes(access, start)) if cache is not None else model.train
    task = Task(trainable_parameters(access, start, end, settings.freeze_pooler), settings.learning_rate, forward)
    result = train_loop(Classifier(model, train_mode), {"window": task}, batches_for, settings, device, progress=False)
    model.eval()
    losses = result.epoch_losses[-1] if result.epoch_losses else []
    return float(np.mean(losses)) if losses else float("nan")


@torch.no_grad()
def accuracy_at(
    access: BlockAccess,
    start: int,
    data: TokenSet,
    positions: np.ndarray,
    batch_size: int,
    device: torch.device,
    precision: str,
    cache: PrefixCache | None = None,
) -> float:
    """Eval-mode accuracy on ``data`` at ``positions`` against ``data.labels``."""
    if len(positions) == 0:
        return float("nan")
    access.model.eval()
    right = 0
    for order in eval_batches(data.lengths[positions], batch_size):
        idx = positions[order]
        batch = data.collate(idx)
        with autocast(device, precision):
            logits = window_logits(access, start, model_inputs(batch, device), cache, idx)
        right += int((logits.argmax(-1).cpu() == batch["labels"]).sum())
    return right / len(positions)


# --------------------------------------------------------------------------- all windows


def heldout_split(clean_positions: np.ndarray, n_heldout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train, heldout)`` positions: ``n_heldout`` clean examples held out at random (seeded)."""
    if n_heldout >= len(clean_positions):
        raise ValueError(
            f"cannot hold out {n_heldout} of {len(clean_positions)} clean examples and still train; "
            "the memorised set must be smaller than half of the training set"
        )
    rng = np.random.default_rng([int(seed), 0x686F6C64])
    chosen = rng.permutation(len(clean_positions))
    held = np.sort(clean_positions[chosen[:n_heldout]])
    train = np.sort(clean_positions[chosen[n_heldout:]])
    return train, held


def normalise(raw: pd.DataFrame, a_all: float) -> pd.DataFrame:
    """Add ``acc_memorised_norm`` = (a - a_all) / (1 - a_all) and ``error`` = 1 - a'."""
    raw = raw.copy()
    if not np.isfinite(a_all) or a_all >= 1.0:
        log.warning("retraining all blocks left every memorised label in place (a_all=%s): a' is undefined", a_all)
        norm = np.full(len(raw), np.nan)
    else:
        norm = (raw["acc_memorised"].to_numpy(dtype=np.float64) - a_all) / (1.0 - a_all)
    raw["acc_memorised_norm"] = norm
    raw["error"] = 1.0 - norm
    return raw


class _Progress:
    """Finished windows as JSON lines, keyed by the run, so a killed job resumes where it stopped.

    The header line also holds the job's precision (``auto`` resolved once by ``choose()``), so a
    resumed job retrains its remaining windows in the precision of the first ones.
    """

    def __init__(self, path: str | Path | None, key: str, choose: Callable[[], PrecisionChoice]):
        self.path = Path(path) if path else None
        self.key = key
        self.rows: dict[tuple[int, int], dict] = {}
        header: dict = {}
        if self.path is not None and self.path.exists():
            lines = self.path.read_text().splitlines()
            try:
                header = json.loads(lines[0]) if lines else {}
            except json.JSONDecodeError:  # the header was cut by a kill: start over
                header = {}
            if header.get("key") == key:
                for line in lines[1:]:
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:  # a line cut by a kill
                        break
                    self.rows[(row["start"], row["end"])] = row
                log.info("resuming: %d windows already retrained (%s)", len(self.rows), self.path)
            else:
                log.info("ignoring progress of a different run in %s", self.path)
                header = {}
        if "precision" in header:
            self.precision = PrecisionChoice.from_record(header["precision"])
            log.info("resuming in %s, the precision the job started in", self.precision.resolved)
        else:
            self.precision = choose()
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        first = {"key": key, "precision": self.precision.record()}
        text = "".join(json.dumps(r) + "\n" for r in [first, *self.rows.values()])
        write_text(text, self.path)

    def add(self, row: dict) -> None:
        self.rows[(row["start"], row["end"])] = row
        if self.path is not None:
            with open(self.path, "a") as fh:
                fh.write(json.dumps(row) + "\n")
                fh.flush()
                os.fsync(fh.fileno())

    def remove(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def retrain_windows(
    noisy_model,
    pretrained_model,
    data: TokenSet,
    memorised: np.ndarray,
    settings: RetrainSettings,
    device: torch.device | str = "cpu",
    clean: np.ndarray | None = None,
    progress_path: str | Path | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Retrain every window (up to ``settings.max_window`` blocks, plus the all-blocks window).

    ``data``: training examples with their perturbed labels; ``memorised`` / ``clean``: bool masks
    over it (``clean`` defaults to the rest). Returns the raw table (columns :data:`RAW_COLUMNS`,
    one row per window up to ``max_window``) and a summary with ``a_all``.
    """
    device = torch.device(device)
    memorised = np.asarray(memorised, dtype=bool)
    clean = ~memorised if clean is None else np.asarray(clean, dtype=bool)
    access, pre = block_access(noisy_model), block_access(pretrained_model)
    check_twins(access, pre, "layer retraining")
    noisy_model.to(device).eval()
    pretrained_model.to(device).eval()
    L = access.num_layers
    mem_pos = np.flatnonzero(memorised)
    train_pos, held_pos = heldout_split(np.flatnonzero(clean), len(mem_pos), settings.seed)
    # One TokenSet for everything the job touches: training pool, memorised, held-out.
    keep = np.concatenate([train_pos, mem_pos, held_pos])
    pool = data.subset(keep)
    n_train, n_mem = len(train_pos), len(mem_pos)
    p_train = np.arange(n_train)
    p_mem = np.arange(n_train, n_train + n_mem)
    p_held = np.arange(n_train + n_mem, len(keep))

    wins = windows(L, settings.max_window)
    todo = wins + ([(1, L)] if (1, L) not in wins else [])
    key = stable_hash(
        {"settings": asdict(settings), "L": L, "ids": pool.example_ids.tolist(), "labels": pool.labels.tolist()}
    )
    progress = _Progress(
        progress_path,
        key,
        lambda: resolve_precision(
            settings.precision, device, lambda: probe_shape(noisy_model, pool.lengths[p_train], settings.batch_size),
            settings.auto_precision_min_speedup,
        ),
    )
    choice = progress.precision
    settings = choice.apply(settings)  # every window trains and evaluates in the job's one precision
    noisy_state = {k: v.detach().clone() for k, v in noisy_model.state_dict().items()}
    log.info(
        "retraining %d windows (+ all blocks) of %d blocks: %d clean training, %d memorised, %d held-out clean "
        "examples; %d epochs, lr %g, cache_prefix %s",
        len(wins), L, n_train, n_mem, len(held_pos), settings.epochs, settings.learning_rate, settings.cache_prefix,
    )
    t_job = time.perf_counter()
    cache: PrefixCache | None = None
    for s, e in sorted(todo):
        if (s, e) in progress.rows:
            continue
        t0 = time.perf_counter()
        if settings.cache_prefix and (cache is None or cache.start != s):
            cache = None  # free the previous start's states first
            noisy_model.load_state_dict(noisy_state)
            cache = compute_prefix_cache(access, s, pool, settings.eval_batch_size, device, settings.precision)
            log.info("cached the input to block %d: %.1f MiB on %s", s, cache.nbytes / 2**20, cache.flat.device)
        noisy_model.load_state_dict(noisy_state)
        loss = retrain_window(access, pre, s, e, pool, p_train, settings, device, cache)
        args = (settings.eval_batch_size, device, settings.precision, cache)
        row = {
            "start": s,
            "size": e - s + 1,
            "end": e,
            "acc_memorised": accuracy_at(access, s, pool, p_mem, *args),
            "acc_heldout_clean": accuracy_at(access, s, pool, p_held, *args),
            "final_train_loss": loss,
            "seconds": round(time.perf_counter() - t0, 3),
        }
        progress.add(row)
        log.info(
            "window %d-%d: memorised acc %.4f, held-out clean acc %.4f, final loss %.4f (%.1fs; %d/%d done, %.0fs)",
            s, e, row["acc_memorised"], row["acc_heldout_clean"], loss, row["seconds"], len(progress.rows),
            len(todo), time.perf_counter() - t_job,
        )
    noisy_model.load_state_dict(noisy_state)

    all_row = progress.rows[(1, L)]
    a_all = float(all_row["acc_memorised"])
    raw = pd.DataFrame([progress.rows[w] for w in wins])
    raw = normalise(raw, a_all)
    raw = raw[["start", "size", "end", "acc_memorised", "acc_memorised_norm", "error", "acc_heldout_clean",
               "final_train_loss", "seconds"]]
    summary = {
        "a_all": a_all,
        "all_layers": all_row,
        "n_train_clean": int(n_train),
        "n_memorised": int(n_mem),
        "n_heldout_clean": int(len(held_pos)),
        "heldout_hash": stable_hash(pool.example_ids[p_held].tolist()),
        "precision": choice.record(),
    }
    progress.remove()
    return raw, summary


def run_retraining(
    examples_path: str | Path,
    tokens_path: str | Path,
    model_dir: str | Path,
    pretrained_dir: str | Path,
    settings: dict | RetrainSettings,
    raw_path: str | Path,
    weights_path: str | Path,
    memorised: MemorisedSpec = None,
    progress_path: str | Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One retraining job: every window of the noisy model, outputs written with provenance.

    ``settings``: the rule's params (see :class:`RetrainSettings`). ``memorised``: see
    :mod:`memloc.localise.common`. ``progress_path``: where finished windows are kept while the job
    runs (removed at the end), so a killed job resumes.
    """
    t0 = time.perf_counter()
    opts = RetrainSettings.from_dict(settings)
    device, job = start_job(opts, examples_path, tokens_path, memorised)
    noisy = load_classifier(model_dir)
    pretrained = load_classifier(pretrained_dir, num_labels=noisy.config.num_labels, seed=opts.seed)
    raw, summary = retrain_windows(
        noisy, pretrained, job.train, job.memorised, opts, device=device, clean=job.clean, progress_path=progress_path
    )
    access = block_access(noisy)
    weights = weights_frame(window_weights(raw, access.num_layers), TECHNIQUE)
    log.info("a_all %.4f; weights %s", summary["a_all"], np.round(weights["weight"].to_numpy(), 3).tolist())
    meta = provenance(
        TECHNIQUE,
        opts,
        {"examples": examples_path, "tokens": tokens_path, "model": model_dir, "pretrained": pretrained_dir},
        num_layers=access.num_layers,
        family=access.family,
        memorised_set=job.memorised_source,
        **summary,
        seconds=round(time.perf_counter() - t0, 2),
    )
    write_outputs(raw, weights, raw_path, weights_path, meta)
    return raw, weights
