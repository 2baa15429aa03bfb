"""Memorisation map: train memorisation against generalisation per training example.

Each point is a training example: x = generalisation (mean p(label) from the models that did not
train on it), y = train memorisation (mean p(label) from the models that did), colour = their
difference, the counterfactual memorisation (CM). Points above the diagonal are better predicted
when trained on than when held out; the noisy examples (crosses) should sit high above it.

Unlike the summary figures, these are drawn per (data set, model) and may go into a panel of a
larger figure: they are built on :class:`matplotlib.figure.Figure` directly (no pyplot figure
manager) and return it; :func:`memloc.figures.style.save_figure` writes them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

CMAP = "vlag"  # diverging: CM 0 is neutral, memorised examples red, anti-memorised blue
MARKERS = {False: ("o", "clean"), True: ("X", "noisy")}


def _style():
    import seaborn as sns

    return sns.axes_style("ticks")


def _cmap():
    import seaborn as sns

    return sns.color_palette(CMAP, as_cmap=True)


def memorisation_map(
    table: pd.DataFrame,
    title: str | None = None,
    ax=None,
    colorbar: bool = True,
    rasterize_above: int = 5000,
):
    """Draw the memorisation map of a memorisation table (docs/protocol.md §5.2) and return its Figure.

    ``ax``: draw into an existing Axes (e.g. a panel of a larger figure); otherwise a new
    Figure is made. Examples without a CM estimate are left out and counted in the corner.
    Large tables are rasterised inside vector outputs (PDF stays small).
    """
    needed = {"generalisation", "train_memorisation", "counterfactual_memorisation", "is_noisy"}
    missing = needed - set(table.columns)
    if missing:
        raise ValueError(f"memorisation_map: the table lacks {sorted(missing)}")
    cm = table["counterfactual_memorisation"].to_numpy(dtype=np.float64)
    ok = np.isfinite(cm)
    data = table.loc[ok]
    span = float(np.nanmax(np.abs(cm))) if ok.any() else 1.0
    span = span if span > 0 else 1.0
    norm = Normalize(vmin=-span, vmax=span)
    cmap = _cmap()

    with _style():
        if ax is None:
            fig = Figure(figsize=(5.0, 4.2), constrained_layout=True)
            FigureCanvasAgg(fig)
            ax = fig.add_subplot()
        else:
            fig = ax.figure
        ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="0.4", zorder=1)
        raster = len(data) > rasterize_above
        mappable = None
        for noisy in (False, True):  # noisy on top
            part = data[data["is_noisy"].astype(bool) == noisy]
            if part.empty:
                continue
            marker, _ = MARKERS[noisy]
            mappable = ax.scatter(
                part["generalisation"],
                part["train_memorisation"],
                c=part["counterfactual_memorisation"],
                cmap=cmap,
                norm=norm,
                marker=marker,
                s=22 if noisy else 12,
                linewidths=0.3 if noisy else 0.2,
                edgecolors="0.15" if noisy else "0.55",
                alpha=0.85,
                zorder=3 if noisy else 2,
                rasterized=raster,
            )
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
        ax.set_xlabel("generalisation (mean p(label), held out)")
        ax.set_ylabel("train memorisation (mean p(label), trained on)")
        if title:
            ax.set_title(title)
        handles = [
            Line2D([], [], ls="", marker=MARKERS[n][0], color="0.5", markeredgecolor="0.15" if n else "0.5",
                   label=f"{MARKERS[n][1]} ({int((data['is_noisy'].astype(bool) == n).sum())})")
            for n in (False, True)
        ]
        ax.legend(handles=handles, loc="lower right", frameon=True, fontsize="small")
        n_undefined = int((~ok).sum())
        if n_undefined:
            ax.text(0.02, 0.98, f"{n_undefined} without estimate", transform=ax.transAxes,
                    va="top", ha="left", fontsize="x-small", color="0.3")
        if colorbar:
            if mappable is None:
                from matplotlib.cm import ScalarMappable

                mappable = ScalarMappable(norm=norm, cmap=cmap)
            fig.colorbar(mappable, ax=ax, label="counterfactual memorisation", shrink=0.85)
    return fig


def reliability_plot(curve: pd.DataFrame, title: str | None = None):
    """Split-half reliability of per-example CM against the number of models k."""
    with _style():
        fig = Figure(figsize=(4.5, 3.2), constrained_layout=True)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        c = curve.dropna(subset=["reliability"])
        ax.plot(c["k"], c["reliability"], marker="o", ms=3)
        if "half_correlation_sd" in c and len(c):
            # Band: the projection of mean r -/+ one SD over splits (the projection is monotone).
            from memloc.counterfactual.reliability import spearman_brown

            half = (c["k"] // 2).to_numpy()
            factor = c["k"].to_numpy() / half
            r, sd = c["half_correlation"].to_numpy(), c["half_correlation_sd"].fillna(0).to_numpy()
            lo = spearman_brown(np.clip(r - sd, -0.999, 1.0), factor)
            hi = spearman_brown(np.clip(r + sd, -0.999, 1.0), factor)
            ax.fill_between(c["k"], lo, hi, alpha=0.2, lw=0)
        ax.set_xlabel("models k")
        ax.set_ylabel("split-half reliability of CM")
        ax.set_ylim(min(0.0, float(c["reliability"].min()) if len(c) else 0.0), 1.0)
        if title:
            ax.set_title(title)
    return fig
