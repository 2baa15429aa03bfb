"""Probing F1 per layer: the noisy model against the frozen baseline."""

from __future__ import annotations

import pandas as pd

from memloc.figures import style


def plot_probing(probing: pd.DataFrame, stem, datasets=None, variant: str = "noisy", score: str = "test_f1",
                 memorised_runs: pd.DataFrame | None = None):
    """One panel per (data set, model); mean +- sd of the probe F1 over probe seeds (training
    seeds pooled) at every layer 0..L, for the noisy model (the data set's colour) and the
    frozen model (grey; often probed at layer 1 only, the baseline of layer 1's gain).
    ``probing`` is ``summary/probing.parquet``; runs that ``memorised_runs`` flags are named on
    the figure's face."""
    from matplotlib.lines import Line2D

    style.apply()
    df = style.of_variant(probing, variant)
    if df.empty:
        return style.save(style.empty_figure("no probing results to draw"), stem)
    agg = df.groupby(["dataset", "model", "probed", "layer"], as_index=False)[score].agg(["mean", "std"])
    order = style.dataset_order(agg["dataset"].unique(), datasets)
    dstyle = style.dataset_styles(agg["dataset"].unique(), datasets)
    keys = sorted(agg[["dataset", "model"]].drop_duplicates().itertuples(index=False), key=lambda k: (order.index(k[0]), k[1]))
    fig, axes = style.grid(len(keys), max_cols=4, sharey=True)
    for ax, (dataset, model) in zip(axes, keys):
        for net in ("frozen", "noisy"):
            g = agg[(agg["dataset"] == dataset) & (agg["model"] == model) & (agg["probed"] == net)].sort_values("layer")
            if g.empty:
                continue
            colour = dstyle[dataset]["color"] if net == "noisy" else style.NETWORK_COLOURS["frozen"]
            # The frozen model is usually probed at layer 1 only (the baseline of layer 1's gain).
            marker = dstyle[dataset]["marker"] if net == "noisy" else "D"
            ax.plot(g["layer"], g["mean"], color=colour, marker=marker, ms=4 if net == "noisy" else 5, lw=1.2,
                    ls="-" if net == "noisy" else "--")
            if len(g) == 1:
                ax.errorbar(g["layer"], g["mean"], yerr=g["std"].fillna(0), color=colour, capsize=3, lw=1)
                continue
            sd = g["std"].fillna(0)
            ax.fill_between(g["layer"], g["mean"] - sd, g["mean"] + sd, color=colour, alpha=0.2, lw=0)
        ax.set_title(style.panel_label(dataset, model))
        ax.set_xlabel("layer (0 = embeddings)")
        ax.set_ylabel({"test_f1": "probe test F1", "val_f1": "probe validation F1"}.get(score, score))
    handles = [
        Line2D([], [], color="black", ls="-", label="noisy model"),
        Line2D([], [], color=style.NETWORK_COLOURS["frozen"], ls="--", marker="D", label="frozen model"),
    ]
    axes[0].legend(handles=handles, fontsize=7, loc="best")
    fig.tight_layout()
    style.flag_unmemorised(fig, memorised_runs)
    return style.save(fig, stem)
