"""Classification metrics in numpy (accuracy, macro-F1) so every stage scores the same way."""

from __future__ import annotations

import numpy as np


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true = np.asarray(y_true)
    if y_true.size == 0:
        return float("nan")
    return float(np.mean(y_true == np.asarray(y_pred)))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray | None = None) -> float:
    """Unweighted mean of per-class F1 over ``labels`` (default: classes present in either array).

    A class with no true and no predicted examples is skipped; one with either but no overlap
    scores 0, as in the usual definition.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.size == 0:
        return float("nan")
    if labels is None:
        labels = np.union1d(np.unique(y_true), np.unique(y_pred))
    scores = []
    for c in labels:
        tp = np.sum((y_true == c) & (y_pred == c))
        fp = np.sum((y_true != c) & (y_pred == c))
        fn = np.sum((y_true == c) & (y_pred != c))
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else float("nan")


def binary_f1(y_true: np.ndarray, y_pred: np.ndarray, positive=1) -> float:
    """F1 of the positive class (probing reports F1 with "noisy" as positive)."""
    y_true = np.asarray(y_true) == positive
    y_pred = np.asarray(y_pred) == positive
    tp = np.sum(y_true & y_pred)
    denom = 2 * tp + np.sum(~y_true & y_pred) + np.sum(y_true & ~y_pred)
    return float(2 * tp / denom) if denom else 0.0
