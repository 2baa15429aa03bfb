"""Per-example counterfactual memorisation from K subset models (docs/protocol.md §5.2-§5.3).

For example i and the K subset models, with p_k(i) the probability model k gives i's training
label and in_k(i) whether model k trained on i:

* train memorisation  = mean of p_k(i) over the models with in_k(i)      (n_in of them)
* generalisation      = mean of p_k(i) over the models without in_k(i)   (n_out of them)
* counterfactual memorisation (CM) = train memorisation - generalisation

An example no model trained on (n_in = 0) has no train memorisation and no CM; one every model
trained on (n_out = 0) has no generalisation and no CM. Those are NaN, never zero, and the counts
say why.

Intervals come from a bootstrap over models: resample the K models with replacement and
recompute every example's estimates from the resampled models (one multinomial weight vector
per replicate, shared by all examples, so the whole thing is a pair of matrix products per chunk
of examples). The interval is the percentile interval over the replicates in which the example
has both an in and an out model.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from memloc.counterfactual.reliability import average_ranks

MEMORISATION_COLUMNS = (
    "example_id",
    "is_noisy",
    "n_in",
    "n_out",
    "train_memorisation",
    "generalisation",
    "counterfactual_memorisation",
    "cm_ci_low",
    "cm_ci_high",
)


# --------------------------------------------------------------------------------------------
# inputs


def load_subset_predictions(paths: Sequence[str | Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stack K subset tables into (example_ids [N], in_train [K, N], p_label [K, N], correct [K, N]).

    Examples are ordered by ``example_id``; every table must cover the same examples.
    """
    if not paths:
        raise ValueError("no subset prediction tables given")
    ids = None
    ins, ps, cs = [], [], []
    for path in paths:
        df = pd.read_parquet(path, columns=["example_id", "in_train", "p_label", "correct"])
        df = df.sort_values("example_id", kind="stable")
        these = df["example_id"].to_numpy(dtype=np.int64)
        if ids is None:
            ids = these
            if len(np.unique(ids)) != len(ids):
                raise ValueError(f"{path}: duplicate example ids")
        elif len(these) != len(ids) or not np.array_equal(these, ids):
            raise ValueError(
                f"{path} covers different examples than {paths[0]}; every subset model must score "
                "the same training set (was the data set re-prepared? delete the stale subset tables)"
            )
        ins.append(df["in_train"].to_numpy(dtype=bool))
        ps.append(df["p_label"].to_numpy(dtype=np.float64))
        cs.append(df["correct"].to_numpy(dtype=bool))
    return ids, np.vstack(ins), np.vstack(ps), np.vstack(cs)


# --------------------------------------------------------------------------------------------
# point estimates


