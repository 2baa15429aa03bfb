"""Control accuracy: acc@1 and acc@2 per technique with bootstrap intervals, against chance."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from memloc.control.accuracy import ALL
from memloc.figures import style


def plot_control(summary: pd.DataFrame, stem: str | os.PathLike, table: pd.DataFrame | None = None, datasets=None):
    """Bars: mean acc@1 and acc@2 per technique over the learned control runs (``summary`` rows
    with model ``(all)``); whiskers: the bootstrap interval over data set x pair units; dots: the
    learned runs of ``table`` (if given) in their data set's colour and marker; dashed line:
    chance 2/L. ``summary`` and ``table`` are ``summary/control_accuracy_summary.parquet`` and
    ``summary/control_accuracy.parquet``."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    style.apply()
    rows = summary[summary["model"] == ALL] if summary is not None and not summary.empty else pd.DataFrame()
    if rows.empty:
        return style.save(style.empty_figure("no control accuracy results to draw"), stem)
    techniques = style.technique_order(rows["technique"].unique())
    rows = rows.set_index("technique").loc[techniques]
    learned = table[table["learned"].astype(bool)] if table is not None and not table.empty else pd.DataFrame()
    dstyle = style.dataset_styles(learned["dataset"].unique() if len(learned) else [], datasets)
    present = [d for d in dstyle if len(learned) and d in set(learned["dataset"])]
    fig, ax = plt.subplots(figsize=(max(3.5, 1.1 * len(techniques) + 1.6), 2.9))
    width = 0.38
    x = np.arange(len(techniques))
    rng = np.random.default_rng(0)
    for k, (metric, col) in enumerate((("acc@1", "acc_at_1"), ("acc@2", "acc_at_2"))):
        xs = x + (k - 0.5) * width
        means = rows[col].to_numpy(dtype=float)
        low = np.clip(means - rows[f"{col}_low"].to_numpy(dtype=float), 0, None)
        high = np.clip(rows[f"{col}_high"].to_numpy(dtype=float) - means, 0, None)
        ax.bar(xs, np.nan_to_num(means), width=width * 0.95, color=style.METRIC_COLOURS[metric], alpha=0.85)
        ok = np.isfinite(low) & np.isfinite(high)
        if ok.any():
            ax.errorbar(xs[ok], means[ok], yerr=[low[ok], high[ok]], fmt="none", ecolor="black", elinewidth=1, capsize=2)
        for t_idx, t in enumerate(techniques):
            for d in present:
                vals = learned.loc[(learned["technique"] == t) & (learned["dataset"] == d), col].dropna().to_numpy(dtype=float)
                jitter = rng.uniform(-width * 0.3, width * 0.3, size=len(vals))
                ax.plot(xs[t_idx] + jitter, vals, ls="none", marker=dstyle[d]["marker"], ms=3, color=dstyle[d]["color"],
                        mec="white", mew=0.4, alpha=0.8)
    chance = float(rows["chance"].mean())
    if np.isfinite(chance):
        ax.axhline(chance, color="black", ls="--", lw=1)
    ax.set_xticks(x, techniques, rotation=20)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("control accuracy")
    n = rows["n_learned"].astype(int)
    span = f"{n.min()}" if n.min() == n.max() else f"{n.min()}-{n.max()}"
    ax.set_title(f"{span} learned control runs per technique", fontsize=8)
    handles = [Patch(color=style.METRIC_COLOURS[m], label=m) for m in ("acc@1", "acc@2")]
    handles.append(Line2D([], [], color="black", ls="--", label="chance (2/L)"))
    handles += [Line2D([], [], color=dstyle[d]["color"], marker=dstyle[d]["marker"], ls="none", label=d) for d in present]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=7)
    fig.tight_layout()
    return style.save(fig, stem)
