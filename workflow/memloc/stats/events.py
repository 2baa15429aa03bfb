"""Layer events per (data set, model), averaged over training seeds (docs/protocol.md §8.8).

- probing (``summary/probing_events.parquet``, one row per run): ``event_layer``, where probes
  predict the noisy label better than the original one (memorisation >> generalisation), and
  ``initiation_layer``, where the clean examples' probe F1 reaches near ceiling;
- centroids (``summary/centroid_events.parquet``): ``crossing_layer`` and ``initiation_layer`` of the
  positions pooled over class pairs (``scope = pooled`` rows) where the run has them, otherwise of
  every class pair (``scope = pair``), pairs without the event left out.

Seeds without an event are left out of the mean (the paper's notebooks average the seeds where
the event occurs); a (data set, model) without any keeps NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from memloc.stats.collect import event_rows

PROBING_EVENT_COLUMNS = ["dataset", "model", "variant", "seed", "num_layers", "event_layer", "initiation_layer"]
EVENT_MEAN_COLUMNS = ["dataset", "model", "event_layer", "initiation_layer"]
CENTROID_MEAN_COLUMNS = ["dataset", "model", "crossing_layer", "initiation_layer"]


def _of_variant(table: pd.DataFrame, variant: str | None) -> pd.DataFrame:
    return table if variant is None or "variant" not in table else table[table["variant"] == variant]


def _layer(values: pd.Series) -> pd.Series:
    """Event layers as floats; anything not a layer number (>= 0) becomes NaN."""
    v = pd.to_numeric(values, errors="coerce").astype("float64")
    return v.where(v >= 0)


def probing_event_means(probing_events: pd.DataFrame | None, variant: str | None = "noisy") -> pd.DataFrame:
    """``dataset``, ``model``, ``event_layer``, ``initiation_layer``: the seed means of
    ``summary/probing_events.parquet``; empty when there is no table."""
    if probing_events is None or probing_events.empty:
        return pd.DataFrame(columns=EVENT_MEAN_COLUMNS)
    missing = set(PROBING_EVENT_COLUMNS) - set(probing_events.columns)
    if missing:
        raise ValueError(
            f"summary/probing_events.parquet lacks columns {sorted(missing)}; expected {PROBING_EVENT_COLUMNS} "
            "(re-run the probing events rule)"
        )
    ev = _of_variant(probing_events, variant)
    ev = ev.assign(event_layer=_layer(ev["event_layer"]), initiation_layer=_layer(ev["initiation_layer"]))
    out = ev.groupby(["dataset", "model"], as_index=False)[["event_layer", "initiation_layer"]].mean()
    return out[EVENT_MEAN_COLUMNS]


def centroid_event_means(centroid_events: pd.DataFrame | None, variant: str | None = "noisy") -> pd.DataFrame:
    """``dataset``, ``model``, ``crossing_layer``, ``initiation_layer``: each run's events from its
    pooled row or its pair rows (:func:`memloc.stats.collect.event_rows`), averaged over the pairs
    of the run, then over seeds (as published: events per seed, then their mean); events that never
    happen are left out."""
    if centroid_events is None or centroid_events.empty:
        return pd.DataFrame(columns=CENTROID_MEAN_COLUMNS)
    ev = event_rows(_of_variant(centroid_events, variant))
    ev = ev.assign(crossing_layer=_layer(ev["crossing_layer"]), initiation_layer=_layer(ev["initiation_layer"]))
    cols = ["crossing_layer", "initiation_layer"]
    runs = ev.groupby(["dataset", "model", "seed"], as_index=False)[cols].mean()
    out = runs.groupby(["dataset", "model"], as_index=False)[cols].mean()
    return out[CENTROID_MEAN_COLUMNS]


def paired_events(probing_events: pd.DataFrame | None, centroid_events: pd.DataFrame | None,
                  variant: str | None = "noisy") -> pd.DataFrame:
    """Probing and centroid events side by side per (data set, model) that has both: columns
    ``probing_event_layer``, ``probing_initiation_layer``, ``centroid_crossing_layer``,
    ``centroid_initiation_layer``."""
    p = probing_event_means(probing_events, variant).rename(
        columns={"event_layer": "probing_event_layer", "initiation_layer": "probing_initiation_layer"})
    c = centroid_event_means(centroid_events, variant).rename(
        columns={"crossing_layer": "centroid_crossing_layer", "initiation_layer": "centroid_initiation_layer"})
    out = p.merge(c, on=["dataset", "model"], how="inner")
    for col in out.columns[2:]:
        out[col] = out[col].astype(np.float64)
    return out
