"""One look for every memloc figure: palettes, markers, sizes and the PDF + PNG writer.

Data sets get a colour and a marker from :func:`dataset_styles`; techniques, probed networks and
centroid groups have fixed colours. Figure functions take ``datasets`` (the config's order) so
that a data set keeps its colour and marker across every figure of a run, even in a figure
where some data sets are missing; without it the data's own names, sorted, set the order.
"""

from __future__ import annotations

import os
import tempfile
import textwrap
from pathlib import Path
from typing import Iterable, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

# Colour-blind safe (Okabe-Ito first, then seaborn's colorblind, then tab20 for long lists).
DATASET_COLOURS = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000",
    *sns.color_palette("colorblind").as_hex(),
    *sns.color_palette("tab20").as_hex(),
]
DATASET_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p"]

TECHNIQUE_ORDER = ["swapping", "retraining", "gradients", "probing", "centroids"]
TECHNIQUE_COLOURS = {
    "swapping": "#0072B2",
    "retraining": "#009E73",
    "gradients": "#D55E00",
    "probing": "#CC79A7",
    "centroids": "#E69F00",
}
NETWORK_COLOURS = {"noisy": "#D55E00", "frozen": "#7F7F7F"}
GROUP_COLOURS = {"clean_a": "#0072B2", "noisy": "#D55E00", "clean_b": "#009E73"}
#: Label-probe curves (probe target on test examples) and the events read from them.
LABEL_CURVE_STYLES = {
    "noisy_label_on_noisy": {"color": "#D55E00", "ls": "-", "label": "noisy label, noisy examples"},
    "clean_label_on_noisy": {"color": "#0072B2", "ls": "--", "label": "original label, noisy examples"},
    "clean_label_on_clean": {"color": "#009E73", "ls": ":", "label": "original label, clean examples"},
}
METRIC_COLOURS = {"acc@1": "#0072B2", "acc@2": "#56B4E9"}
HEATMAP_CMAP = "rocket_r"
AGREEMENT_CMAP = "vlag"

PANEL_W, PANEL_H = 3.2, 2.6
PNG_DPI = 200


def apply() -> None:
    """Set the shared rcParams (called by every figure function)."""
    sns.set_theme(context="paper", style="whitegrid", font_scale=0.95)
    plt.rcParams.update({"figure.dpi": 100, "savefig.bbox": "tight", "pdf.fonttype": 42, "axes.titlesize": 9})


def dataset_order(names: Iterable[str], datasets: Sequence[str] | None = None) -> list[str]:
    """``datasets`` first (config order), then any other name in ``names``, sorted."""
    names = list(dict.fromkeys(str(n) for n in names))
    base = list(datasets or [])
    return base + sorted(n for n in names if n not in base)


def dataset_styles(names: Iterable[str], datasets: Sequence[str] | None = None) -> dict[str, dict]:
    """``{dataset: {"color": ..., "marker": ...}}``, stable for a given ``datasets`` order."""
    order = dataset_order(names, datasets)
    return {
        d: {"color": DATASET_COLOURS[i % len(DATASET_COLOURS)], "marker": DATASET_MARKERS[i % len(DATASET_MARKERS)]}
        for i, d in enumerate(order)
    }


def model_faces(models: Iterable[str]) -> dict[str, str | None]:
    """``{model: marker face colour}``: the first model (sorted) filled (None: the point's colour),
    every other one hollow, so that one data set's points of two models can be told apart."""
    order = sorted(dict.fromkeys(str(m) for m in models))
    return {m: (None if i == 0 else "white") for i, m in enumerate(order)}


def model_handles(faces: dict[str, str | None]) -> list:
    """Legend entries for :func:`model_faces` (none for a single model)."""
    from matplotlib.lines import Line2D

    if len(faces) < 2:
        return []
    return [Line2D([], [], color="0.35", marker="o", mfc=face or "0.35", ls="none", label=m) for m, face in faces.items()]


def of_variant(table, variant: str | None):
    """The rows of model variant ``variant`` (all rows without a ``variant`` column or with None)."""
    if variant is None or "variant" not in table:
        return table
    return table[table["variant"] == variant]


def technique_order(names: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(names))
    return [t for t in TECHNIQUE_ORDER if t in names] + sorted(t for t in names if t not in TECHNIQUE_ORDER)


def technique_colour(name: str) -> str:
    return TECHNIQUE_COLOURS.get(name, "#555555")


def grid(n_panels: int, max_cols: int = 4, sharex=False, sharey=False, w=PANEL_W, h=PANEL_H):
    """A figure with at least one panel; unused panels are hidden. Returns (fig, flat axes)."""
    n = max(1, n_panels)
    cols = min(n, max_cols)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(w * cols, h * rows), squeeze=False, sharex=sharex, sharey=sharey)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


