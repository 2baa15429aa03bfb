"""Parsers of the registry corpora that ship as a CSV file or a BIG-bench ``task.json``.

Each parser takes a member's bytes and the name to report (``file``) and returns the rows with
an ``origin`` per row ("trec.csv:line 7", "task.json:example 12"), so that any later error points
at the exact place in the archive. Nothing here knows about archives or hashes (``registry``).
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from memloc.errors import DataError

#: TREC question classes, numbered (as in the file) by their first appearance.
TREC_NAMES = ["DESC", "ENTY", "ABBR", "HUM", "NUM", "LOC"]
#: Rows of the file: TREC's training set, then its test set, as released.
TREC_SPLIT = (5452, 500)
SMS_NAMES = ["ham", "spam"]
DISASTER_NAMES = ["not disaster", "disaster"]
# A row that swallowed further messages of the original tab-separated collection (an unbalanced
# quote upstream): its text holds lines "ham<TAB>..." / "spam<TAB>...", each another message.
SMS_MERGED = re.compile(r"\n(?:ham|spam)\t")


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{where}: invalid UTF-8 at byte offset {err.start}; the archive is not the expected one.") from None


def read_csv_rows(data: bytes, where: str, header: list[str]) -> list[tuple[list[str], str]]:
    """Rows after ``header`` (checked), each with its origin "file:line N" (the line it starts on)."""
    reader = csv.reader(io.StringIO(_decode(data, where), newline=""))
    found = next(reader, [])
    if found != header:
        raise DataError(f"{where}:line 1: expected the header {','.join(header)!r}, found {','.join(found)!r}.")
    rows, start = [], reader.line_num + 1
    for row in reader:
        if len(row) != len(header):
            raise DataError(f"{where}:line {start}: expected {len(header)} fields ({','.join(header)}), found {len(row)}.")
        rows.append((row, f"{where}:line {start}"))
        start = reader.line_num + 1
    return rows


def _int_label(value: str, origin: str, column: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DataError(f"{origin}: {column} {value!r} is not an integer.") from None


def parse_trec(data: bytes, where: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training and test rows (``label`` = coarse class index, ``text``, ``origin``), split by position."""
    rows = read_csv_rows(data, where, ["", "label-coarse", "label-fine", "text"])
    n_train, n_test = TREC_SPLIT
    if len(rows) != n_train + n_test:
        raise DataError(
            f"{where}: {len(rows)} rows, expected {n_train + n_test} (TREC's {n_train} training questions, then its "
            f"{n_test} test questions); the archive is not the expected one."
        )
    frame = pd.DataFrame(
        [(_int_label(row[1], origin, "label-coarse"), row[3].strip(), origin) for row, origin in rows],
        columns=["label", "text", "origin"],
    )
    return frame.iloc[:n_train].reset_index(drop=True), frame.iloc[n_train:].reset_index(drop=True)


def parse_sms(data: bytes, where: str) -> tuple[pd.DataFrame, list[str]]:
    """Rows (``label`` 0 ham / 1 spam, ``text``, ``origin``) without the merged rows, and a note on those."""
    rows = read_csv_rows(data, where, ["", "spam", "text"])
    merged = [(row, origin) for row, origin in rows if SMS_MERGED.search(row[2])]
    notes = []
    if merged:
        inner = [m for row, _ in merged for m in SMS_MERGED.findall(row[2])]
        notes.append(
            f"dropped {len(merged)} rows that each hold several messages under one label (an upstream quoting "
            f"error merged {len(inner)} further messages, {sum(m.startswith(chr(10) + 'spam') for m in inner)} "
            f"of them spam, into them): {', '.join(origin for _, origin in merged)}"
        )
    kept = [(_int_label(row[1], origin, "spam"), row[2].strip(), origin) for row, origin in rows if not SMS_MERGED.search(row[2])]
    return pd.DataFrame(kept, columns=["label", "text", "origin"]), notes


