"""M-CoG averaged over techniques, per data set and model (the paper's "M-CoG per model")."""

from __future__ import annotations

import numpy as np
import pandas as pd

from memloc.figures import style
from memloc.stats.depth import technique_mean_mcog
from memloc.stats.mcog import mixed_depths

MIN_TECHNIQUES = 2  # a mean over one technique is that technique's M-CoG (figure "mcog")
MODEL_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


def plot_mcog_mean(mcog: pd.DataFrame, stem, datasets=None, variant: str = "noisy", memorised_runs: pd.DataFrame | None = None):
    """Rows: data sets; x: the mean over techniques of the seed-aggregated M-CoG, one marker per
    model, and in grey the mean ± sd over models; the depth-normalised M-CoG when the models
    differ in depth (their raw layers do not pool). ``mcog`` is ``summary/mcog.parquet``; runs
    that ``memorised_runs`` flags are named on the figure's face."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.lines import Line2D

    style.apply()
    df = style.of_variant(mcog, variant)
    n_tech = df["technique"].nunique() if len(df) else 0
    if n_tech < MIN_TECHNIQUES:
        why = style.too_few(MIN_TECHNIQUES, "techniques", n_tech, style.MORE_TECHNIQUES)
        return style.save(style.empty_figure(f"M-CoG averaged over techniques {why}"), stem)
    value = "mcog_norm" if mixed_depths(df) else "mcog"
    mean = technique_mean_mcog(df, variant, value).dropna(subset=[value])
    if mean.empty:
        return style.save(style.empty_figure("no (data set, model) has an M-CoG from every technique"), stem)
    order = [d for d in style.dataset_order(mean["dataset"].unique(), datasets) if d in set(mean["dataset"])]
    models = sorted(mean["model"].unique())
    colours = sns.color_palette("viridis", len(models)).as_hex()
    fig, ax = plt.subplots(figsize=(4.2, 0.35 * len(order) + 1.3))
    y = {d: i for i, d in enumerate(order)}
    for d in order:
        vals = mean.loc[mean["dataset"] == d, value].to_numpy(float)
        sd = vals.std(ddof=1) if len(vals) > 1 else np.nan
        ax.errorbar(vals.mean(), y[d], xerr=None if np.isnan(sd) else sd, color="grey", marker="|", ms=12, lw=1.2, capsize=3)
    offsets = np.linspace(-0.2, 0.2, len(models)) if len(models) > 1 else [0.0]
    for k, model in enumerate(models):
        sub = mean[mean["model"] == model]
        ax.plot(sub[value], [y[d] + offsets[k] for d in sub["dataset"]], marker=MODEL_MARKERS[k % len(MODEL_MARKERS)],
                color=colours[k], ls="none", ms=6, mec="black", mew=0.4)
    ax.set_yticks(range(len(order)), order)
    ax.set_ylim(len(order) - 0.5, -0.5)
    if value == "mcog":
        ax.set_xlabel(f"M-CoG, mean over {n_tech} techniques (layer)")
    else:
        ax.set_xlabel(f"{style.MCOG_NORM_LABEL},\nmean over {n_tech} techniques (models differ in depth)")
    handles = [Line2D([], [], color=colours[k], marker=MODEL_MARKERS[k % len(MODEL_MARKERS)], ls="none", label=m)
               for k, m in enumerate(models)]
    handles.append(Line2D([], [], color="grey", marker="|", label="mean ± sd over models"))
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=7)
    fig.tight_layout()
    style.flag_unmemorised(fig, memorised_runs)
    return style.save(fig, stem)