#: How a run gets more data sets or models to compare (what a too-small figure tells its reader).
MORE_PAIRS = "add data sets or models to run: in the config (e.g. config/paper.yaml)"
MORE_DATASETS = "add data sets to run.datasets in the config (e.g. config/paper.yaml)"
MORE_MODELS = "add models to run.models in the config (e.g. config/paper.yaml)"
MORE_TECHNIQUES = "list more techniques under localisation.techniques in the config"


def too_few(needed: int, unit: str, have: int | str, more: str) -> str:
    """Why a figure or panel cannot say anything: how many ``unit`` it needs, the run's count, the fix."""
    return f"needs at least {needed} {unit}; this run has {have}: {more}"


#: What a figure's statistics did with the runs that did not memorise, by ``stats.unmemorised``.
UNMEMORISED_IN_STATISTICS = {"exclude": "left out of the statistics (stats.unmemorised: exclude)",
                             "include": "kept in the statistics (stats.unmemorised: include)"}


def unmemorised_note(memorised_runs, statistics: str | None = None, shown: bool = True) -> str | None:
    """The runs whose noisy model did not memorise its noise (``summary/memorised_runs.parquet``),
    as one line for a figure's face; None when every run memorised or there is no table.
    ``shown``: the figure draws those runs' results; ``statistics``: the figure shows statistics,
    computed under this ``stats.unmemorised`` setting."""
    if memorised_runs is None or memorised_runs.empty:
        return None
    bad = memorised_runs[~memorised_runs["memorised"].astype(bool)]
    if bad.empty:
        return None
    runs = ", ".join(
        f"{r.dataset}/{r.model} seed {int(r.seed)} ({r.noisy_accuracy:.2f} < {r.threshold:.2f})" for r in bad.itertuples()
    )
    fate = (["shown but suspect"] if shown else []) + ([UNMEMORISED_IN_STATISTICS[statistics]] if statistics else [])
    return f"not memorised (noisy-label accuracy of the noisy examples below the threshold): {runs}; {'; '.join(fate)}"


def flag_unmemorised(fig, memorised_runs, statistics: str | None = None, shown: bool = True) -> None:
    """Say on the figure's face which runs' noisy models did not memorise their noise (see :func:`unmemorised_note`)."""
    note = unmemorised_note(memorised_runs, statistics, shown)
    if note:
        fig.text(0.01, _below_texts(fig), textwrap.fill(note, 110), ha="left", va="top", fontsize=7, color="firebrick")


def _below_texts(fig) -> float:
    """A figure y just under the figure-level texts already there (a figure's notes stack, never overlap)."""
    if not fig.texts:
        return -0.01
    renderer = fig.canvas.get_renderer()
    to_fig = fig.transFigure.inverted()
    bottoms = [to_fig.transform(t.get_window_extent(renderer))[0][1] for t in fig.texts]
    return min(min(bottoms), 0.0) - 0.01


#: Axis label of the depth-normalised M-CoG (docs/protocol.md §6.9).
MCOG_NORM_LABEL = "depth-normalised M-CoG, (M-CoG - 1) / (L - 1)"


def message_panel(ax, message: str, title: str | None = None, width: int = 42) -> None:
    """Turn ``ax`` into a panel that says ``message`` (why there is nothing to draw)."""
    ax.axis("off")
    ax.text(0.5, 0.5, textwrap.fill(message, width), ha="center", va="center", transform=ax.transAxes)
    if title:
        ax.set_title(title)


def empty_figure(message: str):
    """A one-panel figure that says why there is nothing to draw."""
    fig, ax = plt.subplots(figsize=(PANEL_W * 1.5, PANEL_H))
    message_panel(ax, message, width=60)
    return fig


def save_figure(fig, *paths: str | os.PathLike, dpi: int | None = None) -> list[Path]:
    """Write ``fig`` to every path (format from the suffix; ``dpi`` for PNGs and rasterised parts of
    PDFs), each via a temp file and rename."""
    dpi = PNG_DPI if dpi is None else dpi
    out = []
    for path in map(Path, paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
        os.close(fd)
        try:
            fig.savefig(tmp, format=path.suffix.lstrip("."), dpi=dpi)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        out.append(path)
    return out


def save(fig, stem: str | os.PathLike, dpi: int | None = None) -> list[Path]:
    """Write ``<stem>.pdf`` and ``<stem>.png`` and close ``fig`` (every memloc figure goes here)."""
    stem = Path(stem)
    try:
        return save_figure(fig, stem.parent / f"{stem.name}.pdf", stem.parent / f"{stem.name}.png", dpi=dpi)
    finally:
        plt.close(fig)


def panel_label(dataset: str, model: str | None = None) -> str:
    return f"{dataset} / {model}" if model else str(dataset)
