"""Stratified, seeded subsampling and splitting (docs/protocol.md §4.2).

Every function returns positional indices (sorted, so examples keep their source order) and
allocates per-class counts by largest remainder, so class proportions match the source as
closely as integers allow and the same seed always yields the same split.
"""

from __future__ import annotations

import numpy as np

# Distinct streams per step, so changing one step never shifts another step's draw.
_HOLDOUT, _SUB_TRAIN, _SUB_EVAL, _HALVE = 1, 2, 3, 4


def _rng(seed: int, step: int) -> np.random.Generator:
    return np.random.default_rng([seed, step])


def apportion(counts: np.ndarray, total: int, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Split ``total`` over classes in proportion to ``counts`` within ``[lower, upper]``.

    Largest remainder, ties broken by class order. The bounds win when they cannot both hold
    with ``total`` (e.g. more classes than ``total`` with a lower bound of one each).
    """
    counts = np.asarray(counts, dtype=np.int64)
    upper = np.asarray(upper, dtype=np.int64)
    lower = np.minimum(np.asarray(lower, dtype=np.int64), upper)
    ideal = total * counts / max(int(counts.sum()), 1)
    alloc = np.clip(np.floor(ideal).astype(np.int64), lower, upper)
    index = np.arange(counts.size)
    while (diff := total - int(alloc.sum())) != 0:
        movable = alloc < upper if diff > 0 else alloc > lower
        if not movable.any():
            break
        gap = (ideal - alloc) if diff > 0 else (alloc - ideal)
        order = np.lexsort((index, -np.where(movable, gap, -np.inf)))
        k = min(abs(diff), int(movable.sum()))
        alloc[order[:k]] += 1 if diff > 0 else -1
    return alloc


def _take(labels: np.ndarray, alloc: np.ndarray, classes: np.ndarray, rng: np.random.Generator):
    chosen = []
    for c, k in zip(classes, alloc):
        members = np.flatnonzero(labels == c)
        chosen.append(rng.permutation(members)[:k])
    picked = np.sort(np.concatenate(chosen)) if chosen else np.array([], dtype=np.int64)
    return picked.astype(np.int64)


def stratified_subsample(
    labels: np.ndarray, max_n: int | None, seed: int, step: int = _SUB_TRAIN, min_per_class: int = 1
) -> np.ndarray:
    """Indices of at most ``max_n`` examples with the class mix of ``labels``.

    Every class keeps at least ``min_per_class`` examples (or all it has), so a rare class never
    vanishes and, with ``min_per_class`` from :func:`memloc.data.noise.min_class_size`, still gets
    noisy examples; this may exceed ``max_n`` when there are many small classes.
    """
    labels = np.asarray(labels)
    if max_n is None or max_n >= labels.size:
        return np.arange(labels.size, dtype=np.int64)
    classes, counts = np.unique(labels, return_counts=True)
    lower = np.minimum(counts, min_per_class)
    alloc = apportion(counts, max_n, lower, counts)
    return _take(labels, alloc, classes, _rng(seed, step))


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(keep, held_out)``: a stratified ``fraction`` of the examples held out for evaluation.

    Each class keeps at least one example on the training side.
    """
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    total = int(round(fraction * labels.size))
    alloc = apportion(counts, total, np.zeros_like(counts), np.maximum(counts - 1, 0))
    held = _take(labels, alloc, classes, _rng(seed, _HOLDOUT))
    keep = np.setdiff1d(np.arange(labels.size, dtype=np.int64), held)
    return keep, held


def halve(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(validation, test)``: the evaluation split halved, stratified; test gets the odd example."""
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    alloc = apportion(counts, labels.size // 2, np.zeros_like(counts), counts)
    val = _take(labels, alloc, classes, _rng(seed, _HALVE))
    test = np.setdiff1d(np.arange(labels.size, dtype=np.int64), val)
    return val, test


def subsample_eval(labels: np.ndarray, max_n: int | None, seed: int) -> np.ndarray:
    """:func:`stratified_subsample` on its own random stream, for the evaluation split."""
    return stratified_subsample(labels, max_n, seed, step=_SUB_EVAL)
