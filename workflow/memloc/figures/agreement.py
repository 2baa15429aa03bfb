"""Agreement matrices between techniques or between models (from statistics.parquet)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from memloc.figures import style


def _matrix(statistics: pd.DataFrame, analysis: str) -> pd.DataFrame:
    from memloc.stats.agreement import agreement_matrix

    return agreement_matrix(statistics, analysis)


def plot_agreement(statistics: pd.DataFrame, stem, between: str = "technique", method: str = "pearson"):
    """Two panels, agreement on M-CoG and on per-layer weights: the pairwise ``method``
    correlations of the analyses ``agreement_{between}_{mcog|weights}_{method}``; cells without
    an estimate read "n/a"."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    style.apply()
    panels = [("M-CoG", f"agreement_{between}_mcog_{method}"), ("per-layer weights", f"agreement_{between}_weights_{method}")]
    mats = [(title, _matrix(statistics, analysis)) for title, analysis in panels]
    mats = [(t, m) for t, m in mats if len(m) >= 2]
    if not mats:
        return style.save(style.empty_figure(f"fewer than 2 {between}s: no agreement to draw"), stem)
    size = max(3.0, 0.75 * max(len(m) for _, m in mats) + 1.6)
    fig, axes = plt.subplots(1, len(mats), figsize=(size * len(mats), size * 0.85), squeeze=False)
    for ax, (title, mat) in zip(axes[0], mats):
        labels = mat.map(lambda v: "n/a" if not np.isfinite(v) else f"{v:.2f}")
        sns.heatmap(
            mat.astype(float), ax=ax, cmap=style.AGREEMENT_CMAP, vmin=-1, vmax=1, square=True, annot=labels, fmt="",
            annot_kws={"size": 7}, cbar_kws={"label": f"{method} r", "shrink": 0.8}, linewidths=0.5, linecolor="white",
        )
        ax.set_title(f"{between} agreement on {title}")
        ax.tick_params(axis="x", rotation=30)
        ax.tick_params(axis="y", rotation=0)
    fig.tight_layout()
    return style.save(fig, stem)
