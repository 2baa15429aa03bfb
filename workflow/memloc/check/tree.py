"""Walk a results tree: match each Parquet file to its schema and collect every finding."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from memloc import provenance as prov
from memloc.check.columns import check_frame
from memloc.check.provenance import check_provenance
from memloc.check.report import ERROR, STALE, WARNING, Report
from memloc.check.rules import RULES, Context, Loader
from memloc.check.schemas import TableSchema, load_schemas, match
from memloc.io import read_metadata


def _fix(level: str, results: Path, rel: str) -> str:
    target = results / rel
    if level == STALE:
        return (
            f" Fix: rebuild it from the current inputs: `snakemake --cores N --forcerun {target}` "
            "(or delete it and re-run snakemake)."
        )
    return f" Fix: delete {target} and re-run snakemake to rebuild it; if it is rebuilt the same way, report a memloc bug."


def _is_temp(path: Path) -> bool:
    return path.name.startswith(".") and (".tmp" in path.name or path.name.endswith(".tmp"))


def check_results(
    results: str | Path,
    schemas: list[TableSchema] | None = None,
    verify_hashes: bool = True,
) -> Report:
    """Check every Parquet table under ``results`` (``work/`` and hidden files excluded)."""
    results = Path(results)
    schemas = load_schemas() if schemas is None else schemas
    report = Report(results)
    loader = Loader(results)
    files = []
    for path in sorted(results.rglob("*")):
        rel_parts = path.relative_to(results).parts
        if rel_parts[0] == "work":
            continue
        if _is_temp(path):
            report.add(WARNING, path.relative_to(results).as_posix(),
                       "leftover temporary file of an interrupted write; it is safe to delete")
            continue
        if any(p.startswith(".") for p in rel_parts):
            continue
        if path.name.endswith(".progress.jsonl"):
            report.add(WARNING, path.relative_to(results).as_posix(),
                       "progress of an interrupted job; the next snakemake run resumes from it")
            continue
        if path.is_file() and path.suffix == ".parquet":
            files.append(path)
    for path in files:
        rel = path.relative_to(results).as_posix()
        found = match(rel, schemas)
        if found is None:
            report.add(WARNING, rel, "no table schema describes this file; it was not checked")
            continue
        schema, groups = found
        report.checked.append(rel)
        try:
            df = pd.read_parquet(path)
            meta = read_metadata(path)
        except Exception as err:  # pyarrow raises several types for damaged files
            report.add(ERROR, rel, f"cannot be read as Parquet ({type(err).__name__}: {err})." + _fix(ERROR, results, rel))
            continue
        problems = [(ERROR, p) for p in check_frame(df, schema, groups)]
        missing_meta = [k for k in schema.metadata if k not in meta]
        if missing_meta:
            problems.append(
                (ERROR, f"metadata lacks {', '.join(missing_meta)} (written by another memloc version or not by memloc)")
            )
        ctx = Context(results, rel, df, meta, groups, loader)
        for name, arg in schema.rules:
            try:
                problems += RULES[name](ctx, arg)
            except Exception as err:  # a table odd enough to break a rule is reported, not fatal
                problems.append((ERROR, f"rule {name} could not be applied ({type(err).__name__}: {err})"))
        problems += check_provenance(ctx, verify_hashes)
        if prov.KEY not in meta:
            report.without_provenance.append(rel)
        for level, message in problems:
            suffix = f" [schema {schema.file.name}]" if level == ERROR else ""
            fix = _fix(level, results, rel) if level in (ERROR, STALE) else ""
            report.add(level, rel, message + "." + suffix + fix if not message.endswith(".") else message + suffix + fix)
    return report
