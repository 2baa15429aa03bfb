"""Compare two results trees (``memloc diff A B``): the numbers of a rerun, another machine or another
memloc version against a reference, with a tolerance on floats.

What is compared, file by file (paths relative to each tree's root):

* Parquet tables: the schema (column names and Arrow types), the row set and every value. Rows are
  aligned by key, not position: the shortest run of leading non-float columns that identifies every
  row in both tables (e.g. ``example_id, split, checkpoint``), or else all non-float columns. Floats
  (also lists of floats) match within the tolerance and NaN equals NaN; everything else exactly.
  The memloc key-value metadata is compared like a JSON document.
* JSON files (summaries, ``*.labels.json``, a checkpoint's ``memloc.json`` and ``config.json``):
  the parsed values, floats within the tolerance.
* ``*.safetensors`` checkpoints: tensor names, shapes, dtypes and values within the tolerance.
* Any other file: its bytes.

What is left out, and why: ``logs/``, ``benchmarks/`` and ``work/`` (wall time, resume state) and
hidden files (writers' temporaries, Snakemake's timestamps) are ignored entirely; figures (PDF, PNG,
SVG, HTML) must exist on both sides but their bytes are not compared, because renderers embed dates
and are not byte-reproducible. Columns and JSON keys named in :data:`IGNORED_KEYS`, or ending in one
of :data:`IGNORED_SUFFIXES`, are not compared: wall time, the provenance that identifies the code
and settings rather than the result (versions, settings hashes, input paths and digests, the job
name) and the machine measurements behind ``precision: auto`` (``precision_probe``; the resolved
precision itself is compared). The inputs those digests describe are themselves files of the tree and compared as such.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

IGNORED_DIRS = ("logs", "benchmarks", "work")
FIGURE_SUFFIXES = (".pdf", ".png", ".svg", ".jpg", ".jpeg", ".html")
KINDS = {".parquet": "table", ".pq": "table", ".json": "json", ".safetensors": "tensors"}
KIND_NAMES = {"table": "tables", "json": "JSON files", "tensors": "checkpoint weight files", "bytes": "other files"}
# Wall time, provenance that names the code, the settings' hash or the job rather than the result, and
# the speed probe of `precision: auto` (memloc.precision: how fast this machine was, not what it computed).
IGNORED_KEYS = frozenset({"seconds", "config_hash", "spec_hash", "inputs", "rule", "precision_probe"})
IGNORED_SUFFIXES = ("_seconds", "_version")
MAX_PER_FILE = 8  # difference lines printed per file; the rest are counted


@dataclass(frozen=True)
class Options:
    """Float tolerance (``|a - b| <= atol + rtol * max(|a|, |b|)``) and extra names to ignore."""

    rtol: float = 1e-6
    atol: float = 1e-9
    ignore: frozenset[str] = frozenset()

    def ignored(self, name: Any) -> bool:
        name = str(name)
        return name in IGNORED_KEYS or name in self.ignore or name.endswith(IGNORED_SUFFIXES)


@dataclass
class TreeDiff:
    """The outcome of :func:`diff_trees`: difference lines per file and counts for the summary."""

    a: Path
    b: Path
    options: Options
    differences: list[tuple[str, str]] = field(default_factory=list)  # (relative path, what differs)
    compared: Counter = field(default_factory=Counter)  # kind -> files compared
    differing: Counter = field(default_factory=Counter)  # kind -> files that differ
    only: Counter = field(default_factory=Counter)  # "A" / "B" -> files present on one side only
    figures: int = 0
    ignored: dict[str, tuple[int, int]] = field(default_factory=dict)  # reason -> files ignored in A, in B

    @property
    def equal(self) -> bool:
        return not self.differences


# ---------------------------------------------------------------- floats


def _close(a: np.ndarray, b: np.ndarray, opts: Options) -> np.ndarray:
    """Element-wise match within the tolerance; NaN matches NaN, an infinity only itself."""
    with np.errstate(invalid="ignore", over="ignore"):
        near = np.abs(a - b) <= opts.atol + opts.rtol * np.maximum(np.abs(a), np.abs(b))
    return (a == b) | near | (np.isnan(a) & np.isnan(b))


def _max_abs(a: np.ndarray, b: np.ndarray) -> float:
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.abs(a - b)
    d = d[np.isfinite(d)]
    return float(d.max()) if d.size else float("nan")


def _as_float(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _float_mismatch(a: pd.Series, b: pd.Series, opts: Options) -> tuple[np.ndarray, float]:
    """Rows whose floats differ beyond the tolerance, and the largest finite absolute difference.

    A cell may hold a list of floats (an Arrow list column); it matches when shapes agree and every
    element matches.
    """
    if a.dtype != object and b.dtype != object:
        x, y = _as_float(a), _as_float(b)
        bad = ~_close(x, y, opts)
        return bad, _max_abs(x[bad], y[bad])
    bad = np.zeros(len(a), dtype=bool)
    worst = float("nan")
    for i, (u, v) in enumerate(zip(a.tolist(), b.tolist())):
        if u is None or v is None:
            bad[i] = (u is None) != (v is None)
            continue
        x, y = _as_float(u), _as_float(v)
        if x.shape != y.shape:
            bad[i] = True
            continue
        miss = ~_close(x, y, opts)
        if miss.any():
            bad[i] = True
            d = _max_abs(x[miss], y[miss])
            worst = d if math.isnan(worst) or d > worst else worst
    return bad, worst


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    if isinstance(v, np.ndarray):
        v = v.tolist()
    text = repr(v) if isinstance(v, str) else str(v)
    return text if len(text) <= 40 else text[:37] + "..."


# ---------------------------------------------------------------- JSON


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def compare_json(a: Any, b: Any, opts: Options, where: str = "") -> list[str]:
    """What differs between two parsed JSON values, one line per leaf (``counts.train[0]: 3 vs 4``)."""
    label = where or "(top level)"
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            if opts.ignored(key):
                continue
            at = f"{where}.{key}" if where else str(key)
            if key not in b:
                out.append(f"{at}: only in A")
            elif key not in a:
                out.append(f"{at}: only in B")
            else:
                out += compare_json(a[key], b[key], opts, at)
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{label}: {len(a)} items in A, {len(b)} in B"]
        return [line for i, (u, v) in enumerate(zip(a, b)) for line in compare_json(u, v, opts, f"{where}[{i}]")]
    if _number(a) and _number(b):
        if isinstance(a, int) and isinstance(b, int):
            same = a == b
        else:
            same = bool(_close(_as_float(a), _as_float(b), opts))
        return [] if same else [f"{label}: {_fmt(a)} vs {_fmt(b)}"]
    return [] if a == b else [f"{label}: {_fmt(a)} vs {_fmt(b)}"]


def _load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- tables


def _is_float_type(t) -> bool:
    import pyarrow as pa

    while pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        t = t.value_type
    return pa.types.is_floating(t)


def _hashable(v: Any) -> Any:
    """A cell as a hashable value, so rows can be matched on it (lists, arrays, dicts, NaN)."""
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, (list, tuple)):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((str(k), _hashable(x)) for k, x in v.items()))
    if isinstance(v, float) and math.isnan(v):
        return "<NaN>"
    return v


def _normalised(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    out = pd.DataFrame(index=df.index)
    for c in columns:
        s = df[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype(object)
        out[c] = s.map(_hashable) if s.dtype == object else s
    return out


def _key(ka: pd.DataFrame, kb: pd.DataFrame, candidates: list[str]) -> list[str]:
    """The shortest leading run of ``candidates`` that identifies every row of both tables."""
    for n in range(1, len(candidates) + 1):
        cols = candidates[:n]
        if not ka.duplicated(cols).any() and not kb.duplicated(cols).any():
            return cols
    return candidates


def _describe_key(row: pd.Series, key: list[str]) -> str:
    named = ", ".join(f"{k}={_fmt(row[k])}" for k in key if not k.startswith("__"))
    return named or f"row {row.get('__row', '?')} in value order"


def _schema_lines(sa, sb) -> list[str]:
    out = []
    names_a, names_b = list(sa.names), list(sb.names)
    only_a = [n for n in names_a if n not in names_b]
    only_b = [n for n in names_b if n not in names_a]
    if only_a:
        out.append(f"schema: column(s) only in A: {', '.join(only_a)}")
    if only_b:
        out.append(f"schema: column(s) only in B: {', '.join(only_b)}")
    for n in names_a:
        if n in names_b and sa.field(n).type != sb.field(n).type:
            out.append(f"schema: column {n} is {sa.field(n).type} in A, {sb.field(n).type} in B")
    return out


def _align(a: pd.DataFrame, b: pd.DataFrame, exact: list[str], floats: list[str]) -> tuple[list[str], pd.DataFrame]:
    """The key rows are matched on, and the outer merge of the key with each row's position in A and B.

    Rows that no key column tells apart (a repeated key, or a table of floats only) are numbered
    in order of their float values, so equal tables match whatever their row order.
    """
    ka, kb = _normalised(a, exact), _normalised(b, exact)
    key = _key(ka, kb, exact)
    if key == exact and (not key or ka.duplicated(key).any() or kb.duplicated(key).any()):
        scalar = [c for c in floats if a[c].dtype != object]
        for k, df in ((ka, a), (kb, b)):
            order = df.sort_values(scalar, kind="mergesort").index if scalar else df.index
            ranks = k.loc[order].groupby(key, sort=False, dropna=False).cumcount().to_numpy() if key else np.arange(len(k))
            k["__row"] = 0
            k.loc[order, "__row"] = ranks
        key = key + ["__row"]
    ka["__pos"], kb["__pos"] = np.arange(len(ka)), np.arange(len(kb))
    merged = ka[key + ["__pos"]].merge(kb[key + ["__pos"]], on=key, how="outer", suffixes=("_a", "_b"), indicator=True)
    return key, merged


def _value_lines(a: pd.DataFrame, b: pd.DataFrame, floats: list[str], key: list[str], merged: pd.DataFrame,
                 opts: Options) -> list[str]:
    """One line per column whose values differ on the rows both tables have."""
    out = []
    both = merged[merged["_merge"] == "both"]
    ia, ib = both["__pos_a"].astype(int).to_numpy(), both["__pos_b"].astype(int).to_numpy()
    for c in a.columns:
        if c in key:
            continue
        sa, sb = a[c].iloc[ia].reset_index(drop=True), b[c].iloc[ib].reset_index(drop=True)
        if c in floats:
            bad, worst = _float_mismatch(sa, sb, opts)
            extra = f", max abs diff {worst:.3g}" if not math.isnan(worst) else ", NaN on one side"
        else:
            na, nb = _normalised(sa.to_frame(), [c])[c], _normalised(sb.to_frame(), [c])[c]
            bad = ~((na == nb) | (na.isna() & nb.isna())).to_numpy()
            extra = ""
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            out.append(f"column {c}: {int(bad.sum())} of {len(bad)} values differ{extra} "
                       f"(e.g. {_describe_key(both.iloc[i], key)}: {_fmt(sa.iloc[i])} vs {_fmt(sb.iloc[i])})")
    return out


def compare_tables(path_a: Path, path_b: Path, opts: Options) -> list[str]:
    """What differs between two Parquet tables: schema, row set, values, memloc metadata."""
    import pyarrow.parquet as pq

    from memloc.io import read_metadata

    ta, tb = pq.read_table(path_a), pq.read_table(path_b)
    out = _schema_lines(ta.schema, tb.schema)
    common = [
        n for n in ta.schema.names
        if n in tb.schema.names and not opts.ignored(n) and ta.schema.field(n).type == tb.schema.field(n).type
    ]
    floats = [n for n in common if _is_float_type(ta.schema.field(n).type)]
    a, b = ta.select(common).to_pandas(), tb.select(common).to_pandas()
    key, merged = _align(a, b, [n for n in common if n not in floats], floats)
    for side, tag, n in (("left_only", "A", len(a)), ("right_only", "B", len(b))):
        rows = merged[merged["_merge"] == side]
        if len(rows):
            out.append(f"{len(rows)} row(s) only in {tag} (of {n}; e.g. {_describe_key(rows.iloc[0], key)})")
    out += _value_lines(a, b, floats, key, merged, opts)
    out += [f"metadata {line}" for line in compare_json(read_metadata(path_a), read_metadata(path_b), opts)]
    return out


# ---------------------------------------------------------------- checkpoints


def _safetensors_metadata(meta: dict[str, str] | None) -> dict[str, Any]:
    """Header metadata with JSON-encoded values parsed, so ignored keys inside them are skipped."""
    out: dict[str, Any] = {}
    for k, v in (meta or {}).items():
        try:
            out[k] = json.loads(v)
        except (TypeError, ValueError):
            out[k] = v
    return out


def compare_safetensors(path_a: Path, path_b: Path, opts: Options) -> list[str]:
    """What differs between two safetensors files: tensor names, shapes, dtypes, values, metadata."""
    import torch
    from safetensors import safe_open

    out = []
    with safe_open(str(path_a), framework="pt") as fa, safe_open(str(path_b), framework="pt") as fb:
        out += [f"metadata {line}" for line in
                compare_json(_safetensors_metadata(fa.metadata()), _safetensors_metadata(fb.metadata()), opts)]
        names_a, names_b = set(fa.keys()), set(fb.keys())
        for tag, names in (("A", names_a - names_b), ("B", names_b - names_a)):
            if names:
                more = " ..." if len(names) > 3 else ""
                out.append(f"{len(names)} tensor(s) only in {tag}: {', '.join(sorted(names)[:3])}{more}")
        for name in sorted(names_a & names_b):
            x, y = fa.get_tensor(name), fb.get_tensor(name)
            if x.dtype != y.dtype or x.shape != y.shape:
                out.append(f"tensor {name}: {x.dtype} {tuple(x.shape)} in A, {y.dtype} {tuple(y.shape)} in B")
                continue
            if torch.equal(x, y):  # the common case, without float64 copies
                continue
            if x.is_floating_point():
                u, v = x.to(torch.float64).numpy().ravel(), y.to(torch.float64).numpy().ravel()
                bad = ~_close(u, v, opts)
                if bad.any():
                    out.append(f"tensor {name}: {int(bad.sum())} of {bad.size} values differ, "
                               f"max abs diff {_max_abs(u[bad], v[bad]):.3g}")
            else:
                out.append(f"tensor {name}: {int((x != y).sum())} of {x.numel()} values differ")
    return out


# ---------------------------------------------------------------- trees


def _files(root: Path) -> tuple[set[str], Counter]:
    """Relative paths of the files to compare under ``root``, and counts of those ignored, by reason."""
    kept, ignored = set(), Counter()
    for dirpath, _dirnames, filenames in os.walk(root, followlinks=True):
        rel_dir = Path(dirpath).relative_to(root)
        for name in filenames:
            rel = rel_dir / name
            if rel.parts[0] in IGNORED_DIRS:
                ignored[f"{rel.parts[0]}/"] += 1
            elif any(part.startswith(".") for part in rel.parts):
                ignored["hidden files"] += 1
            else:
                kept.add(rel.as_posix())
    return kept, ignored


def _kind(rel: str) -> str:
    suffix = Path(rel).suffix.lower()
    if suffix in FIGURE_SUFFIXES:
        return "figure"
    return KINDS.get(suffix, "bytes")


def _same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                return False
            if not x:
                return True


def _compare_file(kind: str, a: Path, b: Path, opts: Options) -> list[str]:
    if kind == "table":
        return compare_tables(a, b, opts)
    if kind == "json":
        return compare_json(_load_json(a), _load_json(b), opts)
    if kind == "tensors":
        return compare_safetensors(a, b, opts)
    return [] if _same_bytes(a, b) else ["the bytes differ"]


def _one_sided(paths: Iterable[str], other: Path) -> list[tuple[str, int]]:
    """Paths present on one side only, a whole missing directory once (``("dir/", n_files)``)."""
    groups: Counter = Counter()
    for rel in paths:
        top = rel
        for parent in reversed(Path(rel).parents[:-1]):  # outermost first
            if not (other / parent).exists():
                top = parent.as_posix() + "/"
                break
        groups[top] += 1
    return sorted(groups.items())


def diff_trees(a: str | os.PathLike, b: str | os.PathLike, opts: Options | None = None) -> TreeDiff:
    """Compare the results trees ``a`` and ``b`` (both must be directories)."""
    a, b = Path(a), Path(b)
    opts = opts or Options()
    result = TreeDiff(a, b, opts)
    files_a, ignored_a = _files(a)
    files_b, ignored_b = _files(b)
    result.ignored = {r: (ignored_a[r], ignored_b[r]) for r in sorted(set(ignored_a) | set(ignored_b))}
    for tag, mine, other, root in (("A", files_a, files_b, b), ("B", files_b, files_a, a)):
        alone = sorted(mine - other)
        result.only[tag] = len(alone)
        result.differences += [
            (entry, f"only in {tag}" + (f" ({n} file{'s' if n > 1 else ''})" if entry.endswith("/") else ""))
            for entry, n in _one_sided(alone, root)
        ]
    for rel in sorted(files_a & files_b):
        kind = _kind(rel)
        if kind == "figure":
            result.figures += 1
            continue
        try:
            lines = _compare_file(kind, a / rel, b / rel, opts)
        except Exception as err:  # an unreadable file is a difference to report, not a crash of the whole diff
            lines = [f"cannot compare ({type(err).__name__}: {err})"]
        result.compared[kind] += 1
        if lines:
            result.differing[kind] += 1
            shown = lines[:MAX_PER_FILE]
            if len(lines) > MAX_PER_FILE:
                shown.append(f"... and {len(lines) - MAX_PER_FILE} more difference(s)")
            result.differences += [(rel, line) for line in shown]
    return result


def render(result: TreeDiff) -> str:
    """The report: one line per difference, then what was compared and skipped, then the verdict."""
    opts = result.options
    lines = [f"{rel}: {what}" for rel, what in result.differences]
    if lines:
        lines.append("")
    lines.append(f"A = {result.a}\nB = {result.b}")
    compared = ", ".join(f"{result.compared[k]} {KIND_NAMES[k]}" for k in KIND_NAMES if result.compared[k])
    lines.append(f"compared: {compared or 'nothing'} (floats within rtol={opts.rtol:g}, atol={opts.atol:g}; NaN == NaN)")
    if result.figures:
        lines.append(f"skipped: {result.figures} figures (present on both sides; PDF/PNG bytes are not reproducible)")
    if result.ignored:
        lines.append("ignored: " + ", ".join(f"{reason} ({na} + {nb} files)" for reason, (na, nb) in result.ignored.items()))
    names = sorted(IGNORED_KEYS | opts.ignore) + [f"*{s}" for s in IGNORED_SUFFIXES]
    lines.append(f"ignored columns and keys: {', '.join(names)}")
    tables = f"{result.compared['table']} tables compared, {result.differing['table']} differ"
    others = sum(result.compared.values()) - result.compared["table"]
    others_differ = sum(result.differing.values()) - result.differing["table"]
    verdict = "no difference" if result.equal else "DIFFERENT"
    lines.append(f"{tables}; {others} other files compared, {others_differ} differ; "
                 f"{result.only['A']} files only in A, {result.only['B']} only in B: {verdict}")
    return "\n".join(lines)
