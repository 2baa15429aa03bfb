"""The training loop shared by every stage that trains (main models, subset models, control).

AdamW with linear warm-up and decay, gradient clipping, optional autocast, a per-epoch trace, the
`memorised` checkpoint (first epoch whose train macro-F1 reaches the threshold) and resume from
the last finished epoch: a killed job continues where it stopped and ends with the same weights
as an uninterrupted run, because batch order depends only on (seed, epoch) and every RNG state is
saved with the epoch.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import torch

from memloc.device import autocast, needs_grad_scaler
from memloc.io import stable_hash
from memloc.tokens import TokenSet
from memloc.training.batching import eval_batches, train_batches
from memloc.training.metrics import accuracy, macro_f1

log = logging.getLogger("memloc.train")


@dataclass(frozen=True)
class Settings:
    """Hyperparameters of one training run (the config's `training` block)."""

    epochs: int = 8
    learning_rate: float = 1e-4
    batch_size: int = 16
    eval_batch_size: int = 64
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    memorised_f1: float = 0.993
    freeze_embeddings: bool = True
    length_buckets: bool = True
    precision: str = "fp32"
    device: str = "auto"
    deterministic: bool = True

    @classmethod
    def from_dict(cls, d: dict) -> "Settings":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class FitResult:
    trace: pd.DataFrame
    memorised_epoch: int
    memorised_reached: bool
    memorised_state: dict[str, torch.Tensor]


def _model_inputs(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items() if k != "labels"}


@torch.no_grad()
def predict_logits(model, data: TokenSet, batch_size: int, device: torch.device, precision: str = "fp32") -> np.ndarray:
    """Logits of every example in ``data`` (eval mode, length-sorted batches, original order)."""
    was_training = model.training
    model.eval()
    out: np.ndarray | None = None
    for idx in eval_batches(data.lengths, batch_size):
        batch = data.collate(idx)
        with autocast(device, precision):
            logits = model(**_model_inputs(batch, device)).logits
        logits = logits.float().cpu().numpy()
        if out is None:
            out = np.empty((len(data), logits.shape[1]), dtype=np.float32)
        out[idx] = logits
    model.train(was_training)
    return out if out is not None else np.empty((0, 0), dtype=np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def score(logits: np.ndarray, labels: np.ndarray, n_classes: int) -> dict[str, float]:
    """Mean cross-entropy, accuracy and macro-F1 of logits against labels."""
    if len(labels) == 0:
        return {"loss": float("nan"), "accuracy": float("nan"), "macro_f1": float("nan"), "n": 0}
    p = softmax(logits.astype(np.float64))
    loss = float(-np.mean(np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, None))))
    pred = logits.argmax(axis=1)
    return {
        "loss": loss,
        "accuracy": accuracy(labels, pred),
        "macro_f1": macro_f1(labels, pred, labels=np.arange(n_classes)),
        "n": int(len(labels)),
    }


