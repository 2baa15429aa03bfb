"""One fine-tuning job: a (dataset, model, variant, seed) model with its trace and predictions.

Variants (docs/protocol.md §4.6): ``noisy`` trains on the perturbed labels; ``clean`` on the original labels
with the same seed (the donor for layer swapping); ``frozen`` trains only the head on the
perturbed labels (the baseline for forgetting gradients and probing).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from memloc import __version__
from memloc.device import select_device, set_determinism
from memloc.io import atomic_dir, read_metadata, write_parquet
from memloc.models.blocks import block_access
from memloc.models.loading import load_classifier
from memloc.tokens import TokenSet, load_split_tokensets
from memloc.training.evaluation import predict_logits, softmax
from memloc.training.loop import FitResult, Settings, fit
from memloc.training.stopping import stop_rule

log = logging.getLogger("memloc.train")

MAIN_VARIANTS = ("noisy", "clean", "frozen")


def training_labels(variant: str) -> str:
    """The examples-table column a variant trains on."""
    return "label_orig" if variant == "clean" else "label"


def trainable_parameters(model, variant: str, freeze_embeddings: bool) -> list[torch.nn.Parameter]:
    """Blocks and head (embeddings frozen by default); the frozen variant trains only the head."""
    access = block_access(model)
    head = list(access.head_parameters())
    if variant == "frozen":
        return head
    params = [p for i in range(1, access.num_layers + 1) for p in access.block_parameters(i)] + head
    if not freeze_embeddings:
        params = list(access.embedding_parameters()) + params
    return params


def predictions_table(
    model, sets: dict[str, TokenSet], settings: Settings, device: torch.device, checkpoint: str, is_noisy: dict[str, np.ndarray],
    known: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Per-example predictions with the probability of the training label (docs/protocol.md §4.7).

    ``known`` holds logits of some splits already computed for these weights (the trace's
    evaluation of the same epoch); only the other splits run a forward pass.
    """
    frames = []
    for split, data in sets.items():
        if known is not None and split in known:
            logits = known[split]
        else:
            logits = predict_logits(model, data, settings.eval_batch_size, device, settings.precision)
        probs = softmax(logits.astype(np.float64))
        pred = logits.argmax(axis=1)
        frames.append(
            pd.DataFrame(
                {
                    "example_id": data.example_ids,
                    "split": split,
                    "checkpoint": checkpoint,
                    "label": data.labels,
                    "pred": pred,
                    "p_label": probs[np.arange(len(data)), data.labels],
                    "correct": pred == data.labels,
                    "is_noisy": is_noisy[split],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def twin_epochs(twin_trace_path: str | None) -> int | None:
    """Epochs the noisy twin trained, from its trace's metadata (``None`` without a trace)."""
    if not twin_trace_path:
        return None
    meta = read_metadata(twin_trace_path)
    if "epochs_trained" not in meta:
        raise ValueError(f"{twin_trace_path}: no epochs_trained in its metadata; re-run the noisy twin's train_finetune job")
    return int(meta["epochs_trained"])


def stopping_record(result: FitResult, rule) -> dict:
    """What the trace metadata and checkpoints say about when training stopped (docs/protocol.md §4.5)."""
    return {
        "stopping": rule.stopping,
        "memorised_accuracy": rule.threshold,
        "threshold_epoch": result.threshold_epoch or None,
        "epochs_trained": result.epochs_trained,
        "memorisation_reached": bool(result.threshold_epoch),
    }


def save_checkpoint(model, path: Path, info: dict) -> None:
    with atomic_dir(path) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        (tmp / "memloc.json").write_text(json.dumps(info, indent=2, default=str) + "\n")


def run_finetune(
    examples_path: str,
    tokens_path: str,
    pretrained_dir: str,
    variant: str,
    seed: int,
    settings: Settings,
    out_dir: str,
    work_dir: str,
    provenance: dict | None = None,
    twin_trace_path: str | None = None,
) -> FitResult:
    """Fine-tune and write ``final/``, ``memorised/``, ``trace.parquet`` and ``predictions.parquet``.

    ``twin_trace_path``: the noisy twin's trace, which a clean variant under ``training.stopping:
    memorised`` needs (it trains as many epochs, :func:`~memloc.training.stopping.stop_rule`).
    """
    if variant not in MAIN_VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {MAIN_VARIANTS}")
    out_dir, work_dir = Path(out_dir), Path(work_dir)
    examples = pd.read_parquet(examples_path)
    n_classes = int(max(examples["label"].max(), examples["label_orig"].max()) + 1)
    label_col = training_labels(variant)
    rule = stop_rule(variant, settings, twin_epochs(twin_trace_path))
    sets = load_split_tokensets(tokens_path, examples, label_col)
    is_noisy = {split: examples.loc[examples["split"] == split, "is_noisy"].to_numpy() for split in sets}

    set_determinism(seed, settings.deterministic)
    device = select_device(settings.device)
    model = load_classifier(pretrained_dir, num_labels=n_classes, seed=seed)
    log.info(
        "fine-tuning %s variant=%s seed=%d on %s: %d train / %d validation examples, %d classes, device %s",
        pretrained_dir, variant, seed, examples_path, len(sets["train"]), len(sets["validation"]), n_classes, device,
    )
    params = trainable_parameters(model, variant, settings.freeze_embeddings)
    noisy_mask = is_noisy["train"]
    result = fit(
        model,
        params,
        sets["train"],
        settings,
        seed,
        device,
        n_classes,
        eval_sets={"validation": sets["validation"]},
        train_groups={"train_noisy": noisy_mask, "train_clean": ~noisy_mask},
        work_dir=work_dir,
        stop=rule,
    )
    info = {
        "variant": variant,
        "seed": seed,
        "memorised_epoch": result.memorised_epoch,
        "memorised_reached": result.memorised_reached,
        "epochs": settings.epochs,
        **stopping_record(result, rule),
        "precision": result.precision.record(),
        "memloc_version": __version__,
        **(provenance or {}),
    }
    meta = {**info, "settings": settings.__dict__}
    run_settings = result.precision.apply(settings)  # evaluate in the precision the run trained in
    preds = [predictions_table(model, sets, run_settings, device, "final", is_noisy, result.final_logits)]
    save_checkpoint(model, out_dir / "final", {**info, "checkpoint": "final"})
    model.load_state_dict(result.memorised_state)
    preds.append(predictions_table(model, sets, run_settings, device, "memorised", is_noisy, result.memorised_logits))
    save_checkpoint(model, out_dir / "memorised", {**info, "checkpoint": "memorised"})
    write_parquet(pd.concat(preds, ignore_index=True), out_dir / "predictions.parquet", metadata=meta)
    write_parquet(result.trace, out_dir / "trace.parquet", metadata=meta)
    shutil.rmtree(work_dir, ignore_errors=True)
    return result
