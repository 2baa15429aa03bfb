"""M-CoG against the data set's generalisation score (counterfactual memorisation).

The statistics relate the two over data sets (at least :data:`~memloc.stats.generalisation.MIN_DATASETS`);
with fewer, as on the embedded default, the figure says so instead of drawing a point per panel.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from memloc.figures import style
from memloc.stats.generalisation import MIN_DATASETS
from memloc.stats.mcog import ALL_SEEDS, depth_normalised, mixed_depths


def plot_generalisation(mcog: pd.DataFrame, counterfactual: pd.DataFrame, stem, datasets=None, variant: str = "noisy",
                        score: str = "generalisation_mean", memorised_runs: pd.DataFrame | None = None):
    """One panel per technique: seed-aggregated M-CoG (y) against ``generalisation_mean`` (x),
    one point per (data set, model) in the data set's colour and marker (hollow: the second model), depth-normalised (with
    its interval) when the models differ in depth; with fewer than :data:`MIN_DATASETS` data sets
    a figure that says what it needs. Runs that ``memorised_runs`` flags are named on its face."""
    from matplotlib.lines import Line2D

    style.apply()
    df = style.of_variant(mcog[(mcog["seed"] == ALL_SEEDS)] if "seed" in mcog else mcog, variant)
    if counterfactual is None or counterfactual.empty or score not in counterfactual:
        return style.save(style.empty_figure("no counterfactual summaries to draw"), stem)
    data = df.merge(counterfactual[["dataset", "model", score]], on=["dataset", "model"], how="inner")
    if data.empty:
        return style.save(style.empty_figure("no (data set, model) with both M-CoG and a generalisation score"), stem)
    n_datasets = data["dataset"].nunique()
    if n_datasets < MIN_DATASETS:
        why = style.too_few(MIN_DATASETS, "data sets", n_datasets, style.MORE_DATASETS)
        return style.save(style.empty_figure(f"M-CoG against generalisation {why}"), stem)
    normalised = mixed_depths(df)
    if normalised:  # models of different depth share the panels: (M-CoG - 1) / (L - 1)
        data = data.assign(**{c: depth_normalised(data[c], data["num_layers"]) for c in ("ci_low", "ci_high")},
                           mcog=data["mcog_norm"])
    techniques = style.technique_order(data["technique"].unique())
    dstyle = style.dataset_styles(data["dataset"].unique(), datasets)
    present = [d for d in dstyle if d in set(data["dataset"])]
    faces = style.model_faces(data["model"].unique())
    fig, axes = style.grid(len(techniques), max_cols=4)
    for ax, tech in zip(axes, techniques):
        sub = data[data["technique"] == tech]
        for _, r in sub.iterrows():
            st = dstyle[r["dataset"]]
            if np.isfinite(r.get("ci_low", np.nan)) and np.isfinite(r.get("ci_high", np.nan)):
                ax.errorbar(r[score], r["mcog"], yerr=[[r["mcog"] - r["ci_low"]], [r["ci_high"] - r["mcog"]]],
                            color=st["color"], lw=0.8, capsize=2)
            ax.plot(r[score], r["mcog"], marker=st["marker"], color=st["color"], mfc=faces[r["model"]], ls="none", ms=6)
        ax.set_title(tech)
        ax.set_xlabel("generalisation score")
        ax.set_ylabel(style.MCOG_NORM_LABEL if normalised else "M-CoG (layer)")
    handles = [Line2D([], [], color=dstyle[d]["color"], marker=dstyle[d]["marker"], ls="none", label=d) for d in present]
    handles += style.model_handles(faces)
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=8)
    fig.tight_layout()
    style.flag_unmemorised(fig, memorised_runs)
    return style.save(fig, stem)