def optimizer_step(loss, optimizer, scheduler, params, max_grad_norm: float, scaler=None) -> None:
    """Backward, clip the global gradient norm, step (through the fp16 grad scaler when given)."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        optimizer.step()
    scheduler.step()


def linear_schedule(optimizer, warmup_steps: int, total_steps: int):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class _Progress:
    """One log line per ~10% of an epoch: a text progress bar readable in a log file."""

    def __init__(self, epoch: int, epochs: int, n_batches: int, width: int = 20):
        self.epoch, self.epochs, self.n, self.width = epoch, epochs, n_batches, width
        self.every = max(1, n_batches // 10)
        self.t0 = time.perf_counter()
        self.examples = 0

    def step(self, i: int, loss: float, n_examples: int) -> None:
        self.examples += n_examples
        if (i + 1) % self.every and i + 1 != self.n:
            return
        frac = (i + 1) / self.n
        bar = "#" * round(frac * self.width) + "." * (self.width - round(frac * self.width))
        rate = self.examples / max(1e-9, time.perf_counter() - self.t0)
        log.info(
            "epoch %d/%d [%s] %3d%% %d/%d batches  loss %.4f  %.1f examples/s",
            self.epoch, self.epochs, bar, round(100 * frac), i + 1, self.n, loss, rate,
        )


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def fit(
    model,
    trainable: Iterable[torch.nn.Parameter],
    train: TokenSet,
    settings: Settings,
    seed: int,
    device: torch.device,
    n_classes: int,
    eval_sets: dict[str, TokenSet] | None = None,
    train_groups: dict[str, np.ndarray] | None = None,
    work_dir: str | Path | None = None,
    batch_fn: Callable[[int, int], list[np.ndarray]] | None = None,
) -> FitResult:
    """Train ``trainable`` parameters of ``model`` on ``train`` for ``settings.epochs`` epochs.

    ``train_groups`` maps a trace split name (e.g. ``train_noisy``) to a boolean mask over
    ``train``; those rows come from the per-epoch train evaluation at no extra cost.
    ``work_dir`` holds the resume state; it is removed by the caller once outputs are written.
    ``batch_fn(seed, epoch)`` overrides the batch order (e.g. two tasks shuffled together).
    """
    eval_sets = eval_sets or {}
    train_groups = train_groups or {}
    trainable = [p for p in trainable]
    trainable_ids = {id(p) for p in trainable}
    for p in model.parameters():
        p.requires_grad_(id(p) in trainable_ids)
    model.to(device)

    decay = [p for p in trainable if p.ndim >= 2]
    no_decay = [p for p in trainable if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.learning_rate,
    )

    def batches_for(epoch: int) -> list[np.ndarray]:
        if batch_fn is not None:
            return batch_fn(seed, epoch)
        return train_batches(train.lengths, settings.batch_size, seed, epoch, settings.length_buckets)

    steps_per_epoch = len(batches_for(1))
    total = steps_per_epoch * settings.epochs
    scheduler = linear_schedule(optimizer, math.ceil(settings.warmup_ratio * total), total)
    scaler = torch.amp.GradScaler("cuda") if needs_grad_scaler(device, settings.precision) else None

    run_key = stable_hash({"settings": asdict(settings), "seed": seed, "n": len(train), "ids": train.example_ids[:50].tolist()})
    rows: list[dict] = []
    memorised_epoch, memorised_state = 0, None
    start_epoch = 1
    state_path = Path(work_dir) / "state.pt" if work_dir else None
    if state_path is not None and state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        if state.get("run_key") == run_key:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if scaler is not None and state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            _set_rng_state(state["rng"])
            rows = state["trace"]
            memorised_epoch = state["memorised_epoch"]
            if memorised_epoch:
                memorised_state = torch.load(Path(work_dir) / "memorised.pt", map_location="cpu", weights_only=True)
            start_epoch = state["epoch"] + 1
            log.info("resuming from the end of epoch %d (%s)", state["epoch"], state_path)
        else:
            log.info("ignoring resume state from a different run in %s", state_path)

    for epoch in range(start_epoch, settings.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        batches = batches_for(epoch)
        progress = _Progress(epoch, settings.epochs, len(batches))
        for i, idx in enumerate(batches):
            batch = train.collate(idx)
            labels = batch["labels"].to(device)
            with autocast(device, settings.precision):
                logits = model(**_model_inputs(batch, device)).logits
            loss = torch.nn.functional.cross_entropy(logits.float(), labels)
            optimizer_step(loss, optimizer, scheduler, trainable, settings.max_grad_norm, scaler)
            progress.step(i, float(loss.detach()), len(idx))
        train_seconds = time.perf_counter() - t0

        logits = predict_logits(model, train, settings.eval_batch_size, device, settings.precision)
        epoch_rows = [{"epoch": epoch, "split": "train", **score(logits, train.labels, n_classes)}]
        for name, mask in train_groups.items():
            epoch_rows.append({"epoch": epoch, "split": name, **score(logits[mask], train.labels[mask], n_classes)})
        for name, data in eval_sets.items():
            lg = predict_logits(model, data, settings.eval_batch_size, device, settings.precision)
            epoch_rows.append({"epoch": epoch, "split": name, **score(lg, data.labels, n_classes)})
        for r in epoch_rows:
            r["seconds"] = train_seconds
        rows.extend(epoch_rows)
        train_f1 = epoch_rows[0]["macro_f1"]
        log.info(
            "epoch %d/%d done in %.1fs: " + "  ".join(f"{r['split']} loss {r['loss']:.4f} acc {r['accuracy']:.4f} f1 {r['macro_f1']:.4f}" for r in epoch_rows),
            epoch, settings.epochs, train_seconds,
        )
        if not memorised_epoch and train_f1 >= settings.memorised_f1:
            memorised_epoch = epoch
            memorised_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            log.info("train macro-F1 %.4f >= %.3f: epoch %d is the memorised checkpoint", train_f1, settings.memorised_f1, epoch)
            if state_path is not None:
                state_path.parent.mkdir(parents=True, exist_ok=True)
                _atomic_torch_save(memorised_state, Path(work_dir) / "memorised.pt")
        if state_path is not None and epoch < settings.epochs:
            state_path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_torch_save(
                {
                    "run_key": run_key,
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "rng": _rng_state(),
                    "trace": rows,
                    "memorised_epoch": memorised_epoch,
                },
                state_path,
            )

    reached = bool(memorised_epoch)
    if not reached:
        memorised_epoch = settings.epochs
        memorised_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        log.warning(
            "train macro-F1 never reached %.3f; the memorised checkpoint is the final epoch (flagged in the trace)",
            settings.memorised_f1,
        )
    trace = pd.DataFrame(rows)
    trace["memorised_epoch"] = trace["epoch"] == memorised_epoch
    trace["memorised_reached"] = reached
    return FitResult(trace=trace, memorised_epoch=memorised_epoch, memorised_reached=reached, memorised_state=memorised_state)
