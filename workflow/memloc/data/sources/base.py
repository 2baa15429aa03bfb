"""What every source adapter returns, and the shared column mapping.

Adapters differ only in how they read; from :class:`RawSplits` on, every source looks the same:
raw label values (mapped to integers later, in one place) and an ``origin`` per row so that any
later error can point at the exact file and line.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd

from memloc.errors import DataError

COLUMNS = ["text_a", "text_b", "label", "origin"]
#: Template placeholder for the model's separator token. The examples table keeps it literally;
#: tokenisation puts each model's separator in its place (docs/protocol.md §4.4).
SEP = "SEP"
SEP_MARKER = "{" + SEP + "}"


@dataclass
class RawSplits:
    """Examples as read from a source, before labels are encoded or anything is split.

    ``train``/``eval`` hold ``text_a``, ``text_b`` (None for single-text tasks), ``label`` (raw
    values) and ``origin`` ("file:line N" or "name[split]:row N", for error messages).
    ``label_names`` lists class names in index order when the source knows them: raw labels are
    then either indices into it or members of it. ``inputs`` maps each input file to its sha256
    (provenance); ``fingerprint`` carries what identifies a source without files (hub data);
    ``about`` says what a registry corpus is, who made it and under which licence.
    """

    train: pd.DataFrame
    eval: pd.DataFrame | None
    source: str
    train_where: str
    eval_where: str | None = None
    label_names: list[str] | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    about: str | None = None


def template_fields(spec: str) -> list[str] | None:
    """Placeholder names of a template such as ``"{word} {SEP} {sentence1}"``; None for a plain column."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(spec) if name is not None]
    except ValueError:
        return None
    return names or None


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def _as_text(value: Any, origin: str, column: str) -> str | None:
    if _missing(value):
        return None
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError(
                f"{origin}: column '{column}' holds bytes that are not valid UTF-8 "
                f"(byte {err.start}: {bytes(value)[err.start:err.start + 4]!r}). "
                "Re-encode the text as UTF-8."
            ) from None
    return value if isinstance(value, str) else str(value)


def check_columns(wanted: dict[str, str], present: Sequence[str], where: str) -> None:
    for key, col in wanted.items():
        if col not in present:
            raise DataError(
                f"{where}: column '{col}' ({key}) does not exist. "
                f"Columns present: {', '.join(map(str, present))}. "
                "Change the data set's `columns` setting to name one of them."
            )


def needed_columns(columns: dict[str, Any]) -> dict[str, str]:
    """Source columns the mapping reads, keyed by a description of the setting that names them."""
    wanted: dict[str, str] = {}
    for key in ("text_a", "text_b"):
        spec = columns.get(key)
        if spec is None:
            continue
        fields = template_fields(spec)
        if fields is None:
            wanted[f"columns.{key}"] = spec
        else:
            for name in fields:
                if name == SEP:
                    continue
                if not name or name.isdigit():
                    raise DataError(
                        f"columns.{key} = {spec!r}: template placeholders must name columns, "
                        "e.g. '{word}: {sentence1}'."
                    )
                wanted[f"placeholder {{{name}}} in columns.{key} = {spec!r}"] = name
    wanted["columns.label"] = columns.get("label") or "label"
    return wanted


def uses_separator(columns: dict[str, Any]) -> bool:
    """Whether a text template of ``columns`` holds the ``{SEP}`` placeholder."""
    return any(SEP in (template_fields(columns.get(key) or "") or []) for key in ("text_a", "text_b"))


def map_columns(df: pd.DataFrame, origins: Sequence[str], columns: dict[str, Any], where: str) -> pd.DataFrame:
    """Unify ``df`` to :data:`COLUMNS` using ``columns`` (names or ``{col}`` templates; ``{SEP}`` stays literal).

    Raises DataError naming ``where`` and the columns that exist when a named column is missing.
    """
    check_columns(needed_columns(columns), list(df.columns), where)
    out = pd.DataFrame(index=range(len(df)))
    for key in ("text_a", "text_b"):
        spec = columns.get(key)
        if spec is None:
            out[key] = pd.Series([None] * len(df), dtype=object)
            continue
        fields = template_fields(spec)
        if fields is None:
            values = [_as_text(v, o, spec) for v, o in zip(df[spec].tolist(), origins)]
        else:
            cols = {name: df[name].tolist() for name in dict.fromkeys(fields) if name != SEP}
            values = []
            for i, origin in enumerate(origins):
                parts = {name: _as_text(cols[name][i], origin, name) for name in cols}
                # A missing placeholder makes the text missing (reported by validation), not "None".
                values.append(None if any(v is None for v in parts.values()) else spec.format_map({**parts, SEP: SEP_MARKER}))
        out[key] = pd.Series(values, dtype=object)
    out["label"] = pd.Series(df[columns.get("label") or "label"].tolist(), dtype=object)
    out["origin"] = pd.Series(list(origins), dtype=object)
    return out
