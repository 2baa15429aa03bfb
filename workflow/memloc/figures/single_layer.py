"""The largest memorisation error from swapping or retraining one block (the paper's single-layer swarm plots).

One point per data set shows how far a single block goes towards undoing memorisation; their
spread over data sets is the point of the figure, so with fewer than :data:`MIN_DATASETS` data
sets it says what it needs instead.
"""

from __future__ import annotations

import pandas as pd

from memloc.figures import style

MIN_DATASETS = 2  # the spread over data sets needs two of them

LABELS = {"swapping": "swapping", "retraining": "retraining"}


def single_layer_errors(heat: pd.DataFrame, technique: str, variant: str = "noisy") -> pd.DataFrame:
    """``dataset``, ``model``, ``max_error``, ``layer``: per (data set, model) the block whose window
    of size 1 has the largest seed-mean memorisation error (``summary/heatmaps.parquet``)."""
    df = style.of_variant(heat[(heat["technique"] == technique) & (heat["size"] == 1)], variant)
    if df.empty:
        return pd.DataFrame(columns=["dataset", "model", "max_error", "layer"])
    mean = df.groupby(["dataset", "model", "layer"], as_index=False)["error"].mean().dropna(subset=["error"])
    top = mean.loc[mean.groupby(["dataset", "model"])["error"].idxmax()]
    return top.rename(columns={"error": "max_error"})[["dataset", "model", "max_error", "layer"]].reset_index(drop=True)


def plot_single_layer(heat: pd.DataFrame, stem, technique: str, datasets=None, variant: str = "noisy",
                      memorised_runs: pd.DataFrame | None = None):
    """Per model (x), one marker per data set (its colour and marker, dodged) at the largest
    seed-mean memorisation error among the windows of one block. Runs that ``memorised_runs``
    flags are named on the figure's face."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    style.apply()
    top = single_layer_errors(heat, technique, variant)
    what = f"the largest error from {LABELS.get(technique, technique)} one block"
    if top.empty:
        return style.save(style.empty_figure(f"no {technique} results with single-block windows to draw"), stem)
    n = top["dataset"].nunique()
    if n < MIN_DATASETS:
        why = style.too_few(MIN_DATASETS, "data sets", n, style.MORE_DATASETS)
        return style.save(style.empty_figure(f"{what} per data set {why}"), stem)
    models = sorted(top["model"].unique())
    dstyle = style.dataset_styles(top["dataset"].unique(), datasets)
    present = [d for d in dstyle if d in set(top["dataset"])]
    fig, ax = plt.subplots(figsize=(max(3.0, 1.1 * len(models) + 1.4), 3.0))
    width = 0.7
    step = width / len(present)
    for i, model in enumerate(models):
        for k, dataset in enumerate(present):
            r = top[(top["model"] == model) & (top["dataset"] == dataset)]
            if len(r):
                st = dstyle[dataset]
                ax.plot(i - width / 2 + step * (k + 0.5), r["max_error"].iloc[0], marker=st["marker"], color=st["color"],
                        ls="none", ms=6, mec="black", mew=0.4)
    ax.set_xticks(range(len(models)), models, rotation=20)
    ax.set_xlim(-0.6, len(models) - 0.4)
    ax.set_ylabel(f"max memorisation error,\n{LABELS.get(technique, technique)} 1 block")
    handles = [Line2D([], [], color=dstyle[d]["color"], marker=dstyle[d]["marker"], ls="none", label=d) for d in present]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=7)
    fig.tight_layout()
    style.flag_unmemorised(fig, memorised_runs)
    return style.save(fig, stem)
