"""Subset models for counterfactual memorisation (docs/protocol.md §5.1).

Subset model k trains a fresh classifier, from the pretrained weights, on a seeded share
(``fraction``, 0.5 in the paper) of the noisy training set and then scores *every* training
example, in and out of its subset, with the probability of its (perturbed) training label.

The subset depends only on the data set's data seeds (``split_seed`` and ``noise.seed``), on k
and on the training examples themselves, never on K, the model or the training settings: raising
K adds models without changing the existing ones, and two models of one data set see the same
k-th subset. With ``stratify`` (memloc's default) the draw is stratified by (label, is_noisy), so
every subset model sees about the same class balance and noise share as the full training set;
without it, it is a plain random share (the published code's ``random.shuffle`` half).
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger("memloc.counterfactual")

# Contract columns of `counterfactual/{dataset}/{model}/k{k}.parquet` (docs/protocol.md §3.2); the table
# also carries `label`, `pred` and `is_noisy` for convenience.
SUBSET_COLUMNS = ("example_id", "in_train", "p_label", "correct")

# The strata of a stratified draw (columns missing from the table are ignored).
STRATA = ("label", "is_noisy")

# Mixed into the subset seed so the draw is independent of every other use of the data seeds.
_SUBSET_STREAM = 0x63660001


def subset_seed_sequence(k: int, split_seed: int, noise_seed: int) -> np.random.SeedSequence:
    """The RNG seed of subset k of a data set with the given data seeds."""
    if k < 1:
        raise ValueError(f"subset index k must be >= 1, got {k}")
    return np.random.SeedSequence([_SUBSET_STREAM, int(split_seed), int(noise_seed), int(k)])


def model_seed(k: int) -> int:
    """Seed of subset model k's head initialisation and batch order."""
    return int(k)


