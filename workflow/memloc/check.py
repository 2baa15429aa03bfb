"""``memloc check [RESULTS]``: validate every known table of a results tree and its provenance.

Each Parquet contract table has a schema in ``workflow/schemas/tables/<name>.yaml``: a JSON Schema
(draft 2020-12) that one row, as a JSON object, must satisfy (required columns, types, enums,
ranges), plus an ``x-memloc`` block with the table-level rules:

``path``, ``wildcards``
    the template in :mod:`memloc.paths` of the files that hold this table, and optional regular
    expressions restricting some of its wildcards (e.g. ``technique: swapping|retraining``); the
    wildcards (``dataset``, ``model``, ``technique``, ...) identify the run (rules use ``dataset``
    to find the data table).
``path_columns``
    path wildcards that are also columns and must equal them (e.g. a weights file's ``technique``).
``unique``
    column sets whose values are unique (e.g. ``[[example_id]]``).
``metadata``
    keys the file's memloc Parquet metadata must carry.
``rules``
    named cross-column and cross-file checks (:data:`RULES`), a name or ``{name: argument}``.

Columns are checked vectorised, which is equivalent to validating every row with ``jsonschema``
for the keywords used here (:data:`COLUMN_KEYWORDS`); a schema using another keyword is refused,
so it never silently checks less than it says. NaN counts as null, infinities are never numbers.

Findings come in three levels: ``error`` (a table violates its schema: corrupt or hand-edited),
``stale`` (it was computed from an input that has changed since: provenance digests, the tokens'
data hash, recorded checkpoint info, example ids the data table no longer has) and ``warning``
(leftovers of interrupted writes, files no schema describes, another memloc version). The exit
status is 1 when there is an error or a stale table, else 0; 2 when there is no results directory.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import yaml

from memloc import __version__, paths
from memloc import provenance as prov
from memloc.errors import MemlocError
from memloc.io import read_metadata

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas" / "tables"

ANNOTATIONS = {"description", "title", "default", "examples", "$comment"}
COLUMN_KEYWORDS = {"type", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "pattern", "items"}
JSON_TYPES = {"integer", "number", "string", "boolean", "array", "null"}
MAX_EXAMPLES = 3

ERROR, STALE, WARNING = "error", "stale", "warning"


class SchemaError(MemlocError):
    """A table schema file is malformed or uses a keyword memloc check does not implement."""


@dataclass
class Finding:
    level: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.level.upper():7s} {self.path}: {self.message}"


@dataclass
class TableSchema:
    name: str
    file: Path
    schema: dict
    patterns: list[re.Pattern]
    unique: list[list[str]]
    metadata: list[str]
    rules: list[tuple[str, Any]]
    path_columns: list[str] = field(default_factory=list)

    @property
    def required(self) -> list[str]:
        return list(self.schema.get("required", []))

    @property
    def columns(self) -> dict[str, dict]:
        return dict(self.schema.get("properties", {}))


@dataclass
class Report:
    results: Path
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    without_provenance: list[str] = field(default_factory=list)

    def add(self, level: str, path: str, message: str) -> None:
        self.findings.append(Finding(level, path, message))

    def count(self, level: str) -> int:
        return sum(f.level == level for f in self.findings)

    @property
    def ok(self) -> bool:
        return not (self.count(ERROR) or self.count(STALE))


# ---------------------------------------------------------------- schemas


def _check_column_schema(spec: Any, where: str) -> None:
    if not isinstance(spec, dict):
        raise SchemaError(f"{where}: a column schema must be a mapping, got {spec!r}.")
    unknown = set(spec) - COLUMN_KEYWORDS - ANNOTATIONS
    if unknown:
        raise SchemaError(
            f"{where}: keyword(s) {', '.join(sorted(unknown))} are not implemented by memloc check; "
            f"use {', '.join(sorted(COLUMN_KEYWORDS))}."
        )
    types = spec.get("type", [])
    for t in [types] if isinstance(types, str) else types:
        if t not in JSON_TYPES:
            raise SchemaError(f"{where}: type {t!r} is not a JSON Schema type.")
    if "items" in spec:
        _check_column_schema(spec["items"], f"{where}.items")


def load_schema(path: str | Path) -> TableSchema:
    """Read and vet one table schema file."""
    path = Path(path)
    try:
        schema = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise SchemaError(f"{path}: not valid YAML ({err}).") from None
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise SchemaError(f"{path}: a table schema describes one row: `type: object` at the top level.")
    ext = schema.get("x-memloc") or {}
    try:
        pattern = paths.table_pattern(ext)
    except (KeyError, re.error) as err:
        raise SchemaError(f"{path}: x-memloc.path (the table's template in memloc.paths) is missing or wrong: {err}.") from None
    for col, spec in (schema.get("properties") or {}).items():
        _check_column_schema(spec, f"{path}: properties.{col}")
    missing = [c for c in schema.get("required", []) if c not in (schema.get("properties") or {})]
    if missing:
        raise SchemaError(f"{path}: required column(s) {', '.join(missing)} have no entry under properties.")
    rules = []
    for rule in ext.get("rules", []):
        name, arg = (next(iter(rule.items())) if isinstance(rule, dict) else (rule, None))
        if name not in RULES:
            raise SchemaError(f"{path}: unknown rule {name!r}; known: {', '.join(sorted(RULES))}.")
        rules.append((name, arg))
    unique = [[c] if isinstance(c, str) else list(c) for c in ext.get("unique", [])]
    return TableSchema(
        name=str(schema.get("title") or path.stem),
        file=path,
        schema=schema,
        patterns=[pattern],
        unique=unique,
        metadata=list(ext.get("metadata", [])),
        rules=rules,
        path_columns=list(ext.get("path_columns", [])),
    )


def load_schemas(directory: str | Path = SCHEMA_DIR) -> list[TableSchema]:
    """Every ``*.yaml`` table schema of ``directory``, by file name."""
    directory = Path(directory)
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise SchemaError(f"{directory}: no table schemas (*.yaml) found.")
    return [load_schema(f) for f in files]


def match(rel: str, schemas: list[TableSchema]) -> tuple[TableSchema, dict[str, str]] | None:
    """The schema of the file at ``rel`` (relative to results) and its path groups, if any."""
    for schema in schemas:
        for pattern in schema.patterns:
            m = pattern.search(rel)
            if m:
                return schema, {k: v for k, v in m.groupdict().items() if v is not None}
    return None


# ---------------------------------------------------------------- column checks


def _types(spec: dict) -> list[str]:
    t = spec.get("type", [])
    return [t] if isinstance(t, str) else list(t)


def _examples(values, rows=None) -> str:
    vals = list(values)[:MAX_EXAMPLES]
    if rows is not None:
        return ", ".join(f"{v!r} (row {r})" for v, r in zip(vals, list(rows)[:MAX_EXAMPLES]))
    return ", ".join(repr(v) for v in vals)


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _is_str_column(s: pd.Series, values: pd.Series) -> bool:
    if pd.api.types.is_string_dtype(s.dtype) and not pd.api.types.is_object_dtype(s.dtype):
        return True
    return bool(values.map(lambda v: isinstance(v, str)).all())


def _type_problem(s: pd.Series, values: pd.Series, kinds: list[str], nullable: bool) -> str | None:
    """Why the non-null ``values`` of column ``s`` are not of the JSON types ``kinds`` (None if they are)."""
    dtype = s.dtype
    if not kinds:
        return None
    problems = []
    for kind in kinds:
        if kind == "boolean":
            if pd.api.types.is_bool_dtype(dtype):
                return None
            problems.append("boolean")
        elif kind == "integer":
            if pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
                return None
            if nullable and pd.api.types.is_float_dtype(dtype):
                if bool(np.all(np.mod(values.to_numpy(dtype=float), 1) == 0)):
                    return None
            problems.append("integer")
        elif kind == "number":
            if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
                if pd.api.types.is_float_dtype(dtype):
                    inf = np.isinf(values.to_numpy(dtype=float))
                    if inf.any():
                        return f"{int(inf.sum())} infinite value(s) (rows {_examples(values.index[inf])})"
                return None
            problems.append("number")
        elif kind == "string":
            if _is_str_column(s, values):
                return None
            problems.append("string")
        elif kind == "array":
            if values.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).all():
                return None
            problems.append("array")
    return f"dtype {dtype} where the schema wants {' or '.join(problems)}" + (" (or null)" if nullable else "")


def _range_problems(values: pd.Series, spec: dict) -> list[str]:
    out = []
    nums = pd.to_numeric(values, errors="coerce")
    for key, op, word in (
        ("minimum", np.less, ">="),
        ("maximum", np.greater, "<="),
        ("exclusiveMinimum", np.less_equal, ">"),
        ("exclusiveMaximum", np.greater_equal, "<"),
    ):
        if key in spec:
            bad = op(nums.to_numpy(dtype=float), float(spec[key]))
            if bad.any():
                out.append(
                    f"{int(bad.sum())} value(s) not {word} {spec[key]} (e.g. {_examples(map(_py, values[bad]), values.index[bad])})"
                )
    return out


def check_column(s: pd.Series, spec: dict, name: str) -> list[str]:
    """Problems of column ``s`` against its column schema (messages without the file name)."""
    out: list[str] = []
    types = _types(spec)
    nullable = "null" in types or not types
    kinds = [t for t in types if t != "null"]
    null = s.isna() if not (kinds == ["array"]) else s.map(lambda v: v is None)
    if isinstance(null, pd.Series):
        null = null.to_numpy(dtype=bool)
    if null.any() and not nullable:
        rows = np.flatnonzero(null)
        out.append(f"column '{name}': {int(null.sum())} missing (null/NaN) value(s) (rows {_examples(rows)}); the schema allows none")
    values = s[~null]
    if values.empty:
        return out
    problem = _type_problem(s, values, kinds, nullable)
    if problem:
        return out + [f"column '{name}': {problem}"]
    if "enum" in spec:
        allowed = list(spec["enum"])
        bad = ~values.isin(allowed).to_numpy(dtype=bool)
        if bad.any():
            out.append(
                f"column '{name}': {int(bad.sum())} value(s) outside {allowed} "
                f"(e.g. {_examples(map(_py, values[bad]), values.index[bad])})"
            )
    if kinds and set(kinds) <= {"integer", "number"}:
        out += [f"column '{name}': {p}" for p in _range_problems(values, spec)]
    if "string" in kinds:
        text = values.astype(str)
        if "minLength" in spec:
            bad = (text.str.len() < int(spec["minLength"])).to_numpy(dtype=bool)
            if bad.any():
                out.append(
                    f"column '{name}': {int(bad.sum())} value(s) shorter than {spec['minLength']} character(s) "
                    f"(e.g. {_examples(values[bad], values.index[bad])})"
                )
        if "pattern" in spec:
            rx = re.compile(spec["pattern"])
            bad = ~text.map(lambda v: rx.search(v) is not None).to_numpy(dtype=bool)
            if bad.any():
                out.append(
                    f"column '{name}': {int(bad.sum())} value(s) do not match the pattern {spec['pattern']!r} "
                    f"(e.g. {_examples(values[bad], values.index[bad])})"
                )
    if "array" in kinds and "items" in spec:
        item = spec["items"]
        item_kinds = [t for t in _types(item) if t != "null"]
        flat = [np.asarray(v) for v in values]
        if "integer" in item_kinds:
            bad = np.array([a.size > 0 and a.dtype.kind not in "iu" for a in flat])
            if bad.any():
                out.append(f"column '{name}': {int(bad.sum())} array(s) hold non-integers (rows {_examples(values.index[bad])})")
                return out
        if flat and ("minimum" in item or "maximum" in item):
            lo = np.array([a.min() if a.size else np.inf for a in flat], dtype=float)
            hi = np.array([a.max() if a.size else -np.inf for a in flat], dtype=float)
            bad = np.zeros(len(flat), dtype=bool)
            if "minimum" in item:
                bad |= lo < float(item["minimum"])
            if "maximum" in item:
                bad |= hi > float(item["maximum"])
            if bad.any():
                out.append(f"column '{name}': {int(bad.sum())} array(s) with items out of range (rows {_examples(values.index[bad])})")
    return out


def check_frame(df: pd.DataFrame, schema: TableSchema, groups: dict[str, str] | None = None) -> list[str]:
    """Schema problems of a table (required columns, column types and values, uniqueness)."""
    out = []
    missing = [c for c in schema.required if c not in df.columns]
    if missing:
        out.append(
            f"missing required column(s) {', '.join(missing)} (present: {', '.join(map(str, df.columns))})"
        )
    df = df.reset_index(drop=True)
    for col, spec in schema.columns.items():
        if col in df.columns:
            out += check_column(df[col], spec, col)
    for cols in schema.unique:
        if all(c in df.columns for c in cols):
            dup = df.duplicated(subset=cols, keep=False).to_numpy()
            if dup.any():
                keys = df.loc[dup, cols].drop_duplicates().head(MAX_EXAMPLES)
                shown = "; ".join(", ".join(f"{c}={_py(v)!r}" for c, v in zip(cols, row)) for row in keys.itertuples(index=False))
                what = cols[0] if len(cols) == 1 else "(" + ", ".join(cols) + ")"
                out.append(f"{int(dup.sum())} rows repeat a value of {what}, which must be unique (e.g. {shown})")
    for key in schema.path_columns:
        value = (groups or {}).get(key)
        if value is not None and key in df.columns and len(df):
            bad = df[key].astype(str) != str(value)
            if bad.any():
                out.append(
                    f"column '{key}' holds {_examples(pd.unique(df.loc[bad, key].astype(str)))} but the file's path says {value!r}"
                )
    return out


# ---------------------------------------------------------------- rules


@dataclass
class Context:
    results: Path
    rel: str
    df: pd.DataFrame
    meta: dict
    groups: dict[str, str]
    loader: "Loader"


class Loader:
    """Tables read once per check: data tables and their metadata by data set."""

    def __init__(self, results: Path):
        self.results = results
        self._data: dict[str, tuple[pd.DataFrame | None, dict]] = {}

    def data(self, dataset: str) -> tuple[pd.DataFrame | None, dict]:
        if dataset not in self._data:
            path = self.results / "data" / f"{dataset}.parquet"
            try:
                self._data[dataset] = (pd.read_parquet(path), read_metadata(path))
            except Exception:  # missing or unreadable: reported on its own
                self._data[dataset] = (None, {})
        return self._data[dataset]


Rule = Callable[[Context, Any], list[tuple[str, str]]]


def _rule_noisy_only_in_train(ctx: Context, arg) -> list[tuple[str, str]]:
    df = ctx.df
    if not {"example_id", "split", "is_noisy"} <= set(df.columns):
        return []
    bad = df["is_noisy"].astype(bool) & (df["split"] != "train")
    if bad.any():
        return [(ERROR, f"{int(bad.sum())} noisy example(s) outside the training split (example_id "
                        f"{_examples(df.loc[bad, 'example_id'].map(_py))}); only training labels may be noised")]
    return []


def _rule_noisy_iff_relabelled(ctx: Context, arg) -> list[tuple[str, str]]:
    df = ctx.df
    if not {"example_id", "label", "label_orig", "is_noisy"} <= set(df.columns):
        return []
    bad = (df["label"] != df["label_orig"]) != df["is_noisy"].astype(bool)
    if bad.any():
        return [(ERROR, f"{int(bad.sum())} row(s) where is_noisy disagrees with label != label_orig "
                        f"(example_id {_examples(df.loc[bad, 'example_id'].map(_py))})")]
    return []


def _rule_labels_within_label_names(ctx: Context, arg) -> list[tuple[str, str]]:
    dataset = ctx.groups.get("dataset")
    path = ctx.results / "data" / f"{dataset}.labels.json"
    if not path.exists():
        return [(WARNING, f"no label names file {path.name} beside it; class indices cannot be checked")]
    try:
        names = json.loads(path.read_text())["names"]
    except (OSError, ValueError, KeyError, TypeError):
        return [(ERROR, f"{path.name} is unreadable or has no 'names' list")]
    out = []
    for col in ("label", "label_orig"):
        if col in ctx.df.columns and pd.api.types.is_numeric_dtype(ctx.df[col].dtype):
            bad = ctx.df[col] >= len(names)
            if bad.any():
                out.append((ERROR, f"column '{col}': {int(bad.sum())} value(s) >= {len(names)}, the number of classes "
                                   f"in {path.name} (e.g. {_examples(ctx.df.loc[bad, col].map(_py))})"))
    return out


def _rule_correct_matches_pred(ctx: Context, arg) -> list[tuple[str, str]]:
    df = ctx.df
    if not {"correct", "pred", "label"} <= set(df.columns):
        return []
    bad = df["correct"].astype(bool) != (df["pred"] == df["label"])
    if bad.any():
        return [(ERROR, f"{int(bad.sum())} row(s) where correct disagrees with pred == label "
                        f"(rows {_examples(np.flatnonzero(bad.to_numpy()))})")]
    return []


def _rule_window_consistent(ctx: Context, arg) -> list[tuple[str, str]]:
    df = ctx.df
    if not {"start", "size", "end"} <= set(df.columns):
        return []
    bad = df["end"] != df["start"] + df["size"] - 1
    if bad.any():
        return [(ERROR, f"{int(bad.sum())} window(s) with end != start + size - 1 (rows {_examples(np.flatnonzero(bad.to_numpy()))})")]
    return []


def _rule_layers_contiguous(ctx: Context, by) -> list[tuple[str, str]]:
    df = ctx.df
    by = [c for c in (by or []) if c in df.columns]
    if "layer" not in df.columns or df.empty:
        return []
    groups = df.groupby(by, sort=True, dropna=False) if by else [((), df)]
    for key, g in groups:
        layers = sorted(g["layer"].tolist())
        if layers != list(range(1, len(layers) + 1)):
            label = f" for {dict(zip(by, key if isinstance(key, tuple) else (key,)))}" if by else ""
            return [(ERROR, f"layers{label} are {layers[:12]}, not 1..{len(layers)}")]
    return []


def _rule_length_matches_input_ids(ctx: Context, arg) -> list[tuple[str, str]]:
    df = ctx.df
    if not {"length", "input_ids"} <= set(df.columns):
        return []
    lengths = df["input_ids"].map(lambda v: len(v) if v is not None else -1)
    bad = lengths.to_numpy() != df["length"].to_numpy()
    if bad.any():
        return [(ERROR, f"{int(bad.sum())} row(s) whose length differs from len(input_ids) (rows {_examples(np.flatnonzero(bad))})")]
    return []


def _data_ids(ctx: Context):
    dataset = ctx.groups.get("dataset")
    if dataset is None:
        return None
    data, _ = ctx.loader.data(dataset)
    if data is None or "example_id" not in data.columns:
        return None
    return data["example_id"]


def _rule_example_ids_in_data(ctx: Context, arg) -> list[tuple[str, str]]:
    ids = _data_ids(ctx)
    if ids is None or "example_id" not in ctx.df.columns:
        return []
    extra = ~ctx.df["example_id"].isin(ids)
    if extra.any():
        return [(STALE, f"{int(extra.sum())} example id(s) that data/{ctx.groups['dataset']}.parquet does not have "
                        f"(e.g. {_examples(pd.unique(ctx.df.loc[extra, 'example_id']).tolist())}); it was computed from "
                        "an older data table")]
    return []


def _rule_tokens_cover_data(ctx: Context, arg) -> list[tuple[str, str]]:
    ids = _data_ids(ctx)
    if ids is None or "example_id" not in ctx.df.columns:
        return []
    missing = ~ids.isin(ctx.df["example_id"])
    if missing.any():
        return [(STALE, f"no token ids for {int(missing.sum())} example(s) of data/{ctx.groups['dataset']}.parquet "
                        f"(e.g. {_examples(ids[missing].map(_py))}); it was tokenised from an older data table")]
    return []


def _rule_tokens_data_hash(ctx: Context, arg) -> list[tuple[str, str]]:
    dataset = ctx.groups.get("dataset")
    data, data_meta = ctx.loader.data(dataset)
    recorded, current = ctx.meta.get("data"), data_meta.get("spec_hash")
    if data is None or recorded is None or current is None:
        return []
    if recorded != current:
        return [(STALE, f"tokenised from data with spec hash {recorded}, but data/{dataset}.parquet now has {current}")]
    return []


RULES: dict[str, Rule] = {
    "noisy_only_in_train": _rule_noisy_only_in_train,
    "noisy_iff_relabelled": _rule_noisy_iff_relabelled,
    "labels_within_label_names": _rule_labels_within_label_names,
    "correct_matches_pred": _rule_correct_matches_pred,
    "window_consistent": _rule_window_consistent,
    "layers_contiguous": _rule_layers_contiguous,
    "length_matches_input_ids": _rule_length_matches_input_ids,
    "example_ids_in_data": _rule_example_ids_in_data,
    "tokens_cover_data": _rule_tokens_cover_data,
    "tokens_data_hash": _rule_tokens_data_hash,
}


# ---------------------------------------------------------------- provenance


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


def _check_provenance(ctx: Context, verify_hashes: bool) -> list[tuple[str, str]]:
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


# ---------------------------------------------------------------- the tree


def _fix(level: str, results: Path, rel: str) -> str:
    target = results / rel
    if level == STALE:
        return f" Fix: rebuild it from the current inputs: `snakemake --cores N --forcerun {target}` (or delete it and re-run snakemake)."
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
            problems.append((ERROR, f"metadata lacks {', '.join(missing_meta)} (written by another memloc version or not by memloc)"))
        ctx = Context(results, rel, df, meta, groups, loader)
        for name, arg in schema.rules:
            try:
                problems += RULES[name](ctx, arg)
            except Exception as err:  # a table odd enough to break a rule is reported, not fatal
                problems.append((ERROR, f"rule {name} could not be applied ({type(err).__name__}: {err})"))
        problems += _check_provenance(ctx, verify_hashes)
        if prov.KEY not in meta:
            report.without_provenance.append(rel)
        for level, message in problems:
            suffix = f" [schema {schema.file.name}]" if level == ERROR else ""
            fix = _fix(level, results, rel) if level in (ERROR, STALE) else ""
            report.add(level, rel, message + "." + suffix + fix if not message.endswith(".") else message + suffix + fix)
    return report


def format_report(report: Report, verbose: bool = False) -> str:
    lines = [f"memloc check of {report.results}"]
    lines += [str(f) for f in report.findings]
    if report.without_provenance:
        lines.append(
            f"note: {len(report.without_provenance)} of {len(report.checked)} tables record no provenance "
            "(config hash, memloc version, input digests), so they cannot be checked for staleness"
            + (": " + ", ".join(report.without_provenance) if verbose else " (--verbose lists them)")
        )
    lines.append(
        f"{len(report.checked)} tables checked: {report.count(ERROR)} error(s), {report.count(STALE)} stale, "
        f"{report.count(WARNING)} warning(s) -> {'OK' if report.ok else 'FAILED'}"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------- command line


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
