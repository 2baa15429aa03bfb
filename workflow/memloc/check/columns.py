"""One table against its schema: column types and values, uniqueness, path columns (vectorised)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from memloc.check.schemas import TableSchema

MAX_EXAMPLES = 3


def _types(spec: dict) -> list[str]:
    t = spec.get("type", [])
    return [t] if isinstance(t, str) else list(t)


def _examples(values, rows=None) -> str:
    vals = list(values)[:MAX_EXAMPLES]
    if rows is not None:
        return ", ".join(f"{v!r} (row {r})" for v, r in zip(vals, list(rows)[:MAX_EXAMPLES], strict=False))
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
                    f"{int(bad.sum())} value(s) not {word} {spec[key]} "
                    f"(e.g. {_examples(map(_py, values[bad]), values.index[bad])})"
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
        out.append(
            f"column '{name}': {int(null.sum())} missing (null/NaN) value(s) (rows {_examples(rows)}); the schema allows none"
        )
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
                out.append(
                    f"column '{name}': {int(bad.sum())} array(s) with items out of range (rows {_examples(values.index[bad])})"
                )
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
                shown = "; ".join(
                    ", ".join(f"{c}={_py(v)!r}" for c, v in zip(cols, row, strict=True)) for row in keys.itertuples(index=False)
                )
                what = cols[0] if len(cols) == 1 else "(" + ", ".join(cols) + ")"
                out.append(f"{int(dup.sum())} rows repeat a value of {what}, which must be unique (e.g. {shown})")
    for key in schema.path_columns:
        value = (groups or {}).get(key)
        if value is not None and key in df.columns and len(df):
            bad = df[key].astype(str) != str(value)
            if bad.any():
                out.append(
                    f"column '{key}' holds {_examples(pd.unique(df.loc[bad, key].astype(str)))} "
                    f"but the file's path says {value!r}"
                )
    return out


