"""Label noise: the noisy set is what every localisation technique measures, so its size,
class mix and reproducibility must be exact."""

import numpy as np
import pytest

from memloc.data.noise import inject_noise, min_class_size, n_flips


def _labels():
    return np.repeat(np.arange(3), [40, 27, 13])


def test_exact_count_per_class_and_never_original_label():
    labels = _labels()
    new, noisy = inject_noise(labels, 3, 0.15, seed=0)
    for c, n in enumerate([40, 27, 13]):
        assert noisy[labels == c].sum() == int(np.floor(0.15 * n))
    assert np.all(new[noisy] != labels[noisy])
    assert np.all(new[~noisy] == labels[~noisy])
    assert new.min() >= 0 and new.max() < 3


def test_same_seed_same_flips_different_seed_different_flips():
    labels = np.repeat(np.arange(4), 50)
    a = inject_noise(labels, 4, 0.2, seed=7)
    b = inject_noise(labels, 4, 0.2, seed=7)
    c = inject_noise(labels, 4, 0.2, seed=8)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_ratio_zero_flips_nothing():
    labels = _labels()
    new, noisy = inject_noise(labels, 3, 0.0, seed=0)
    assert not noisy.any() and np.array_equal(new, labels)


def test_new_labels_cover_all_other_classes():
    labels = np.zeros(3000, dtype=int)
    new, noisy = inject_noise(np.concatenate([labels, [1, 2]]), 3, 0.5, seed=1)
    targets = new[:3000][noisy[:3000]]
    assert set(np.unique(targets)) == {1, 2}
    assert abs((targets == 1).mean() - 0.5) < 0.05


def test_floor_uses_the_written_decimal():
    # 0.29 * 100 is 28.999999999999996 in binary floating point.
    assert n_flips(0.29, 100) == 29
    assert n_flips(0.15, 6) == 0 and n_flips(0.15, 7) == 1
    assert min_class_size(0.15) == 7 and min_class_size(0.5) == 2 and min_class_size(0) == 1


def test_rejects_ratio_of_one():
    with pytest.raises(ValueError):
        inject_noise(np.array([0, 1]), 2, 1.0, seed=0)
