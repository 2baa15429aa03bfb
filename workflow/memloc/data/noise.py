"""Label noise (docs/protocol.md §4.3): the noisy examples are the ones a model can only fit by memorising.

For each class *c* exactly ``floor(ratio * n_c)`` training examples are relabelled, each uniformly
to one of the other classes. Exact per-class counts (rather than a Bernoulli draw) keep the noisy
set's size and class mix identical across seeds, so techniques compare like with like.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np


def n_flips(ratio: float, n: int) -> int:
    """``floor(ratio * n)`` computed exactly on the decimal the user wrote (0.29 * 100 is 29, not 28)."""
    return math.floor(Fraction(repr(float(ratio))) * n)


def min_class_size(ratio: float) -> int:
    """Smallest class size that receives at least one noisy example (1 when ``ratio`` is 0)."""
    if ratio <= 0:
        return 1
    n = max(1, math.floor(1 / ratio) - 1)
    while n_flips(ratio, n) < 1:
        n += 1
    return n


def inject_noise(
    labels: np.ndarray, n_classes: int, ratio: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Relabel ``floor(ratio * n_c)`` examples of every class ``c`` to a different random class.

    Returns ``(new_labels, is_noisy)``. The draw depends only on ``labels``, ``ratio`` and
    ``seed`` (a ``numpy.random.Generator``), so the same inputs always give the same flips.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if not 0 <= ratio < 1:
        raise ValueError(f"noise ratio must be in [0, 1), got {ratio}")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}")
    new = labels.copy()
    is_noisy = np.zeros(labels.shape, dtype=bool)
    if ratio == 0:
        return new, is_noisy
    if n_classes < 2:
        raise ValueError("label noise needs at least two classes")
    rng = np.random.default_rng(seed)
    for c in range(n_classes):
        members = np.flatnonzero(labels == c)
        k = n_flips(ratio, members.size)
        if k == 0:
            continue
        chosen = rng.choice(members, size=k, replace=False)
        # An offset in 1..C-1 added modulo C is uniform over the other classes.
        new[chosen] = (c + rng.integers(1, n_classes, size=k)) % n_classes
        is_noisy[chosen] = True
    return new, is_noisy
