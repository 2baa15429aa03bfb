"""Control accuracy: acc@1 and acc@2 per technique against chance."""

from __future__ import annotations

import numpy as np
import pandas as pd

from memloc.figures import style


def plot_control(control: pd.DataFrame, stem, datasets=None):
    """Bars: mean acc@1 and acc@2 per technique over every control run; points: the mean per
    data set (its colour and marker); dashed line: chance 2/L (mean over rows)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    style.apply()
    if control is None or control.empty:
        return style.save(style.empty_figure("no control accuracy results to draw"), stem)
    techniques = style.technique_order(control["technique"].unique())
    dstyle = style.dataset_styles(control["dataset"].unique(), datasets)
    present = [d for d in dstyle if d in set(control["dataset"])]
    fig, ax = plt.subplots(figsize=(max(3.5, 1.1 * len(techniques) + 1.5), 2.9))
    width = 0.38
    for j, (metric, col) in enumerate((("acc@1", "acc_at_1"), ("acc@2", "acc_at_2"))):
        if col not in control:
            continue
        means = [control.loc[control["technique"] == t, col].mean() for t in techniques]
        xs = np.arange(len(techniques)) + (j - 0.5) * width
        ax.bar(xs, means, width=width * 0.95, color=style.METRIC_COLOURS[metric], label=metric, alpha=0.85)
        per_d = control.groupby(["technique", "dataset"])[col].mean()
        for i, t in enumerate(techniques):
            for k, d in enumerate(present):
                if (t, d) in per_d.index:
                    jitter = (k - (len(present) - 1) / 2) * min(0.05, width / (len(present) + 1))
                    ax.plot(xs[i] + jitter, per_d[(t, d)], marker=dstyle[d]["marker"], color=dstyle[d]["color"],
                            mec="white", mew=0.5, ms=5, ls="none")
    if "chance" in control and control["chance"].notna().any():
        ax.axhline(float(control["chance"].mean()), color="black", ls="--", lw=1)
    ax.set_xticks(range(len(techniques)), techniques, rotation=20)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("control accuracy")
    handles = [Patch(color=style.METRIC_COLOURS[m], label=m) for m in ("acc@1", "acc@2")]
    handles.append(Line2D([], [], color="black", ls="--", label="chance (2/L)"))
    handles += [Line2D([], [], color=dstyle[d]["color"], marker=dstyle[d]["marker"], ls="none", label=d) for d in present]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=7)
    fig.tight_layout()
    return style.save(fig, stem)