def parse_disaster_tweets(data: bytes, where: str) -> tuple[pd.DataFrame, list[str]]:
    """Rows (``label`` 0 not a disaster / 1 a real disaster, ``text``, ``origin``) and notes.

    A text that occurs more than once keeps its first row; a text whose copies disagree on the
    label is dropped altogether (the annotators could not agree, so neither label is memorisable
    noise-free).
    """
    rows = read_csv_rows(data, where, ["id", "keyword", "location", "text", "target"])
    frame = pd.DataFrame(
        [(_int_label(row[4], origin, "target"), row[3].strip(), origin) for row, origin in rows],
        columns=["label", "text", "origin"],
    )
    bad = frame.loc[~frame["label"].isin([0, 1]), "origin"]
    if len(bad):
        raise DataError(f"{bad.iloc[0]}: target must be 0 or 1; the archive is not the expected one.")
    conflicting = frame.groupby("text")["label"].transform("nunique") > 1
    repeated = frame["text"].duplicated() & ~conflicting
    notes = []
    if conflicting.any():
        notes.append(
            f"dropped {int(conflicting.sum())} rows of {frame.loc[conflicting, 'text'].nunique()} texts whose copies "
            "disagree on the label"
        )
    if repeated.any():
        notes.append(f"dropped {int(repeated.sum())} repeated texts (first row kept)")
    return frame[~(conflicting | repeated)].reset_index(drop=True), notes


@dataclass(frozen=True)
class BigBenchTask:
    """A BIG-bench multiple-choice task read as a sentence-pair classification task."""

    member: str
    answers: dict[str, str]  # target_scores key -> class name, in class order
    split_pair: Callable[[str], tuple[str, str] | None]  # input text -> (text_a, text_b), None if malformed
    pair_format: str  # the expected input, for error messages


def _vitaminc_pair(text: str) -> tuple[str, str] | None:
    parts = text.split("\nClaim: ")
    return (parts[0].strip(), parts[1].strip()) if len(parts) == 2 else None


def _premise_hypothesis(text: str) -> tuple[str, str] | None:
    if not text.startswith("Premise: ") or text.count(" Hypothesis: ") != 1:
        return None
    premise, _, hypothesis = text[len("Premise: "):].partition(" Hypothesis: ")
    return premise.strip(), hypothesis.strip()


BIGBENCH_ROOT = "bigbench-1.0.0/bigbench/benchmark_tasks"
BIGBENCH_TASKS = {
    "vitaminc": BigBenchTask(
        f"{BIGBENCH_ROOT}/vitaminc_fact_verification/task.json",
        {"True": "supports", "False": "refutes", "Neither": "not enough info"},
        _vitaminc_pair,
        "'<page title>: <evidence>\\nClaim: <claim>'",
    ),
    "epistemic_reasoning": BigBenchTask(
        f"{BIGBENCH_ROOT}/epistemic_reasoning/task.json",
        {"entailment": "entailment", "non-entailment": "non-entailment"},
        _premise_hypothesis,
        "'Premise: <premise> Hypothesis: <hypothesis>'",
    ),
}


def parse_bigbench(data: bytes, where: str, task: BigBenchTask) -> pd.DataFrame:
    """``text_a``, ``text_b``, ``label`` (class name) and ``origin`` of every example of a BIG-bench task.

    Each example's ``target_scores`` must give 1 to exactly one of the task's answers and 0 to the others.
    """
    try:
        doc = json.loads(_decode(data, where))
    except json.JSONDecodeError as err:
        raise DataError(f"{where}: not valid JSON ({err.msg} at line {err.lineno}); the archive is not the expected one.") \
            from None
    examples = doc.get("examples") if isinstance(doc, dict) else None
    if not isinstance(examples, list):
        raise DataError(f"{where}: no 'examples' list; the archive is not the expected one.")
    rows = []
    for number, example in enumerate(examples, start=1):
        origin = f"{where}:example {number}"
        scores = example.get("target_scores") if isinstance(example, dict) else None
        one_hot = isinstance(scores, dict) and sorted(scores.values()) == [0] * (len(scores) - 1) + [1]
        if not one_hot or set(scores) != set(task.answers):
            raise DataError(
                f"{origin}: target_scores {scores!r} does not give 1 to exactly one of {', '.join(task.answers)} "
                "and 0 to the others; the archive is not the expected one."
            )
        pair = task.split_pair(str(example.get("input", "")))
        if pair is None:
            raise DataError(f"{origin}: input {str(example.get('input'))[:120]!r} is not of the form {task.pair_format}.")
        answer = next(key for key, score in scores.items() if score == 1)
        rows.append((*pair, task.answers[answer], origin))
    return pd.DataFrame(rows, columns=["text_a", "text_b", "label", "origin"])
