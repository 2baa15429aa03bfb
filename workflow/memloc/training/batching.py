"""Batch orders: seeded shuffles, optionally bucketed by length to cut padding.

Bucketing shuffles examples, cuts them into pools of ``pool_batches`` batches, sorts each pool by
length and shuffles the resulting batches, so every epoch still sees every example once in a
seeded random order, while a batch holds examples of similar length.
"""

from __future__ import annotations

import numpy as np


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """An RNG that depends only on (seed, epoch), so a resumed run replays the same order."""
    return np.random.default_rng([int(seed), int(epoch), 0x6D656D])


def train_batches(
    lengths: np.ndarray, batch_size: int, seed: int, epoch: int, bucket: bool = True, pool_batches: int = 50
) -> list[np.ndarray]:
    rng = epoch_rng(seed, epoch)
    order = rng.permutation(len(lengths))
    if not bucket:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    pool = batch_size * pool_batches
    batches = []
    for start in range(0, len(order), pool):
        chunk = order[start : start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    perm = rng.permutation(len(batches))
    return [batches[i] for i in perm]


def eval_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Length-sorted batches for inference (order is restored by the caller via the indices)."""
    order = np.argsort(lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
