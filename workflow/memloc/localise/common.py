"""Shared plumbing of the localisation jobs: inputs, the memorised set, devices, outputs.

The memorised set defaults to the training examples with ``is_noisy`` True (docs/protocol.md §6.1). A later
stage may pass another set (e.g. the clean examples with the highest counterfactual
memorisation) as explicit example ids, an array or a Parquet/CSV file with an ``example_id``
column. The *clean* examples are the training examples that are neither memorised nor noisy:
with the default set these are exactly the non-noisy ones; with an explicit set, noisy examples
outside it are left out of both groups rather than counted as clean.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from memloc import __version__
from memloc.device import select_device, set_determinism
from memloc.errors import DataError
from memloc.io import write_parquet
from memloc.localise.settings import JobSettings
from memloc.models.blocks import BlockAccess, run_with_cache
from memloc.precision import PrecisionChoice, probe_shape, resolve_precision
from memloc.provenance import record
from memloc.tokens import TokenSet, load_tokenset

log = logging.getLogger("memloc.localise")

MemorisedSpec = str | Path | Sequence[int] | np.ndarray | None


@dataclass
class JobData:
    """The training examples of one job, with the memorised and clean groups as masks."""

    train: TokenSet  # every training example, labelled with its (perturbed) training label
    memorised: np.ndarray  # bool mask over ``train``
    clean: np.ndarray  # bool mask over ``train``: neither memorised nor noisy
    n_classes: int
    memorised_source: str


def read_memorised_ids(memorised: MemorisedSpec) -> np.ndarray | None:
    """Example ids of an explicit memorised set (``None``: the default, the noisy examples)."""
    if memorised is None:
        return None
    if isinstance(memorised, (str, Path)):
        path = Path(memorised)
        table = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
        if "example_id" not in table:
            raise DataError(f"{path}: a memorised set needs an `example_id` column")
        if "memorised" in table:  # a flag column selects the rows
            table = table[table["memorised"].astype(bool)]
        return table["example_id"].to_numpy(dtype=np.int64)
    return np.asarray(memorised, dtype=np.int64)


def memorised_mask(train_examples: pd.DataFrame, memorised: MemorisedSpec = None) -> np.ndarray:
    """Boolean mask over ``train_examples``: the noisy examples, or the explicit id set."""
    ids = read_memorised_ids(memorised)
    if ids is None:
        return train_examples["is_noisy"].to_numpy(dtype=bool)
    unknown = np.setdiff1d(ids, train_examples["example_id"].to_numpy())
    if len(unknown):
        raise DataError(
            f"{len(unknown)} memorised example ids are not training examples (e.g. {unknown[:5].tolist()}); "
            "the memorised set must be a subset of the training split."
        )
    return np.isin(train_examples["example_id"].to_numpy(), ids)


def load_job_data(examples_path: str | Path, tokens_path: str | Path, memorised: MemorisedSpec = None) -> JobData:
    """Training examples, their token ids and perturbed labels, and the memorised / clean masks."""
    examples = pd.read_parquet(examples_path)
    train_rows = examples[examples["split"] == "train"].reset_index(drop=True)
    if train_rows.empty:
        raise DataError(f"{examples_path}: no training examples (split == 'train')")
    mem = memorised_mask(train_rows, memorised)
    clean = ~mem & ~train_rows["is_noisy"].to_numpy(dtype=bool)
    if not mem.any():
        raise DataError(
            f"{examples_path}: the memorised set is empty (no training example has is_noisy True "
            "and no explicit set was given); set data.noise.ratio > 0 or pass a memorised set."
        )
    if not clean.any():
        raise DataError(f"{examples_path}: no clean training examples outside the memorised set")
    n_classes = int(max(examples["label"].max(), examples["label_orig"].max()) + 1)
    source = "is_noisy" if memorised is None else (str(memorised) if isinstance(memorised, (str, Path)) else "explicit ids")
    return JobData(
        train=load_tokenset(tokens_path, train_rows, "label"),
        memorised=mem,
        clean=clean,
        n_classes=n_classes,
        memorised_source=source,
    )


def start_job(
    settings: JobSettings, examples_path: str | Path, tokens_path: str | Path, memorised: MemorisedSpec = None
) -> tuple[torch.device, JobData]:
    """The first steps of every localisation job: seed and determinism, then the device and the data."""
    set_determinism(settings.seed, settings.deterministic)
    return select_device(settings.device), load_job_data(examples_path, tokens_path, memorised)


def job_precision(settings: JobSettings, model, data: TokenSet, batch_size: int, device: torch.device) -> PrecisionChoice:
    """The job's one precision, resolved before its model work (``auto``: measured at ``model``'s sizes
    on batches of ``batch_size`` of ``data``); run in ``choice.apply(settings)``, record ``choice.record()``."""
    return resolve_precision(
        settings.precision, device, lambda: probe_shape(model, data.lengths, batch_size), settings.auto_precision_min_speedup
    )


def split_inputs(inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None, dict]:
    """``(input_ids, attention_mask, extra)`` for the block-level functions of memloc.models.blocks."""
    extra = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
    return inputs["input_ids"], inputs.get("attention_mask"), extra


def block_input(access: BlockAccess, start: int, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The hidden-state input to block ``start`` for one batch, running only blocks below it.

    Runs the model's own forward (no grad; train/eval mode is the caller's) and stops it when
    block ``start`` is called, so the cost is the embeddings plus blocks ``1..start - 1``.
    """
    return run_with_cache(access, inputs, block_inputs=[start], stop_at=start).inputs[start]


def check_twins(a: BlockAccess, b: BlockAccess, what: str) -> None:
    """Two models whose blocks can be exchanged: same family, same number of blocks."""
    if a.family != b.family or a.num_layers != b.num_layers:
        raise DataError(
            f"{what}: the models differ in architecture ({a.family} with {a.num_layers} blocks vs "
            f"{b.family} with {b.num_layers}); both must come from the same pretrained model."
        )


def weights_frame(weights, technique: str) -> pd.DataFrame:
    """Per-layer weights as a table: ``technique``, ``layer`` (1-based), ``weight``."""
    w = np.asarray(weights, dtype=np.float64)
    return pd.DataFrame({"technique": technique, "layer": np.arange(1, len(w) + 1, dtype=np.int64), "weight": w})


def checkpoint_info(path: str | Path | None) -> dict[str, Any]:
    """The ``memloc.json`` a checkpoint directory carries (empty if none)."""
    if path is None:
        return {}
    info = Path(path) / "memloc.json"
    if not info.exists():
        return {}
    try:
        return json.loads(info.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def provenance(technique: str, settings: JobSettings, inputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Metadata every localisation output carries: technique, settings, inputs, versions."""
    settings = settings.as_dict()
    return {
        "technique": technique,
        "settings": settings,
        "inputs": {k: str(v) for k, v in inputs.items()},
        "checkpoints": {k: checkpoint_info(v) for k, v in inputs.items() if k in ("model", "twin", "pretrained")},
        "memloc_version": __version__,
        "torch_version": torch.__version__,
        # config hash, memloc version and a content digest of every input (`memloc check`)
        **record(settings, {k: v for k, v in inputs.items() if v}),
        **extra,
    }


def write_outputs(
    raw: pd.DataFrame, weights: pd.DataFrame, raw_path: str | Path, weights_path: str | Path, metadata: dict
) -> None:
    """Write the raw table and the weights table (atomically), both with ``metadata``."""
    write_parquet(raw, raw_path, metadata=metadata)
    write_parquet(weights, weights_path, metadata=metadata)
    log.info("wrote %s (%d rows) and %s", raw_path, len(raw), weights_path)