def subset_mask(
    train: pd.DataFrame,
    fraction: float,
    k: int,
    split_seed: int = 0,
    noise_seed: int = 0,
    *,
    stratify: bool,
) -> np.ndarray:
    """Boolean mask over the rows of ``train``: True for the examples subset model k trains on.

    Independent of the row order of ``train`` (examples are ordered by ``example_id`` first).
    Within each stratum (:data:`STRATA` with ``stratify``, else one stratum of all examples),
    floor(fraction * n) examples are taken, plus one more with probability equal to the
    fractional part, so the expected share is exactly ``fraction`` in each stratum.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    ids = train["example_id"].to_numpy()
    if len(np.unique(ids)) != len(ids):
        raise ValueError("subset_mask: example_id values must be unique")
    rng = np.random.default_rng(subset_seed_sequence(k, split_seed, noise_seed))
    order = np.argsort(ids, kind="stable")
    cols = [c for c in STRATA if c in train.columns] if stratify else []
    if cols:
        keys = train[cols].iloc[order].astype("int64").to_numpy()
        _, stratum = np.unique(keys, axis=0, return_inverse=True)
        stratum = stratum.reshape(-1)
    else:
        stratum = np.zeros(len(ids), dtype=np.int64)
    chosen_sorted = np.zeros(len(ids), dtype=bool)
    for s in range(int(stratum.max()) + 1 if len(ids) else 0):
        members = np.flatnonzero(stratum == s)
        target = fraction * len(members)
        n_take = math.floor(target)
        if rng.random() < target - n_take:
            n_take += 1
        chosen_sorted[rng.permutation(members)[:n_take]] = True
    mask = np.zeros(len(ids), dtype=bool)
    mask[order] = chosen_sorted
    return mask


def subset_settings(training: dict[str, Any], counterfactual: dict[str, Any]) -> dict[str, Any]:
    """The model's training settings with the counterfactual epochs, learning rate and batch size
    (a null learning rate or batch size keeps the model's own).

    Plain dicts in and out, so a rule can put the result in ``params:`` (a change re-runs exactly
    the subset models it affects). K (``counterfactual.models``) is deliberately not part of it.
    """
    out = dict(training)
    out["epochs"] = int(counterfactual["epochs"])
    if counterfactual.get("learning_rate") is not None:
        out["learning_rate"] = float(counterfactual["learning_rate"])
    if counterfactual.get("batch_size") is not None:
        out["batch_size"] = int(counterfactual["batch_size"])
    return out


def subset_predictions(model, train_set, in_train: np.ndarray, is_noisy: np.ndarray, settings, device) -> pd.DataFrame:
    """Per-example table of one subset model over every training example (docs/protocol.md §5.1)."""
    from memloc.training.evaluation import predict_logits, softmax

    logits = predict_logits(model, train_set, settings.eval_batch_size, device, settings.precision)
    probs = softmax(logits.astype(np.float64))
    pred = logits.argmax(axis=1)
    labels = train_set.labels
    return pd.DataFrame(
        {
            "example_id": train_set.example_ids.astype(np.int64),
            "in_train": np.asarray(in_train, dtype=bool),
            "p_label": probs[np.arange(len(labels)), labels],
            "correct": pred == labels,
            "label": labels.astype(np.int64),
            "pred": pred.astype(np.int64),
            "is_noisy": np.asarray(is_noisy, dtype=bool),
        }
    )


def final_scores(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Accuracy, mean p_label and size of the final subset model per group of training examples
    (its own examples, their noisy and clean parts, the held-out rest): the table's metadata summary."""
    groups = {
        "in_train": table["in_train"],
        "in_train_noisy": table["in_train"] & table["is_noisy"],
        "in_train_clean": table["in_train"] & ~table["is_noisy"],
        "held_out": ~table["in_train"],
    }
    out = {}
    for name, mask in groups.items():
        part = table[mask]
        empty = part.empty
        out[name] = {
            "accuracy": float("nan") if empty else float(part["correct"].mean()),
            "mean_p_label": float("nan") if empty else float(part["p_label"].mean()),
            "n": int(len(part)),
        }
    return out


def run_subset(
    examples_path: str | Path,
    tokens_path: str | Path,
    pretrained_dir: str | Path,
    k: int,
    fraction: float,
    stratify: bool,
    settings: dict[str, Any],
    out_path: str | Path,
    work_dir: str | Path,
    split_seed: int = 0,
    noise_seed: int = 0,
    provenance: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Train subset model k and write its predictions for every training example to ``out_path``.

    ``settings`` is a training-settings dict (see :func:`subset_settings`). The resume state lives
    in ``work_dir`` (outside the declared outputs) and is removed once the table is written.
    """
    from memloc import __version__
    from memloc.device import select_device, set_determinism
    from memloc.io import write_parquet
    from memloc.models.loading import load_classifier
    from memloc.tokens import load_tokenset
    from memloc.training.finetune import trainable_parameters
    from memloc.training.loop import Settings, fit

    cfg = Settings.from_dict(settings)
    examples = pd.read_parquet(examples_path)
    n_classes = int(max(examples["label"].max(), examples["label_orig"].max()) + 1)
    train = examples[examples["split"] == "train"].reset_index(drop=True)
    if train.empty:
        raise ValueError(f"{examples_path}: no training examples")
    in_train = subset_mask(train, fraction, k, split_seed, noise_seed, stratify=stratify)
    if not in_train.any():
        raise ValueError(f"subset {k} of {examples_path} is empty (fraction={fraction}, {len(train)} examples)")
    is_noisy = train["is_noisy"].to_numpy(dtype=bool)
    full = load_tokenset(tokens_path, train, "label")
    subset = full.subset(np.flatnonzero(in_train))

    seed = model_seed(k)
    set_determinism(seed, cfg.deterministic)
    device = select_device(cfg.device)
    model = load_classifier(pretrained_dir, num_labels=n_classes, seed=seed)
    log.info(
        "subset model k=%d (seed %d): training on %d of %d training examples (%d noisy), "
        "%d epochs, lr %g, batch %d, device %s",
        k, seed, int(in_train.sum()), len(train), int((in_train & is_noisy).sum()),
        cfg.epochs, cfg.learning_rate, cfg.batch_size, device,
    )
    # Only the final weights are used: no per-epoch evaluation (the weights are bitwise the same).
    result = fit(model, trainable_parameters(model, "noisy", cfg.freeze_embeddings), subset, cfg, seed, device, n_classes,
                 work_dir=work_dir, trace=False)
    table = subset_predictions(model, full, in_train, is_noisy, result.precision.apply(cfg), device)
    scores = final_scores(table)
    log.info(
        "subset model k=%d: accuracy on its own examples %.4f (noisy %.4f), on the held-out half %.4f",
        k, scores["in_train"]["accuracy"], scores["in_train_noisy"]["accuracy"], scores["held_out"]["accuracy"],
    )
    meta = {
        "k": int(k),
        "seed": seed,
        "fraction": float(fraction),
        "stratify": bool(stratify),
        "split_seed": int(split_seed),
        "noise_seed": int(noise_seed),
        "n_in": int(in_train.sum()),
        "n_train": len(train),
        "settings": cfg.__dict__,
        "scores": scores,
        "precision": result.precision.record(),
        "memloc_version": __version__,
        **(provenance or {}),
    }
    write_parquet(table, out_path, metadata=meta)
    shutil.rmtree(work_dir, ignore_errors=True)
    return table
