"""Per-layer weight curves per technique, one row of panels per task family."""

from __future__ import annotations

import pandas as pd

from memloc.figures import style

LINESTYLES = ["-", "--", ":", "-."]


def plot_layer_weights(
    layer_weights: pd.DataFrame,
    stem,
    families: dict | None = None,
    datasets=None,
    variant: str = "noisy",
    memorised_runs: pd.DataFrame | None = None,
):
    """Panels: techniques (columns) x task families (rows). Lines: one per (data set, model),
    colour and marker per data set, line style per model; weights normalised to sum 1 per run,
    mean over seeds with a +-1 sd band when there are several seeds. Runs that ``memorised_runs``
    flags are named on the figure's face."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    style.apply()
    lw = style.of_variant(layer_weights, variant)
    if lw.empty:
        return style.save(style.empty_figure("no layer weights to draw"), stem)
    col = "weight_norm" if "weight_norm" in lw else "weight"
    lw = lw.assign(family=[(families or {}).get(d, "other") for d in lw["dataset"]])
    agg = lw.groupby(["technique", "family", "dataset", "model", "layer"], as_index=False)[col].agg(["mean", "std"])
    techniques = style.technique_order(agg["technique"].unique())
    fams = sorted(agg["family"].unique())
    dstyle = style.dataset_styles(agg["dataset"].unique(), datasets)
    models = sorted(agg["model"].unique())
    mstyle = {m: LINESTYLES[i % len(LINESTYLES)] for i, m in enumerate(models)}
    fig, axes = plt.subplots(
        len(fams), len(techniques), figsize=(style.PANEL_W * len(techniques), style.PANEL_H * len(fams)),
        squeeze=False, sharey="row",
    )
    for i, fam in enumerate(fams):
        for j, tech in enumerate(techniques):
            ax = axes[i][j]
            sub = agg[(agg["family"] == fam) & (agg["technique"] == tech)]
            for (dataset, model), g in sub.groupby(["dataset", "model"]):
                g = g.sort_values("layer")
                st = dstyle[dataset]
                ax.plot(g["layer"], g["mean"], color=st["color"], marker=st["marker"], ls=mstyle[model], ms=4, lw=1.2)
                if g["std"].notna().any():
                    ax.fill_between(g["layer"], g["mean"] - g["std"], g["mean"] + g["std"], color=st["color"], alpha=0.15, lw=0)
            ax.set_title(f"{tech} | {fam}")
            ax.set_xlabel("layer")
            if j == 0:
                ax.set_ylabel("weight (normalised)")
            if sub.empty:
                ax.text(0.5, 0.5, "no runs", transform=ax.transAxes, ha="center", va="center", color="grey")
    handles = [Line2D([], [], color=s["color"], marker=s["marker"], ls="-", label=d) for d, s in dstyle.items()]
    if len(models) > 1:
        handles += [Line2D([], [], color="black", ls=mstyle[m], label=m) for m in models]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=8)
    fig.tight_layout()
    style.flag_unmemorised(fig, memorised_runs)
    return style.save(fig, stem)
