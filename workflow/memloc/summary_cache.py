"""Cached results for figures (``run.summary_cache``, docs/protocol.md §9.1).

A finished run's figures and report need only small files: every summary table and each
(data set, model)'s per-example memorisation table (the memorisation maps). :func:`export_cache`
copies them, byte for byte, into a directory that can be committed, laid out as under
``results/`` (so ``memloc summary`` and ``memloc check`` read it too), with a ``manifest.json``
of their digests and the configuration's hash. A workflow whose ``run.summary_cache`` names that
directory renders the figures from it alone; :func:`check_cache` stops it before any job when a
file it reads is missing or has changed since the export.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Sequence

from memloc import __version__, paths
from memloc.config import run_datasets, run_models, spec_hash
from memloc.errors import ConfigError, MemlocError
from memloc.provenance import digest
from memloc.summary_tables import summary_tables

MANIFEST = "manifest.json"


def cached_files(cfg: dict) -> list[str]:
    """The files (relative, in the results layout) the figure and report jobs of validated config ``cfg`` read."""
    files = [paths.fill(paths.SUMMARY, table=t) for t in summary_tables(cfg)]
    files += [paths.fill(paths.MEMORISATION, dataset=d, model=m) for d in run_datasets(cfg) for m in run_models(cfg)]
    return files


def cache_config_hash(cfg: dict) -> str:
    """The hash of ``cfg`` without ``run.summary_cache``: a run and its figures from the cache share it."""
    plain = copy.deepcopy(cfg)
    plain["run"].pop("summary_cache", None)
    return spec_hash(plain)


def _export_command(sources: Sequence[str], cache: str) -> str:
    configs = " ".join(f"--configfile {s}" for s in sources)
    return f"`memloc export-summary {configs} results {cache}`"


def export_cache(results: str | Path, dest: str | Path, cfg: dict, sources: Sequence[str]) -> dict:
    """Copy the files :func:`cached_files` names from ``results`` into ``dest`` and write its manifest.

    ``dest`` must be new, empty or an earlier cache, whose files are replaced. Raises MemlocError
    naming every missing file before anything is copied.
    """
    results, dest = Path(results), Path(dest)
    files = cached_files(cfg)
    missing = [f for f in files if not (results / f).is_file()]
    if missing:
        raise MemlocError(
            f"{results} lacks {', '.join(missing)}, which the figures of {', '.join(sources)} read: finish the run "
            f"(`snakemake --cores 2 --configfile {' '.join(sources)}`), then export again."
        )
    manifest_path = dest / MANIFEST
    if manifest_path.is_file():
        for old in json.loads(manifest_path.read_text())["files"]:
            (dest / old).unlink(missing_ok=True)
    elif dest.exists() and any(dest.iterdir()):
        raise MemlocError(f"{dest} holds files but no {MANIFEST}, so it is not a cache of memloc's: choose a new directory.")
    entries = {}
    for f in files:
        target = dest / f
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(results / f, target)
        entries[f] = {"digest": digest(target), "bytes": target.stat().st_size}
    manifest = {
        "memloc_version": __version__,
        "config": list(sources),
        "config_hash": cache_config_hash(cfg),
        "results": str(results),
        "files": entries,
    }
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def check_cache(cache: str | Path, cfg: dict, source: str) -> list[str]:
    """Raise ConfigError unless ``cache`` holds, unchanged since the export, every file the figures of ``cfg`` read.

    Returns warnings (a cache exported under another configuration) for the caller to print.
    """
    cache = Path(cache)
    fix = f"export one from a finished run with {_export_command(source.split(', '), str(cache))}"
    where = f"{source}: run.summary_cache = {cache}"
    manifest_path = cache / MANIFEST
    if not manifest_path.is_file():
        what = "no such directory" if not cache.is_dir() else f"no {MANIFEST} there"
        raise ConfigError(f"{where}: {what}; {fix}.")
    manifest = json.loads(manifest_path.read_text())
    recorded = manifest["files"]
    files = cached_files(cfg)
    missing = [f for f in files if f not in recorded or not (cache / f).is_file()]
    if missing:
        raise ConfigError(f"{where} lacks {', '.join(missing)}, which the figures of this configuration read; {fix}.")
    changed = [f for f in files if digest(cache / f) != recorded[f]["digest"]]
    if changed:
        raise ConfigError(f"{where}: {', '.join(changed)} changed since the export (digests in {manifest_path}); {fix}.")
    if manifest["config_hash"] != cache_config_hash(cfg):
        return [
            f"{where} was exported under another configuration ({', '.join(manifest['config'])}, hash "
            f"{manifest['config_hash']}; this one {cache_config_hash(cfg)}): the figures take their data sets, models "
            "and settings from this configuration."
        ]
    return []
