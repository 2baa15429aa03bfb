"""Runs whose noisy model did not memorise, in the statistics (docs/protocol.md §8.3).

A run flagged in ``summary/memorised_runs.parquet`` localises a half-memorised model. The
setting ``stats.unmemorised`` says what the statistics do with it: ``exclude`` leaves its rows
out of every per-run input of the noisy-model analyses (M-CoG, layer weights, events, validation
accuracy), recomputing the across-seed M-CoG of its (technique, data set, model) from the runs
left; ``include`` keeps it. Either way every statistics row names the flagged runs
(``unmemorised``) and counts those left out of its inputs (``n_excluded``), so none is mixed in
silently. The counterfactual summaries (subset models) and the control models are other models
and are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from memloc.stats.mcog import ALL_SEEDS, depth_normalised

POLICIES = ("exclude", "include")
RUN_KEYS = ["dataset", "model", "seed"]


@dataclass(frozen=True)
class Exclusion:
    """The flagged runs (``runs``: dataset, model, seed) and whether the statistics leave them out."""

    runs: pd.DataFrame
    exclude: bool

    @property
    def names(self) -> list[str]:
        """``dataset/model/seedN`` of every flagged run."""
        return [f"{r.dataset}/{r.model}/seed{int(r.seed)}" for r in self.runs.itertuples()]

    @property
    def n_excluded(self) -> int:
        return len(self.runs) if self.exclude else 0

    def apply(self, table: pd.DataFrame | None, variant: str) -> pd.DataFrame | None:
        """``table`` without the rows of the excluded runs of ``variant`` (unchanged when nothing is excluded)."""
        if table is None or not self.n_excluded or table.empty:
            return table
        return table[~_flagged_rows(table, self.runs, variant)].reset_index(drop=True)

    def apply_mcog(self, mcog: pd.DataFrame, variant: str) -> pd.DataFrame:
        """``summary/mcog.parquet`` without the excluded runs' rows, the across-seed rows of the
        groups they belonged to recomputed from the runs left (the mean of their finite M-CoGs; no
        interval), and dropped where no run is left."""
        if not self.n_excluded or mcog.empty:
            return mcog
        gone = _flagged_rows(mcog, self.runs, variant) & (mcog["seed"] != ALL_SEEDS)
        if not gone.any():
            return mcog
        group = ["technique", "dataset", "model", "variant"]
        touched = mcog.loc[gone, group].drop_duplicates()
        kept = mcog[~gone]
        is_touched = pd.MultiIndex.from_frame(kept[group]).isin(pd.MultiIndex.from_frame(touched))
        stale = is_touched & (kept["seed"] == ALL_SEEDS)
        runs = kept[is_touched & (kept["seed"] != ALL_SEEDS)]
        fresh = []
        for key, df in runs.groupby(group, sort=True):
            values = df["mcog"].to_numpy(dtype=float)
            finite = values[np.isfinite(values)]
            mean = float(finite.mean()) if len(finite) else float("nan")
            L = df["num_layers"].iloc[0] if "num_layers" in df else np.nan
            fresh.append({**dict(zip(group, key)), "seed": ALL_SEEDS, "mcog": mean, "ci_low": np.nan, "ci_high": np.nan,
                          "ci_method": "none", "n_seeds": len(finite), "num_layers": L,
                          "mcog_norm": float(depth_normalised(mean, L))})
        fresh_df = pd.DataFrame(fresh, columns=mcog.columns)
        out = pd.concat([kept[~stale], fresh_df], ignore_index=True) if len(fresh_df) else kept[~stale]
        return out.astype(mcog.dtypes.to_dict()).reset_index(drop=True)


def exclusion(memorised_runs: pd.DataFrame | None, policy: str) -> Exclusion:
    """The runs ``memorised_runs`` flags (``memorised`` false) under ``policy`` (``stats.unmemorised``)."""
    if policy not in POLICIES:
        raise ValueError(f"stats.unmemorised is {policy!r}; use one of {', '.join(POLICIES)}")
    if memorised_runs is None or memorised_runs.empty:
        runs = pd.DataFrame({"dataset": pd.Series(dtype=object), "model": pd.Series(dtype=object),
                             "seed": pd.Series(dtype="int64")})
    else:
        missing = {*RUN_KEYS, "memorised"} - set(memorised_runs.columns)
        if missing:
            raise ValueError(f"summary/memorised_runs.parquet lacks columns {sorted(missing)}; re-run stats_memorised_runs")
        runs = memorised_runs.loc[~memorised_runs["memorised"].astype(bool), RUN_KEYS]
        runs = runs.astype({"seed": "int64"}).sort_values(RUN_KEYS).reset_index(drop=True)
    return Exclusion(runs, policy == "exclude")


def _flagged_rows(table: pd.DataFrame, runs: pd.DataFrame, variant: str) -> pd.Series:
    """Rows of ``table`` that belong to one of ``runs`` (and to ``variant`` where the table has variants)."""
    keys = set(zip(runs["dataset"], runs["model"], runs["seed"].astype(int)))
    hit = pd.Series([(d, m, int(s)) in keys for d, m, s in zip(table["dataset"], table["model"], table["seed"])],
                    index=table.index, dtype=bool)
    if "variant" in table:
        hit &= table["variant"] == variant
    return hit
