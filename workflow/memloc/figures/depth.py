"""Depth of memorisation against the generalisation score and the normalised validation accuracy.

One panel per (outcome, measure): M-CoG averaged over techniques (depth-normalised when the models
differ in depth), the probing memorisation event and the centroid crossing (:mod:`memloc.stats.depth`).
The relation is estimated over data sets and needs at least
:data:`~memloc.stats.generalisation.MIN_DATASETS`; a panel with fewer says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from memloc.figures import style
from memloc.stats.depth import MEAN_MCOG, MEAN_MCOG_NORM, MEASURES, NORM_OUTCOMES, OUTCOMES
from memloc.stats.generalisation import MIN_DATASETS

OUTCOME_LABELS = {"generalisation": "generalisation score", "validation": "normalised validation accuracy"}
MEASURE_LABELS = {"mcog[mean]": "M-CoG, mean over techniques", "probing_event_layer": "probing memorisation event",
                  "centroid_crossing_layer": "centroid crossing",
                  "mcog_norm[mean]": "depth-normalised M-CoG, mean over techniques"}
MISSING = {"generalisation": "no counterfactual summaries (stats.counterfactual)",
           "validation": "no validation accuracies", "probing_event_layer": "no probing events in this run",
           "centroid_crossing_layer": "no centroid events (localisation.techniques: centroids)",
           "mcog[mean]": "no M-CoG from every technique", "mcog_norm[mean]": "no M-CoG from every technique"}


def _rho(statistics: pd.DataFrame | None, outcome: str, measure: str) -> str:
    """The pooled Spearman row of the statistics table as text ("" without one)."""
    if statistics is None or statistics.empty:
        return ""
    analysis = (NORM_OUTCOMES if measure == MEAN_MCOG_NORM else OUTCOMES)[outcome]
    r = statistics[(statistics["analysis"] == analysis) & (statistics["term"] == f"{measure} | all models")]
    if r.empty or not np.isfinite(r["estimate"].iloc[0]):
        return ""
    r = r.iloc[0]
    ci = f" [{r['ci_low']:.2f}, {r['ci_high']:.2f}]" if np.isfinite(r["ci_low"]) else ""
    return f"rho = {r['estimate']:.2f}{ci}, n = {int(r['n'])}"


def plot_depth(frame: pd.DataFrame, stem, statistics: pd.DataFrame | None = None, datasets=None, normalised: bool = False,
               memorised_runs: pd.DataFrame | None = None, unmemorised: str | None = None):
    """``frame`` is :func:`memloc.stats.depth.depth_frame`; rows: outcomes, columns: measures; one
    point per (data set, model) in the data set's colour and marker, the pooled rho in the title.
    ``normalised`` (the models differ in depth): the M-CoG column shows ``mcog_norm[mean]``. Runs
    that ``memorised_runs`` flags are named on the face, with what the statistics did with them
    (``unmemorised``: ``stats.unmemorised``)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    style.apply()
    if frame.empty or frame["value"].notna().sum() == 0:
        return style.save(style.empty_figure("no M-CoG or layer events to relate to generalisation"), stem)
    dstyle = style.dataset_styles(frame["dataset"].unique(), datasets)
    faces = style.model_faces(frame["model"].unique())
    measures = [MEAN_MCOG_NORM if normalised and m == MEAN_MCOG else m for m in MEASURES]
    fig, axes = plt.subplots(len(OUTCOMES), len(measures), figsize=(style.PANEL_W * len(measures), style.PANEL_H * len(OUTCOMES)),
                             squeeze=False)
    present = set()
    for i, outcome in enumerate(OUTCOMES):
        for j, measure in enumerate(measures):
            ax = axes[i][j]
            title = f"{MEASURE_LABELS[measure]}\nagainst {OUTCOME_LABELS[outcome]}"
            sub = frame[(frame["measure"] == measure)]
            if sub["value"].notna().sum() == 0 or sub[outcome].notna().sum() == 0:
                why = MISSING[measure] if sub["value"].notna().sum() == 0 else MISSING[outcome]
                style.message_panel(ax, why, title=title, width=30)
                continue
            sub = sub[np.isfinite(sub["value"]) & np.isfinite(sub[outcome])]
            k = sub["dataset"].nunique()
            if k < MIN_DATASETS:
                style.message_panel(ax, f"This panel {style.too_few(MIN_DATASETS, 'data sets', k, style.MORE_DATASETS)}",
                                    title=title, width=30)
                continue
            for _, r in sub.iterrows():
                st = dstyle[r["dataset"]]
                ax.plot(r[outcome], r["value"], marker=st["marker"], color=st["color"], mfc=faces[r["model"]], ls="none", ms=6,
                        mec=st["color"] if faces[r["model"]] else "black", mew=0.3 if faces[r["model"]] is None else 1.0)
                present.add(r["dataset"])
            rho = _rho(statistics, outcome, measure)
            ax.set_title(title + (f"\n{rho}" if rho else ""), fontsize=7)
            ax.set_xlabel(OUTCOME_LABELS[outcome])
            ax.set_ylabel("(M-CoG - 1) / (L - 1)" if measure == MEAN_MCOG_NORM else "layer")
    handles = [Line2D([], [], color=dstyle[d]["color"], marker=dstyle[d]["marker"], ls="none", label=d)
               for d in dstyle if d in present]
    handles += style.model_handles(faces) if handles else []
    if handles:
        fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=7)
    fig.tight_layout()
    style.flag_unmemorised(fig, memorised_runs, statistics=unmemorised)
    return style.save(fig, stem)
