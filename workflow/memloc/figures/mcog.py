"""M-CoG per data set and technique, with intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from memloc.figures import style
from memloc.stats.mcog import ALL_SEEDS, mixed_depths


def plot_mcog(mcog: pd.DataFrame, stem, datasets=None, variant: str = "noisy", memorised_runs: pd.DataFrame | None = None):
    """One panel per model: techniques on the x axis, one dodged point per data set (its colour
    and marker) at the seed-aggregated M-CoG with its interval (where one exists); single-seed
    M-CoGs as small open markers. ``mcog`` is ``summary/mcog.parquet``; runs that
    ``memorised_runs`` flags are named on the figure's face. When the models differ in depth each
    panel adds a right-hand axis of the depth-normalised M-CoG, the scale the panels share."""
    from matplotlib.lines import Line2D

    style.apply()
    df = style.of_variant(mcog, variant)
    if df.empty:
        return style.save(style.empty_figure("no M-CoG values to draw"), stem)
    agg = df[df["seed"] == ALL_SEEDS]
    runs = df[df["seed"] != ALL_SEEDS]
    if agg.empty:  # a table without aggregate rows: aggregate here
        agg = runs.groupby(["technique", "dataset", "model"], as_index=False)["mcog"].mean().assign(ci_low=np.nan, ci_high=np.nan)
    techniques = style.technique_order(df["technique"].unique())
    order = style.dataset_order(df["dataset"].unique(), datasets)
    dstyle = style.dataset_styles(df["dataset"].unique(), datasets)
    present = [d for d in order if d in set(df["dataset"])]
    models = sorted(df["model"].unique())
    fig, axes = style.grid(len(models), max_cols=2, w=max(3.2, 1.0 * len(techniques) + 1.2), h=2.8)
    width = 0.7
    step = width / max(1, len(present))
    depths = df.groupby("model")["num_layers"].max() if mixed_depths(df) else None
    for ax, model in zip(axes, models):
        if depths is not None:
            _normalised_axis(ax, int(depths[model]))
        for k, dataset in enumerate(present):
            offset = -width / 2 + step * (k + 0.5)
            st = dstyle[dataset]
            for i, tech in enumerate(techniques):
                x = i + offset
                a = agg[(agg["model"] == model) & (agg["dataset"] == dataset) & (agg["technique"] == tech)]
                if len(a):
                    y, lo, hi = (float(a[c].iloc[0]) for c in ("mcog", "ci_low", "ci_high"))
                    if np.isfinite(lo) and np.isfinite(hi):
                        ax.errorbar(x, y, yerr=[[max(0, y - lo)], [max(0, hi - y)]], color=st["color"], lw=1, capsize=2)
                    ax.plot(x, y, marker=st["marker"], color=st["color"], ms=6, ls="none")
                r = runs[(runs["model"] == model) & (runs["dataset"] == dataset) & (runs["technique"] == tech)]
                if len(r) > 1:
                    ax.plot(np.full(len(r), x), r["mcog"], marker=st["marker"], mfc="none", color=st["color"], ms=3,
                            ls="none", alpha=0.6)
        ax.set_xticks(range(len(techniques)), techniques, rotation=20)
        ax.set_xlim(-0.6, len(techniques) - 0.4)
        ax.set_ylabel("M-CoG (layer)")
        ax.set_title(f"model: {model}")
    handles = [Line2D([], [], color=dstyle[d]["color"], marker=dstyle[d]["marker"], ls="none", label=d) for d in present]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=8)
    fig.tight_layout()
    style.flag_unmemorised(fig, memorised_runs)
    return style.save(fig, stem)


def _normalised_axis(ax, num_layers: int) -> None:
    """A right-hand axis reading the panel's M-CoG (1..L) as (M-CoG - 1) / (L - 1)."""
    span = max(num_layers - 1, 1)
    right = ax.secondary_yaxis("right", functions=(lambda y: (y - 1) / span, lambda v: 1 + v * span))
    right.set_ylabel(style.MCOG_NORM_LABEL, fontsize=7)
