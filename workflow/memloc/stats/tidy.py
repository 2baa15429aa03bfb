"""The tidy statistics table (docs/protocol.md §8.3, ``summary/statistics.parquet``) and Holm adjustment.

Every analysis returns rows with the columns in :data:`STAT_COLUMNS`. A row that could not be
computed (too few data sets, models or seeds; a constant input) keeps its place with NaN numbers
and a ``note`` that says why, so a small run still yields a complete, readable table.

``p_adjusted`` is Holm's step-down adjustment over the rows of one ``analysis`` (the analysis is
the family), computed by :func:`statsmodels.stats.multitest.multipletests`. Rows that are not
part of a family (intercepts, variance components, joint tests) are flagged ``adjust=False``
and keep ``p_adjusted`` = NaN.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

STAT_COLUMNS = ["analysis", "term", "estimate", "ci_low", "ci_high", "p_value", "p_adjusted", "n", "note", "n_excluded",
                "unmemorised"]
NAN = float("nan")


def row(
    analysis: str,
    term: str,
    estimate: float = NAN,
    ci_low: float = NAN,
    ci_high: float = NAN,
    p_value: float = NAN,
    n: int = 0,
    note: str = "",
    adjust: bool = True,
) -> dict:
    """One statistics row; ``adjust=False`` keeps it out of its family's Holm adjustment."""
    return {
        "analysis": analysis,
        "term": term,
        "estimate": _float(estimate),
        "ci_low": _float(ci_low),
        "ci_high": _float(ci_high),
        "p_value": _float(p_value),
        "p_adjusted": NAN,
        "n": int(n),
        "note": note,
        "_adjust": bool(adjust),
    }


def _float(x) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return NAN
    return x if math.isfinite(x) else NAN


def holm(p_values: Iterable[float]) -> np.ndarray:
    """Holm-adjusted p-values; NaN entries stay NaN and do not count towards the family size."""
    p = np.asarray(list(p_values), dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def finalize(rows: list[dict] | pd.DataFrame) -> pd.DataFrame:
    """Rows -> the statistics frame: Holm within each ``analysis``, fixed columns and dtypes."""
    df = pd.DataFrame(rows) if not isinstance(rows, pd.DataFrame) else rows.copy()
    if df.empty:
        return empty()
    if "_adjust" not in df:
        df["_adjust"] = True
    df["p_adjusted"] = np.nan
    for _, idx in df.groupby("analysis", sort=False).groups.items():
        sub = df.loc[idx]
        keep = sub.index[sub["_adjust"].astype(bool)]
        if len(keep):
            df.loc[keep, "p_adjusted"] = holm(df.loc[keep, "p_value"])
    df = df.drop(columns="_adjust")
    for col in ("estimate", "ci_low", "ci_high", "p_value", "p_adjusted"):
        df[col] = df[col].astype("float64")
    df["n"] = df["n"].astype("int64")
    df["note"] = df["note"].fillna("").astype(str)
    # Runs left out of the row's inputs and the unmemorised runs (memloc.stats.unmemorised): none unless set.
    df["n_excluded"] = df["n_excluded"].fillna(0).astype("int64") if "n_excluded" in df else 0
    df["unmemorised"] = df["unmemorised"].fillna("").astype(str) if "unmemorised" in df else ""
    df["analysis"] = df["analysis"].astype(str)
    df["term"] = df["term"].astype(str)
    return df[STAT_COLUMNS].reset_index(drop=True)


def empty() -> pd.DataFrame:
    """An empty statistics frame with the right columns and dtypes."""
    return pd.DataFrame(
        {
            "analysis": pd.Series(dtype=str),
            "term": pd.Series(dtype=str),
            **{c: pd.Series(dtype="float64") for c in ("estimate", "ci_low", "ci_high", "p_value", "p_adjusted")},
            "n": pd.Series(dtype="int64"),
            "note": pd.Series(dtype=str),
            "n_excluded": pd.Series(dtype="int64"),
            "unmemorised": pd.Series(dtype=str),
        }
    )[STAT_COLUMNS]
