"""``memloc check``'s arguments and exit status (0 OK, 1 an error or a stale table, 2 no tree or bad schemas)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from memloc.check.report import format_report
from memloc.check.schemas import SCHEMA_DIR, SchemaError, load_schemas
from memloc.check.tree import check_results


def add_check_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="?", default="results", help="the workflow's results directory (default: results)")
    p.add_argument("--schemas", default=str(SCHEMA_DIR), help="directory of table schemas (default: memloc's own)")
    p.add_argument("--no-hash", action="store_true", help="skip recomputing input digests (faster on large trees)")
    p.add_argument("--verbose", "-v", action="store_true", help="list every table without provenance")


def run_check(args: argparse.Namespace, out=None) -> int:
    out = out or sys.stdout
    results = Path(args.results)
    if not results.is_dir():
        print(f"memloc: no results directory at {results}; run snakemake first or pass the right path.", file=sys.stderr)
        return 2
    try:
        schemas = load_schemas(args.schemas)
    except SchemaError as err:
        print(f"memloc: {err}", file=sys.stderr)
        return 2
    report = check_results(results, schemas, verify_hashes=not args.no_hash)
    print(format_report(report, verbose=getattr(args, "verbose", False)), file=out)
    return 0 if report.ok else 1
