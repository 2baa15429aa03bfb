"""Statistics: correlations + Holm, mixed model and its fallback, generalisation, control."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from memloc.stats.agreement import agreement_matrix, agreement_rows, correlation, spearman_exact_p
from memloc.stats.control import control_rows
from memloc.stats.generalisation import generalisation_rows
from memloc.stats.mcog import ALL_SEEDS
from memloc.stats.mixed import mcog_model_rows
from memloc.stats.statistics import statistics_table
from memloc.stats.tidy import STAT_COLUMNS, finalize, holm, row


def mcog_rows(records):
    """Seed-aggregated M-CoG rows from (technique, dataset, model, value)."""
    return pd.DataFrame(
        [dict(technique=t, dataset=d, model=m, variant="noisy", seed=ALL_SEEDS, mcog=v, ci_low=np.nan,
              ci_high=np.nan, ci_method="none", n_seeds=1) for t, d, m, v in records]
    )


def test_pearson_and_fisher_interval_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    y = np.array([2.0, 4.0, 5.0, 4.0, 5.0])
    # Hand computation: deviations x: -2..2, y: -2, 0, 1, 0, 1 -> Sxy = 4+0+0+0+2 = 6,
    # Sxx = 10, Syy = 4+0+1+0+1 = 6; r = 6 / sqrt(60).
    r = 6 / math.sqrt(60)
    res = correlation(x, y, "pearson")
    assert res["estimate"] == pytest.approx(r)
    z, half = math.atanh(r), 1.959963984540054 / math.sqrt(5 - 3)
    assert res["ci_low"] == pytest.approx(math.tanh(z - half))
    assert res["ci_high"] == pytest.approx(math.tanh(z + half))
    # t test of r with n - 2 df
    t = r * math.sqrt(3 / (1 - r * r))
    from scipy import stats

    assert res["p_value"] == pytest.approx(2 * stats.t.sf(t, 3))
    assert res["n"] == 5


def test_spearman_exact_and_degenerate_cases():
    res = correlation([1, 2, 3, 4], [10, 20, 30, 40], "spearman")
    assert res["estimate"] == pytest.approx(1.0)
    assert res["p_value"] == pytest.approx(2 / 24)  # two of 24 orderings are as extreme
    assert spearman_exact_p([1, 2, 3], [3, 1, 2]) == pytest.approx(1.0)
    two = correlation([1, 2], [3, 4])
    assert np.isnan(two["estimate"]) and "< 3" in two["note"]
    const = correlation([1, 2, 3, 4], [1, 1, 1, 1])
    assert np.isnan(const["estimate"]) and "constant" in const["note"]
    nan_pairs = correlation([1, 2, np.nan, 4, 5], [1, 3, 2, np.nan, 6])
    assert nan_pairs["n"] == 3 and np.isnan(nan_pairs["ci_low"])


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04 -> 3*0.01 = 0.03, 2*0.03 = 0.06, max(1*0.04, 0.06) = 0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    out = holm([0.02, np.nan, 0.5])
    assert np.isnan(out[1]) and out[0] == pytest.approx(0.04) and out[2] == pytest.approx(0.5)


def test_finalize_holm_within_analysis_only():
    rows = [
        row("a", "x", p_value=0.01, n=5),
        row("a", "y", p_value=0.04, n=5),
        row("a", "Intercept", p_value=0.001, n=5, adjust=False),
        row("b", "z", p_value=0.04, n=5),
    ]
    df = finalize(rows)
    assert list(df.columns) == STAT_COLUMNS
    adj = dict(zip(df["analysis"] + ":" + df["term"], df["p_adjusted"]))
    assert adj["a:x"] == pytest.approx(0.02) and adj["a:y"] == pytest.approx(0.04)
    assert np.isnan(adj["a:Intercept"]) and adj["b:z"] == pytest.approx(0.04)


def test_agreement_rows_and_matrix():
    vals = {"swapping": [5.0, 5.5, 6.0, 6.4], "retraining": [5.1, 5.4, 6.1, 6.3], "probing": [6.0, 5.0, 5.5, 5.2]}
    recs = [(t, f"d{i}", "m", v) for t, vs in vals.items() for i, v in enumerate(vs)]
    st = finalize(agreement_rows(mcog_rows(recs)))
    pear = st[st["analysis"] == "agreement_technique_mcog_pearson"].set_index("term")
    assert list(pear.index) == ["swapping~retraining", "swapping~probing", "retraining~probing"]
    expected = np.corrcoef(vals["swapping"], vals["retraining"])[0, 1]
    assert pear.loc["swapping~retraining", "estimate"] == pytest.approx(expected)
    p = pear["p_value"].to_numpy()
    np.testing.assert_allclose(pear["p_adjusted"], holm(p))
    model = st[st["analysis"] == "agreement_model_mcog_pearson"]
    assert len(model) == 1 and "fewer than 2 models" in model["note"].iloc[0]
    mat = agreement_matrix(st, "agreement_technique_mcog_pearson")
    assert mat.loc["retraining", "swapping"] == pytest.approx(expected) and mat.loc["probing", "probing"] == 1


def mixed_table(n_models=5, effect=0.8, seed=0):
    rng = np.random.default_rng(seed)
    datasets = [f"d{i}" for i in range(6)]
    families = {d: ("nlu" if i < 3 else "sentiment") for i, d in enumerate(datasets)}
    recs = []
    for k in range(n_models):
        u = rng.normal(0, 0.5)  # random intercept of the model
        for d in datasets:
            for t, shift in (("swapping", 0.0), ("retraining", effect), ("gradients", -0.3)):
                fam = 0.4 if families[d] == "sentiment" else 0.0
                recs.append((t, d, f"m{k}", 5.5 + u + shift + fam + rng.normal(0, 0.1)))
    return mcog_rows(recs), families


def test_mixed_model_recovers_technique_effect():
    table, families = mixed_table()
    st = finalize(mcog_model_rows(table, families)).set_index("term")
    eff = st.loc["technique[T.retraining]"]
    assert eff["estimate"] == pytest.approx(0.8, abs=0.1)
    assert eff["ci_low"] < 0.8 < eff["ci_high"] and eff["p_value"] < 1e-6
    assert st.loc["family[T.sentiment]", "estimate"] == pytest.approx(0.4, abs=0.15)
    assert "mixedlm" in eff["note"] and "fallback" not in eff["note"]
    assert st.loc["model variance (random intercept)", "estimate"] > 0
    assert st.loc["technique (joint Wald)", "p_value"] < 1e-6
    assert np.isnan(st.loc["Intercept", "p_adjusted"])


def test_mixed_model_fallback_single_model():
    table, families = mixed_table(n_models=1)
    st = finalize(mcog_model_rows(table, families)).set_index("term")
    assert st["note"].str.contains("fallback").all() and st["note"].str.contains("HC3").all()
    assert st.loc["technique[T.retraining]", "estimate"] == pytest.approx(0.8, abs=0.15)


def test_mixed_model_fallback_two_models_and_tiny_input():
    table, families = mixed_table(n_models=2)
    st = finalize(mcog_model_rows(table, families))
    assert st["note"].str.contains("fallback").all() and st["note"].str.contains("fixed intercept per model").all()
    assert not st["term"].str.startswith("model[").any()
    tiny = finalize(mcog_model_rows(mcog_rows([("swapping", "d", "m", 5.0)]), {}))
    assert len(tiny) == 1 and np.isnan(tiny["estimate"].iloc[0]) and tiny["note"].iloc[0]


def test_control_binomial_row():
    control = pd.DataFrame(
        dict(technique=["swapping"] * 4, dataset="d", model="m", target_layers=["1-2", "2-3", "3-4", "1-4"],
             acc_at_1=[1.0, 1.0, 1.0, 0.0], acc_at_2=[1.0, 1.0, 0.5, 0.5], chance=2 / 6)
    )
    st = finalize(control_rows(control)).set_index("analysis")
    b = st.loc["control_binomial"]
    # P(X >= 3 | n = 4, p = 1/3) = 4 * (1/3)^3 * (2/3) + (1/3)^4 = 9/81
    assert b["p_value"] == pytest.approx(1 / 9)
    assert b["estimate"] == 0.75 and b["n"] == 4 and b["ci_low"] < 0.75 < b["ci_high"]
    assert st.loc["control_acc_at_2", "estimate"] == pytest.approx(0.75)
    empty = finalize(control_rows(None))
    assert "no control" in empty["note"].iloc[0]


def test_generalisation_rows():
    recs = [("swapping", f"d{i}", "m", 5 + 0.3 * i) for i in range(4)]
    cf = pd.DataFrame(dict(dataset=[f"d{i}" for i in range(4)], model="m", generalisation_mean=[0.1, 0.2, 0.4, 0.5]))
    st = finalize(generalisation_rows(mcog_rows(recs), cf)).set_index(["analysis", "term"])
    rho = st.loc[("generalisation_spearman", "mcog[swapping] | all models")]
    assert rho["estimate"] == pytest.approx(1.0) and rho["p_value"] == pytest.approx(2 / 24)
    slope = st.loc[("generalisation_slope", "mcog[swapping] | all models")]
    expected = np.polyfit([0.1, 0.2, 0.4, 0.5], [5.0, 5.3, 5.6, 5.9], 1)[0]
    assert slope["estimate"] == pytest.approx(expected) and slope["ci_low"] < expected < slope["ci_high"]
    few = finalize(generalisation_rows(mcog_rows(recs[:2]), cf))
    assert few["estimate"].isna().all() and few["note"].str.contains("< 3").all()
    none = finalize(generalisation_rows(mcog_rows(recs), None))
    assert none["note"].str.contains("no counterfactual").all()


def test_statistics_table_on_the_embedded_default_shape():
    """One data set, one model, one seed: every analysis yields rows, NaN ones with a note."""
    from memloc.stats import synthetic as syn
    from memloc.stats.mcog import mcog_table

    t = syn.summary_tables()
    mc = mcog_table(t["layer_weights"], t["probing"], n_boot=50)
    st = statistics_table(
        mc, t["layer_weights"], {"movies": "sentiment"}, syn.counterfactual_table(), t["centroid_events"], syn.control_table(),
        validation=syn.validation_table(), probing_events=syn.probing_events_table(), n_boot=50, seed=0,
        unmemorised="exclude",
    )
    assert list(st.columns) == STAT_COLUMNS
    analyses = set(st["analysis"])
    for name in ("agreement_technique_mcog_pearson", "agreement_model_weights_spearman", "mcog_model",
                 "generalisation_spearman", "generalisation_slope", "control_binomial", "agreement_model_minmax_pearson",
                 "depth_generalisation_spearman", "depth_validation_spearman", "events_probing_centroids_spearman"):
        assert name in analyses
    missing = st[st["estimate"].isna()]
    assert (missing["note"].str.len() > 0).all()
    # per-layer technique agreement is computable from one run (L = 4 layers)
    assert st[st["analysis"] == "agreement_technique_weights_pearson"]["estimate"].notna().all()


def test_generalisation_centroid_crossing_uses_pair_rows():
    from memloc.stats.generalisation import measures

    ev = pd.DataFrame(
        dict(dataset="d", model="m", variant="noisy", seed=1, scope=["pair", "pair", "pair", "mean"],
             class_a=[0, 1, 2, None], class_b=[1, 0, 0, None], crossing_layer=[2.0, 4.0, np.nan, 99.0],
             initiation_layer=np.nan)
    )
    m = measures(mcog_rows([("swapping", "d", "m", 5.0)]), None, ev)
    cross = m[m["measure"] == "centroid_crossing"]["value"]
    assert cross.tolist() == [3.0]  # pairs 2 and 4; the never-crossing pair and the mean row left out


def test_generalisation_centroid_crossing_uses_pooled_rows():
    """A run that pooled its pairs (localisation.centroids.pooling: pooled) gives its pooled
    crossing; a run of the same table without a pooled row still gives its pairs'."""
    from memloc.stats.generalisation import measures

    ev = pd.DataFrame(
        dict(dataset=["d"] * 4 + ["e"] * 2, model="m", variant="noisy", seed=[1, 1, 1, 1, 1, 1],
             scope=["pair", "pair", "mean", "pooled", "pair", "mean"], class_a=[0, 1, None, None, 0, None],
             class_b=[1, 0, None, None, 1, None], crossing_layer=[2.0, 4.0, 3.0, 5.0, 7.0, 7.0], initiation_layer=np.nan)
    )
    m = measures(mcog_rows([("swapping", "d", "m", 5.0), ("swapping", "e", "m", 5.0)]), None, ev)
    cross = m[m["measure"] == "centroid_crossing"].set_index("dataset")["value"]
    assert cross.to_dict() == {"d": 5.0, "e": 7.0}


def test_mixed_model_falls_back_without_model_variance():
    """No random-intercept variance: the mixed fit is singular or fails, and OLS with
    cluster-robust errors by model takes over."""
    rng = np.random.default_rng(1)
    recs = [(t, f"d{i}", f"m{k}", 5 + s + rng.normal(0, 0.1))
            for k in range(4) for i in range(5) for t, s in (("swapping", 0.0), ("probing", 0.5))]
    st = finalize(mcog_model_rows(mcog_rows(recs), {})).set_index("term")
    assert st["note"].str.contains("fallback: OLS with cluster-robust SE by model").all()
    assert st.loc["technique[T.probing]", "estimate"] == pytest.approx(0.5, abs=0.05)
