"""Clean examples' accuracy under layer swapping: swapping should leave what was not memorised intact."""

from __future__ import annotations

import numpy as np
import pandas as pd

from memloc.figures import style


def clean_accuracy_summary(table: pd.DataFrame) -> dict:
    """Mean and sd of ``acc_clean`` over windows, and the mean with each window counted once per
    block it holds (the published notebook's, which appended a window's accuracy per layer)."""
    v = table.dropna(subset=["acc_clean"])
    acc = v["acc_clean"].to_numpy(float)
    size = v["size"].to_numpy(float)
    if not len(acc):
        return {"mean": np.nan, "sd": np.nan, "size_weighted": np.nan, "n": 0}
    return {"mean": float(acc.mean()), "sd": float(acc.std()), "size_weighted": float((acc * size).sum() / size.sum()),
            "n": int(len(acc))}


def plot_clean_accuracy(table: pd.DataFrame, stem, datasets=None, variant: str = "noisy",
                        memorised_runs: pd.DataFrame | None = None):
    """One panel per model: every swapped window's clean accuracy (y) by window size (x), in its
    data set's colour and marker; the title gives the mean ± sd over windows and the size-weighted
    mean. ``table`` is ``summary/swapping_clean.parquet``; runs that ``memorised_runs`` flags are
    named on the figure's face."""
    from matplotlib.lines import Line2D

    style.apply()
    df = style.of_variant(table, variant).dropna(subset=["acc_clean"]) if len(table) else table
    if df.empty:
        return style.save(style.empty_figure("no swapping results with clean accuracy to draw"), stem)
    models = sorted(df["model"].unique())
    dstyle = style.dataset_styles(df["dataset"].unique(), datasets)
    present = [d for d in dstyle if d in set(df["dataset"])]
    fig, axes = style.grid(len(models), max_cols=2, sharey=True)
    rng = np.random.default_rng(0)
    for ax, model in zip(axes, models):
        sub = df[df["model"] == model]
        for dataset in present:
            g = sub[sub["dataset"] == dataset]
            st = dstyle[dataset]
            ax.plot(g["size"] + rng.uniform(-0.25, 0.25, len(g)), g["acc_clean"], marker=st["marker"], color=st["color"],
                    ls="none", ms=3, alpha=0.7)
        s = clean_accuracy_summary(sub)
        ax.axhline(s["mean"], color="black", ls="--", lw=0.8)
        ax.set_title(f"{model}: mean {s['mean']:.3f} ± {s['sd']:.3f} over {s['n']} windows\n"
                     f"size-weighted (as published) {s['size_weighted']:.3f}", fontsize=7)
        ax.set_xlabel("window size (blocks swapped)")
        ax.set_ylabel("clean accuracy")
    handles = [Line2D([], [], color=dstyle[d]["color"], marker=dstyle[d]["marker"], ls="none", label=d) for d in present]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=7)
    fig.tight_layout()
    style.flag_unmemorised(fig, memorised_runs)
    return style.save(fig, stem)
