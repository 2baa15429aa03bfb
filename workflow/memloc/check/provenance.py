"""Staleness from provenance: changed input digests, another memloc version, changed checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from memloc import __version__
from memloc import provenance as prov
from memloc.check.report import STALE, WARNING
from memloc.check.rules import Context


def resolver(results: Path) -> Callable[[str], Path | None]:
    """Where a recorded input path lives now: as written (absolute), under the run's working
    directory (the parent of ``results``), or under ``results`` itself (a moved or renamed tree)."""

    def resolve(recorded: str) -> Path | None:
        p = Path(recorded)
        if p.is_absolute():
            return p if p.exists() else None
        candidates = [results.parent / p]
        if len(p.parts) > 1:
            candidates.append(results / Path(*p.parts[1:]))
        return next((c for c in candidates if c.exists()), None)

    return resolve


def check_provenance(ctx: Context, verify_hashes: bool) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    record = ctx.meta.get(prov.KEY)
    if isinstance(record, dict):
        version = record.get("memloc_version")
        if version and version != __version__:
            out.append((WARNING, f"written by memloc {version}; this is memloc {__version__}"))
        if verify_hashes:
            for name, path, recorded, current in prov.changed_inputs(record, resolver(ctx.results)):
                if current is None:
                    out.append((WARNING, f"recorded input '{name}' ({path}) no longer exists; its digest cannot be checked"))
                else:
                    out.append((STALE, f"input '{name}' ({path}) has changed since this table was written "
                                       f"(recorded {recorded[:23]}..., now {current[:23]}...)"))
    # Localisation outputs record the memloc.json of the checkpoints they analysed.
    checkpoints, inputs = ctx.meta.get("checkpoints"), ctx.meta.get("inputs")
    if isinstance(checkpoints, dict) and isinstance(inputs, dict):
        resolve = resolver(ctx.results)
        for name, info in checkpoints.items():
            where = resolve(str(inputs.get(name, "")))
            if not info or where is None or not (where / "memloc.json").is_file():
                continue
            try:
                now = json.loads((where / "memloc.json").read_text())
            except (OSError, ValueError):
                continue
            if now != info:
                changed = sorted(k for k in set(now) | set(info) if now.get(k) != info.get(k))
                out.append((STALE, f"checkpoint '{name}' ({inputs[name]}) differs from the one analysed "
                                   f"(memloc.json fields {', '.join(changed)} changed)"))
    return out


