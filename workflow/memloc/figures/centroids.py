"""Centroid trajectories: mean position of clean_a, noisy and clean_b examples per layer."""

from __future__ import annotations

import pandas as pd

from memloc.figures import style
from memloc.stats.collect import event_rows

GROUP_LABELS = {"clean_a": "clean, class a", "noisy": "noisy (label a, originally b)", "clean_b": "clean, class b"}


def plot_centroids(centroids: pd.DataFrame, stem, events: pd.DataFrame | None = None, datasets=None, variant: str = "noisy",
                   memorised_runs: pd.DataFrame | None = None):
    """One panel per (data set, model): position on the a->b centroid line (0 = a, 1 = b), mean
    over class pairs (or pooled over them) and seeds, with the 12.5-87.5 percentile band; the
    dotted vertical line is the mean crossing layer (:func:`~memloc.stats.collect.event_rows`)
    when ``events`` is given. ``centroids`` is ``summary/centroids.parquet``; runs that
    ``memorised_runs`` flags are named on the figure's face."""
    from matplotlib.lines import Line2D

    style.apply()
    df = style.of_variant(centroids, variant)
    if df.empty:
        return style.save(style.empty_figure("no centroid results to draw"), stem)
    agg = df.groupby(["dataset", "model", "group", "layer"], as_index=False)[["mean", "p12_5", "p87_5"]].mean()
    order = style.dataset_order(agg["dataset"].unique(), datasets)
    keys = sorted(agg[["dataset", "model"]].drop_duplicates().itertuples(index=False), key=lambda k: (order.index(k[0]), k[1]))
    fig, axes = style.grid(len(keys), max_cols=4, sharey=True)
    for ax, (dataset, model) in zip(axes, keys):
        sub = agg[(agg["dataset"] == dataset) & (agg["model"] == model)]
        for group in ("clean_a", "clean_b", "noisy"):
            g = sub[sub["group"] == group].sort_values("layer")
            if g.empty:
                continue
            c = style.GROUP_COLOURS.get(group, "black")
            ax.plot(g["layer"], g["mean"], color=c, marker="o", ms=3, lw=1.3)
            ax.fill_between(g["layer"], g["p12_5"], g["p87_5"], color=c, alpha=0.15, lw=0)
        ax.axhline(0.5, color="grey", ls=":", lw=0.8)
        if events is not None and len(events):
            ev = events[(events["dataset"] == dataset) & (events["model"] == model)]
            ev = style.of_variant(ev, variant)
            ev = event_rows(ev)
            cross = pd.to_numeric(ev["crossing_layer"], errors="coerce")
            cross = cross[cross >= 0]
            if len(cross):
                ax.axvline(cross.mean(), color=style.GROUP_COLOURS["noisy"], ls=":", lw=1)
        ax.set_title(style.panel_label(dataset, model))
        ax.set_xlabel("layer (0 = embeddings)")
        ax.set_ylabel("position (0 = centroid a, 1 = centroid b)")
    handles = [Line2D([], [], color=style.GROUP_COLOURS[g], label=GROUP_LABELS[g]) for g in ("clean_a", "noisy", "clean_b")]
    axes[0].legend(handles=handles, fontsize=6, loc="best")
    fig.tight_layout()
    style.flag_unmemorised(fig, memorised_runs)
    return style.save(fig, stem)
