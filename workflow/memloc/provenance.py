"""Provenance every output table records: which memloc, which settings, which inputs.

A script adapter passes the job's params and inputs; the result goes into the Parquet metadata::

    from memloc import provenance
    write_parquet(df, path, metadata={**meta, **provenance.from_snakemake(snakemake)})

or, without Snakemake, ``provenance.record(config=spec, inputs={"examples": path})``. Both return
``{"provenance": {...}}`` (one key, so it never collides with a writer's own metadata keys)::

    {"provenance": {
        "memloc_version": "0.1.0",
        "config_hash": "3f2a9c...",                # stable hash of the job's effective settings
        "inputs": {"examples": {"path": "results/data/toy.parquet", "digest": "sha256:..."},
                   "weights": [{"path": ..., "digest": ...}, ...]}}}   # a list input stays a list

``memloc check`` recomputes every recorded digest and reports a table whose input has changed
since it was written (stale provenance).

Digests (:func:`digest`): a file is its sha256 (``sha256:``); a file over :data:`FULL_HASH_LIMIT`
bytes (model weights) is hashed from its size and its first and last :data:`SAMPLE_BYTES` bytes
(``sha256-sampled:``), which any retraining changes, so checking a results tree with many large
checkpoints stays fast; a directory (a checkpoint) hashes each file's relative path and digest,
skipping hidden names (temporary files of writers in progress).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Callable

from memloc import __version__
from memloc.io import read_metadata, stable_hash

KEY = "provenance"
FULL_HASH_LIMIT = 64 << 20
SAMPLE_BYTES = 8 << 20
_CHUNK = 1 << 20

# (resolved path, size, mtime_ns) -> digest: a file read by many jobs or checks is hashed once.
_CACHE: dict[tuple[str, int, int], str] = {}


def _file_digest(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key in _CACHE:
        return _CACHE[key]
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        if st.st_size <= FULL_HASH_LIMIT:
            while block := fh.read(_CHUNK):
                h.update(block)
            out = "sha256:" + h.hexdigest()
        else:
            h.update(str(st.st_size).encode() + b"\0")
            h.update(fh.read(SAMPLE_BYTES))
            fh.seek(st.st_size - SAMPLE_BYTES)
            h.update(fh.read(SAMPLE_BYTES))
            out = "sha256-sampled:" + h.hexdigest()
    _CACHE[key] = out
    return out


def _dir_digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = f.relative_to(path)
        if any(part.startswith(".") for part in rel.parts):
            continue
        h.update(rel.as_posix().encode() + b"\0" + _file_digest(f).encode() + b"\n")
    return "sha256-dir:" + h.hexdigest()


def digest(path: str | os.PathLike) -> str:
    """Content digest of a file or directory (see the module docstring); FileNotFoundError if absent."""
    path = Path(path)
    if path.is_dir():
        return _dir_digest(path)
    if path.is_file():
        return _file_digest(path)
    raise FileNotFoundError(f"{path}: no such file or directory")


def _plain(obj: Any) -> Any:
    """Snakemake containers (Namedlist, Params) and tuples as plain dicts / lists, for hashing."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    items = getattr(obj, "items", None)
    if callable(items) and isinstance(obj, list):
        named = dict(items())
        if named:
            return {str(k): _plain(v) for k, v in named.items()}
        return [_plain(v) for v in obj]
    if isinstance(obj, (list, tuple, set, frozenset)):
        seq = sorted(obj, key=str) if isinstance(obj, (set, frozenset)) else obj
        return [_plain(v) for v in seq]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def config_hash(config: Any) -> str:
    """Stable hash of a job's effective settings (key order does not matter)."""
    return stable_hash(_plain(config))


def _named_inputs(inputs: Any) -> dict[str, Any]:
    """``{name: path or [paths]}`` from a dict, a Snakemake ``input`` object or a list of paths."""
    if inputs is None:
        return {}
    if isinstance(inputs, (str, os.PathLike)):
        return {"0": inputs}
    if isinstance(inputs, Mapping):
        return dict(inputs)
    items = getattr(inputs, "items", None)
    named = dict(items()) if callable(items) else {}
    if named:
        return named
    return {str(i): p for i, p in enumerate(inputs)}


def _entry(path: Any) -> dict[str, str] | list[dict[str, str]]:
    if isinstance(path, (list, tuple)):
        return [_entry(p) for p in path]  # type: ignore[misc]
    return {"path": os.fspath(path), "digest": digest(path)}


def build(config: Any = None, inputs: Any = None, **extra: Any) -> dict[str, Any]:
    """The provenance dict: memloc version, config hash and a digest of every input."""
    out: dict[str, Any] = {"memloc_version": __version__}
    if config is not None:
        out["config_hash"] = config_hash(config)
    out["inputs"] = {name: _entry(p) for name, p in _named_inputs(inputs).items()}
    out.update(extra)
    return out


def record(config: Any = None, inputs: Any = None, **extra: Any) -> dict[str, Any]:
    """``{"provenance": build(...)}``: merge it into the metadata passed to ``write_parquet``."""
    return {KEY: build(config, inputs, **extra)}


def from_snakemake(smk: Any, **extra: Any) -> dict[str, Any]:
    """:func:`record` of a Snakemake job: its ``params`` (the settings) and its ``input`` files."""
    params = getattr(smk, "params", None)
    config = _plain(params) if params is not None else None
    wildcards = getattr(smk, "wildcards", None)
    if wildcards is not None and _plain(wildcards):
        extra.setdefault("wildcards", _plain(wildcards))
    rule = getattr(smk, "rule", None)
    if rule:
        extra.setdefault("rule", str(rule))
    return record(config, getattr(smk, "input", None), **extra)


def read(path: str | os.PathLike) -> dict[str, Any]:
    """The provenance recorded in a Parquet file written with :func:`record` (empty if none)."""
    value = read_metadata(path).get(KEY)
    return value if isinstance(value, dict) else {}


def recorded_inputs(prov: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``(name, path, digest)`` of every recorded input, list inputs flattened (``name[i]``)."""
    out = []
    for name, entry in (prov.get("inputs") or {}).items():
        entries = entry if isinstance(entry, list) else [entry]
        for i, e in enumerate(entries):
            if isinstance(e, Mapping) and "path" in e and "digest" in e:
                label = f"{name}[{i}]" if isinstance(entry, list) else str(name)
                out.append((label, str(e["path"]), str(e["digest"])))
    return out


def changed_inputs(
    prov: Mapping[str, Any], resolve: Callable[[str], Path | None] = lambda p: Path(p)
) -> Iterable[tuple[str, str, str, str | None]]:
    """``(name, path, recorded, current)`` for each input whose digest differs now.

    ``resolve`` maps a recorded path to where it lives now (``None``: not found; ``current`` is
    then ``None``).
    """
    for name, path, recorded in recorded_inputs(prov):
        where = resolve(path)
        if where is None or not where.exists():
            yield name, path, recorded, None
            continue
        current = digest(where)
        if current != recorded:
            yield name, path, recorded, current
