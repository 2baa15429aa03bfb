"""The ``data_prepare`` step: one source in, the examples table and its label names out.

Order matters for reproducibility and for failing early: read, filter rows (single-label subset,
repeated texts, classes mapped to null), validate every row, encode labels, split and subsample
(split seed), validate class sizes, inject noise into train only (noise seed), and only then
write, so a failure leaves no output behind.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import memloc
from memloc.config import spec_hash
from memloc.io import write_json, write_parquet
from memloc.provenance import record

from . import labels as label_codes
from . import sources, splits, transforms, validate
from .noise import inject_noise, min_class_size
from .sources.base import SEP_MARKER, uses_separator

log = logging.getLogger("memloc.data")

SPLITS = ("train", "validation", "test")
CONTRACT_COLUMNS = ["example_id", "split", "text_a", "text_b", "label_orig", "label", "is_noisy"]


def _pick(frame: pd.DataFrame, codes: np.ndarray, index: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    return frame.iloc[index].reset_index(drop=True), codes[index]


def _counts(codes: np.ndarray, names: list[str]) -> dict[str, int]:
    return {name: int(n) for name, n in zip(names, np.bincount(codes, minlength=len(names)))}


def _input_files(inputs: dict[str, str], resources_dir: str | os.PathLike) -> list[str]:
    """The source files behind ``inputs`` (a registry archive is named by its file name only)."""
    out = []
    for name in sorted(inputs):
        for candidate in (Path(name), Path(resources_dir) / "registry" / name):
            if candidate.is_file():
                out.append(str(candidate))
                break
    return out


def build_examples(
    spec: dict[str, Any], resources_dir: str | os.PathLike = "resources"
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, Any]]:
    """The examples table, the label-names document and the Parquet metadata, without writing."""
    name = spec.get("name", "?")
    raw = sources.load(spec, resources_dir)
    raw = transforms.single_label_subset(raw, spec.get("single_label_top_k"), bool(spec.get("drop_duplicate_texts")))
    raw = transforms.drop_classes(raw, spec.get("label_map"), name)
    validate.validate_raw(raw, spec)
    label_col = str((spec.get("columns") or {}).get("label") or "label")
    frames = [raw.train] + ([raw.eval] if raw.eval is not None else [])
    codes, names = label_codes.encode([f["label"].tolist() for f in frames], spec.get("label_map"), raw.label_names)
    validate.check_classes(codes[0], names, raw.train_where, name, label_col)

    seed = int(spec.get("split_seed", 0))
    ratio = float(spec["noise"]["ratio"])
    train, train_codes = raw.train, codes[0]
    if raw.eval is None:
        keep, held = splits.stratified_holdout(train_codes, float(spec.get("eval_fraction", 0.2)), seed)
        evaluation, eval_codes = _pick(train, train_codes, held)
        train, train_codes = _pick(train, train_codes, keep)
        eval_where = f"{raw.train_where} (held-out eval_fraction)"
    else:
        evaluation, eval_codes, eval_where = raw.eval, codes[1], raw.eval_where
    train, train_codes = _pick(
        train, train_codes,
        splits.stratified_subsample(train_codes, spec.get("max_train_examples"), seed, min_per_class=min_class_size(ratio)),
    )
    evaluation, eval_codes = _pick(evaluation, eval_codes, splits.subsample_eval(eval_codes, spec.get("max_eval_examples"), seed))
    val_idx, test_idx = splits.halve(eval_codes, seed)
    validate.check_eval_size(len(val_idx), len(test_idx), eval_where, name)
    validate.check_noise(train_codes, names, ratio, raw.train_where, name)

    noisy_codes, is_noisy = inject_noise(train_codes, len(names), ratio, int(spec["noise"]["seed"]))
    parts = {
        "train": (train, train_codes, noisy_codes, is_noisy),
        "validation": (*_pick(evaluation, eval_codes, val_idx), None, None),
        "test": (*_pick(evaluation, eval_codes, test_idx), None, None),
    }
    tables = []
    for split, (frame, orig, noisy, flags) in parts.items():
        tables.append(pd.DataFrame({
            "split": split,
            "text_a": frame["text_a"].to_numpy(dtype=object),
            "text_b": frame["text_b"].to_numpy(dtype=object),
            "label_orig": orig,
            "label": orig if noisy is None else noisy,
            "is_noisy": np.zeros(len(frame), dtype=bool) if flags is None else flags,
        }))
    df = pd.concat(tables, ignore_index=True)
    df.insert(0, "example_id", np.arange(len(df), dtype=np.int64))
    df = df.astype({"example_id": "int64", "split": "str", "text_a": "str", "text_b": "str",
                    "label_orig": "int64", "label": "int64", "is_noisy": "bool"})[CONTRACT_COLUMNS]

    provenance = {"sha256": raw.inputs, "spec_hash": spec_hash(spec), "memloc_version": memloc.__version__}
    if raw.fingerprint:
        provenance["hf"] = raw.fingerprint
    if raw.about:
        provenance["about"] = raw.about
    noisy_rows = df["is_noisy"].to_numpy()
    doc = {
        "dataset": name,
        "names": names,
        "source": raw.source,
        "provenance": provenance,
        "counts": {s: _counts(df.loc[df["split"] == s, "label_orig"].to_numpy(), names) for s in SPLITS},
        "n_noisy": int(noisy_rows.sum()),
        "noisy_per_class": _counts(df.loc[noisy_rows, "label_orig"].to_numpy(), names),
        "noise": {"ratio": ratio, "seed": int(spec["noise"]["seed"])},
        "notes": raw.notes,
    }
    metadata = {"dataset": name, "source": raw.source, "input_sha256": raw.inputs,
                **{k: v for k, v in provenance.items() if k not in ("sha256", "about")},
                # The record every table carries, so `memloc check` sees a changed source file.
                **record(spec, {"source": _input_files(raw.inputs, resources_dir)},
                         **({"hf": raw.fingerprint} if raw.fingerprint else {}))}
    if spec["source"].get("kind") != "registry" and uses_separator(spec.get("columns") or {}):
        metadata["separator_marker"] = SEP_MARKER  # tokenisation puts the model's separator in its place
    return df, doc, metadata


def prepare_dataset(
    spec: dict[str, Any],
    resources_dir: str | os.PathLike,
    out_parquet: str | os.PathLike,
    out_labels: str | os.PathLike,
) -> pd.DataFrame:
    """Write ``data/{dataset}.parquet`` and ``data/{dataset}.labels.json``; nothing if anything fails."""
    df, doc, metadata = build_examples(spec, resources_dir)
    write_parquet(df, out_parquet, metadata=metadata)
    try:
        write_json(doc, out_labels)
    except BaseException:
        Path(out_parquet).unlink(missing_ok=True)
        raise
    sizes = doc["counts"]
    log.info(
        "%s: %d train (%d noisy), %d validation, %d test; %d classes (%s)%s",
        doc["dataset"], sum(sizes["train"].values()), doc["n_noisy"], sum(sizes["validation"].values()),
        sum(sizes["test"].values()), len(doc["names"]), ", ".join(doc["names"]),
        "".join(f"; {n}" for n in doc["notes"]),
    )
    return df
