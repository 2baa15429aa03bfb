"""Source adapters: every ``source.kind`` turns into the same :class:`RawSplits`.

Adapters are imported on use, so reading a CSV never pays for importing ``datasets``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from memloc.errors import ConfigError, DataError

from .base import RawSplits, map_columns

DEFAULT_COLUMNS = {"text_a": "text", "text_b": None, "label": "label"}


def load(spec: dict[str, Any], resources_dir: str | os.PathLike = "resources") -> RawSplits:
    """Read the data set described by the effective spec (``config.dataset_spec``).

    Adapter errors are prefixed with the data set's name, so a message from a multi-data-set
    run says which entry of the config to fix.
    """
    try:
        return _load(spec, resources_dir)
    except DataError as err:
        raise DataError(f"data set '{spec.get('name', '?')}': {err}") from err


def _load(spec: dict[str, Any], resources_dir: str | os.PathLike) -> RawSplits:
    source = spec["source"]
    columns = {**DEFAULT_COLUMNS, **(spec.get("columns") or {})}
    kind = source.get("kind")
    if kind == "registry":
        from memloc.data import registry

        return registry.load(source, resources_dir)
    if kind == "hf":
        from . import hf

        return hf.load(source, columns)
    if kind == "file":
        from . import files

        return files.load(source, columns)
    raise ConfigError(f"datasets.{spec.get('name', '?')}.source.kind = {kind!r}; use registry, hf or file.")


def input_paths(spec: dict[str, Any], resources_dir: str | os.PathLike = "resources") -> list[str]:
    """Local files or directories a data set is read from (Snakemake ``input:``); none for hub data."""
    source = spec["source"]
    kind = source.get("kind")
    if kind == "registry":
        from memloc.data.registry import archive_path

        return [str(archive_path(source["corpus"], resources_dir))]
    if kind == "file":
        return [p for p in (source["train"], source.get("eval")) if p]
    if kind == "hf" and Path(source["path"]).is_dir():
        return [source["path"]]
    return []


__all__ = ["RawSplits", "load", "input_paths", "map_columns"]
