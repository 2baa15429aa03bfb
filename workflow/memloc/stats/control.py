"""Control accuracy against chance (docs/protocol.md §8.7).

For each technique, acc@1 hits over all control runs (data set x model x target layers, and
seeds where the table has them) are tested against chance = 2/L with a one-sided exact binomial
test (:func:`scipy.stats.binomtest`, alternative "greater"); the interval is Clopper-Pearson.
Chance comes from the table's ``chance`` column; where it differs between rows (models of
different depth) the mean chance is used and the note says so. acc@2 is reported descriptively
(mean, no test) in the analysis ``control_acc_at_2``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from memloc.stats.agreement import ordered
from memloc.stats.tidy import row

ANALYSIS = "control_binomial"
#: Every analysis of this module: rows on the control models, never on the noisy runs.
ANALYSES = (ANALYSIS, "control_acc_at_2")


def control_rows(control: pd.DataFrame | None, confidence: float = 0.95) -> list[dict]:
    if control is None or control.empty:
        return [row(ANALYSIS, "(none)", note="no control accuracy table")]
    rows = []
    for technique in ordered(control["technique"].unique()):
        sub = control[control["technique"] == technique]
        rows.append(_binomial_row(technique, sub, confidence))
        if "acc_at_2" in sub:
            acc2 = pd.to_numeric(sub["acc_at_2"], errors="coerce").dropna()
            rows.append(row(ANALYSES[1], technique, acc2.mean() if len(acc2) else np.nan, n=len(acc2),
                            note="mean acc@2 (descriptive, no test)", adjust=False))
    return rows


def _binomial_row(technique: str, sub: pd.DataFrame, confidence: float) -> dict:
    acc1 = pd.to_numeric(sub["acc_at_1"], errors="coerce").dropna().to_numpy(float)
    n = len(acc1)
    if n == 0:
        return row(ANALYSIS, technique, note="no acc@1 values")
    hits = int(round(acc1.sum()))
    notes = []
    if not np.all(np.isin(acc1, (0.0, 1.0))):
        notes.append("acc@1 not 0/1 (averaged rows): hits rounded")
    chance_col = pd.to_numeric(sub["chance"], errors="coerce").dropna() if "chance" in sub else pd.Series(dtype=float)
    if chance_col.empty:
        return row(ANALYSIS, technique, hits / n, n=n, note="no chance column: test not run")
    chance = float(chance_col.mean())
    if chance_col.nunique() > 1:
        notes.append(f"chance varies between rows ({chance_col.min():.3g}-{chance_col.max():.3g}): mean used")
    if not 0 < chance < 1:
        return row(ANALYSIS, technique, hits / n, n=n, note=f"chance = {chance} outside (0, 1): test not run")
    res = stats.binomtest(hits, n, chance, alternative="greater")
    ci = res.proportion_ci(confidence_level=confidence, method="exact")
    notes.insert(0, f"exact binomial test, one-sided, {hits}/{n} hits vs chance {chance:.3g}; Clopper-Pearson interval")
    return row(ANALYSIS, technique, hits / n, ci.low, ci.high, res.pvalue, n, "; ".join(notes))
