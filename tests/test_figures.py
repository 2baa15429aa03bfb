"""Every figure function renders small hand-made tables (and empty ones) to non-empty PDF + PNG."""

from __future__ import annotations

import pytest

from memloc import figures as F
from memloc.control.accuracy import summarise
from memloc.figures import style
from memloc.stats import synthetic as syn
from memloc.stats.depth import depth_frame
from memloc.stats.mcog import mcog_table
from memloc.stats.statistics import statistics_table

from builders import drawn_text


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
    t["validation"] = syn.validation_table()
    t["probing_events"] = syn.probing_events_table(num_layers=3)
    t["statistics"] = statistics_table(t["mcog"], t["layer_weights"], {}, t["counterfactual"], t["centroid_events"], t["control"],
                                       validation=t["validation"], probing_events=t["probing_events"], n_boot=20, seed=0,
                                       unmemorised="exclude")
    return t


def depth(t):
    return depth_frame(t["mcog"], t["counterfactual"], t["validation"], t["probing_events"], t["centroid_events"])


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
    "single_layer": lambda t, s: F.plot_single_layer(t["heatmaps"], s, technique="retraining"),
    "clean_accuracy": lambda t, s: F.plot_clean_accuracy(t["swapping_clean"], s),
    "mcog_mean": lambda t, s: F.plot_mcog_mean(t["mcog"], s),
    "depth": lambda t, s: F.plot_depth(depth(t), s, statistics=t["statistics"]),
    "events": lambda t, s: F.plot_events(t["probing_events"], t["centroid_events"], s, statistics=t["statistics"]),
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
    from memloc.stats.events import centroid_event_means

    points = centroid_event_means(ev).set_index(["dataset", "model"])
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


def test_section5_figures_say_what_they_need(single, monkeypatch, tmp_path):
    """One (data set, model): the single-block swarm needs 2 data sets, the depth panels 3 data
    sets, the event comparison 3 (data set, model) pairs; M-CoG averaged over one technique is no average."""
    swarm = drawn_text(monkeypatch, lambda: F.plot_single_layer(single["heatmaps"], tmp_path / "s", technique="swapping"))
    assert "needs at least 2 data sets; this run has 1" in swarm and "run.datasets" in swarm
    dep = drawn_text(monkeypatch, lambda: F.plot_depth(depth(single), tmp_path / "d", statistics=single["statistics"]))
    assert dep.count("needs at least 3 data sets; this run has 1") == 6
    ev = drawn_text(monkeypatch, lambda: F.plot_events(single["probing_events"], single["centroid_events"], tmp_path / "e"))
    assert ev.count("needs at least 3 (data set, model) pairs with both events; this run has 1") == 2
    no_probe = drawn_text(monkeypatch, lambda: F.plot_events(None, single["centroid_events"], tmp_path / "n"))
    assert "this run has no probing events" in no_probe
    one = single["mcog"][single["mcog"]["technique"] == "swapping"]
    mean = drawn_text(monkeypatch, lambda: F.plot_mcog_mean(one, tmp_path / "m"))
    assert "needs at least 2 techniques; this run has 1" in mean


def test_section5_figures_draw_several_datasets(monkeypatch, tmp_path):
    """Four data sets x two models: every panel draws points and the pooled rho, none says it needs more."""
    ds, ms = ("a", "b", "c", "d"), ("m1", "m2")
    t = syn.summary_tables(datasets=ds, models=ms, num_layers=3)
    t["mcog"] = mcog_table(t["layer_weights"], t["probing"], n_boot=20)
    t["counterfactual"] = syn.counterfactual_table(ds, ms)
    t["validation"] = syn.validation_table(ds, ms)
    t["probing_events"] = syn.probing_events_table(ds, ms, num_layers=3)
    t["statistics"] = statistics_table(t["mcog"], t["layer_weights"], {}, t["counterfactual"], t["centroid_events"],
                                       include_control=False, validation=t["validation"], probing_events=t["probing_events"],
                                       n_boot=20, seed=0, unmemorised="exclude")
    figs = []
    monkeypatch.setattr(style, "save", lambda fig, stem: figs.append(fig))
    F.plot_single_layer(t["heatmaps"], tmp_path / "s", technique="swapping")
    F.plot_depth(depth(t), tmp_path / "d", statistics=t["statistics"])
    F.plot_events(t["probing_events"], t["centroid_events"], tmp_path / "e", statistics=t["statistics"])
    F.plot_mcog_mean(t["mcog"], tmp_path / "m")
    for fig, points in zip(figs, (8, 6 * 8, 2 * 8, 8)):
        text = " ".join(a.get_title() for a in fig.axes)
        assert "needs at least" not in text
        drawn = sum(len(line.get_xdata()) for a in fig.axes for line in a.get_lines()
                    if line.get_linestyle() == "None" and line.get_marker() not in ("|", "_"))  # not error bar caps
        assert drawn == points, (text, drawn)
    depth_titles = " ".join(a.get_title() for a in figs[1].axes)
    assert depth_titles.count("rho = ") == 6


