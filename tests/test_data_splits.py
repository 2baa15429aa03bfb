"""Splits: stratified (class mix preserved), seeded, and sized as documented."""

import numpy as np

from memloc.data.splits import apportion, halve, stratified_holdout, stratified_subsample, subsample_eval

LABELS = np.repeat(np.arange(3), [600, 300, 100])


def _mix(idx):
    return np.bincount(LABELS[idx], minlength=3) / len(idx)


def test_subsample_is_stratified_and_sized():
    idx = stratified_subsample(LABELS, 200, seed=0)
    assert len(idx) == 200 and len(np.unique(idx)) == 200
    assert np.array_equal(np.bincount(LABELS[idx]), [120, 60, 20])
    assert np.all(np.diff(idx) > 0), "source order is kept"


def test_subsample_keeps_rare_classes():
    labels = np.concatenate([np.zeros(1000, dtype=int), [1, 1, 1]])
    idx = stratified_subsample(labels, 50, seed=0, min_per_class=7)
    assert np.bincount(labels[idx])[1] == 3
    idx = stratified_subsample(np.concatenate([np.zeros(1000, dtype=int), np.ones(30, dtype=int)]), 50, 0, min_per_class=7)
    assert np.bincount(np.concatenate([np.zeros(1000, dtype=int), np.ones(30, dtype=int)])[idx])[1] == 7


def test_subsample_none_or_large_keeps_everything():
    assert len(stratified_subsample(LABELS, None, 0)) == 1000
    assert len(stratified_subsample(LABELS, 5000, 0)) == 1000


def test_deterministic_and_seed_dependent():
    assert np.array_equal(stratified_subsample(LABELS, 100, 3), stratified_subsample(LABELS, 100, 3))
    assert not np.array_equal(stratified_subsample(LABELS, 100, 3), stratified_subsample(LABELS, 100, 4))
    assert not np.array_equal(stratified_subsample(LABELS, 100, 3), subsample_eval(LABELS, 100, 3))
    v1, t1 = halve(LABELS, 1)
    v2, t2 = halve(LABELS, 1)
    assert np.array_equal(v1, v2) and np.array_equal(t1, t2)


def test_halving_sizes_and_stratification():
    labels = LABELS[:999]
    val, test = halve(labels, seed=0)
    assert len(val) == 499 and len(test) == 500
    assert len(np.intersect1d(val, test)) == 0 and len(np.union1d(val, test)) == 999
    for c in range(3):
        assert abs(np.sum(labels[val] == c) - np.sum(labels[test] == c)) <= 1


def test_holdout_fraction_and_disjoint():
    keep, held = stratified_holdout(LABELS, 0.2, seed=0)
    assert len(held) == 200 and len(keep) == 800
    assert len(np.intersect1d(keep, held)) == 0
    assert np.allclose(_mix(held), [0.6, 0.3, 0.1])


def test_holdout_leaves_every_class_in_train():
    labels = np.array([0] * 10 + [1])
    keep, held = stratified_holdout(labels, 0.5, seed=0)
    assert 1 in labels[keep]


def test_apportion_respects_total_and_bounds():
    alloc = apportion(np.array([5, 3, 2]), 5, np.array([1, 1, 1]), np.array([5, 3, 2]))
    assert alloc.sum() == 5 and np.all(alloc >= 1)
    alloc = apportion(np.array([1, 1, 1, 97]), 2, np.ones(4, dtype=int), np.array([1, 1, 1, 97]))
    assert np.array_equal(alloc, [1, 1, 1, 1]), "lower bounds win over the total"
