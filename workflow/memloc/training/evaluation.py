"""Evaluation passes and scores shared by training traces, predictions tables and subset models."""

from __future__ import annotations

import numpy as np
import torch

from memloc.device import autocast
from memloc.tokens import TokenSet
from memloc.training.batching import eval_batches
from memloc.training.metrics import accuracy, macro_f1


def model_inputs(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """A collated batch without its labels, on ``device``: the keyword arguments of a forward pass."""
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
            logits = model(**model_inputs(batch, device)).logits
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
    """Mean cross-entropy, accuracy and macro-F1 of logits against labels (one trace row's values)."""
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


def score_rows(
    model, train: TokenSet, n_classes: int, batch_size: int, device: torch.device, precision: str,
    train_groups: dict[str, np.ndarray] | None = None, eval_sets: dict[str, TokenSet] | None = None,
    prefix: str = "", extra: dict | None = None, logits_out: dict[str, np.ndarray] | None = None,
) -> list[dict]:
    """Trace rows of one classifier after an epoch: ``train``, its groups (from the same pass) and eval sets.

    ``prefix`` names the splits of a second task (``aux_``); ``extra`` is added to every row.
    ``logits_out`` receives the logits of ``train`` and each eval set by split name, so a caller
    can reuse them instead of running the same pass again (they are bitwise what
    :func:`predict_logits` returns for the same weights).
    """
    extra = extra or {}
    logits = predict_logits(model, train, batch_size, device, precision)
    if logits_out is not None:
        logits_out["train"] = logits
    rows = [{"split": f"{prefix}train", **extra, **score(logits, train.labels, n_classes)}]
    for name, mask in (train_groups or {}).items():
        rows.append({"split": name, **extra, **score(logits[mask], train.labels[mask], n_classes)})
    for name, data in (eval_sets or {}).items():
        lg = predict_logits(model, data, batch_size, device, precision)
        if logits_out is not None:
            logits_out[name] = lg
        rows.append({"split": name, **extra, **score(lg, data.labels, n_classes)})
    return rows
