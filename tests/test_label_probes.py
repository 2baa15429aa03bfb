"""Label probes and probing events (§6.7): planted curves, planted layers, the per-run and summary tables, figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from test_probing import VOCAB, probing_settings

from memloc import figures as F
from memloc.io import read_metadata, write_parquet
from memloc.localise import label_probes as lp
from memloc.localise.probes import macro_f1_rows
from memloc.localise.probing_events import chance_macro_f1, event_layer, initiation_layer, probing_events
from memloc.models.random import build_random_classifier
from memloc.stats.collect import collect_label_probes, collect_probing_events, parse_run_path

from builders import drawn_text, record_final_norm

# --------------------------------------------------------------------------- events from curves


def test_event_layer_is_the_first_layer_beyond_the_margin():
    noisy = [0.0, 0.25, 0.5, 0.875, 1.0, 0.25]
    clean = [1.0, 0.75, 0.25, 0.25, 0.125, 1.0]
    assert event_layer(noisy, clean, 0.25) == 3  # layer 2 is exactly 0.25 ahead: not more than the margin
    assert event_layer(noisy, clean, 0.125) == 2
    assert np.isnan(event_layer(noisy, clean, 0.875))
    assert event_layer(noisy, clean, 0.25, layers=[5, 6, 7, 8, 9, 10]) == 8


def test_initiation_normalises_from_chance_not_from_the_curves_minimum():
    curve = [0.8, 0.9, 0.96, 1.0]
    # from chance 0.25: 0.65 / 0.75 = 0.87 at layer 1, 0.71 / 0.75 = 0.95 at layer 2
    # (min-max normalisation would give 0.16 / 0.2 = 0.8 at layer 2 and only layer 3)
    assert initiation_layer(curve, 0.25, 0.9) == 2
    assert initiation_layer(curve, 0.5, 0.9) == 2  # 0.46 / 0.5 = 0.92
    assert initiation_layer([0.6, 0.9, 0.95], 0.5, 0.9) == 2  # 0.4 / 0.45 = 0.89 is not above 0.9
    assert initiation_layer(curve, 0.25, 0.5, layers=[4, 5, 6, 7]) == 4
    assert np.isnan(initiation_layer([0.3, 0.2], 0.5, 0.9))  # no layer beats chance


def test_chance_is_the_expected_macro_f1_of_a_label_permutation():
    rng = np.random.default_rng(0)
    labels = rng.choice(3, size=600, p=[0.6, 0.3, 0.1])
    perms = np.stack([rng.permutation(labels) for _ in range(400)])
    f1 = macro_f1_rows(torch.as_tensor(np.broadcast_to(labels, perms.shape).copy()), torch.as_tensor(perms), 3).numpy()
    assert chance_macro_f1(labels) == pytest.approx(1 / 3)
    assert f1.mean() == pytest.approx(1 / 3, abs=0.005)


def labels_table(noisy_on_noisy, clean_on_noisy, clean_on_clean, seeds=(1, 2)) -> pd.DataFrame:
    rows = []
    for s in seeds:
        for layer, (a, b, c) in enumerate(zip(noisy_on_noisy, clean_on_noisy, clean_on_clean)):
            rows.append(dict(target="noisy_label", layer=layer, probe_seed=s, test_f1_noisy=a, test_f1_clean=np.nan))
            rows.append(dict(target="clean_label", layer=layer, probe_seed=s, test_f1_noisy=b, test_f1_clean=c))
    return pd.DataFrame(rows)


def test_probing_events_read_the_probe_seed_means():
    table = labels_table([0.0, 0.1, 0.5, 0.9], [0.9, 0.8, 0.3, 0.1], [0.4, 0.7, 0.97, 1.0])
    table.loc[(table["probe_seed"] == 2) & (table["target"] == "noisy_label") & (table["layer"] == 2), "test_f1_noisy"] = 0.0
    ev = probing_events(table, chance=1 / 3, margin=0.1, fraction=0.9)
    # layer 2: seed mean 0.25 is below 0.3 + 0.1, so the event is layer 3; (0.97 - 1/3) / (2/3) = 0.955 at layer 2
    assert ev.loc[0, ["num_layers", "event_layer", "initiation_layer"]].tolist() == [3, 3.0, 2.0]
    assert ev.loc[0, "peak_f1"] == 1.0 and ev.loc[0, "chance_f1"] == pytest.approx(1 / 3)
    never = probing_events(labels_table([0.1] * 4, [0.9] * 4, [0.2] * 4), chance=0.5, margin=0.1, fraction=0.9)
    assert never[["event_layer", "initiation_layer"]].isna().all(axis=None)


# --------------------------------------------------------------------------- planted layers


def planted_states(n=300, n_classes=3, d=6, seed=0):
    """Layer 0 carries the original label weakly, layers 1-2 strongly; from layer 3 on the noisy
    examples sit at their (wrong) training label: event layer 3, initiation layer 1."""
    rng = np.random.default_rng(seed)
    clean = rng.integers(0, n_classes, size=n)
    is_noisy = np.zeros(n, dtype=bool)
    is_noisy[rng.choice(n, n // 5, replace=False)] = True
    noisy = np.where(is_noisy, (clean + rng.integers(1, n_classes, size=n)) % n_classes, clean)
    states = rng.normal(size=(n, 5, d)).astype(np.float32)
    for layer, shown, shift in [(0, clean, 0.8), (1, clean, 6), (2, clean, 6), (3, noisy, 6), (4, noisy, 6)]:
        states[np.arange(n), layer, shown] += shift
    return states, noisy, clean, is_noisy


PROBE_KW = dict(seeds=[1, 2, 3], hidden_size=16, dropout=0.0, learning_rate=1e-2, epochs=15, batch_size=32)


def test_planted_noisy_label_layer_gives_the_event_and_initiation_layers():
    states, noisy, clean, is_noisy = planted_states()
    s = probing_settings(**PROBE_KW)
    table = lp.probe_labels(states, noisy, clean, is_noisy, is_noisy, 3, s)
    assert list(table.columns) == lp.LABEL_COLUMNS and len(table) == 2 * 5 * 3
    mean = table.groupby(["target", "layer"])[["test_f1_noisy", "test_f1_clean"]].mean()
    assert mean.loc[("noisy_label", 3), "test_f1_noisy"] > 0.9 and mean.loc[("clean_label", 3), "test_f1_noisy"] < 0.2
    assert mean.loc[("noisy_label", 2), "test_f1_noisy"] < 0.2 and mean.loc[("clean_label", 2), "test_f1_noisy"] > 0.9
    ev = probing_events(table, chance_macro_f1(noisy), s.event_margin, s.initiation_fraction)
    assert ev.loc[0, "event_layer"] == 3 and ev.loc[0, "initiation_layer"] == 1 and ev.loc[0, "num_layers"] == 4


def write_inputs(tmp_path, noisy, clean, is_noisy):
    n = len(noisy)
    examples = pd.DataFrame({
        "example_id": np.arange(n + 10), "split": ["train"] * n + ["validation"] * 5 + ["test"] * 5,
        "text_a": "x", "text_b": None, "label_orig": np.r_[clean, np.zeros(10, int)],
        "label": np.r_[noisy, np.zeros(10, int)], "is_noisy": np.r_[is_noisy, np.zeros(10, bool)],
    })
    rng = np.random.default_rng(0)
    ids = [rng.integers(5, VOCAB, size=int(rng.integers(3, 9))).astype(np.int32) for _ in range(n + 10)]
    tokens = pd.DataFrame({"example_id": np.arange(n + 10), "input_ids": ids, "length": [len(x) for x in ids],
                           "truncated": False})
    write_parquet(examples, tmp_path / "examples.parquet")
    write_parquet(tokens, tmp_path / "tokens.parquet", metadata={"pad_token_id": 0})
    build_random_classifier("bert", num_layers=4, hidden_size=16, num_heads=2, vocab_size=VOCAB, num_labels=3,
                            seed=1).save_pretrained(tmp_path / "model")


def test_run_label_probes_end_to_end_with_a_planted_layer(tmp_path, monkeypatch):
    """The rule's function on files: the tiny model's own states give well-formed tables; with the
    pooled states replaced by planted ones the events are the planted layers."""
    states, noisy, clean, is_noisy = planted_states()
    write_inputs(tmp_path, noisy, clean, is_noisy)
    settings = probing_settings(**PROBE_KW, eval_batch_size=64, deterministic=False, seed=1, final_norm=True).as_dict()
    out = tmp_path / "localisation" / "probing" / "toy" / "tiny" / "noisy"
    files = dict(examples_path=tmp_path / "examples.parquet", tokens_path=tmp_path / "tokens.parquet",
                 model_dir=tmp_path / "model", settings=settings)
    final_norm = record_final_norm(monkeypatch, lp)
    lp.run_label_probes(**files, labels_path=out / "seed1.labels.parquet", events_path=out / "seed1.events.parquet")
    assert final_norm == [True]
    real = pd.read_parquet(out / "seed1.labels.parquet")
    assert len(real) == 2 * 5 * 3 and real["test_f1"].between(0, 1).all()
    assert read_metadata(out / "seed1.events.parquet")["technique"] == "probing"

    monkeypatch.setattr(lp, "pooled_states", lambda *a, **k: states)
    lp.run_label_probes(**files, labels_path=out / "seed2.labels.parquet", events_path=out / "seed2.events.parquet")
    events = collect_probing_events(sorted(out.glob("seed*.events.parquet")))
    assert events.columns.tolist()[:7] == ["dataset", "model", "variant", "seed", "num_layers", "event_layer",
                                           "initiation_layer"]
    planted = events[events["seed"] == 2].iloc[0]
    assert (planted["dataset"], planted["num_layers"], planted["event_layer"], planted["initiation_layer"]) == ("toy", 4, 3, 1)
    labels = collect_label_probes(sorted(out.glob("seed*.labels.parquet")))
    assert len(labels) == 2 * len(real) and set(labels["target"]) == {"noisy_label", "clean_label"}
    assert parse_run_path(out / "seed2.labels.parquet")["seed"] == 2


# --------------------------------------------------------------------------- figures


def summary(datasets=("a",), models=("m",), seeds=(1,), event=3.0):
    labels, events = [], []
    for d in datasets:
        for m in models:
            for s in seeds:
                t = labels_table([0.0, 0.1, 0.5, 0.9], [0.9, 0.8, 0.3, 0.1], [0.4, 0.7, 0.97, 1.0])
                labels.append(t.assign(dataset=d, model=m, variant="noisy", seed=s, val_f1=0.5, test_f1=0.5))
                events.append(dict(dataset=d, model=m, variant="noisy", seed=s, num_layers=3, event_layer=event,
                                   initiation_layer=2.0, chance_f1=0.5, peak_f1=1.0))
    return pd.concat(labels, ignore_index=True), pd.DataFrame(events)


def test_figures_render_and_say_what_they_need(tmp_path, monkeypatch):
    labels, events = summary()
    F.plot_label_probes(labels, tmp_path / "labels", events=events)
    F.plot_probing_events(events, tmp_path / "events")
    F.plot_label_probes(labels.iloc[0:0], tmp_path / "labels_empty")
    F.plot_probing_events(events.iloc[0:0], tmp_path / "events_empty")
    for stem in ("labels", "events", "labels_empty", "events_empty"):
        for ext in ("pdf", "png"):
            assert (tmp_path / f"{stem}.{ext}").stat().st_size > 500
    one = drawn_text(monkeypatch, lambda: F.plot_probing_events(events, tmp_path / "x"))
    assert "needs at least 3 data sets; this run has 1" in one and "run.datasets" in one
    _, three = summary(datasets=("a", "b", "c"), models=("m", "n"), seeds=(1, 2))
    assert "needs at least" not in drawn_text(monkeypatch, lambda: F.plot_probing_events(three, tmp_path / "y"))
    _, never = summary(event=np.nan)
    assert "no data set has both a probing event" in drawn_text(monkeypatch, lambda: F.plot_probing_events(never, tmp_path / "z"))
