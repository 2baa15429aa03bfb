"""Memorisation error heatmaps H[n, l] (window size x layer) for swapping and retraining."""

from __future__ import annotations

import numpy as np
import pandas as pd

from memloc.figures import style


def plot_heatmaps(
    heat: pd.DataFrame,
    stem,
    technique: str | None = None,
    datasets=None,
    variant: str = "noisy",
    annotate_max_layers: int = 12,
    memorised_runs: pd.DataFrame | None = None,
):
    """One panel per (technique, data set, model): mean error over seeds of windows of size n
    (rows) that contain block l (columns). ``heat`` is ``summary/heatmaps.parquet``; runs that
    ``memorised_runs`` flags are named on the figure's face."""
    import seaborn as sns

    style.apply()
    df = heat
    if technique is not None:
        df = df[df["technique"] == technique]
    df = style.of_variant(df, variant)
    if df.empty:
        return style.save(style.empty_figure(f"no {technique or 'window'} results to draw"), stem)
    df = df.groupby(["technique", "dataset", "model", "size", "layer"], as_index=False)["error"].mean()
    order = style.dataset_order(df["dataset"].unique(), datasets)
    keys = sorted(
        df[["technique", "dataset", "model"]].drop_duplicates().itertuples(index=False),
        key=lambda k: (style.technique_order(df["technique"].unique()).index(k[0]), order.index(k[1]), k[2]),
    )
    vmin = min(0.0, float(df["error"].min()))
    vmax = max(float(df["error"].max()), vmin + 1e-9)
    fig, axes = style.grid(len(keys), max_cols=3, w=3.6, h=3.0)
    for ax, (tech, dataset, model) in zip(axes, keys):
        sub = df[(df["technique"] == tech) & (df["dataset"] == dataset) & (df["model"] == model)]
        L = int(max(sub["layer"].max(), sub["size"].max()))
        mat = np.full((L, L), np.nan)
        mat[sub["size"].to_numpy(int) - 1, sub["layer"].to_numpy(int) - 1] = sub["error"].to_numpy(float)
        rows = ~np.all(np.isnan(mat), axis=1)
        mat = mat[rows]
        frame = pd.DataFrame(mat, index=np.arange(1, L + 1)[rows], columns=np.arange(1, L + 1))
        sns.heatmap(
            frame, ax=ax, cmap=style.HEATMAP_CMAP, vmin=vmin, vmax=vmax, square=False,
            annot=L <= annotate_max_layers, fmt=".2f", annot_kws={"size": 6},
            cbar_kws={"label": "memorisation error"}, linewidths=0.3, linecolor="white",
        )
        ax.invert_yaxis()
        ax.set_xlabel("layer l")
        ax.set_ylabel("window size n")
        title = style.panel_label(dataset, model)
        ax.set_title(title if technique is not None else f"{tech}: {title}")
    if technique is not None:
        fig.suptitle(f"{technique}: mean error of windows of size n containing layer l", fontsize=10)
    fig.tight_layout()
    style.flag_unmemorised(fig, memorised_runs)
    return style.save(fig, stem)
