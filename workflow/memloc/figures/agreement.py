"""Agreement matrices between techniques or between models (from statistics.parquet).

A panel whose correlations could not be estimated (one model, or fewer than three (data set,
model) pairs, as the embedded default has) says so on its face: how many it needs and where
in the config a run gets more.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from memloc.figures import style
from memloc.stats.mcog import mixed_depths

MIN_PAIRED = 3  # the fewest paired values memloc.stats.agreement.correlation estimates from

#: What an agreement panel correlates over, and how a run gets more of it.
UNITS = {
    ("technique", "mcog"): ("(data set, model) pairs", style.MORE_PAIRS),
    ("technique", "mcog_norm"): ("(data set, model) pairs", style.MORE_PAIRS),
    ("technique", "weights"): ("(data set, model, layer) values", style.MORE_PAIRS),
    ("model", "mcog"): ("(technique, data set) pairs shared by two models", style.MORE_DATASETS),
    ("model", "weights"): ("(technique, data set, layer) values shared by two models of one depth", style.MORE_MODELS),
}


def _matrix(statistics: pd.DataFrame, analysis: str) -> pd.DataFrame:
    from memloc.stats.agreement import agreement_matrix

    return agreement_matrix(statistics, analysis)


def _why_empty(statistics: pd.DataFrame, analysis: str, mat: pd.DataFrame, between: str, quantity: str) -> str | None:
    """Why the panel of ``analysis`` cannot say anything; None when it has an estimate."""
    if len(mat) >= 2 and np.isfinite(mat.to_numpy()[~np.eye(len(mat), dtype=bool)]).any():
        return None
    if len(mat) < 2:
        more = style.MORE_MODELS if between == "model" else style.MORE_TECHNIQUES
        return style.too_few(2, f"{between}s", "fewer", more)
    unit, more = UNITS[(between, quantity)]
    n = statistics.loc[statistics["analysis"] == analysis, "n"]
    return style.too_few(MIN_PAIRED, unit, int(n.max()) if len(n) else 0, more)


def plot_agreement(statistics: pd.DataFrame, stem, between: str = "technique", method: str = "pearson",
                   mcog: pd.DataFrame | None = None, memorised_runs: pd.DataFrame | None = None,
                   unmemorised: str | None = None):
    """Two panels, agreement on M-CoG and on per-layer weights: the pairwise ``method``
    correlations of the analyses ``agreement_{between}_{mcog|weights}_{method}``; cells without
    an estimate read "n/a", a panel without any says what it needs. Techniques agree on the
    depth-normalised M-CoG (``mcog_norm``) when ``mcog`` (``summary/mcog.parquet``) holds models
    of different depth (model agreement is the same on either scale). Runs that
    ``memorised_runs`` flags are named on the face, with what the statistics did with them
    (``unmemorised``: ``stats.unmemorised``)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    style.apply()
    panels = []
    norm = between == "technique" and mcog is not None and mixed_depths(mcog)
    mcog_panel = ("depth-normalised M-CoG", "mcog_norm") if norm else ("M-CoG", "mcog")
    for title, quantity in (mcog_panel, ("per-layer weights", "weights")):
        analysis = f"agreement_{between}_{quantity}_{method}"
        mat = _matrix(statistics, analysis)
        panels.append((title, mat, _why_empty(statistics, analysis, mat, between, quantity)))
    drawn = [len(m) for _, m, why in panels if why is None]
    size = max(3.0, 0.75 * max(drawn, default=0) + 1.6)
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size * 0.85), squeeze=False)
    for ax, (title, mat, why) in zip(axes[0], panels):
        if why is not None:
            style.message_panel(ax, f"This panel {why}", title=f"{between} agreement on {title}")
            continue
        labels = mat.map(lambda v: "n/a" if not np.isfinite(v) else f"{v:.2f}")
        sns.heatmap(
            mat.astype(float), ax=ax, cmap=style.AGREEMENT_CMAP, vmin=-1, vmax=1, square=True, annot=labels, fmt="",
            annot_kws={"size": 7}, cbar_kws={"label": f"{method} r", "shrink": 0.8}, linewidths=0.5, linecolor="white",
        )
        ax.set_title(f"{between} agreement on {title}")
        ax.tick_params(axis="x", rotation=30)
        ax.tick_params(axis="y", rotation=0)
    fig.tight_layout()
    style.flag_unmemorised(fig, memorised_runs, statistics=unmemorised, shown=False)
    return style.save(fig, stem)
