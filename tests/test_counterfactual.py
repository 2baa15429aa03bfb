"""Counterfactual memorisation: estimator, bootstrap, reliability, AUC, subsets, memorised set, plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from memloc.counterfactual.estimate import (
    MEMORISATION_COLUMNS,
    auc,
    estimate_memorisation,
    load_subset_predictions,
    memorisation_table,
    point_estimates,
    summarise,
)
from memloc.counterfactual.memorised_set import memorised_set, read_memorised_ids
from memloc.counterfactual.reliability import (
    average_ranks,
    reliability_curve,
    spearman,
    spearman_brown,
    split_half_reliability,
)
from memloc.counterfactual.subsets import subset_mask, subset_settings

# ------------------------------------------------------------------------------------ estimator

# 4 models x 3 examples, hand-computed below.
IN = np.array(
    [
        [True, True, False],
        [True, False, False],
        [False, True, False],
        [False, False, True],
    ]
)
P = np.array(
    [
        [0.9, 0.6, 0.2],
        [0.7, 0.3, 0.4],
        [0.1, 0.8, 0.5],
        [0.3, 0.1, 0.9],
    ]
)


def test_point_estimates_hand_computed():
    est = point_estimates(IN, P)
    assert est["n_in"].tolist() == [2, 2, 1]
    assert est["n_out"].tolist() == [2, 2, 3]
    np.testing.assert_allclose(est["train_memorisation"], [(0.9 + 0.7) / 2, (0.6 + 0.8) / 2, 0.9])
    np.testing.assert_allclose(est["generalisation"], [(0.1 + 0.3) / 2, (0.3 + 0.1) / 2, (0.2 + 0.4 + 0.5) / 3])
    np.testing.assert_allclose(est["counterfactual_memorisation"], [0.6, 0.5, 0.9 - 1.1 / 3])


def test_table_columns_and_summary_hand_computed():
    table, reps = estimate_memorisation([10, 11, 12], IN, P, [True, False, False], n_boot=200, seed=1)
    assert tuple(table.columns) == MEMORISATION_COLUMNS
    assert table.example_id.tolist() == [10, 11, 12]
    s = summarise(table, reps)
    gen = [0.2, 0.2, 1.1 / 3]
    assert s["generalisation_mean"] == pytest.approx(np.mean(gen))
    assert s["cm_noisy_mean"] == pytest.approx(0.6)
    assert s["cm_clean_mean"] == pytest.approx((0.5 + 0.9 - 1.1 / 3) / 2)
    assert s["cm_difference"] == pytest.approx(0.6 - (0.5 + 0.9 - 1.1 / 3) / 2)
    assert s["n_models"] == 4 and s["n_noisy"] == 1 and s["n_undefined"] == 0
    # CM of the one noisy example (0.6) is above both clean CMs (0.5 and 0.533).
    assert s["auc_noisy"] == pytest.approx(1.0)
    assert s["cm_difference_ci_low"] <= s["cm_difference_ci_high"]
    # Intervals bracket the point estimates here (each example has >= 1 in and out model).
    assert (table.cm_ci_low <= table.counterfactual_memorisation + 1e-12).all()
    assert (table.cm_ci_high >= table.counterfactual_memorisation - 1e-12).all()


def test_never_in_or_never_out_is_nan_with_counts():
    in_train = np.array([[False, True, True], [False, True, False], [False, True, True]])
    p = np.full((3, 3), 0.5)
    table = memorisation_table([1, 2, 3], in_train, p, [False, True, False], n_boot=100)
    never_in, never_out, fine = table.iloc[0], table.iloc[1], table.iloc[2]
    assert (never_in.n_in, never_in.n_out) == (0, 3)
    assert np.isnan(never_in.train_memorisation) and never_in.generalisation == 0.5
    assert np.isnan(never_in.counterfactual_memorisation)
    assert (never_out.n_in, never_out.n_out) == (3, 0)
    assert never_out.train_memorisation == 0.5 and np.isnan(never_out.generalisation)
    assert np.isnan(never_out.counterfactual_memorisation)
    for row in (never_in, never_out):
        assert np.isnan(row.cm_ci_low) and np.isnan(row.cm_ci_high)
    assert fine.counterfactual_memorisation == 0.0 and np.isfinite(fine.cm_ci_low)
    s = summarise(table)
    assert s["n_undefined"] == 2
    assert np.isnan(s["cm_noisy_mean"])  # the only noisy example has no estimate: NaN, not 0
    assert s["cm_clean_mean"] == 0.0


def test_no_bootstrap_gives_nan_intervals():
    table = memorisation_table([1, 2, 3], IN, P, [False] * 3, n_boot=0)
    assert table.cm_ci_low.isna().all() and table.cm_ci_high.isna().all()


def simulate(n_models=30, n_examples=400, noise_sd=0.15, seed=0):
    """Models x examples with a known true CM per example."""
    rng = np.random.default_rng(seed)
    in_train = rng.random((n_models, n_examples)) < 0.5
    base = rng.uniform(0.2, 0.5, n_examples)
    true_cm = rng.uniform(0.0, 0.45, n_examples)
    p = base + in_train * true_cm + rng.normal(0, noise_sd, (n_models, n_examples))
    return in_train, p, true_cm


def test_bootstrap_interval_coverage():
    in_train, p, true_cm = simulate()
    table = memorisation_table(np.arange(len(true_cm)), in_train, p, np.zeros(len(true_cm), bool), n_boot=500, seed=3)
    covered = (table.cm_ci_low <= true_cm) & (true_cm <= table.cm_ci_high)
    assert 0.85 <= covered.mean() <= 0.99
    # Chunked computation gives the same intervals.
    from memloc.counterfactual.estimate import bootstrap_over_models

    small = bootstrap_over_models(in_train, p, 500, 0.95, 3, max_cells=500 * 37)
    np.testing.assert_allclose(small["cm_ci_low"], table.cm_ci_low)


def test_bootstrap_is_seeded():
    in_train, p, _ = simulate(n_examples=50)
    a = memorisation_table(np.arange(50), in_train, p, np.zeros(50, bool), n_boot=200, seed=7)
    b = memorisation_table(np.arange(50), in_train, p, np.zeros(50, bool), n_boot=200, seed=7)
    c = memorisation_table(np.arange(50), in_train, p, np.zeros(50, bool), n_boot=200, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a.cm_ci_low, c.cm_ci_low)


def test_load_subset_predictions_aligns_and_checks(tmp_path):
    for k, ids in ((1, [3, 1, 2]), (2, [1, 2, 3])):
        pd.DataFrame(
            {"example_id": ids, "in_train": [True, False, True], "p_label": [0.1 * k, 0.2, 0.3], "correct": [True] * 3}
        ).to_parquet(tmp_path / f"k{k}.parquet")
    ids, in_train, p, _ = load_subset_predictions([tmp_path / "k1.parquet", tmp_path / "k2.parquet"])
    assert ids.tolist() == [1, 2, 3]
    assert in_train[0].tolist() == [False, True, True]  # k1 re-ordered by example id
    assert p[0].tolist() == [0.2, 0.3, 0.1]
    pd.DataFrame({"example_id": [1, 2, 4], "in_train": [True] * 3, "p_label": [0.5] * 3, "correct": [True] * 3}).to_parquet(
        tmp_path / "k3.parquet"
    )
    with pytest.raises(ValueError, match="different examples"):
        load_subset_predictions([tmp_path / "k1.parquet", tmp_path / "k3.parquet"])


# ---------------------------------------------------------------------------------- reliability


def test_spearman_brown_formula():
    for r in (0.0, 0.3, 0.5, 0.9):
        assert spearman_brown(r) == pytest.approx(2 * r / (1 + r))
    assert spearman_brown(0.5, factor=3) == pytest.approx(1.5 / 2.0)
    np.testing.assert_allclose(spearman_brown(np.array([0.2, 0.6])), [0.4 / 1.2, 1.2 / 1.6])
    assert np.isnan(spearman_brown(-1.0))


def test_spearman_matches_definition_with_ties():
    a = np.array([1.0, 2.0, 2.0, 3.0, 5.0, np.nan])
    b = np.array([2.0, 1.0, 4.0, 4.0, 9.0, 1.0])
    assert average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]
    ra, rb = average_ranks(a[:5]), average_ranks(b[:5])
    expected = np.corrcoef(ra, rb)[0, 1]
    assert spearman(a, b) == pytest.approx(expected)
    assert np.isnan(spearman(np.ones(5), np.arange(5.0)))  # constant: undefined, not 0


def test_split_half_reliability_on_known_signal():
    # No noise: every half gives each example's exact CM, so r = 1 and the reliability is 1.
    in_train, _, true_cm = simulate(n_models=10, n_examples=200, seed=1)
    p = 0.3 + in_train * true_cm
    rel = split_half_reliability(in_train, p, n_splits=5)
    assert rel["reliability"] == pytest.approx(1.0)
    assert rel["half_correlation"] == pytest.approx(1.0)


def test_reliability_rises_with_k():
    in_train, p, _ = simulate(n_models=24, n_examples=300, noise_sd=0.2, seed=2)
    curve = reliability_curve(in_train, p, ks=[2, 4, 8, 16, 24], n_splits=8, seed=0)
    assert curve.k.tolist() == [2, 4, 8, 16, 24]
    assert np.isnan(curve.reliability.iloc[0])  # one model per half never has both in and out
    rel = curve.reliability.to_numpy()[1:]
    assert np.all(np.diff(rel) > 0), rel
    assert rel[-1] > 0.6
    # The reliability is the Spearman-Brown projection of the mean split-half correlation.
    last = curve.iloc[-1]
    assert last.reliability == pytest.approx(2 * last.half_correlation / (1 + last.half_correlation))
    # Deterministic given the seed.
    again = reliability_curve(in_train, p, ks=[2, 4, 8, 16, 24], n_splits=8, seed=0)
    pd.testing.assert_frame_equal(curve, again)


# ------------------------------------------------------------------------------------------ AUC


def test_auc_hand_made():
    assert auc([0.1, 0.4, 0.35, 0.8], [False, True, False, True]) == 1.0
    assert auc([0.1, 0.4, 0.35, 0.8], [True, False, True, False]) == 0.0
    # Ties count one half: pos {1, 2} vs neg {1, 0}: (0.5 + 1 + 1 + 1) / 4.
    assert auc([1, 1, 2, 0], [True, False, True, False]) == pytest.approx(0.875)
    assert auc([0.5, 0.5, 0.5], [True, False, False]) == pytest.approx(0.5)
    assert auc([np.nan, 0.2, 0.9], [False, False, True]) == 1.0  # NaN scores dropped
    assert np.isnan(auc([0.1, 0.2], [True, True]))


# -------------------------------------------------------------------------------------- subsets


def train_table(n=200, seed=0):
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 3, n)
    return pd.DataFrame(
        {"example_id": rng.permutation(np.arange(1000, 1000 + n)), "label": label, "is_noisy": rng.random(n) < 0.15}
    )


def test_subset_halves_deterministic_and_depend_on_k():
    train = train_table()
    m1 = subset_mask(train, 0.5, k=1, split_seed=0, noise_seed=0, stratify=True)
    assert np.array_equal(m1, subset_mask(train, 0.5, k=1, split_seed=0, noise_seed=0, stratify=True))
    m2 = subset_mask(train, 0.5, k=2, split_seed=0, noise_seed=0, stratify=True)
    assert not np.array_equal(m1, m2)
    assert not np.array_equal(m1, subset_mask(train, 0.5, k=1, split_seed=1, noise_seed=0, stratify=True))
    assert not np.array_equal(m1, subset_mask(train, 0.5, k=1, split_seed=0, noise_seed=1, stratify=True))
    # Independent of the row order: the same examples are chosen.
    shuffled = train.sample(frac=1.0, random_state=5)
    ms = subset_mask(shuffled, 0.5, k=1, stratify=True)
    assert set(shuffled.example_id[ms]) == set(train.example_id[m1])
    # About half of every stratum.
    assert abs(m1.sum() - 100) <= 6
    for _, idx in train.groupby(["label", "is_noisy"]).groups.items():
        share = m1[train.index.get_indexer(idx)].mean()
        assert abs(share - 0.5) <= 0.5 / len(idx) + 1e-9 or len(idx) < 3
    with pytest.raises(ValueError):
        subset_mask(train, 1.0, k=1, stratify=True)
    with pytest.raises(ValueError):
        subset_mask(train, 0.5, k=0, stratify=True)


def test_unstratified_subset_is_a_plain_random_share():
    """`counterfactual.stratify: false` (the published code's random half): the noise share of a
    subset varies with k, while the stratified draw holds it at half of every stratum."""
    train = train_table()
    n_noisy = int(train.is_noisy.sum())
    plain = [subset_mask(train, 0.5, k, 0, 0, stratify=False) for k in range(1, 21)]
    strat = [subset_mask(train, 0.5, k, 0, 0, stratify=True) for k in range(1, 21)]
    assert all(m.sum() == 100 for m in plain)  # one stratum: floor(0.5 * 200) examples
    noisy_plain = [int((m & train.is_noisy).sum()) for m in plain]
    noisy_strat = [int((m & train.is_noisy).sum()) for m in strat]
    assert all(abs(c - n_noisy / 2) <= 1.5 for c in noisy_strat)
    assert max(abs(c - n_noisy / 2) for c in noisy_plain) >= 3
    assert not np.array_equal(plain[0], strat[0])
    # Still independent of the row order and seeded.
    shuffled = train.sample(frac=1.0, random_state=5)
    ms = subset_mask(shuffled, 0.5, 1, 0, 0, stratify=False)
    assert set(shuffled.example_id[ms]) == set(train.example_id[plain[0]])


def test_subset_settings_override_and_exclude_k():
    training = {"epochs": 8, "learning_rate": 1e-4, "batch_size": 16, "device": "auto"}
    cf = {"models": 30, "fraction": 0.5, "epochs": 3, "learning_rate": 3e-5, "batch_size": None}
    s = subset_settings(training, cf)
    assert s == {"epochs": 3, "learning_rate": 3e-5, "batch_size": 16, "device": "auto"}
    assert subset_settings(training, {**cf, "batch_size": 4})["batch_size"] == 4
    assert subset_settings(training, {**cf, "models": 50}) == s  # K never reaches the per-k job
    assert subset_settings(training, {**cf, "learning_rate": None})["learning_rate"] == 1e-4, "null: the model's rate"
    assert training["epochs"] == 8  # not mutated


# ------------------------------------------------------------------------------- memorised set


def mem_table():
    return pd.DataFrame(
        {
            "example_id": [5, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11],
            "is_noisy": [True, False, False, False, False, False, False, False, False, False, False],
            "counterfactual_memorisation": [0.99, 0.1, 0.8, np.nan, 0.5, 0.8, 0.2, 0.0, -0.1, 0.3, 0.05],
        }
    )


def test_memorised_set_top_cm(tmp_path):
    # 10 clean examples, share 0.3 -> 3: CM 0.8 (ids 2 and 6) and 0.5 (id 4); the noisy 0.99 and
    # the NaN are never picked.
    ms = memorised_set("top_cm", memorisation=mem_table(), top_cm_share=0.3)
    assert ms.columns.tolist() == ["example_id", "memorised", "set", "is_noisy"]
    assert sorted(ms.example_id[ms.memorised]) == [2, 4, 6]
    assert (ms.set == "top_cm").all() and len(ms) == 11
    # Ties at the cut go to the smaller example id.
    ms2 = memorised_set("top_cm", memorisation=mem_table(), top_cm_share=0.1)
    assert ms2.example_id[ms2.memorised].tolist() == [2]
    path = tmp_path / "set.parquet"
    ms.to_parquet(path)
    assert read_memorised_ids(path).tolist() == [2, 4, 6]


def test_memorised_set_noisy_from_examples():
    examples = pd.DataFrame(
        {"example_id": [3, 1, 2, 9], "split": ["train", "train", "train", "test"], "is_noisy": [True, False, True, False]}
    )
    ms = memorised_set("noisy", examples=examples)
    assert ms.example_id.tolist() == [1, 2, 3]
    assert ms.memorised.tolist() == [False, True, True]
    with pytest.raises(ValueError):
        memorised_set("top_cm", examples=examples)
    with pytest.raises(ValueError):
        memorised_set("bogus", examples=examples)


# ----------------------------------------------------------------------------------------- plot


def test_memorisation_map_writes_png_and_pdf(tmp_path):
    from memloc.figures.memorisation import memorisation_map, reliability_plot
    from memloc.figures.style import save_figure

    in_train, p, _ = simulate(n_models=6, n_examples=60)
    noisy = np.arange(60) < 9
    table = memorisation_table(np.arange(60), in_train, np.clip(p, 0, 1), noisy, n_boot=0)
    table.loc[0, ["train_memorisation", "counterfactual_memorisation"]] = np.nan
    fig = memorisation_map(table, title="toy / tiny")
    png, pdf = tmp_path / "map.png", tmp_path / "sub" / "map.pdf"
    save_figure(fig, pdf, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert png.stat().st_size > 1000 and pdf.stat().st_size > 1000
    curve = reliability_curve(in_train, p, n_splits=2)
    save_figure(reliability_plot(curve), tmp_path / "rel.png")
    assert (tmp_path / "rel.png").stat().st_size > 1000