def test_runs_that_did_not_memorise_are_named_on_the_mcog_and_weights_figures(single, monkeypatch, tmp_path):
    """A noisy model below the memorisation threshold is not mixed in silently: the M-CoG and
    layer-weight figures name it; with every run memorised they say nothing about it."""
    import pandas as pd

    runs = pd.DataFrame(dict(dataset=["d0", "d1"], model="m", seed=[1, 2], noisy_accuracy=[1.0, 0.62], threshold=0.99,
                             memorised=[True, False]))

    def text_of(plot, table) -> str:
        return drawn_text(monkeypatch, lambda: plot(table))

    for plot in (lambda r: F.plot_mcog(single["mcog"], tmp_path / "m", memorised_runs=r),
                 lambda r: F.plot_layer_weights(single["layer_weights"], tmp_path / "w", memorised_runs=r)):
        text = text_of(plot, runs)
        assert "not memorised" in text and "d1/m seed 2 (0.62 < 0.99)" in text and "d0/m" not in text
        assert "not memorised" not in text_of(plot, runs.assign(memorised=True))
        assert "not memorised" not in text_of(plot, None)


@pytest.fixture(scope="module")
def several():
    """Four data sets x two models of one depth (L = 3), one seed: every figure draws its points."""
    import numpy as np
    import pandas as pd

    ds, ms = ("a", "b", "c", "d"), ("m1", "m2")
    t = syn.summary_tables(datasets=ds, models=ms, num_layers=3)
    t["mcog"] = mcog_table(t["layer_weights"], t["probing"], n_boot=20)
    t["counterfactual"] = syn.counterfactual_table(ds, ms)
    t["validation"] = syn.validation_table(ds, ms)
    t["probing_events"] = syn.probing_events_table(ds, ms, num_layers=3)
    t["label_probes"] = pd.DataFrame([
        dict(dataset=d, model=m, variant="noisy", seed=1, target=target, layer=layer, probe_seed=0, val_f1=0.5, test_f1=0.5,
             test_f1_noisy=0.3 + 0.1 * layer, test_f1_clean=0.6) for d in ds for m in ms
        for target in ("noisy_label", "clean_label") for layer in range(4)]).astype({"layer": np.int64})
    t["statistics"] = statistics_table(t["mcog"], t["layer_weights"], {}, t["counterfactual"], t["centroid_events"],
                                       include_control=False, validation=t["validation"], probing_events=t["probing_events"],
                                       n_boot=20, seed=0, unmemorised="exclude")
    return t


#: Every figure that draws per-run results of the noisy models, given the memorised-runs table ``r``.
PER_RUN = {
    "heatmap": lambda t, s, r: F.plot_heatmaps(t["heatmaps"], s, technique="swapping", memorised_runs=r),
    "single_layer": lambda t, s, r: F.plot_single_layer(t["heatmaps"], s, technique="retraining", memorised_runs=r),
    "clean_accuracy": lambda t, s, r: F.plot_clean_accuracy(t["swapping_clean"], s, memorised_runs=r),
    "probing": lambda t, s, r: F.plot_probing(t["probing"], s, memorised_runs=r),
    "centroids": lambda t, s, r: F.plot_centroids(t["centroids"], s, events=t["centroid_events"], memorised_runs=r),
    "centroid_events": lambda t, s, r: F.plot_centroid_events(t["centroid_events"], s, memorised_runs=r),
    "label_probes": lambda t, s, r: F.plot_label_probes(t["label_probes"], s, events=t["probing_events"], memorised_runs=r),
    "probing_events": lambda t, s, r: F.plot_probing_events(t["probing_events"], s, memorised_runs=r),
    "mcog_mean": lambda t, s, r: F.plot_mcog_mean(t["mcog"], s, memorised_runs=r),
    "generalisation": lambda t, s, r: F.plot_generalisation(t["mcog"], t["counterfactual"], s, memorised_runs=r),
    "depth": lambda t, s, r: F.plot_depth(depth(t), s, statistics=t["statistics"], memorised_runs=r, unmemorised="exclude"),
    "events": lambda t, s, r: F.plot_events(t["probing_events"], t["centroid_events"], s, statistics=t["statistics"],
                                            memorised_runs=r, unmemorised="exclude"),
    "agreement": lambda t, s, r: F.plot_agreement(t["statistics"], s, mcog=t["mcog"], memorised_runs=r,
                                                  unmemorised="exclude"),
}
STATISTICS_FIGURES = {"depth", "events", "agreement"}