def point_estimates(in_train: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
    """``n_in``, ``n_out``, ``train_memorisation``, ``generalisation``, ``counterfactual_memorisation``.

    ``in_train`` (bool) and ``p`` (probabilities) are (K, N): model by example.
    """
    in_train = np.asarray(in_train, dtype=bool)
    p = np.asarray(p, dtype=np.float64)
    if in_train.shape != p.shape or in_train.ndim != 2:
        raise ValueError(f"in_train {in_train.shape} and p {p.shape} must be equal (K, N) arrays")
    inside = in_train.astype(np.float64)
    n_in = in_train.sum(axis=0)
    n_out = in_train.shape[0] - n_in
    with np.errstate(divide="ignore", invalid="ignore"):
        tr = np.where(n_in > 0, (inside * p).sum(axis=0) / n_in, np.nan)
        gen = np.where(n_out > 0, ((1.0 - inside) * p).sum(axis=0) / n_out, np.nan)
    return {
        "n_in": n_in.astype(np.int64),
        "n_out": n_out.astype(np.int64),
        "train_memorisation": tr,
        "generalisation": gen,
        "counterfactual_memorisation": tr - gen,
    }


# --------------------------------------------------------------------------------------------
# bootstrap over models


def _multinomial_weights(n_models: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, K) counts: how often each model appears in each resample of K models."""
    draws = rng.integers(0, n_models, size=(n_boot, n_models))
    flat = (np.arange(n_boot)[:, None] * n_models + draws).ravel()
    return np.bincount(flat, minlength=n_boot * n_models).reshape(n_boot, n_models).astype(np.float64)


def _nan_quantiles(values: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Quantiles along axis 0 ignoring NaN (linear interpolation), NaN for all-NaN columns.

    Vectorised: sort once (NaN sort last), then interpolate at each column's own valid count.
    """
    srt = np.sort(values, axis=0)
    n_valid = np.isfinite(values).sum(axis=0)
    out = np.full((len(qs), values.shape[1]), np.nan)
    has = n_valid > 0
    cols = np.flatnonzero(has)
    if cols.size == 0:
        return out
    nv = n_valid[cols]
    for j, q in enumerate(qs):
        pos = q * (nv - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, nv - 1)
        frac = pos - lo
        out[j, cols] = srt[lo, cols] * (1 - frac) + srt[hi, cols] * frac
    return out


def bootstrap_over_models(
    in_train: np.ndarray,
    p: np.ndarray,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    groups: dict[str, np.ndarray] | None = None,
    max_cells: int = 2_000_000,
) -> dict[str, object]:
    """Percentile intervals of every example's CM from resampling the K models with replacement.

    Returns ``cm_ci_low`` and ``cm_ci_high`` (N,), ``valid_share`` (N,: share of replicates in
    which the example had both an in and an out model) and ``replicates``: for each named boolean
    mask in ``groups`` the per-replicate means over its examples of ``generalisation``,
    ``train_memorisation`` and ``counterfactual_memorisation`` (arrays of n_boot), from which the
    dataset-level summaries get their intervals. Work is chunked over examples so memory stays
    near ``max_cells`` floats per array.
    """
    in_train = np.asarray(in_train, dtype=bool)
    p = np.asarray(p, dtype=np.float64)
    n_models, n = in_train.shape
    groups = groups or {}
    alpha = 1.0 - confidence
    qs = (alpha / 2.0, 1.0 - alpha / 2.0)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x626F6F74]))
    weights = _multinomial_weights(n_models, n_boot, rng)  # (B, K)

    low = np.full(n, np.nan)
    high = np.full(n, np.nan)
    valid_share = np.zeros(n)
    quantities = ("generalisation", "train_memorisation", "counterfactual_memorisation")
    sums = {g: {q: np.zeros(n_boot) for q in quantities} for g in groups}
    counts = {g: {q: np.zeros(n_boot) for q in quantities} for g in groups}

    inside = in_train.astype(np.float64)
    chunk = max(1, max_cells // max(1, n_boot))
    for start in range(0, n, chunk):
        sl = slice(start, min(n, start + chunk))
        a, pc = inside[:, sl], p[:, sl]
        c_in = weights @ a  # (B, n_chunk): resampled count of in-models
        c_out = n_models - c_in
        s_in = weights @ (a * pc)
        s_out = weights @ ((1.0 - a) * pc)
        with np.errstate(divide="ignore", invalid="ignore"):
            tr = np.where(c_in > 0, s_in / c_in, np.nan)
            gen = np.where(c_out > 0, s_out / c_out, np.nan)
        cm = tr - gen
        valid_share[sl] = np.isfinite(cm).mean(axis=0)
        lo_hi = _nan_quantiles(cm, qs)
        low[sl], high[sl] = lo_hi[0], lo_hi[1]
        for g, mask in groups.items():
            m = np.asarray(mask, dtype=bool)[sl]
            if not m.any():
                continue
            for q, vals in zip(quantities, (gen, tr, cm)):
                v = vals[:, m]
                ok = np.isfinite(v)
                sums[g][q] += np.where(ok, v, 0.0).sum(axis=1)
                counts[g][q] += ok.sum(axis=1)

    # An example whose point estimate is undefined gets no interval either.
    point_undefined = (in_train.sum(axis=0) == 0) | (in_train.sum(axis=0) == n_models)
    low[point_undefined] = np.nan
    high[point_undefined] = np.nan
    replicates = {}
    for g in groups:
        replicates[g] = {}
        for q in quantities:
            with np.errstate(divide="ignore", invalid="ignore"):
                replicates[g][q] = np.where(counts[g][q] > 0, sums[g][q] / counts[g][q], np.nan)
    return {"cm_ci_low": low, "cm_ci_high": high, "valid_share": valid_share, "replicates": replicates}


# --------------------------------------------------------------------------------------------
# the memorisation table


def estimate_memorisation(
    example_ids: np.ndarray,
    in_train: np.ndarray,
    p: np.ndarray,
    is_noisy: np.ndarray,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict]:
    """The memorisation table (docs/protocol.md §5.2) and the bootstrap replicates of its group means.

    Groups: ``all``, ``noisy``, ``clean``. With ``n_boot = 0`` the intervals are NaN and the
    replicates empty.
    """
    is_noisy = np.asarray(is_noisy, dtype=bool)
    est = point_estimates(in_train, p)
    table = pd.DataFrame({"example_id": np.asarray(example_ids, dtype=np.int64), "is_noisy": is_noisy, **est})
    if n_boot > 0:
        boot = bootstrap_over_models(
            in_train, p, n_boot, confidence, seed, groups={"all": np.ones_like(is_noisy), "noisy": is_noisy, "clean": ~is_noisy}
        )
        table["cm_ci_low"], table["cm_ci_high"] = boot["cm_ci_low"], boot["cm_ci_high"]
        replicates = boot["replicates"]
    else:
        table["cm_ci_low"] = np.nan
        table["cm_ci_high"] = np.nan
        replicates = {}
    return table[list(MEMORISATION_COLUMNS)], replicates


def memorisation_table(
    example_ids: np.ndarray,
    in_train: np.ndarray,
    p: np.ndarray,
    is_noisy: np.ndarray,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Just the table of :func:`estimate_memorisation`."""
    return estimate_memorisation(example_ids, in_train, p, is_noisy, n_boot, confidence, seed)[0]


def attach_is_noisy(example_ids: np.ndarray, examples: pd.DataFrame) -> np.ndarray:
    """``is_noisy`` of ``example_ids`` looked up in the examples table (every id must be there)."""
    lookup = examples.set_index("example_id")["is_noisy"]
    missing = ~pd.Index(example_ids).isin(lookup.index)
    if missing.any():
        raise ValueError(f"{int(missing.sum())} subset-table example ids are not in the examples table")
    return lookup.loc[example_ids].to_numpy(dtype=bool)


# --------------------------------------------------------------------------------------------
# dataset-level summary


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for telling ``positive`` from the rest.

    Rank-based (Mann-Whitney U / (n_pos * n_neg)); tied scores count one half. NaN scores are
    dropped; NaN when either class is empty.
    """
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(positive, dtype=bool)
    ok = np.isfinite(scores)
    scores, positive = scores[ok], positive[ok]
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = average_ranks(scores)
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _mean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else float("nan")


def _interval(reps: np.ndarray | None, confidence: float) -> tuple[float, float]:
    if reps is None:
        return float("nan"), float("nan")
    reps = np.asarray(reps, dtype=np.float64)
    reps = reps[np.isfinite(reps)]
    if reps.size == 0:
        return float("nan"), float("nan")
    alpha = 1.0 - confidence
    lo, hi = np.quantile(reps, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def summarise(table: pd.DataFrame, replicates: dict | None = None, confidence: float = 0.95) -> dict[str, float]:
    """Dataset-level numbers from a memorisation table (and its bootstrap replicates).

    * ``generalisation_mean``: mean generalisation over the training examples that have one;
      the data set's generalisation score, correlated with M-CoG (docs/protocol.md §8.6)
    * ``train_memorisation_mean``, ``cm_mean``
    * ``cm_noisy_mean``, ``cm_clean_mean`` and ``cm_difference`` (noisy minus clean)
    * ``generalisation_noisy_mean``, ``generalisation_clean_mean``
    * ``auc_noisy``: AUC of CM for telling noisy from clean examples
    * ``*_ci_low`` / ``*_ci_high``: bootstrap-over-models percentile intervals, when replicates
      are given
    * counts: ``n_examples``, ``n_noisy``, ``n_clean``, ``n_undefined`` (no CM), ``n_models``
    """
    cm = table["counterfactual_memorisation"].to_numpy(dtype=np.float64)
    gen = table["generalisation"].to_numpy(dtype=np.float64)
    tr = table["train_memorisation"].to_numpy(dtype=np.float64)
    noisy = table["is_noisy"].to_numpy(dtype=bool)
    out: dict[str, float] = {
        "n_examples": int(len(table)),
        "n_noisy": int(noisy.sum()),
        "n_clean": int((~noisy).sum()),
        "n_undefined": int((~np.isfinite(cm)).sum()),
        "n_models": int((table["n_in"] + table["n_out"]).max()) if len(table) else 0,
        "generalisation_mean": _mean(gen),
        "generalisation_noisy_mean": _mean(gen[noisy]),
        "generalisation_clean_mean": _mean(gen[~noisy]),
        "train_memorisation_mean": _mean(tr),
        "cm_mean": _mean(cm),
        "cm_noisy_mean": _mean(cm[noisy]),
        "cm_clean_mean": _mean(cm[~noisy]),
        "auc_noisy": auc(cm, noisy),
        "confidence": float(confidence),
    }
    out["cm_difference"] = out["cm_noisy_mean"] - out["cm_clean_mean"]
    reps = replicates or {}

    def rep(group: str, quantity: str):
        return reps.get(group, {}).get(quantity)

    diff_reps = None
    if rep("noisy", "counterfactual_memorisation") is not None and rep("clean", "counterfactual_memorisation") is not None:
        diff_reps = rep("noisy", "counterfactual_memorisation") - rep("clean", "counterfactual_memorisation")
    for name, r in (
        ("generalisation_mean", rep("all", "generalisation")),
        ("train_memorisation_mean", rep("all", "train_memorisation")),
        ("cm_mean", rep("all", "counterfactual_memorisation")),
        ("cm_noisy_mean", rep("noisy", "counterfactual_memorisation")),
        ("cm_clean_mean", rep("clean", "counterfactual_memorisation")),
        ("cm_difference", diff_reps),
    ):
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = _interval(r, confidence)
    return out


def json_safe(d: dict) -> dict:
    """NaN and infinities to None (JSON has no NaN), NumPy scalars to Python numbers."""
    clean = {}
    for key, value in d.items():
        if isinstance(value, (np.floating, float)):
            value = float(value)
            clean[key] = value if math.isfinite(value) else None
        elif isinstance(value, np.integer):
            clean[key] = int(value)
        elif isinstance(value, dict):
            clean[key] = json_safe(value)
        else:
            clean[key] = value
    return clean
