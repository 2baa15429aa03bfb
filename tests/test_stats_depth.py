"""Depth of memorisation against generalisation, layer events, min-max model agreement, and the
validation and clean-accuracy collectors, each on synthetic inputs with a planted answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from memloc.stats.agreement import minmax, minmax_agreement_rows
from memloc.stats.collect import shuffled_label_accuracy, swapping_clean_frames, validation_frames, validation_row
from memloc.stats.depth import depth_rows, events_rows, spearman_bootstrap, technique_mean_mcog
from memloc.stats.events import centroid_event_means, probing_event_means
from memloc.stats.mcog import ALL_SEEDS
from memloc.stats.tidy import finalize

BOOT = dict(variant="noisy", confidence=0.95, n_boot=200, seed=0)
DATASETS = [f"d{i}" for i in range(5)]
MODELS = ["m1", "m2"]


def mcog_rows(records):
    """Seed-aggregated M-CoG rows from (technique, dataset, model, value)."""
    return pd.DataFrame([dict(technique=t, dataset=d, model=m, variant="noisy", seed=ALL_SEEDS, mcog=v)
                         for t, d, m, v in records])


def planted():
    """Five data sets x two models: the generalisation score rises with the data set's index, and
    so do M-CoG (averaged over two techniques), the probing event and the centroid crossing;
    the normalised validation accuracy falls with it."""
    recs, cf, val, probe, cent = [], [], [], [], []
    for i, d in enumerate(DATASETS):
        for k, m in enumerate(MODELS):
            recs += [("swapping", d, m, 5.0 + i), ("gradients", d, m, 6.0 + i + 0.1 * k)]
            cf.append(dict(dataset=d, model=m, generalisation_mean=0.2 + 0.1 * i + 0.01 * k))
            for s in (1, 2):
                val.append(dict(dataset=d, model=m, variant="noisy", seed=s, accuracy_norm=0.9 - 0.1 * i - 0.01 * k))
                # seed 2 of d0 never reaches the event: left out of the mean, not counted as 0
                probe.append(dict(dataset=d, model=m, variant="noisy", seed=s, num_layers=12,
                                  event_layer=np.nan if (i == 0 and s == 2) else 2 + i + s + 0.1 * k,
                                  initiation_layer=float(8 - i)))
                cent.append(dict(dataset=d, model=m, variant="noisy", seed=s, scope="pair", class_a=0, class_b=1,
                                 crossing_layer=3 + i + 0.1 * k, initiation_layer=float(9 - i)))
    return mcog_rows(recs), pd.DataFrame(cf), pd.DataFrame(val), pd.DataFrame(probe), pd.DataFrame(cent)


def test_technique_mean_mcog_needs_every_technique():
    mc = mcog_rows([("swapping", "a", "m", 5.0), ("gradients", "a", "m", 7.0), ("swapping", "b", "m", 4.0)])
    out = technique_mean_mcog(mc).set_index("dataset")
    assert out.loc["a", "mcog"] == pytest.approx(6.0) and out.loc["a", "n_techniques"] == 2
    assert np.isnan(out.loc["b", "mcog"])  # gradients missing: not a mean over the same techniques


def test_depth_rows_recover_planted_rank_relations():
    mc, cf, val, probe, cent = planted()
    st = finalize(depth_rows(mc, cf, val, probe, cent, **BOOT)).set_index(["analysis", "term"])
    for measure in ("mcog[mean]", "probing_event_layer", "centroid_crossing_layer"):
        for scope in ("all models", "m1", "m2"):
            gen = st.loc[("depth_generalisation_spearman", f"{measure} | {scope}")]
            val_row = st.loc[("depth_validation_spearman", f"{measure} | {scope}")]
            assert gen["estimate"] == pytest.approx(1.0) and val_row["estimate"] == pytest.approx(-1.0)
            assert gen["ci_low"] == pytest.approx(1.0) and gen["ci_high"] == pytest.approx(1.0)
    per_model = st.loc[("depth_generalisation_spearman", "mcog[mean] | m1")]
    assert per_model["n"] == 5 and per_model["p_value"] == pytest.approx(2 / 120)  # exact: 2 of 5! orderings
    pooled = st.loc[("depth_generalisation_spearman", "mcog[mean] | all models")]
    assert pooled["n"] == 10 and "bootstrap over 5 data sets" in pooled["note"] and "models pooled" in pooled["note"]


def test_depth_rows_with_too_few_data_sets_or_no_outcome():
    mc, cf, val, probe, cent = planted()
    keep = lambda t: t[t["dataset"].isin(["d0", "d1"])]  # noqa: E731
    st = finalize(depth_rows(keep(mc), keep(cf), keep(val), keep(probe), keep(cent), **BOOT))
    assert st["estimate"].isna().all() and st["note"].str.contains(r"2 data sets \(< 3\)").all()
    none = finalize(depth_rows(mc, None, None, **BOOT))
    assert set(none["term"]) == {"(none)"} and none["note"].str.contains("no counterfactual summaries").any()


def test_bootstrap_interval_resamples_data_sets_and_is_per_row():
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(8.0), 2)
    y = g + rng.normal(0, 2.0, len(g))
    res = spearman_bootstrap(g, y, np.repeat(np.arange(8), 2), n_boot=500, confidence=0.9, rng=1)
    assert res["ci_low"] < res["estimate"] < res["ci_high"] and res["n"] == 16
    assert res == spearman_bootstrap(g, y, np.repeat(np.arange(8), 2), n_boot=500, confidence=0.9, rng=1)
    # Two data sets of two points each: every resample draws whole data sets, so it is the
    # original set again (same rho) or one data set twice (a constant score, left out).
    whole = spearman_bootstrap([0, 0, 1, 1], [0, 1, 2, 3], ["a", "a", "b", "b"], n_boot=200, confidence=0.95, rng=0)
    assert whole["ci_low"] == pytest.approx(whole["estimate"]) == pytest.approx(whole["ci_high"])
    assert "constant resamples left out" in whole["note"]
    # A row's interval does not depend on which other measures the run has (rows before it).
    noise = np.random.default_rng(0).normal(0, 3.0, 16)
    recs = [("swapping", f"d{i}", f"m{k}", 5.0 + i + noise[2 * i + k - 1]) for i in range(8) for k in (1, 2)]
    cf = pd.DataFrame([dict(dataset=f"d{i}", model=f"m{k}", generalisation_mean=0.1 * i) for i in range(8) for k in (1, 2)])
    val = cf.rename(columns={"generalisation_mean": "accuracy_norm"}).assign(variant="noisy", seed=1)
    probe = cf.assign(variant="noisy", seed=1, num_layers=12, event_layer=3.0 + noise, initiation_layer=5.0)
    with_probe = finalize(depth_rows(mcog_rows(recs), cf, val, probe, **BOOT)).set_index(["analysis", "term"])
    without = finalize(depth_rows(mcog_rows(recs), cf, val, None, **BOOT)).set_index(["analysis", "term"])
    key = ("depth_validation_spearman", "mcog[mean] | all models")  # after the probing rows of the first analysis
    assert with_probe.loc[key, "ci_low"] < with_probe.loc[key, "ci_high"]
    assert with_probe.loc[key, ["ci_low", "ci_high"]].tolist() == without.loc[key, ["ci_low", "ci_high"]].tolist()


def test_event_means_seed_average_and_pooled_scope():
    _, _, _, probe, _ = planted()
    p = probing_event_means(probe).set_index(["dataset", "model"])
    assert p.loc[("d0", "m1"), "event_layer"] == 3.0  # seed 2 without the event is left out
    assert p.loc[("d1", "m1"), "event_layer"] == 4.5 and p.loc[("d1", "m2"), "event_layer"] == pytest.approx(4.6)
    ev = pd.DataFrame(dict(dataset="d", model="m", variant="noisy", seed=[1, 1, 1, 2, 2],
                           scope=["pair", "pair", "pooled", "pair", "pooled"], crossing_layer=[2.0, 4.0, 7.0, np.nan, 5.0],
                           initiation_layer=[1.0, 1.0, 8.0, 1.0, np.nan]))
    pooled = centroid_event_means(ev).iloc[0]
    assert pooled["crossing_layer"] == 6.0 and pooled["initiation_layer"] == 8.0
    pair = centroid_event_means(ev[ev["scope"] == "pair"]).iloc[0]
    assert pair["crossing_layer"] == 3.0 and pair["initiation_layer"] == 1.0
    with pytest.raises(ValueError, match="probing_events.parquet lacks columns"):
        probing_event_means(probe.drop(columns=["initiation_layer"]))


def test_events_rows_planted():
    _, _, _, probe, cent = planted()
    st = finalize(events_rows(probe, cent, **BOOT)).set_index("term")
    mem = st.loc["probing_event_layer~centroid_crossing_layer | all models"]
    init = st.loc["probing_initiation_layer~centroid_initiation_layer | all models"]
    assert mem["estimate"] == pytest.approx(1.0) and init["estimate"] == pytest.approx(1.0) and mem["n"] == 10
    missing = finalize(events_rows(None, cent, **BOOT))
    assert missing["term"].tolist() == ["(none)"] and "centroid events" in missing["note"].iloc[0]


def test_minmax_model_agreement_scales_each_technique_of_each_model():
    """Model b has model a's weight profiles, but on swapped scales per technique: pooled raw
    weights disagree, min-max scaled per (technique, model) they agree exactly."""
    rng = np.random.default_rng(0)
    rows = []
    for t, (scale_a, scale_b) in (("swapping", (1.0, 100.0)), ("gradients", (100.0, 1.0))):
        for d in ("d0", "d1"):
            profile = rng.random(4)
            for m, scale in (("a", scale_a), ("b", scale_b)):
                rows += [dict(technique=t, dataset=d, model=m, variant="noisy", seed=1, layer=layer + 1,
                              weight=scale * profile[layer] + 3) for layer in range(4)]
    lw = pd.DataFrame(rows)
    st = finalize(minmax_agreement_rows(lw, "noisy", 0.95)).set_index("analysis")
    assert st.loc["agreement_model_minmax_pearson", "estimate"] == pytest.approx(1.0)
    assert st.loc["agreement_model_minmax_spearman", "estimate"] == pytest.approx(1.0)
    assert st.loc["agreement_model_minmax_pearson", "n"] == 16
    raw = np.corrcoef(lw[lw.model == "a"]["weight"], lw[lw.model == "b"]["weight"])[0, 1]
    assert raw < 0.5
    np.testing.assert_allclose(minmax([2.0, 4.0, 3.0]), [0.0, 1.0, 0.5])
    assert np.isnan(minmax([1.0, 1.0])).all()


def test_validation_row_and_chance():
    pred = pd.DataFrame(dict(split=["validation"] * 4 + ["train", "validation"],
                             checkpoint=["final"] * 5 + ["memorised"], label=[0, 0, 0, 1, 1, 1],
                             correct=[True, True, False, True, False, False]))
    r = validation_row(pred)
    assert r["n"] == 4 and r["accuracy"] == 0.75
    assert r["chance"] == pytest.approx(0.75**2 + 0.25**2)  # labels 0, 0, 0, 1 shuffled
    assert r["accuracy_norm"] == pytest.approx((0.75 - 0.625) / 0.375)
    assert shuffled_label_accuracy([0, 1, 2, 3]) == pytest.approx(0.25)
    table = validation_frames([({"dataset": "d", "model": "m", "variant": "noisy", "seed": 2}, pred)])
    assert table[["seed", "n"]].dtypes.tolist() == [np.int64, np.int64] and table["accuracy"].iloc[0] == 0.75
    with pytest.raises(ValueError, match="missing"):
        validation_row(pred.drop(columns=["correct"]))


def test_swapping_clean_frames():
    raw = pd.DataFrame(dict(start=[1, 1, 2], end=[1, 2, 2], size=[1, 2, 1], error=0.5, acc_clean=[1.0, 0.98, 0.99]))
    out = swapping_clean_frames([({"technique": "swapping", "dataset": "d", "model": "m", "variant": "noisy", "seed": 1}, raw)])
    assert out["size"].tolist() == [1, 2, 1] and out["acc_clean"].tolist() == [1.0, 0.98, 0.99]
    assert out["n_clean"].isna().all() and set(out["dataset"]) == {"d"}
    with pytest.raises(ValueError, match="acc_clean"):
        swapping_clean_frames([({"dataset": "d", "model": "m", "variant": "noisy", "seed": 1}, raw.drop(columns="acc_clean"))])
