"""Table schema files: read and vet them, and find the schema of a results file by its path."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from memloc import paths
from memloc.check.rules import RULES
from memloc.errors import MemlocError

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "tables"

ANNOTATIONS = {"description", "title", "default", "examples", "$comment"}
COLUMN_KEYWORDS = {"type", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "pattern", "items"}
JSON_TYPES = {"integer", "number", "string", "boolean", "array", "null"}


class SchemaError(MemlocError):
    """A table schema file is malformed or uses a keyword memloc check does not implement."""


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
        patterns = path_patterns(ext)
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
        patterns=patterns,
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


# ---------------------------------------------------------------- results path -> table schema


def path_patterns(ext: dict) -> list[re.Pattern]:
    """The files of a table, as patterns of paths relative to the results directory.

    The schema's ``x-memloc.path`` names a template of :mod:`memloc.paths` (the one home of the
    results layout) and ``x-memloc.wildcards`` optionally constrains some of its wildcards; the
    wildcards (``dataset``, ``model``, ``technique``, ...) identify the run.
    """
    return [paths.table_pattern(ext)]


def match(rel: str, schemas: list[TableSchema]) -> tuple[TableSchema, dict[str, str]] | None:
    """The schema of the file at ``rel`` (relative to results) and its path groups, if any."""
    for schema in schemas:
        for pattern in schema.patterns:
            m = pattern.search(rel)
            if m:
                return schema, {k: v for k, v in m.groupdict().items() if v is not None}
    return None


