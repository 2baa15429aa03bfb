"""Label probes and probing events (docs/protocol.md §6.7): the curves per run, the events across data sets.

The event scatter relates the two events over data sets (the paper's reading: memorisation
overtakes generalisation before or after the task is read out); with fewer than
:data:`~memloc.stats.generalisation.MIN_DATASETS` data sets it still draws its points but says
on its face that it needs more.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from memloc.figures import style
from memloc.localise.probing_events import CURVES
from memloc.stats.generalisation import MIN_DATASETS


def plot_label_probes(labels: pd.DataFrame, stem, events: pd.DataFrame | None = None, datasets=None, variant: str = "noisy",
                      memorised_runs: pd.DataFrame | None = None):
    """One panel per (data set, model): macro F1 per layer of the noisy-label probe on noisy test
    examples, the original-label probe on noisy and on clean test examples (mean ± sd over probe
    and training seeds); vertical lines at the mean event (solid) and initiation layer (dotted)
    when ``events`` is given. ``labels`` is ``summary/label_probes.parquet``; runs that
    ``memorised_runs`` flags are named on the figure's face."""
    from matplotlib.lines import Line2D

    style.apply()
    df = style.of_variant(labels, variant)
    if df.empty:
        return style.save(style.empty_figure("no label-probe results to draw"), stem)
    order = style.dataset_order(df["dataset"].unique(), datasets)
    keys = sorted(df[["dataset", "model"]].drop_duplicates().itertuples(index=False), key=lambda k: (order.index(k[0]), k[1]))
    fig, axes = style.grid(len(keys), max_cols=4, sharey=True)
    for ax, (dataset, model) in zip(axes, keys):
        sub = df[(df["dataset"] == dataset) & (df["model"] == model)]
        for name, (target, column) in CURVES.items():
            g = sub[sub["target"] == target].groupby("layer")[column].agg(["mean", "std"]).reset_index()
            st = style.LABEL_CURVE_STYLES[name]
            ax.plot(g["layer"], g["mean"], color=st["color"], ls=st["ls"], marker="o", ms=3, lw=1.3)
            sd = g["std"].fillna(0)
            ax.fill_between(g["layer"], g["mean"] - sd, g["mean"] + sd, color=st["color"], alpha=0.15, lw=0)
        if events is not None and len(events):
            ev = style.of_variant(events[(events["dataset"] == dataset) & (events["model"] == model)], variant)
            for column, colour, ls in (("event_layer", "#D55E00", "-"), ("initiation_layer", "#009E73", ":")):
                values = pd.to_numeric(ev[column], errors="coerce").dropna()
                if len(values):
                    ax.axvline(values.mean(), color=colour, ls=ls, lw=0.9)
        ax.set_ylim(0, 1.02)
        ax.set_title(style.panel_label(dataset, model))
        ax.set_xlabel("layer (0 = embeddings)")
        ax.set_ylabel("probe macro F1")
    handles = [Line2D([], [], color=s["color"], ls=s["ls"], label=s["label"]) for s in style.LABEL_CURVE_STYLES.values()]
    if events is not None and len(events):
        handles += [Line2D([], [], color="#D55E00", lw=0.9, label="event layer"),
                    Line2D([], [], color="#009E73", ls=":", lw=0.9, label="initiation layer")]
    axes[0].legend(handles=handles, fontsize=6, loc="best")
    fig.tight_layout()
    style.flag_unmemorised(fig, memorised_runs)
    return style.save(fig, stem)


def event_points(events: pd.DataFrame, variant: str = "noisy") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (data set, model) the mean event and initiation layer over the seeds where each happened,
    and per data set the mean of those over models (the published aggregation, NaNs left out)."""
    df = style.of_variant(events, variant)
    pairs = df.groupby(["dataset", "model"], as_index=False)[["event_layer", "initiation_layer"]].mean()
    per_dataset = pairs.groupby("dataset", as_index=False)[["event_layer", "initiation_layer"]].mean()
    return pairs, per_dataset


def plot_probing_events(events: pd.DataFrame, stem, datasets=None, variant: str = "noisy",
                        memorised_runs: pd.DataFrame | None = None):
    """Event layer (x) against initiation layer (y): one large point per data set (mean over models
    of the seed means), small ones per (data set, model), and the diagonal. ``events`` is
    ``summary/probing_events.parquet``; runs that ``memorised_runs`` flags are named on the
    figure's face."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    style.apply()
    df = style.of_variant(events, variant)
    if df.empty:
        return style.save(style.empty_figure("no probing events to draw"), stem)
    pairs, per_dataset = event_points(df, None)
    drawn = per_dataset.dropna(subset=["event_layer", "initiation_layer"])
    if drawn.empty:
        return style.save(style.empty_figure(
            "no data set has both a probing event and an initiation layer: the noisy-label probe never beats the "
            "original-label probe by the margin (localisation.probing.event_margin), or no layer beats chance"), stem)
    dstyle = style.dataset_styles(df["dataset"].unique(), datasets)
    fig, ax = plt.subplots(figsize=(style.PANEL_W * 1.4, style.PANEL_W * 1.4))
    top = float(max(df["num_layers"].max(), np.nanmax(drawn[["event_layer", "initiation_layer"]].to_numpy())))
    ax.plot([0, top], [0, top], color="grey", ls="--", lw=0.8, zorder=0)
    for _, r in pairs.dropna(subset=["event_layer", "initiation_layer"]).iterrows():
        st = dstyle[r["dataset"]]
        ax.plot(r["event_layer"], r["initiation_layer"], marker=st["marker"], color=st["color"], ls="none", ms=4, alpha=0.4)
    for _, r in drawn.iterrows():
        st = dstyle[r["dataset"]]
        ax.plot(r["event_layer"], r["initiation_layer"], marker=st["marker"], color=st["color"], ls="none", ms=10,
                markeredgecolor="black")
    ax.set_xlim(-0.5, top + 0.5)
    ax.set_ylim(-0.5, top + 0.5)
    ax.set_xlabel("probing event: noisy label > original label (noisy examples)")
    ax.set_ylabel("initiation: original label near its peak (clean examples)")
    n_datasets = len(drawn)
    missing = per_dataset["dataset"].nunique() - n_datasets
    notes = []
    if n_datasets < MIN_DATASETS:
        notes.append("Relating the events across data sets " + style.too_few(MIN_DATASETS, "data sets", n_datasets,
                                                                              style.MORE_DATASETS))
    if missing:
        notes.append(f"{missing} data set(s) without an event or an initiation layer are not drawn")
    if notes:
        ax.set_title("\n".join(textwrap.fill(n, 60) for n in notes), fontsize=7)
    present = [d for d in dstyle if d in set(drawn["dataset"])]
    handles = [Line2D([], [], color=dstyle[d]["color"], marker=dstyle[d]["marker"], ls="none", label=d) for d in present]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=8)
    fig.tight_layout()
    style.flag_unmemorised(fig, memorised_runs)
    return style.save(fig, stem)
