"""Hugging Face ``datasets``: a hub name, a local data directory, or a ``save_to_disk`` folder.

A local directory holding ``dataset_dict.json`` (what ``DatasetDict.save_to_disk`` writes) is
loaded with ``load_from_disk`` and hashed for provenance; anything else goes to ``load_dataset``,
which reads local data directories itself and fetches hub names (recording the revision and
the data set's fingerprint instead of a file hash). ``ClassLabel`` features give class names.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from memloc.errors import DataError
from memloc.io import sha256_file

from .base import RawSplits, check_columns, map_columns, needed_columns


def _dir_sha256(path: Path) -> str:
    """One hash over every file of a directory (relative path and content), order-independent."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f.relative_to(path).as_posix().encode() + b"\0" + sha256_file(f).encode() + b"\n")
    return h.hexdigest()


def _open(source: dict[str, Any]):
    import datasets

    path = source["path"]
    local = Path(path)
    if local.is_dir() and (local / "dataset_dict.json").is_file():
        return datasets.load_from_disk(str(local)), {str(path): _dir_sha256(local)}
    if local.is_dir() and (local / "state.json").is_file():
        raise DataError(
            f"{path}: holds a single Dataset; memloc needs a DatasetDict with named splits. "
            "Save it as DatasetDict({'train': ds, 'validation': ...}).save_to_disk(path)."
        )
    try:
        loaded = datasets.load_dataset(path, source.get("name"), revision=source.get("revision"))
    except Exception as err:  # datasets raises many types (not found, offline, bad config name)
        raise DataError(
            f"hf data set '{path}' (name={source.get('name')!r}) could not be loaded: "
            f"{type(err).__name__}: {str(err).rstrip('.')}. Check source.path / source.name / source.revision, "
            "or point source.path at a local directory written by save_to_disk."
        ) from err
    return loaded, {}


def _split(dd, split: str, path: str):
    if split not in dd:
        raise DataError(
            f"{path}: no split '{split}'. Splits present: {', '.join(dd.keys())}. "
            "Set source.train_split / source.eval_split (eval_split: null holds out part of train)."
        )
    return dd[split]


def _label_names(ds, label_col: str) -> list[str] | None:
    from datasets import ClassLabel

    feature = ds.features.get(label_col)
    return list(feature.names) if isinstance(feature, ClassLabel) else None


def _frame(ds, columns: dict[str, Any], where: str):
    wanted = needed_columns(columns)
    check_columns(wanted, ds.column_names, where)
    df = ds.select_columns(list(dict.fromkeys(wanted.values()))).to_pandas()
    return map_columns(df, [f"{where}:row {i}" for i in range(len(df))], columns, where)


def load(source: dict[str, Any], columns: dict[str, Any]) -> RawSplits:
    """The ``hf`` adapter: ``source.train_split`` and ``source.eval_split`` of ``source.path``."""
    dd, inputs = _open(source)
    path = str(source["path"])
    train_split = source.get("train_split", "train")
    eval_split = source.get("eval_split", "validation")
    train = _split(dd, train_split, path)
    train_where = f"{path}[{train_split}]"
    label_col = columns.get("label") or "label"
    names = _label_names(train, label_col)
    train_frame = _frame(train, columns, train_where)
    eval_frame, eval_where = None, None
    if eval_split is not None:
        ev = _split(dd, eval_split, path)
        eval_where = f"{path}[{eval_split}]"
        eval_names = _label_names(ev, label_col)
        if eval_names != names:
            raise DataError(
                f"{path}: the label column '{label_col}' has classes {names} in '{train_split}' "
                f"but {eval_names} in '{eval_split}'. Both splits must share one ClassLabel."
            )
        eval_frame = _frame(ev, columns, eval_where)
    fingerprint = {} if inputs else {
        "path": path,
        "name": source.get("name"),
        "revision": source.get("revision"),
        "fingerprint": {s: getattr(dd[s], "_fingerprint", None) for s in dd.keys()},
    }
    return RawSplits(
        train=train_frame,
        eval=eval_frame,
        source=f"hf:{path}" + (f"/{source['name']}" if source.get("name") else ""),
        train_where=train_where,
        eval_where=eval_where,
        label_names=names,
        inputs=inputs,
        fingerprint=fingerprint,
    )
