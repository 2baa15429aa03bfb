"""Every figure function renders small hand-made tables (and empty ones) to non-empty PDF + PNG."""

from __future__ import annotations

import pytest

from memloc import figures as F
from memloc.control.accuracy import summarise
from memloc.figures import style
from memloc.stats import synthetic as syn
from memloc.stats.mcog import mcog_table
from memloc.stats.statistics import statistics_table


@pytest.fixture(scope="module", autouse=True)
def low_dpi():
    old = style.PNG_DPI
    style.PNG_DPI = 40
    yield
    style.PNG_DPI = old


@pytest.fixture(scope="module")
def single():
    """The embedded default's shape: one data set, one model, one seed."""
    t = syn.summary_tables(num_layers=3)
    t["mcog"] = mcog_table(t["layer_weights"], t["probing"], n_boot=20)
    t["counterfactual"] = syn.counterfactual_table()
    t["control"] = syn.control_table(num_layers=3).assign(learned=True)
    t["control_summary"] = summarise(t["control"], bootstrap=20)
    t["statistics"] = statistics_table(t["mcog"], t["layer_weights"], {}, t["counterfactual"], t["centroid_events"], t["control"])
    return t


def check(stem):
    for ext, magic in (("pdf", b"%PDF"), ("png", b"\x89PNG")):
        path = stem.parent / f"{stem.name}.{ext}"
        assert path.exists() and path.stat().st_size > 500, path
        assert path.read_bytes()[:4] == magic
    assert not list(stem.parent.glob(".*tmp*"))  # no temp files left behind


PLOTS = {
    "heatmap": lambda t, s: F.plot_heatmaps(t["heatmaps"], s, technique="swapping"),
    "weights": lambda t, s: F.plot_layer_weights(t["layer_weights"], s, families={"movies": "sentiment"}),
    "probing": lambda t, s: F.plot_probing(t["probing"], s),
    "centroids": lambda t, s: F.plot_centroids(t["centroids"], s, events=t["centroid_events"]),
    "centroid_events": lambda t, s: F.plot_centroid_events(t["centroid_events"], s),
    "mcog": lambda t, s: F.plot_mcog(t["mcog"], s),
    "agreement": lambda t, s: F.plot_agreement(t["statistics"], s, between="technique"),
    "agreement_models": lambda t, s: F.plot_agreement(t["statistics"], s, between="model"),
    "control": lambda t, s: F.plot_control(t["control_summary"], s, table=t["control"]),
    "generalisation": lambda t, s: F.plot_generalisation(t["mcog"], t["counterfactual"], s),
}


@pytest.mark.parametrize("name", sorted(PLOTS))
def test_figure_single_run(name, single, tmp_path):
    stem = tmp_path / "figs" / name
    PLOTS[name](single, stem)
    check(stem)


@pytest.mark.parametrize("name", sorted(PLOTS))
def test_figure_empty_tables(name, single, tmp_path):
    empty = {k: v.iloc[0:0] for k, v in single.items()}
    stem = tmp_path / name
    PLOTS[name](empty, stem)
    check(stem)


def test_figures_several_datasets_models_seeds(tmp_path):
    t = syn.summary_tables(datasets=("a", "b"), models=("m1", "m2"), seeds=(1, 2), techniques=("swapping", "gradients"),
                           num_layers=3)
    mc = mcog_table(t["layer_weights"], n_boot=20)
    F.plot_mcog(mc, tmp_path / "mcog", datasets=["b", "a"])
    F.plot_layer_weights(t["layer_weights"], tmp_path / "weights", families={"a": "nlu", "b": "topic"})
    check(tmp_path / "mcog")
    check(tmp_path / "weights")


def test_dataset_style_is_stable():
    a = style.dataset_styles(["b"], datasets=["a", "b", "c"])
    b = style.dataset_styles(["c", "b", "a"], datasets=["a", "b", "c"])
    assert a["b"] == b["b"]
    assert len({s["color"] for s in b.values()}) == 3 and len({s["marker"] for s in b.values()}) == 3
    assert list(style.dataset_styles(["z", "y"])) == ["y", "z"]


