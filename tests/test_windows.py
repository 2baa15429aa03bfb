"""Windows, the size-by-layer heatmap, layer weights and M-CoG on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from memloc.localise.common import weights_frame
from memloc.localise.windows import heatmap, layer_weights, mcog, window_weights, windows


def test_window_counts_and_order():
    assert len(windows(6, None)) == 21
    assert len(windows(12, None)) == 78
    assert windows(3, None) == [(1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3)]
    for L in range(1, 13):
        wins = windows(L, None)
        assert len(wins) == L * (L + 1) // 2 == len(set(wins))
        assert wins == sorted(wins)  # by start, then size
        assert all(1 <= s <= e <= L for s, e in wins)


def test_max_window():
    assert windows(4, max_window=2) == [(1, 1), (1, 2), (2, 2), (2, 3), (3, 3), (3, 4), (4, 4)]
    assert windows(4, max_window=1) == [(1, 1), (2, 2), (3, 3), (4, 4)]
    assert windows(4, max_window=4) == windows(4, None) == windows(4, max_window=99)
    assert len(windows(12, max_window=3)) == 12 + 11 + 10
    with pytest.raises(ValueError):
        windows(0, None)
    with pytest.raises(ValueError):
        windows(4, max_window=0)


def _table(L, error_of, max_window=None):
    wins = windows(L, max_window)
    return pd.DataFrame({"start": [s for s, _ in wins], "end": [e for _, e in wins], "error": [error_of(s, e) for s, e in wins]})


def test_errors_only_on_windows_with_block_3():
    """L = 4, error 1 exactly for windows that contain block 3: every cell by hand."""
    errors = _table(4, lambda s, e: float(s <= 3 <= e))
    H = heatmap(errors, 4)
    expected = np.array(
        [
            [0.0, 0.0, 1.0, 0.0],  # size 1: (1,1) (2,2) (3,3) (4,4)
            [0.0, 0.5, 1.0, 1.0],  # size 2: (1,2)=0 (2,3)=1 (3,4)=1
            [1.0, 1.0, 1.0, 1.0],  # size 3: (1,3)=1 (2,4)=1
            [1.0, 1.0, 1.0, 1.0],  # size 4: (1,4)=1
        ]
    )
    np.testing.assert_array_equal(H, expected)
    w = layer_weights(H)
    np.testing.assert_allclose(w, [0.5, 0.625, 1.0, 0.75])
    assert int(np.argmax(w)) + 1 == 3
    # (1*.5 + 2*.625 + 3*1 + 4*.75) / (.5 + .625 + 1 + .75) = 7.75 / 2.875 = 62 / 23
    assert mcog(w) == pytest.approx(62 / 23, abs=1e-12)
    np.testing.assert_allclose(window_weights(errors, 4), w)


def test_heatmap_means_and_missing_sizes():
    # Errors = start + end / 10 make every mean distinct; size-2 cell of block 2 averages (1,2), (2,3).
    errors = _table(3, lambda s, e: s + e / 10, max_window=2)
    H = heatmap(errors, 3)
    assert H[1, 1] == pytest.approx(((1 + 0.2) + (2 + 0.3)) / 2)
    assert H[0, 2] == pytest.approx(3.3)
    assert np.isnan(H[2]).all(), "no window of size 3 was evaluated"
    w = layer_weights(H)
    assert w[0] == pytest.approx((1.1 + 1.2) / 2)  # NaN sizes skipped, not counted as zero
    # A NaN error (e.g. an undefined normalisation) is ignored like a missing window.
    errors.loc[0, "error"] = np.nan
    assert np.isnan(heatmap(errors, 3)[0, 0])
    with pytest.raises(ValueError):
        heatmap(pd.DataFrame({"start": [2], "end": [1], "error": [0.0]}), 3)


def test_heatmap_matches_brute_force_on_random_errors():
    rng = np.random.default_rng(0)
    L = 7
    errors = _table(L, lambda s, e: float(rng.random()))
    H = heatmap(errors, L)
    for n in range(1, L + 1):
        for layer in range(1, L + 1):
            rows = errors[(errors.end - errors.start + 1 == n) & (errors.start <= layer) & (layer <= errors.end)]
            assert H[n - 1, layer - 1] == pytest.approx(rows.error.mean())


def test_mcog():
    assert mcog([1, 1, 1, 1, 1, 1]) == pytest.approx(3.5)
    assert mcog([0, 0, 5, 0]) == 3.0
    assert mcog([1, 0, 0, 3]) == pytest.approx((1 + 12) / 4)
    assert np.isnan(mcog([0, 0, 0]))


def test_weights_frame():
    df = weights_frame([0.1, 0.2, 0.7], "swapping")
    assert list(df.columns) == ["technique", "layer", "weight"]
    assert df["layer"].tolist() == [1, 2, 3] and df["layer"].dtype == np.int64
    assert (df["technique"] == "swapping").all()