@pytest.mark.parametrize("name", sorted(PER_RUN))
def test_runs_that_did_not_memorise_are_named_on_every_per_run_figure(name, several, monkeypatch, tmp_path):
    """The run is named on the face (with what the statistics did with it where the figure shows
    statistics); with every run memorised, or no table, the figure says nothing about it."""
    import pandas as pd

    runs = pd.DataFrame(dict(dataset=["a", "b"], model="m1", seed=1, noisy_accuracy=[1.0, 0.62], threshold=0.99,
                             memorised=[True, False]))
    text = drawn_text(monkeypatch, lambda: PER_RUN[name](several, tmp_path / name, runs))
    assert "not memorised" in text and "b/m1 seed 1 (0.62 < 0.99)" in text and "a/m1" not in text
    assert ("left out of the statistics (stats.unmemorised: exclude)" in text) == (name in STATISTICS_FIGURES)
    assert ("shown but suspect" in text) == (name != "agreement")  # the agreement matrices draw no run
    for quiet in (runs.assign(memorised=True), None):
        assert "not memorised" not in drawn_text(monkeypatch, lambda r=quiet: PER_RUN[name](several, tmp_path / name, r))


def test_cross_model_figures_use_the_depth_normalised_mcog_when_depths_differ(several, monkeypatch, tmp_path):
    """A 3-block and a 6-block model: the figures that pool models draw (M-CoG - 1) / (L - 1) and say
    so, the per-model M-CoG panels add its axis; models of one depth keep the raw M-CoG."""
    import pandas as pd

    ds = ("a", "b", "c", "d")
    short = syn.summary_tables(datasets=ds, models=("enc",), num_layers=3)
    deep = syn.summary_tables(datasets=ds, models=("dec",), num_layers=6, seed=1)
    t = {k: pd.concat([short[k], deep[k]], ignore_index=True) for k in short}
    t["mcog"] = mcog_table(t["layer_weights"], t["probing"], n_boot=20)
    t["counterfactual"] = syn.counterfactual_table(ds, ("enc", "dec"))
    t["validation"] = syn.validation_table(ds, ("enc", "dec"))
    t["statistics"] = statistics_table(t["mcog"], t["layer_weights"], {}, t["counterfactual"], t["centroid_events"],
                                       include_control=False, validation=t["validation"], n_boot=20, seed=0,
                                       unmemorised="exclude")
    t["probing_events"] = None
    plots = {
        "mcog": lambda tb: F.plot_mcog(tb["mcog"], tmp_path / "m"),
        "mcog_mean": lambda tb: F.plot_mcog_mean(tb["mcog"], tmp_path / "mm"),
        "generalisation": lambda tb: F.plot_generalisation(tb["mcog"], tb["counterfactual"], tmp_path / "g"),
        "depth": lambda tb: F.plot_depth(depth(tb), tmp_path / "d", statistics=tb["statistics"],
                                         normalised=tb is t),
        "agreement": lambda tb: F.plot_agreement(tb["statistics"], tmp_path / "a", mcog=tb["mcog"]),
    }
    for name, plot in plots.items():
        text = drawn_text(monkeypatch, lambda p=plot: p(t))
        assert "depth-normalised M-CoG" in text, name
        assert "depth-normalised" not in drawn_text(monkeypatch, lambda p=plot: p(several)), name
    dep = drawn_text(monkeypatch, lambda: plots["depth"](t))
    norm = t["statistics"].set_index(["analysis", "term"]).loc[
        ("depth_generalisation_mcog_norm_spearman", "mcog_norm[mean] | all models")]
    assert f"rho = {norm['estimate']:.2f}" in dep  # the pooled rho of the normalised analysis
    figs = []
    monkeypatch.setattr(style, "save", lambda fig, stem: figs.append(fig))
    F.plot_mcog_mean(t["mcog"], tmp_path / "x")
    xs = [x for line in figs[0].axes[0].get_lines() if line.get_linestyle() == "None" and line.get_marker() not in ("|", "_")
          for x in line.get_xdata()]
    assert len(xs) == 8 and 0 <= min(xs) and max(xs) <= 1  # on the 0..1 scale
