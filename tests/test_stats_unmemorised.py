"""Runs whose noisy model did not memorise, in summary/statistics.parquet (docs/protocol.md §8.3):
left out (stats.unmemorised: exclude) or kept (include), named and counted on every row either
way; with every run memorised the table is the one without a memorised-runs table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from memloc.stats import synthetic as syn
from memloc.stats.control import ANALYSES as CONTROL_ANALYSES
from memloc.stats.mcog import ALL_SEEDS, mcog_table
from memloc.stats.statistics import statistics_table
from memloc.stats.unmemorised import exclusion

DATASETS, MODELS, SEEDS = ("a", "b", "c", "d"), ("m1", "m2"), (1, 2)
FLAGGED = ("b", "m1", 2)


@pytest.fixture(scope="module")
def t():
    t = syn.summary_tables(datasets=DATASETS, models=MODELS, seeds=SEEDS, num_layers=4)
    t["counterfactual"] = syn.counterfactual_table(DATASETS, MODELS)
    t["validation"] = syn.validation_table(DATASETS, MODELS, SEEDS)
    t["probing_events"] = syn.probing_events_table(DATASETS, MODELS, SEEDS)
    t["control"] = syn.control_table(datasets=DATASETS, models=MODELS)
    return t


def memorised_runs(flagged=(FLAGGED,)):
    rows = [dict(dataset=d, model=m, seed=s, noisy_accuracy=0.5 if (d, m, s) in flagged else 1.0, threshold=0.99,
                 memorised=(d, m, s) not in flagged) for d in DATASETS for m in MODELS for s in SEEDS]
    return pd.DataFrame(rows)


def statistics(t, policy="exclude", runs=None):
    mc = mcog_table(t["layer_weights"], t["probing"], n_boot=20)
    return statistics_table(mc, t["layer_weights"], {"a": "x", "b": "x", "c": "y", "d": "y"}, t["counterfactual"],
                            t["centroid_events"], t["control"], validation=t["validation"],
                            probing_events=t["probing_events"], memorised_runs=runs, n_boot=50, seed=0,
                            unmemorised=policy)


def without_flagged(t):
    """The tables with the flagged run's rows removed by hand."""
    out = dict(t)
    for name in ("layer_weights", "probing", "centroid_events", "validation", "probing_events"):
        df = t[name]
        hit = (df["dataset"] == FLAGGED[0]) & (df["model"] == FLAGGED[1]) & (df["seed"] == FLAGGED[2])
        out[name] = df[~hit].reset_index(drop=True)
    return out


NUMBERS = ["analysis", "term", "estimate", "p_value", "n"]


@pytest.fixture(scope="module")
def plain(t):
    """The statistics without a memorised-runs table."""
    return statistics(t)


def test_an_unmemorised_run_is_left_out_of_every_noisy_analysis(t, plain):
    """Excluding the flagged run gives the statistics of the tables without it (the across-seed
    M-CoG of its group rebuilt from the other seed), and every noisy-model row says so."""
    st = statistics(t, "exclude", memorised_runs())
    by_hand = statistics(without_flagged(t))
    pd.testing.assert_frame_equal(st[NUMBERS], by_hand[NUMBERS])
    noisy = ~st["analysis"].isin(CONTROL_ANALYSES)
    assert (st.loc[noisy, "n_excluded"] == 1).all() and (st.loc[noisy, "unmemorised"] == "b/m1/seed2").all()
    assert (st.loc[~noisy, "n_excluded"] == 0).all() and (st.loc[~noisy, "unmemorised"] == "").all()
    assert (~noisy).any()
    assert not np.allclose(st["estimate"].fillna(0), plain["estimate"].fillna(0))  # the run did change the numbers


def test_include_keeps_the_run_and_names_it(t, plain):
    st = statistics(t, "include", memorised_runs())
    pd.testing.assert_frame_equal(st[NUMBERS], plain[NUMBERS])
    noisy = ~st["analysis"].isin(CONTROL_ANALYSES)
    assert (st["n_excluded"] == 0).all() and (st.loc[noisy, "unmemorised"] == "b/m1/seed2").all()


def test_every_run_memorised_leaves_the_table_unchanged(t, plain):
    for policy in ("exclude", "include"):
        pd.testing.assert_frame_equal(statistics(t, policy, memorised_runs(flagged=())), plain)
    assert (plain["n_excluded"] == 0).all() and (plain["unmemorised"] == "").all()


def test_excluded_runs_mcog_group_is_rebuilt_or_dropped():
    lw = []
    for d, s, top in (("a", 1, 2), ("a", 2, 4), ("z", 1, 3)):
        w = np.eye(4)[top - 1]
        lw.append(pd.DataFrame(dict(technique="gradients", dataset=d, model="m", variant="noisy", seed=s,
                                    layer=np.arange(1, 5), weight=w, weight_norm=w)))
    mc = mcog_table(pd.concat(lw, ignore_index=True), n_boot=20)
    runs = pd.DataFrame(dict(dataset=["a", "z"], model="m", seed=[2, 1], memorised=False))
    out = exclusion(runs, "exclude").apply_mcog(mc, "noisy").set_index(["dataset", "seed"])
    assert mc.set_index(["dataset", "seed"]).loc[("a", ALL_SEEDS), "mcog"] == 3.0  # seeds at 2 and 4
    agg = out.loc[("a", ALL_SEEDS)]
    assert agg["mcog"] == 2.0 and agg["n_seeds"] == 1 and agg["mcog_norm"] == pytest.approx(1 / 3)
    assert ("a", 2) not in out.index and "z" not in out.index.get_level_values(0)
    assert sorted(out.reset_index().columns) == sorted(mc.columns)
    assert exclusion(runs, "include").apply_mcog(mc, "noisy") is mc


def test_bad_setting_is_named():
    with pytest.raises(ValueError, match="stats.unmemorised"):
        exclusion(memorised_runs(), "drop")
    with pytest.raises(ValueError, match="memorised_runs.parquet lacks"):
        exclusion(pd.DataFrame(dict(dataset=["a"], seed=[1])), "exclude")
