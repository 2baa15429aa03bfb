"""Centroid crossing against classification initiation (the paper's Figure 12), one point per
(data set, model) around the diagonal.

A point above the diagonal: the classes separate after the memorised examples cross over; below
it, before. The figure compares data sets, so with fewer than :data:`MIN_DATASETS` it still draws
its points but says on its face that it needs more.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from memloc.figures import style
from memloc.stats.events import centroid_event_means

MIN_DATASETS = 3  # the fewest data sets whose spread around the diagonal can be compared
ALL_MODELS = "all models (mean)"


def plot_centroid_events(events: pd.DataFrame, stem, datasets=None, variant: str = "noisy",
                         memorised_runs: pd.DataFrame | None = None):
    """One panel per model and, with several models, a first panel of their mean per data set
    (as published): crossing (x) against initiation (y) in the data set's colour and marker, with
    guide lines to the axes and the diagonal. ``events`` is ``summary/centroid_events.parquet``;
    runs that ``memorised_runs`` flags are named on the figure's face."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    style.apply()
    points = centroid_event_means(events, variant) if len(events) else pd.DataFrame()
    if points.empty:
        return style.save(style.empty_figure("no centroid events to draw"), stem)
    defined = points.dropna(subset=["crossing_layer", "initiation_layer"])
    models = sorted(points["model"].unique())
    panels = [(m, defined[defined["model"] == m]) for m in models]
    if len(models) > 1:
        mean = defined.groupby("dataset", as_index=False)[["crossing_layer", "initiation_layer"]].mean()
        panels.insert(0, (ALL_MODELS, mean))
    dstyle = style.dataset_styles(points["dataset"].unique(), datasets)
    values = defined[["crossing_layer", "initiation_layer"]].to_numpy()
    lo = min(1.0, float(np.floor(values.min()))) if values.size else 1.0
    hi = max(float(np.ceil(values.max())), lo + 1) if values.size else lo + 1
    fig, axes = style.grid(len(panels), max_cols=3, w=3.4, h=3.4)
    for ax, (title, sub) in zip(axes, panels):
        ax.plot([lo, hi], [lo, hi], color="grey", ls="--", lw=0.9, zorder=0)
        for _, r in sub.iterrows():
            st = dstyle[r["dataset"]]
            x, y = r["crossing_layer"], r["initiation_layer"]
            ax.plot([x, x], [lo - 0.5, y], color=st["color"], lw=0.8, zorder=1)
            ax.plot([lo - 0.5, x], [y, y], color=st["color"], lw=0.8, zorder=1)
            ax.plot(x, y, marker=st["marker"], color=st["color"], mec="black", ms=9, ls="none", alpha=0.85, zorder=2)
        missing = int((points["model"] == title).sum() - len(sub)) if title != ALL_MODELS else 0
        if missing:
            ax.text(0.98, 0.02, f"{missing} data set(s) without a crossing or initiation", transform=ax.transAxes,
                    ha="right", va="bottom", fontsize=7)
        ax.set_xlim(lo - 0.5, hi + 0.5)
        ax.set_ylim(lo - 0.5, hi + 0.5)
        ax.set_aspect("equal")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
        ax.set_xlabel("crossing (layer)")
        ax.set_ylabel("classification initiation (layer)")
    present = [d for d in dstyle if d in set(points["dataset"])]
    handles = [Line2D([], [], color=dstyle[d]["color"], marker=dstyle[d]["marker"], ls="none", label=d) for d in present]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=8)
    fig.tight_layout()
    n_datasets = points["dataset"].nunique()
    if n_datasets < MIN_DATASETS:
        why = style.too_few(MIN_DATASETS, "data sets", n_datasets, style.MORE_DATASETS)
        fig.text(0.5, 0.0, textwrap.fill(f"Comparing data sets around the diagonal {why}", 70), ha="center", va="top",
                 fontsize=8, color="#B00000")
    style.flag_unmemorised(fig, memorised_runs)
    return style.save(fig, stem)
