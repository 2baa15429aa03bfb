"""Raw label values -> integer classes 0..C-1 and their names, in one place for every source.

Rules: a ``label_map`` renames/merges raw values (keys are the raw values as strings; for a
``ClassLabel`` source the class name works as a key too; rows of a value mapped to null are
removed before this step, by :func:`memloc.data.transforms.drop_classes`); a source that knows its class names
(``ClassLabel``, registry corpora) fixes the order; otherwise integer labels already numbered
0..C-1 keep their numbers and anything else is sorted (numerically for integers, as text for
strings) and renumbered.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

_INT = re.compile(r"[+-]?\d+(\.0*)?")
NOT_FOUND = object()


def label_list(value: Any) -> list[Any] | None:
    """A multi-label cell (a list of labels, e.g. Reuters topics) as a list; None for a single label."""
    if isinstance(value, (list, tuple, np.ndarray, pd.Series)):
        return list(value)
    return None


def canonical(value: Any) -> int | str | None:
    """A label as int or stripped str; None when missing (None, NaN, empty or blank text)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        return int(value) if float(value).is_integer() else repr(float(value))
    text = str(value).strip()
    if not text:
        return None
    return int(float(text)) if _INT.fullmatch(text) else text


def map_key(value: int | str, label_map: dict[str, Any], label_names: Sequence[str] | None) -> Any:
    """What ``label_map`` maps a canonical raw label to, or :data:`NOT_FOUND`."""
    key = str(value)
    if key in label_map:
        return label_map[key]
    if label_names and isinstance(value, int) and 0 <= value < len(label_names):
        if label_names[value] in label_map:
            return label_map[label_names[value]]
    return NOT_FOUND


def encode(
    splits: Sequence[Iterable[Any]],
    label_map: dict[str, Any] | None = None,
    label_names: Sequence[str] | None = None,
) -> tuple[list[np.ndarray], list[str]]:
    """Integer codes for each split's labels and the class names in index order.

    Expects validated input (no missing labels, every value mapped or known).
    """
    values = [[canonical(v) for v in split] for split in splits]
    if label_map:
        values = [[canonical(map_key(v, label_map, label_names)) for v in split] for split in values]
    elif label_names:
        index = {name: i for i, name in enumerate(label_names)}
        codes = [np.array([v if isinstance(v, int) else index[v] for v in split], dtype=np.int64) for split in values]
        return codes, [str(n) for n in label_names]
    seen = set().union(*map(set, values)) if values else set()
    if all(isinstance(v, int) for v in seen):
        order = sorted(seen)
        if order == list(range(len(order))):
            return [np.array(split, dtype=np.int64) for split in values], [str(v) for v in order]
    else:
        values = [[str(v) for v in split] for split in values]
        order = sorted({str(v) for v in seen})
    index = {v: i for i, v in enumerate(order)}
    return [np.array([index[v] for v in split], dtype=np.int64) for split in values], [str(v) for v in order]
