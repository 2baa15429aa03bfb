"""Many small MLP probes trained at once (docs/protocol.md §6.7): splits, F1 scores, the batched trainer.

Probing asks per layer and probe seed whether a small MLP can read a target (memorised or not;
the training label; the original label) from the pooled hidden states. All probes of one call
train together as one batched MLP whose weights carry a leading probe dimension (``bmm``). The
objective is the sum of the probes' own mean losses, so each probe's gradient is its own, and
AdamW (element-wise, weight decay included) updates each probe exactly as if it were trained
alone. A probe's initialisation depends on (probe seed, feature set, run seed) and its batch order
on (probe seed, epoch, run seed): every layer of one seed sees the same split and the same
batches, and without dropout a probe's result does not depend on which others train beside it
(the dropout masks come from one seeded generator of their own; torch's global RNG is left
alone). Splits have the same size for every seed (stratified counts depend on the class counts
only, random cuts on N only), so the probes step in lockstep.

The options that differ between memloc's default and the published code (``standardise``,
``class_weights``, ``dropout_position``, ``split``, ``select_from_epoch``, ``selection_fallback``)
are keyword arguments without defaults: they come from ``localisation.probing``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

FRACTIONS = (0.7, 0.1, 0.2)
#: The random split's cut points: the first int(0.7 N) shuffled examples train, those up to int(0.8 N) validate.
RANDOM_CUTS = (0.7, 0.8)
SPLITS = ("stratified", "random")
DROPOUT_POSITIONS = ("hidden", "input")
SELECTION_FALLBACKS = ("first", "last")
METRICS = ("binary", "macro")


# --------------------------------------------------------------------------- splits


def split_counts(n: int, fractions: Sequence[float] = FRACTIONS) -> tuple[int, int, int]:
    """Train / validation / test counts of one class of ``n`` examples.

    Rounded shares, with at least one validation and one test example when ``n >= 3`` (and one
    training example whenever ``n >= 1``).
    """
    if n <= 0:
        return 0, 0, 0
    n_val = int(round(fractions[1] * n))
    n_test = int(round(fractions[2] * n))
    if n >= 3:
        n_val, n_test = max(n_val, 1), max(n_test, 1)
    n_train = n - n_val - n_test
    while n_train < 1 and (n_val > 0 or n_test > 0):
        if n_test >= n_val and n_test > 0:
            n_test -= 1
        else:
            n_val -= 1
        n_train = n - n_val - n_test
    return n_train, n_val, n_test


def stratified_split(y: np.ndarray, seed: int, fractions: Sequence[float] = FRACTIONS):
    """Positions of the train, validation and test examples (each sorted), stratified by ``y``."""
    y = np.asarray(y)
    rng = np.random.default_rng([int(seed), 0x70726F62])
    parts: list[list[np.ndarray]] = [[], [], []]
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        n_train, n_val, _ = split_counts(len(members), fractions)
        parts[0].append(members[:n_train])
        parts[1].append(members[n_train : n_train + n_val])
        parts[2].append(members[n_train + n_val :])
    return tuple(np.sort(np.concatenate(p)).astype(np.int64) for p in parts)


def random_split(n: int, seed: int):
    """Positions of the train, validation and test examples (each sorted) of a random 70/10/20 split:
    a seeded permutation cut at int(0.7 n) and int(0.8 n), as the published code cut its shuffled list."""
    perm = np.random.default_rng([int(seed), 0x72616E64]).permutation(int(n))
    a, b = int(n * RANDOM_CUTS[0]), int(n * RANDOM_CUTS[1])
    return tuple(np.sort(p).astype(np.int64) for p in (perm[:a], perm[a:b], perm[b:]))


def probe_split(split: str, strata: np.ndarray, seed: int):
    """The ``split`` ("stratified" by ``strata``, or "random") of probe seed ``seed``."""
    if split == "stratified":
        return stratified_split(strata, seed)
    if split == "random":
        return random_split(len(strata), seed)
    raise ValueError(f"unknown probe split {split!r}; localisation.probing.split is one of {', '.join(SPLITS)}")


# --------------------------------------------------------------------------- scores


def binary_f1_rows(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    """F1 of class 1 for every row of ``[P, n]`` boolean tensors (0 where undefined)."""
    tp = (y_true & y_pred).sum(1).double()
    fp = (~y_true & y_pred).sum(1).double()
    fn = (y_true & ~y_pred).sum(1).double()
    denom = 2 * tp + fp + fn
    return torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.zeros_like(denom))


def macro_f1_rows(y_true: torch.Tensor, y_pred: torch.Tensor, n_classes: int, keep: torch.Tensor | None = None) -> torch.Tensor:
    """Macro F1 of every row of ``[P, n]`` integer tensors, over the classes that occur among the
    row's true or predicted labels (scikit-learn's ``average="macro"``). ``keep`` ``[P, n]``
    scores only those entries; a row that keeps none is NaN."""
    keep = torch.ones_like(y_true, dtype=torch.bool) if keep is None else keep
    f1, present = [], []
    for c in range(n_classes):
        t = (y_true == c) & keep
        p = (y_pred == c) & keep
        tp = (t & p).sum(1).double()
        denom = 2 * tp + (p & ~t).sum(1).double() + (t & ~p).sum(1).double()
        present.append(denom > 0)
        f1.append(torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.zeros_like(denom)))
    f1_t, present_t = torch.stack(f1, 1), torch.stack(present, 1)
    n = present_t.sum(1)
    nan = torch.full_like(n, float("nan"), dtype=torch.float64)
    return torch.where(n > 0, (f1_t * present_t).sum(1) / n.clamp(min=1), nan)


def score_rows(metric: str, y_true: torch.Tensor, y_pred: torch.Tensor, n_classes: int,
               keep: torch.Tensor | None = None) -> torch.Tensor:
    """``binary`` (F1 of class 1; a row that keeps nothing scores 0) or ``macro`` F1 per row."""
    if metric == "binary":
        if keep is None:
            return binary_f1_rows(y_true == 1, y_pred == 1)
        return binary_f1_rows((y_true == 1) & keep, (y_pred == 1) & keep)
    if metric == "macro":
        return macro_f1_rows(y_true, y_pred, n_classes, keep)
    raise ValueError(f"unknown probe metric {metric!r}; one of {', '.join(METRICS)}")


# --------------------------------------------------------------------------- the batched MLP


class _ProbeStack:
    """P independent MLPs ``d -> h -> h -> C`` (GELU, dropout) held as batched tensors.

    ``dropout_position``: ``hidden`` drops after each hidden layer, ``input`` drops the input
    features only (the published probe's one dropout).
    """

    def __init__(self, seeds: Sequence[int], d: int, h: int, n_classes: int, dropout: float, dropout_position: str,
                 device: torch.device, dropout_seed: int = 0):
        if dropout_position not in DROPOUT_POSITIONS:
            raise ValueError(f"unknown dropout position {dropout_position!r}; localisation.probing.dropout_position is "
                             f"one of {', '.join(DROPOUT_POSITIONS)}")
        self.dropout = float(dropout)
        self.dropout_position = dropout_position
        # Dropout masks come from a generator of their own: the global RNG is left alone.
        self.generator = torch.Generator(device=device).manual_seed(int(dropout_seed))
        shapes = [(d, h), (h,), (h, h), (h,), (h, n_classes), (n_classes,)]
        fan_ins = [d, d, h, h, h, h]
        tensors: list[list[torch.Tensor]] = [[] for _ in shapes]
        for seed in seeds:
            # nn.Linear's default initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), per probe.
            g = torch.Generator().manual_seed(int(seed))
            for k, (shape, fan_in) in enumerate(zip(shapes, fan_ins)):
                bound = 1.0 / math.sqrt(fan_in)
                tensors[k].append((torch.rand(shape, generator=g) * 2 - 1) * bound)
        self.params = [torch.stack(t).to(device).requires_grad_(True) for t in tensors]

    def _dropout(self, h: torch.Tensor, train: bool) -> torch.Tensor:
        if not train or self.dropout == 0.0:
            return h
        keep = torch.rand(h.shape, generator=self.generator, device=h.device) >= self.dropout
        return h * keep / (1.0 - self.dropout)

    def __call__(self, x: torch.Tensor, train: bool) -> torch.Tensor:
        w1, b1, w2, b2, w3, b3 = self.params
        if self.dropout_position == "input":
            h = F.gelu(torch.baddbmm(b1[:, None, :], self._dropout(x, train), w1))
            h = F.gelu(torch.baddbmm(b2[:, None, :], h, w2))
        else:
            h = self._dropout(F.gelu(torch.baddbmm(b1[:, None, :], x, w1)), train)
            h = self._dropout(F.gelu(torch.baddbmm(b2[:, None, :], h, w2)), train)
        return torch.baddbmm(b3[:, None, :], h, w3)


def _init_seed(probe_seed: int, feature: int, generator_seed: int) -> int:
    """A probe's initialisation seed: depends on its probe seed, feature set and the run seed only."""
    return int(np.random.SeedSequence([int(probe_seed), int(feature), int(generator_seed)]).generate_state(1)[0])


def _permutation(n: int, probe_seed: int, epoch: int, generator_seed: int) -> torch.Tensor:
    rng = np.random.default_rng([int(probe_seed), int(epoch), int(generator_seed), 0x73687566])
    return torch.as_tensor(rng.permutation(n))


def _class_weights(class_weights, y_train: torch.Tensor, n_train: int, n_classes: int) -> torch.Tensor:
    """``[P, C]`` loss weights: None (all 1), ``balanced`` (n / (C n_c) of each probe's train split) or fixed."""
    P = y_train.shape[0]
    if class_weights is None:
        return torch.ones(P, n_classes, device=y_train.device)
    if class_weights == "balanced":
        counts = torch.stack([(y_train == c).sum(1) for c in range(n_classes)], 1).double()
        return (n_train / (n_classes * counts.clamp(min=1))).float()
    fixed = torch.as_tensor([float(w) for w in class_weights], device=y_train.device)
    if fixed.shape != (n_classes,):
        raise ValueError(f"localisation.probing.class_weights {list(class_weights)} needs one weight per class ({n_classes})")
    return fixed[None, :].expand(P, n_classes)


def train_probes(
    features: torch.Tensor,
    y: np.ndarray,
    feature_index: Sequence[int],
    probe_seeds: Sequence[int],
    *,
    hidden_size: int,
    dropout: float,
    learning_rate: float,
    weight_decay: float,
    epochs: int,
    batch_size: int,
    standardise: bool,
    class_weights: str | Sequence[float] | None,
    dropout_position: str,
    split: str,
    select_from_epoch: int,
    selection_fallback: str,
    metric: str = "binary",
    n_classes: int = 2,
    strata: np.ndarray | None = None,
    groups: Mapping[str, np.ndarray] | None = None,
    eval_chunk: int = 2048,
    generator_seed: int = 0,
) -> pd.DataFrame:
    """Train one probe per ``(feature_index[p], probe_seeds[p])`` together; their scores.

    ``features`` is ``[N, F, d]`` (F feature sets, e.g. layers) on the device to train on; ``y``
    the targets ``0..n_classes-1``; ``metric`` ``binary`` (F1 of class 1) or ``macro``.
    ``strata`` (default ``y``) is what a stratified split stratifies by. ``standardise`` scales
    each feature with its train-split mean and sd; ``class_weights`` is None (unweighted),
    ``balanced`` or one weight per class. After each epoch from ``select_from_epoch`` on, a probe
    whose validation score beats its best so far (starting at -1 with ``selection_fallback``
    ``first``, so the first candidate epoch always counts; at 0 with ``last``, whose probes that
    never score above 0 keep their final epoch) is kept. ``groups`` (name -> mask over N) adds
    ``test_f1_<name>``, the score on the test examples in the mask. Returns ``probe`` (position),
    ``val_f1``, ``test_f1``, ``best_epoch`` (1-based) and the group scores.
    """
    if selection_fallback not in SELECTION_FALLBACKS:
        raise ValueError(f"unknown selection fallback {selection_fallback!r}; localisation.probing.selection_fallback "
                         f"is one of {', '.join(SELECTION_FALLBACKS)}")
    if not 1 <= select_from_epoch <= epochs:
        raise ValueError(f"localisation.probing.select_from_epoch = {select_from_epoch} must lie in 1..epochs ({epochs})")
    device = features.device
    N, _, d = features.shape
    y_np = np.asarray(y).astype(np.int64)
    if y_np.shape != (N,):
        raise ValueError(f"y has shape {y_np.shape}, expected ({N},)")
    if len(np.unique(y_np)) < 2:
        raise ValueError("the probe targets have one class only: probing needs memorised and clean examples, "
                         "label probes at least two labels")
    if y_np.min() < 0 or y_np.max() >= n_classes:
        raise ValueError(f"probe targets must lie in 0..{n_classes - 1}")
    feat = torch.as_tensor(np.asarray(feature_index), dtype=torch.long, device=device)
    P = len(feat)
    strata_np = y_np if strata is None else np.asarray(strata)
    splits = {s: probe_split(split, strata_np, s) for s in dict.fromkeys(probe_seeds)}
    idx = [torch.as_tensor(np.stack([splits[s][k] for s in probe_seeds]), device=device) for k in range(3)]
    train_idx, val_idx, test_idx = idx  # [P, n_split]
    n_train = train_idx.shape[1]
    y_t = torch.as_tensor(y_np, device=device)
    group_masks = {name: torch.as_tensor(np.array(m, dtype=bool), device=device) for name, m in (groups or {}).items()}

    if standardise:
        # Standardisation with train-split statistics, per probe (feature set x split).
        mean = torch.empty(P, d, device=device)
        std = torch.empty(P, d, device=device)
        for p in range(P):
            x = features[train_idx[p], feat[p]].double()
            mean[p] = x.mean(0).float()
            sd = x.std(0, unbiased=False).float()
            std[p] = torch.where(sd > 1e-8, sd, torch.ones_like(sd))

    def gather(rows: torch.Tensor) -> torch.Tensor:  # rows [P, b] -> features [P, b, d]
        x = features[rows, feat[:, None]]
        return (x - mean[:, None, :]) / std[:, None, :] if standardise else x

    class_w = _class_weights(class_weights, y_t[train_idx], n_train, n_classes)  # [P, C]

    stack = _ProbeStack(
        [_init_seed(s, f, generator_seed) for s, f in zip(probe_seeds, feature_index)],
        d, hidden_size, n_classes, dropout, dropout_position, device, dropout_seed=generator_seed,
    )
    opt = torch.optim.AdamW(stack.params, lr=learning_rate, weight_decay=weight_decay)
    seed_list = list(dict.fromkeys(probe_seeds))

    @torch.no_grad()
    def predict(rows: torch.Tensor) -> torch.Tensor:
        preds = [stack(gather(rows[:, s : s + eval_chunk]), train=False).argmax(-1) for s in range(0, rows.shape[1], eval_chunk)]
        return torch.cat(preds, 1)

    def val_score() -> torch.Tensor:
        return score_rows(metric, y_t[val_idx], predict(val_idx), n_classes)

    def test_scores() -> dict[str, torch.Tensor]:
        pred = predict(test_idx)
        out = {"test_f1": score_rows(metric, y_t[test_idx], pred, n_classes)}
        for name, mask in group_masks.items():
            out[f"test_f1_{name}"] = score_rows(metric, y_t[test_idx], pred, n_classes, keep=mask[test_idx])
        return out

    best_val = torch.full((P,), -1.0 if selection_fallback == "first" else 0.0, dtype=torch.float64, device=device)
    best = {k: torch.zeros(P, dtype=torch.float64, device=device) for k in ["test_f1", *(f"test_f1_{g}" for g in group_masks)]}
    best_epoch = torch.zeros(P, dtype=torch.long, device=device)
    rows_p = torch.arange(P, device=device)[:, None]
    for epoch in range(1, epochs + 1):
        # One shuffle per probe seed and epoch: every layer of a seed sees the same batches.
        perms = {s: _permutation(n_train, s, epoch, generator_seed) for s in seed_list}
        order = torch.stack([perms[s] for s in probe_seeds]).to(device)
        for start in range(0, n_train, batch_size):
            rows = train_idx[rows_p, order[:, start : start + batch_size]]
            logits = stack(gather(rows), train=True)  # [P, b, C]
            target = y_t[rows]
            w = class_w[rows_p, target]  # [P, b]
            ce = F.cross_entropy(logits.reshape(-1, n_classes), target.reshape(-1), reduction="none").view_as(w)
            loss = ((w * ce).sum(1) / w.sum(1)).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if epoch < select_from_epoch:
            continue
        val = val_score()
        better = val > best_val
        if better.any():
            scores = test_scores()
            best_val = torch.where(better, val, best_val)
            best = {k: torch.where(better, scores[k], v) for k, v in best.items()}
            best_epoch = torch.where(better, torch.full_like(best_epoch, epoch), best_epoch)
    never = best_epoch == 0  # only with fallback "last": no candidate epoch scored above 0
    if never.any():
        val, scores = val_score(), test_scores()
        best_val = torch.where(never, val, best_val)
        best = {k: torch.where(never, scores[k], v) for k, v in best.items()}
        best_epoch = torch.where(never, torch.full_like(best_epoch, epochs), best_epoch)
    return pd.DataFrame(
        {
            "probe": np.arange(P),
            "val_f1": best_val.cpu().numpy(),
            "test_f1": best["test_f1"].cpu().numpy(),
            "best_epoch": best_epoch.cpu().numpy(),
            **{k: v.cpu().numpy() for k, v in best.items() if k != "test_f1"},
        }
    )
