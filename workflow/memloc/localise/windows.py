"""Windows of contiguous blocks and the maps from per-window errors to per-layer weights.

Pure numpy (docs/protocol.md §6.2 and §6.9):

- a window is a contiguous run of blocks ``(start, end)``, 1-based and inclusive; a model with
  L blocks has L(L+1)/2 of them (78 for L = 12);
- heatmap ``H[n - 1, l - 1]`` = mean error over the windows of size ``n`` that contain block ``l``;
- layer weight ``w_l`` = mean over window sizes ``n`` of ``H[n, l]`` (sizes not evaluated, e.g.
  above ``max_window``, are skipped);
- M-CoG = sum_l l * w_l / sum_l w_l with l = 1..L.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def windows(num_layers: int, max_window: int | None) -> list[tuple[int, int]]:
    """Every window ``(start, end)`` of at most ``max_window`` blocks (None: any size), ordered by start, then size."""
    L = int(num_layers)
    if L < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    if max_window is not None and max_window < 1:
        raise ValueError(f"max_window must be >= 1 or None, got {max_window}")
    largest = L if max_window is None else min(int(max_window), L)
    return [(s, e) for s in range(1, L + 1) for e in range(s, min(L, s + largest - 1) + 1)]


def heatmap(errors: pd.DataFrame, num_layers: int) -> np.ndarray:
    """``H[n - 1, l - 1]``: mean ``error`` over rows (windows) of size ``n`` that contain block ``l``.

    ``errors`` needs columns ``start``, ``end`` (1-based, inclusive) and ``error``; rows with a
    NaN error are ignored. Cells with no window are NaN.
    """
    L = int(num_layers)
    starts = errors["start"].to_numpy(dtype=np.int64)
    ends = errors["end"].to_numpy(dtype=np.int64)
    err = errors["error"].to_numpy(dtype=np.float64)
    if len(starts) and (starts.min() < 1 or ends.max() > L or (ends < starts).any()):
        raise ValueError(f"windows must satisfy 1 <= start <= end <= {L}")
    total = np.zeros((L, L))
    count = np.zeros((L, L))
    for s, e, x in zip(starts, ends, err):
        if np.isnan(x):
            continue
        total[e - s, s - 1 : e] += x
        count[e - s, s - 1 : e] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def layer_weights(heat: np.ndarray) -> np.ndarray:
    """``w_l`` = mean over window sizes of ``heat[:, l - 1]``, NaN cells ignored (NaN if all are)."""
    heat = np.asarray(heat, dtype=np.float64)
    valid = ~np.isnan(heat)
    n = valid.sum(axis=0)
    total = np.where(valid, heat, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def window_weights(errors: pd.DataFrame, num_layers: int) -> np.ndarray:
    """Per-layer weights of a per-window error table: ``layer_weights(heatmap(errors, L))``."""
    return layer_weights(heatmap(errors, num_layers))


def mcog(weights) -> float:
    """Memorisation centre of gravity: sum_l l * w_l / sum_l w_l, l = 1..L (NaN if sum w_l = 0)."""
    w = np.asarray(weights, dtype=np.float64)
    total = w.sum()
    if not np.isfinite(total) or total == 0:
        return float("nan")
    return float((np.arange(1, len(w) + 1) * w).sum() / total)