def drawn_text(monkeypatch, plot) -> str:
    """Every text on the figure ``plot`` draws (captured instead of written)."""
    from matplotlib.text import Text

    figs = []
    monkeypatch.setattr(style, "save", lambda fig, stem: figs.append(fig))
    plot()
    (fig,) = figs
    return " ".join(" ".join(t.get_text().split()) for t in fig.findobj(Text))


def test_one_pair_figures_say_what_they_need(single, monkeypatch, tmp_path):
    """With one (data set, model), agreement on M-CoG and M-CoG against generalisation cannot be
    estimated: the figures say how many they need and which config provides them."""
    agreement = drawn_text(monkeypatch, lambda: F.plot_agreement(single["statistics"], tmp_path / "a", between="technique"))
    assert "needs at least 3 (data set, model) pairs; this run has 1" in agreement
    assert "config/paper.yaml" in agreement
    assert "0." in agreement  # the per-layer weights panel still shows its correlations
    models = drawn_text(monkeypatch, lambda: F.plot_agreement(single["statistics"], tmp_path / "m", between="model"))
    assert "needs at least 2 models" in models and "run.models" in models
    gen = drawn_text(monkeypatch, lambda: F.plot_generalisation(single["mcog"], single["counterfactual"], tmp_path / "g"))
    assert "needs at least 3 data sets; this run has 1" in gen and "config/paper.yaml" in gen


def test_centroid_events_figure(monkeypatch, tmp_path):
    """One point per (data set, model) at its seed-mean crossing and initiation, a pooled run's
    pooled row in place of its pairs; with one data set the figure says it needs three."""
    import numpy as np
    import pandas as pd

    def run(dataset, model, seed, crossing, pooled=None):
        rows = [dict(scope="pair", crossing_layer=c, initiation_layer=c + 1.0) for c in crossing]
        rows.append(dict(scope="mean", crossing_layer=99.0, initiation_layer=99.0))
        if pooled is not None:
            rows.append(dict(scope="pooled", crossing_layer=pooled, initiation_layer=pooled - 1.0))
        return pd.DataFrame(rows).assign(dataset=dataset, model=model, variant="noisy", seed=seed)

    ev = pd.concat([run("a", "m1", 1, [2.0, 4.0]), run("a", "m1", 2, [4.0, np.nan]),
                    run("b", "m1", 1, [1.0, 1.0], pooled=6.0), run("a", "m2", 1, [5.0])], ignore_index=True)
    from memloc.figures.centroid_events import mean_events

    points = mean_events(ev).set_index(["dataset", "model"])
    assert points.loc[("a", "m1"), "crossing_layer"] == 3.5  # seed 1: 3, seed 2: 4 (the NaN pair left out)
    assert points.loc[("b", "m1"), "crossing_layer"] == 6.0 and points.loc[("b", "m1"), "initiation_layer"] == 5.0
    drawn = []
    monkeypatch.setattr(style, "save", lambda fig, stem: drawn.append(fig))
    F.plot_centroid_events(ev, tmp_path / "e")
    (fig,) = drawn
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["all models (mean)", "m1", "m2"]
    m1 = fig.axes[1]
    xy = {(line.get_xdata()[0], line.get_ydata()[0]) for line in m1.lines if line.get_marker() not in (None, "None", "")}
    assert xy == {(3.5, 4.5), (6.0, 5.0)}
    text = drawn_text(monkeypatch, lambda: F.plot_centroid_events(ev, tmp_path / "f"))
    assert "needs at least 3 data sets; this run has 2" in text
    three = pd.concat([ev, run("c", "m1", 1, [2.0])], ignore_index=True)
    assert "needs at least" not in drawn_text(monkeypatch, lambda: F.plot_centroid_events(three, tmp_path / "g"))
