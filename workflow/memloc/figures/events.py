"""Probing events against centroid events, one point per (data set, model) (the paper compares
the two pooled over models)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from memloc.figures import style
from memloc.stats.depth import EVENT_PAIRS, EVENTS_ANALYSIS
from memloc.stats.events import paired_events

MIN_PAIRS = 3  # the fewest points memloc.stats.agreement.correlation estimates from
TITLES = {"probing_event_layer": "memorisation: probing event vs centroid crossing",
          "probing_initiation_layer": "initiation: probing vs centroids"}


def plot_events(probing_events: pd.DataFrame | None, centroid_events: pd.DataFrame | None, stem,
                statistics: pd.DataFrame | None = None, datasets=None, variant: str = "noisy",
                memorised_runs: pd.DataFrame | None = None, unmemorised: str | None = None):
    """Two panels (memorisation event against crossing, initiation against initiation): x = the
    centroid layer, y = the probing layer, seed means; dashed: x = y; the pooled Spearman rho of
    ``statistics`` in the title. Runs that ``memorised_runs`` flags are named on the face, with
    what the statistics did with them (``unmemorised``: ``stats.unmemorised``)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    style.apply()
    data = paired_events(probing_events, centroid_events, variant)
    if data.empty:
        missing = [name for name, t in (("probing events", probing_events), ("centroid events", centroid_events))
                   if t is None or t.empty]
        why = f"this run has no {' and no '.join(missing)}" if missing else "no (data set, model) has both"
        return style.save(style.empty_figure(f"needs probing and centroid events of the same (data set, model)s; {why}"), stem)
    dstyle = style.dataset_styles(data["dataset"].unique(), datasets)
    fig, axes = plt.subplots(1, len(EVENT_PAIRS), figsize=(style.PANEL_W * len(EVENT_PAIRS), style.PANEL_W), squeeze=False)
    for ax, (p, c) in zip(axes[0], EVENT_PAIRS):
        sub = data[np.isfinite(data[p]) & np.isfinite(data[c])]
        if len(sub) < MIN_PAIRS:
            why = style.too_few(MIN_PAIRS, "(data set, model) pairs with both events", len(sub), style.MORE_PAIRS)
            style.message_panel(ax, f"This panel {why}", title=TITLES[p], width=30)
            continue
        lo, hi = float(min(sub[p].min(), sub[c].min())) - 0.5, float(max(sub[p].max(), sub[c].max())) + 0.5
        ax.plot([lo, hi], [lo, hi], color="grey", ls="--", lw=0.8)
        for _, r in sub.iterrows():
            st = dstyle[r["dataset"]]
            ax.plot(r[c], r[p], marker=st["marker"], color=st["color"], ls="none", ms=6, mec="black", mew=0.3)
        title = TITLES[p]
        if statistics is not None and len(statistics):
            row = statistics[(statistics["analysis"] == EVENTS_ANALYSIS) & (statistics["term"] == f"{p}~{c} | all models")]
            if len(row) and np.isfinite(row["estimate"].iloc[0]):
                title += f"\nrho = {row['estimate'].iloc[0]:.2f}, n = {int(row['n'].iloc[0])}"
        ax.set_title(title, fontsize=7)
        ax.set_xlabel("centroid layer")
        ax.set_ylabel("probing layer")
    handles = [Line2D([], [], color=s["color"], marker=s["marker"], ls="none", label=d) for d, s in dstyle.items()
               if d in set(data["dataset"])]
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=7)
    fig.tight_layout()
    style.flag_unmemorised(fig, memorised_runs, statistics=unmemorised)
    return style.save(fig, stem)
