"""Local CSV, TSV, JSONL and Parquet files.

Text formats are decoded strictly as UTF-8 so that a wrongly encoded file fails loudly at the
byte that is wrong instead of training on mojibake. CSV and TSV are parsed with the ``csv``
module, which reports the line each record starts on; every row's ``origin`` is "file:line N".
TSV is read literally (no quoting), as IANA TSV is defined; texts with tabs or newlines belong in
CSV, JSONL or Parquet.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from memloc.errors import DataError
from memloc.io import sha256_file

from .base import RawSplits, map_columns

EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def detect_format(path: Path, fmt: str = "auto") -> str:
    """The format to read ``path`` with: ``fmt`` itself, or by extension when ``auto``."""
    if fmt != "auto":
        return fmt
    found = EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise DataError(
            f"{path}: cannot tell the format from the extension '{path.suffix}'. "
            f"Use one of {', '.join(sorted(EXTENSIONS))} or set source.format (csv, tsv, jsonl, parquet)."
        )
    return found


def decode_utf8(data: bytes, path: Path | str) -> str:
    """``data`` as text; invalid UTF-8 raises DataError with the byte offset and line. A BOM is dropped."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        bad = data[err.start : err.start + 4]
        raise DataError(
            f"{path}: invalid UTF-8 at byte offset {err.start} (line {line}): {bad!r}. "
            "memloc reads text files as UTF-8 only; re-encode the file as UTF-8, "
            f"e.g. `iconv -f latin1 -t utf-8 {path} > fixed{Path(str(path)).suffix}`."
        ) from None


@contextlib.contextmanager
def _field_limit_at_least(size: int) -> Iterator[None]:
    """Let the ``csv`` module read fields up to ``size`` characters, then restore its limit.

    The module's default limit (128 kB) rejects valid long texts (one article); no field can be
    longer than the file, and tokenisation truncates long texts anyway. The limit is process-wide,
    so it is restored on exit instead of being raised for everyone.
    """
    previous = csv.field_size_limit()
    csv.field_size_limit(max(previous, size))
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def _read_delimited(text: str, path: Path, delimiter: str) -> tuple[pd.DataFrame, list[str]]:
    with _field_limit_at_least(len(text)):
        return _parse_delimited(text, path, delimiter)


def _parse_delimited(text: str, path: Path, delimiter: str) -> tuple[pd.DataFrame, list[str]]:
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{path}: the file is empty; it needs a header row naming its columns.") from None
    rows, origins = [], []
    last_line = reader.line_num
    try:
        for record in reader:
            start, last_line = last_line + 1, reader.line_num
            if not record or (len(record) == 1 and record[0] == ""):
                continue  # blank line
            if len(record) != len(header):
                raise DataError(
                    f"{path}:line {start}: {len(record)} fields, but the header has {len(header)} "
                    f"({', '.join(header)}). Quote fields that contain the delimiter"
                    + (" (or use CSV/JSONL: TSV is read without quoting)." if delimiter == "\t" else ".")
                )
            rows.append(record)
            origins.append(f"{path}:line {start}")
    except csv.Error as err:
        raise DataError(f"{path}:line {reader.line_num}: malformed {('TSV' if delimiter == chr(9) else 'CSV')}: {err}.") from None
    return pd.DataFrame(rows, columns=header, dtype=object), origins


def _read_jsonl(text: str, path: Path) -> tuple[pd.DataFrame, list[str]]:
    records: list[dict[str, Any]] = []
    origins = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:line {number}: not valid JSON ({err.msg}). Each line must be one JSON object.") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:line {number}: expected a JSON object, found {type(record).__name__}.")
        records.append(record)
        origins.append(f"{path}:line {number}")
    return pd.DataFrame.from_records(records), origins


def read_table(path: str | Path, fmt: str = "auto") -> tuple[pd.DataFrame, list[str]]:
    """Read one file into a DataFrame plus the origin of each row."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found (relative paths start at {Path.cwd()}). Check source.train / source.eval.")
    fmt = detect_format(path, fmt)
    if fmt == "parquet":
        try:
            df = pd.read_parquet(path)
        except Exception as err:  # pyarrow raises several types for corrupt or non-Parquet files
            raise DataError(f"{path}: cannot be read as Parquet ({err}). Set source.format if it is another format.") from None
        return df.reset_index(drop=True), [f"{path}:row {i}" for i in range(len(df))]
    text = decode_utf8(path.read_bytes(), path)
    if fmt == "jsonl":
        return _read_jsonl(text, path)
    return _read_delimited(text, path, "," if fmt == "csv" else "\t")


def load(source: dict[str, Any], columns: dict[str, Any]) -> RawSplits:
    """The ``file`` adapter: ``source.train`` and optional ``source.eval``."""
    fmt = source.get("format", "auto")
    train_path, eval_path = str(source["train"]), source.get("eval")
    train_df, train_origins = read_table(train_path, fmt)
    train = map_columns(train_df, train_origins, columns, train_path)
    inputs = {train_path: sha256_file(train_path)}
    evaluation = None
    if eval_path:
        eval_df, eval_origins = read_table(eval_path, fmt)
        evaluation = map_columns(eval_df, eval_origins, columns, str(eval_path))
        inputs[str(eval_path)] = sha256_file(eval_path)
    return RawSplits(
        train=train,
        eval=evaluation,
        source=f"file:{train_path}",
        train_where=train_path,
        eval_where=str(eval_path) if eval_path else None,
        inputs=inputs,
    )
