"""Aggregation: path parsing, layer weights, window heatmaps, M-CoG and its intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from memloc.stats.collect import (
    collect_centroid_events,
    collect_centroids,
    collect_counterfactual,
    collect_heatmaps,
    collect_layer_weights,
    collect_probing,
    event_rows,
    heatmap_layer_weights,
    heatmap_matrix,
    parse_run_path,
    window_heatmap,
)
from memloc.stats.mcog import (
    ALL_SEEDS,
    bootstrap_probing_mcog,
    event_layers,
    mcog,
    mcog_table,
    probing_layer_weights,
)


def windows_table(L, error):
    rows = [dict(start=s, size=e - s + 1, end=e, error=error(s, e)) for s in range(1, L + 1) for e in range(s, L + 1)]
    return pd.DataFrame(rows)


def write(df, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path)
    return path


def test_parse_run_path():
    ids = parse_run_path("results/localisation/swapping/sst2/bert_base/control-1-2/seed12.weights.parquet")
    assert ids == {"technique": "swapping", "dataset": "sst2", "model": "bert_base", "variant": "control-1-2", "seed": 12}
    assert parse_run_path("/x/localisation/centroids/d/m/noisy/seed3.events.parquet")["seed"] == 3
    assert parse_run_path("localisation/probing/d/m/noisy/seed4.parquet")["technique"] == "probing"
    with pytest.raises(ValueError, match="seed"):
        parse_run_path("results/localisation/swapping/sst2/bert/noisy/run1.parquet")


def test_collect_layer_weights(tmp_path):
    loc = tmp_path / "localisation"
    p1 = write(pd.DataFrame({"layer": [2, 1, 3], "weight": [2.0, 1.0, 1.0]}), loc / "gradients/d1/m1/noisy/seed1.weights.parquet")
    p2 = write(pd.DataFrame({"layer": [1, 2, 3], "weight": [0.0, 0.0, 0.0]}), loc / "probing/d1/m1/noisy/seed2.weights.parquet")
    lw = collect_layer_weights([p1, p2])
    assert list(lw.columns[:7]) == ["technique", "dataset", "model", "variant", "seed", "layer", "weight"]
    g = lw[lw["technique"] == "gradients"]
    assert g["layer"].tolist() == [1, 2, 3]
    assert g["weight_norm"].tolist() == [0.25, 0.5, 0.25]
    assert lw[lw["technique"] == "probing"]["weight_norm"].isna().all()  # zero total: no normalisation
    assert lw["seed"].dtype == np.int64
    assert collect_layer_weights([]).empty


def test_window_heatmap_hand_computed():
    # L = 3, error = start + 10 * end (each window distinct).
    raw = windows_table(3, lambda s, e: s + 10 * e)
    heat = window_heatmap(raw)
    H = heatmap_matrix(heat)
    # size 1: windows (1,1)=11, (2,2)=22, (3,3)=33
    np.testing.assert_allclose(H[0], [11, 22, 33])
    # size 2: (1,2)=21 contains 1,2; (2,3)=32 contains 2,3 -> layer 2 mean 26.5
    np.testing.assert_allclose(H[1], [21, 26.5, 32])
    # size 3: (1,3)=31 contains all
    np.testing.assert_allclose(H[2], [31, 31, 31])
    assert heat.set_index(["size", "layer"]).loc[(2, 2), "n_windows"] == 2
    w = heatmap_layer_weights(heat)
    np.testing.assert_allclose(w["weight"], [(11 + 21 + 31) / 3, (22 + 26.5 + 31) / 3, (33 + 32 + 31) / 3])


def test_window_heatmap_max_window_and_nan():
    raw = windows_table(4, lambda s, e: 1.0)
    raw = raw[raw["size"] <= 2].copy()
    raw.loc[raw.index[0], "error"] = np.nan  # window (1,1) failed
    heat = window_heatmap(raw, num_layers=4)
    assert set(heat["size"]) == {1, 2}
    assert (1, 1) not in set(zip(heat["size"], heat["layer"]))
    H = heatmap_matrix(heat, 4)
    assert np.isnan(H[2:]).all()


def test_collect_heatmaps(tmp_path):
    p = write(windows_table(2, lambda s, e: 0.5), tmp_path / "localisation/swapping/d/m/noisy/seed1.parquet")
    heat = collect_heatmaps([p])
    assert set(heat["technique"]) == {"swapping"} and len(heat) == 4
    assert np.allclose(heat["error"], 0.5)


def test_mcog_hand_computed():
    assert mcog([1, 2, 3], [1, 1, 2]) == pytest.approx((1 + 2 + 6) / 4)
    assert mcog([1, 2, 3, 4], [0, 0, 0, 1]) == 4
    assert np.isnan(mcog([1, 2], [0, 0]))
    assert mcog([1, 2, 3], [1, np.nan, 1]) == 2  # missing layer left out


def weights_frame(technique, dataset, model, seed, weights, variant="noisy"):
    L = len(weights)
    return pd.DataFrame(
        dict(technique=technique, dataset=dataset, model=model, variant=variant, seed=seed,
             layer=np.arange(1, L + 1), weight=np.asarray(weights, float))
    )


def test_mcog_table_seeds():
    lw = pd.concat(
        [
            weights_frame("swapping", "d", "m", 1, [1, 0, 0, 1]),  # M-CoG 2.5
            weights_frame("swapping", "d", "m", 2, [0, 0, 0, 1]),  # 4.0
            weights_frame("gradients", "d", "m", 1, [0, 1, 0, 0]),  # 2.0, single seed
        ]
    )
    t = mcog_table(lw, n_boot=500, seed=1)
    runs = t[t["seed"] != ALL_SEEDS].set_index(["technique", "seed"])
    assert runs.loc[("swapping", 1), "mcog"] == 2.5
    assert runs.loc[("swapping", 2), "mcog"] == 4.0
    assert runs["ci_low"].isna().all() and (runs["ci_method"] == "none").all()
    agg = t[t["seed"] == ALL_SEEDS].set_index("technique")
    assert agg.loc["swapping", "mcog"] == pytest.approx(3.25)
    assert agg.loc["swapping", "ci_method"] == "seeds"
    assert 2.5 <= agg.loc["swapping", "ci_low"] <= agg.loc["swapping", "ci_high"] <= 4.0
    assert agg.loc["swapping", "n_seeds"] == 2
    assert agg.loc["gradients", "mcog"] == 2.0
    assert np.isnan(agg.loc["gradients", "ci_low"]) and agg.loc["gradients", "ci_method"] == "none"


def probe_raw(noisy_means, frozen_means, seeds=4, jitter=0.01, rng=0):
    rng = np.random.default_rng(rng)
    rows = []
    for net, means in (("noisy", noisy_means), ("frozen", frozen_means)):
        for ps in range(seeds):
            for layer, m in enumerate(means):
                f1 = m + (rng.normal(0, jitter) if jitter else 0.0)
                rows.append(dict(layer=layer, probe_seed=ps, model=net, val_f1=f1, test_f1=f1))
    return pd.DataFrame(rows)


def test_probing_layer_weights_hand_computed():
    raw = probe_raw([0.30, 0.50, 0.45, 0.80], [0.20, 0.40, 0.40, 0.40], jitter=0)
    w = probing_layer_weights(raw)
    # l=1: noisy 0.50 - frozen layer-1 0.40; l=2: max(0, 0.45-0.50)=0; l=3: 0.80-0.45
    np.testing.assert_allclose(w.loc[[1, 2, 3]].to_numpy(), [0.10, 0.0, 0.35])


def test_probing_bootstrap_interval_contains_estimate():
    raw = probe_raw([0.3, 0.5, 0.6, 0.9], [0.3, 0.4, 0.4, 0.4], seeds=5, jitter=0.02)
    w = probing_layer_weights(raw)
    point = mcog(w.index, w.to_numpy())
    lo, hi = bootstrap_probing_mcog(raw, n_boot=300, rng=0)
    assert lo <= point <= hi and hi - lo < 1.0
    lw = weights_frame("probing", "d", "m", 1, w.to_numpy())
    probing = raw.rename(columns={"model": "probed"}).assign(dataset="d", model="m", variant="noisy", seed=1)
    t = mcog_table(lw, probing, n_boot=300)
    assert set(t["ci_method"]) == {"probe_seeds"}  # the seed row and the single-seed aggregate
    agg = t[t["seed"] == ALL_SEEDS].iloc[0]
    assert agg["ci_low"] == pytest.approx(lo, abs=0.2)


def test_event_layers():
    lw = pd.concat([weights_frame("probing", "d", "m", 1, [0.1, 0.5, 0.2]), weights_frame("probing", "e", "m", 1, [0, 0, 0])])
    ev = event_layers(lw).set_index("dataset")
    assert ev.loc["d", "event_layer"] == 2
    assert np.isnan(ev.loc["e", "event_layer"])


def test_collect_pooled_centroids(tmp_path):
    """A run that pooled its class pairs is summarised by its pooled rows, not the mean over pairs."""
    pair = [dict(scope="pair", class_a=a, class_b=1 - a, layer=l, group=g, n=4, mean=v + a, p12_5=0.0, p87_5=1.0)
            for a in (0, 1) for l in (0, 1) for g, v in (("clean_a", 0.0), ("noisy", 0.5), ("clean_b", 1.0))
            if not (a == 1 and g == "noisy")]  # pair 1 -> 0 has no memorised examples
    pooled = [dict(scope="pooled", class_a=None, class_b=None, layer=l, group=g, n=8, mean=m, p12_5=-0.1, p87_5=0.9)
              for l in (0, 1) for g, m in (("clean_a", 0.25), ("noisy", 0.7), ("clean_b", 0.75))]
    cent = pd.DataFrame(pair + pooled).astype({"class_a": "Int64", "class_b": "Int64"})
    c = collect_centroids([write(cent, tmp_path / "localisation/centroids/d/m/noisy/seed1.parquet")])
    c = c.set_index(["layer", "group"])
    assert c.loc[(1, "noisy"), "mean"] == 0.7 and c.loc[(1, "noisy"), "p12_5"] == -0.1  # not mean(0.5) over pairs
    assert c.loc[(1, "noisy"), "n_pairs"] == 1 and c.loc[(1, "clean_a"), "n_pairs"] == 2
    assert len(c) == 6


def test_event_rows_pooled_row_per_run():
    ev = pd.DataFrame(dict(dataset="d", model="m", variant="noisy", seed=[1, 1, 1, 1, 2, 2, 2],
                           scope=["pair", "pair", "mean", "pooled", "pair", "pair", "mean"],
                           crossing_layer=[1.0, 2.0, 1.5, 3.0, 4.0, 5.0, 4.5]))
    assert event_rows(ev)["crossing_layer"].tolist() == [3.0, 4.0, 5.0]  # seed 1 pooled, seed 2 per pair
    assert event_rows(ev.drop(columns="scope")).equals(ev.drop(columns="scope"))  # no scope: per-pair rows


def test_collect_probing_centroids_counterfactual(tmp_path):
    p = write(probe_raw([0.3, 0.5], [0.3, 0.4], seeds=2), tmp_path / "localisation/probing/d/m/noisy/seed1.parquet")
    pr = collect_probing([p])
    assert {"probed", "model"} <= set(pr.columns) and set(pr["model"]) == {"m"} and set(pr["probed"]) == {"noisy", "frozen"}

    cent = pd.DataFrame(
        [dict(class_a=a, class_b=1 - a, layer=l, group=g, mean=v + a, p12_5=0, p87_5=1)
         for a in (0, 1) for l in (0, 1) for g, v in (("clean_a", 0.0), ("noisy", 0.5), ("clean_b", 1.0))]
    )
    pc = write(cent, tmp_path / "localisation/centroids/d/m/noisy/seed1.parquet")
    c = collect_centroids([pc])
    row = c[(c["layer"] == 0) & (c["group"] == "noisy")].iloc[0]
    assert row["mean"] == 1.0 and row["n_pairs"] == 2  # mean of 0.5 and 1.5
    ev = pd.DataFrame(dict(class_a=[0, 1], class_b=[1, 0], crossing_layer=[2, 3], initiation_layer=[3, 4]))
    pe = write(ev, tmp_path / "localisation/centroids/d/m/noisy/seed1.events.parquet")
    assert collect_centroid_events([pe])["crossing_layer"].tolist() == [2, 3]

    js = tmp_path / "counterfactual/d/m/summary.json"
    js.parent.mkdir(parents=True)
    js.write_text('{"generalisation_mean": 0.4, "cm_noisy_mean": 0.5, "cm_clean_mean": 0.1, '
                  '"auc_noisy": 0.9, "reliability": 0.7, "name": "x"}')
    cf = collect_counterfactual([js], {"d": "nlu"})
    assert cf.iloc[0]["family"] == "nlu" and cf.iloc[0]["generalisation_mean"] == 0.4 and "name" not in cf


def test_counterfactual_table_keeps_the_names_the_counterfactual_stage_writes(tmp_path):
    """summary.json as the counterfactual stage writes it feeds the statistics under the same names."""
    import json

    from memloc.counterfactual.estimate import json_safe, summarise
    from memloc.stats.collect import COUNTERFACTUAL_KEYS, collect_counterfactual

    written = json_safe(summarise(pd.DataFrame(dict(
        is_noisy=[True, True, False, False], generalisation=[0.1, 0.2, 0.7, 0.8], train_memorisation=[0.9, 0.9, 0.8, 0.8],
        counterfactual_memorisation=[0.9, 0.7, 0.1, 0.0], n_in=[2, 2, 2, 2], n_out=[2, 2, 2, 2]))))
    assert set(COUNTERFACTUAL_KEYS) - {"reliability"} <= set(written)
    path = tmp_path / "results" / "counterfactual" / "movies" / "minilm" / "summary.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({**written, "reliability": 0.8}))
    row = collect_counterfactual([path]).iloc[0]
    assert (row.dataset, row.model) == ("movies", "minilm")
    assert row.generalisation_mean == pytest.approx(written["generalisation_mean"]) and row.auc_noisy == 1.0
