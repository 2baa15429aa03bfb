"""Split-half reliability of per-example counterfactual memorisation, and its curve against K.

With K subset models, split them at random into two disjoint halves, estimate every example's
counterfactual memorisation (CM) from each half, and correlate the two estimates over examples
(Spearman). That is the reliability of an estimate from K/2 models; the Spearman-Brown formula
2r / (1 + r) projects it to K models. Averaging over several random splits removes the luck of
one split. Repeating the procedure on random subsets of k = 2..K models gives the reliability an
estimate from k models would have: the curve says whether K was large enough.

With very few models, many examples are never (or always) in a half's training subsets and have
no estimate there; the correlation uses the examples with an estimate in both halves, and a
value that rests on fewer than ``min_examples`` of them is NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``x`` with ties given their average rank (like scipy's ``rankdata``)."""
    x = np.asarray(x)
    n = len(x)
    if n == 0:
        return np.empty(0, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    edges = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1], True])
    avg = (edges[:-1] + 1 + edges[1:]) / 2.0
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat(avg, np.diff(edges))
    return ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    if denom == 0 or not np.isfinite(denom):
        return float("nan")
    return float(np.clip((a * b).sum() / denom, -1.0, 1.0))


def spearman(a: np.ndarray, b: np.ndarray, min_examples: int = 3) -> float:
    """Spearman correlation over the pairs where both values are finite (NaN if too few or constant)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < max(min_examples, 2):
        return float("nan")
    return _pearson(average_ranks(a[ok]), average_ranks(b[ok]))


def spearman_brown(r, factor: float = 2.0):
    """Reliability of a measure ``factor`` times as long as one with reliability ``r``.

    ``factor * r / (1 + (factor - 1) * r)``; for split halves (factor 2) this is 2r / (1 + r).
    Works element-wise on arrays; r <= -1 / (factor - 1) gives NaN.
    """
    r = np.asarray(r, dtype=np.float64)
    denom = 1.0 + (factor - 1.0) * r
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(denom > 0, factor * r / denom, np.nan)
    return float(out) if out.ndim == 0 else out


def _cm_from(in_train: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Counterfactual memorisation of every example from the models (rows) given."""
    inside = in_train.astype(np.float64)
    n_in = inside.sum(axis=0)
    n_out = inside.shape[0] - n_in
    with np.errstate(divide="ignore", invalid="ignore"):
        tr = (inside * p).sum(axis=0) / n_in
        gen = ((1.0 - inside) * p).sum(axis=0) / n_out
    tr[n_in == 0] = np.nan
    gen[n_out == 0] = np.nan
    return tr - gen


def _halves_correlation(in_train, p, models: np.ndarray, rng: np.random.Generator, min_examples: int):
    perm = rng.permutation(models)
    half = len(perm) // 2
    a, b = perm[:half], perm[half : 2 * half]
    cm_a = _cm_from(in_train[a], p[a])
    cm_b = _cm_from(in_train[b], p[b])
    n_both = int((np.isfinite(cm_a) & np.isfinite(cm_b)).sum())
    return spearman(cm_a, cm_b, min_examples), n_both, half


def split_half_reliability(
    in_train: np.ndarray,
    p: np.ndarray,
    n_splits: int = 20,
    seed: int = 0,
    k: int | None = None,
    min_examples: int = 10,
) -> dict[str, float]:
    """Split-half reliability of per-example CM from ``k`` of the K models (all by default).

    ``in_train`` and ``p`` are (K, N): model by example. Each split draws ``k`` models at random
    (without replacement), halves them (an odd k leaves one model out, so the halves are equal),
    and correlates the two halves' CM. The correlations are averaged over the splits with a
    defined correlation, and the mean r is projected from a half to k models with the
    Spearman-Brown formula (2r / (1 + r) for even k, factor k / floor(k/2) for odd k).
    Averaging r before the projection keeps the result stable where r is near zero or negative
    (small data, few models): the projection is unbounded below there, so averaging projected
    values would let one unlucky split dominate.
    """
    in_train = np.asarray(in_train, dtype=bool)
    p = np.asarray(p, dtype=np.float64)
    n_models = in_train.shape[0]
    k = n_models if k is None else int(k)
    if not 2 <= k <= n_models:
        raise ValueError(f"k must lie in [2, {n_models}], got {k}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), k]))
    rs, counts, half = [], [], k // 2
    for _ in range(n_splits):
        models = rng.choice(n_models, size=k, replace=False)
        r, n_both, half = _halves_correlation(in_train, p, models, rng, min_examples)
        rs.append(r)
        counts.append(n_both)
    rs_a = np.asarray(rs, dtype=np.float64)
    ok = np.isfinite(rs_a)
    mean_r = float(rs_a[ok].mean()) if ok.any() else float("nan")
    factor = k / half  # from one half (half models) to all k models: 2 for even k
    return {
        "k": k,
        "reliability": spearman_brown(mean_r, factor) if ok.any() else float("nan"),
        "half_correlation": mean_r,
        "half_correlation_sd": float(rs_a[ok].std(ddof=1)) if ok.sum() > 1 else float("nan"),
        "n_splits": int(ok.sum()),
        "n_examples": float(np.mean(counts)) if counts else 0.0,
    }


def reliability_curve(
    in_train: np.ndarray,
    p: np.ndarray,
    ks=None,
    n_splits: int = 20,
    seed: int = 0,
    min_examples: int = 10,
) -> pd.DataFrame:
    """:func:`split_half_reliability` at every k in ``ks`` (default 2..K), one row per k.

    Columns: ``k``, ``reliability`` (Spearman-Brown projection of the mean split-half
    correlation), ``half_correlation`` (mean uncorrected Spearman r over splits),
    ``half_correlation_sd`` (its spread over splits), ``n_splits`` (splits with a defined
    correlation) and ``n_examples`` (mean number of examples with an estimate in both halves).
    At k = 2 each half is one model, which never has both an in and an out estimate of an
    example, so that row is NaN by construction.
    """
    n_models = np.asarray(in_train).shape[0]
    ks = range(2, n_models + 1) if ks is None else ks
    rows = [split_half_reliability(in_train, p, n_splits, seed, k, min_examples) for k in ks]
    return pd.DataFrame(rows, columns=["k", "reliability", "half_correlation", "half_correlation_sd", "n_splits", "n_examples"])
