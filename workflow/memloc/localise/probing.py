"""Probing (docs/protocol.md §6.7): from which layer on can a small MLP tell memorised examples apart?

Every training example's pooled hidden state at layers 0..L comes from one batched pass per model
(:func:`memloc.localise.hidden.pooled_states`); the ``frozen`` model contributes its layer 1, the
baseline of layer 1. Per layer and probe seed:

* a stratified 70/10/20 train/validation/test split of the training examples, seeded by the probe
  seed only (so every layer of one seed sees the same split);
* features standardised with the mean and standard deviation of the probe's train split (each
  dimension; a constant dimension is left unscaled) — hidden-state scales grow with depth by
  orders of magnitude, and standardising keeps one learning rate right for every layer;
* an MLP ``d -> hidden -> hidden -> 2`` with GELU and dropout, AdamW, cross-entropy with class
  weights ``n / (2 n_c)`` of the train split for the memorised / clean imbalance;
* ``epochs`` epochs of shuffled mini-batches; the epoch with the best validation F1 ("memorised"
  = positive class; the earliest on ties) is selected and its test F1 reported.

Layer weights: ``w_l = max(0, F1_l - F1_{l-1})`` with ``F1`` the mean test F1 over probe seeds,
for l = 1..L, where ``F1_0`` is the frozen model's layer-1 F1; then normalised to sum to 1.

Speed: all probes (every layer of both models x every probe seed) train together as one batched
MLP whose weights carry a leading probe dimension (``bmm``). The objective is the sum of the
probes' own mean losses, so each probe's gradient is its own, and AdamW (element-wise, weight
decay included) updates each probe exactly as if it were trained alone. A probe's initialisation
depends on (probe seed, feature set, run seed) and its batch order on (probe seed, epoch, run
seed): every layer of one seed sees the same split and the same batches, and without dropout a
probe's result does not depend on which others train beside it (the dropout masks come from one
seeded generator of their own; torch's global RNG is left alone). The splits have the same size
for every seed (stratified counts depend on the class counts only), so the probes step in lockstep.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from memloc.localise.common import MemorisedSpec, provenance, start_job, weights_frame, write_outputs
from memloc.localise.hidden import normalise, pooled_states
from memloc.localise.settings import JobSettings
from memloc.models.loading import load_classifier

log = logging.getLogger("memloc.localise.probing")

FRACTIONS = (0.7, 0.1, 0.2)

PROBE_KEYS = ("hidden_size", "dropout", "learning_rate", "weight_decay", "epochs", "batch_size")


@dataclass(frozen=True)
class ProbingSettings(JobSettings):
    """``localisation.probing`` plus the shared keys (``seed`` seeds the probes' generators)."""

    technique: ClassVar[str] = "probing"

    seeds: tuple[int, ...]  # probe seeds: one split, initialisation and batch order each
    hidden_size: int
    dropout: float
    learning_rate: float
    weight_decay: float
    epochs: int
    batch_size: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", tuple(int(x) for x in self.seeds))

    def probe_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`train_probes` that these settings fix."""
        return {k: getattr(self, k) for k in PROBE_KEYS}


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


# --------------------------------------------------------------------------- batched probes


def binary_f1_rows(y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
    """F1 of class 1 for every row of ``[P, n]`` boolean tensors (0 where undefined)."""
    tp = (y_true & y_pred).sum(1).double()
    fp = (~y_true & y_pred).sum(1).double()
    fn = (y_true & ~y_pred).sum(1).double()
    denom = 2 * tp + fp + fn
    return torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.zeros_like(denom))


class _ProbeStack:
    """P independent MLPs ``d -> h -> h -> 2`` (GELU, dropout) held as batched tensors."""

    def __init__(
        self, seeds: Sequence[int], d: int, h: int, dropout: float, device: torch.device, dropout_seed: int = 0
    ):
        self.dropout = float(dropout)
        # Dropout masks come from a generator of their own: the global RNG is left alone.
        self.generator = torch.Generator(device=device).manual_seed(int(dropout_seed))
        shapes = [(d, h), (h,), (h, h), (h,), (h, 2), (2,)]
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
        h = self._dropout(F.gelu(torch.baddbmm(b1[:, None, :], x, w1)), train)
        h = self._dropout(F.gelu(torch.baddbmm(b2[:, None, :], h, w2)), train)
        return torch.baddbmm(b3[:, None, :], h, w3)


def _init_seed(probe_seed: int, feature: int, generator_seed: int) -> int:
    """A probe's initialisation seed: depends on its probe seed, feature set and the run seed only."""
    return int(np.random.SeedSequence([int(probe_seed), int(feature), int(generator_seed)]).generate_state(1)[0])


def _permutation(n: int, probe_seed: int, epoch: int, generator_seed: int) -> torch.Tensor:
    rng = np.random.default_rng([int(probe_seed), int(epoch), int(generator_seed), 0x73687566])
    return torch.as_tensor(rng.permutation(n))


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
    eval_chunk: int = 2048,
    generator_seed: int = 0,
) -> pd.DataFrame:
    """Train one probe per ``(feature_index[p], probe_seeds[p])`` together; their scores.

    ``features`` is ``[N, F, d]`` (F feature sets, e.g. layers) on the device to train on; ``y``
    the binary targets (1 = memorised). Returns ``probe`` (position), ``val_f1``, ``test_f1``,
    ``best_epoch`` (1-based).
    """
    device = features.device
    N, _, d = features.shape
    y_np = np.asarray(y).astype(np.int64)
    if y_np.shape != (N,):
        raise ValueError(f"y has shape {y_np.shape}, expected ({N},)")
    if len(np.unique(y_np)) < 2:
        raise ValueError("probing needs memorised and clean examples; the targets have one class only")
    feat = torch.as_tensor(np.asarray(feature_index), dtype=torch.long, device=device)
    P = len(feat)
    splits = {s: stratified_split(y_np, s) for s in dict.fromkeys(probe_seeds)}
    idx = [torch.as_tensor(np.stack([splits[s][k] for s in probe_seeds]), device=device) for k in range(3)]
    train_idx, val_idx, test_idx = idx  # [P, n_split]
    n_train = train_idx.shape[1]
    y_t = torch.as_tensor(y_np, device=device)

    # Standardisation with train-split statistics, per probe (feature set x split).
    mean = torch.empty(P, d, device=device)
    std = torch.empty(P, d, device=device)
    for p in range(P):
        x = features[train_idx[p], feat[p]].double()
        mean[p] = x.mean(0).float()
        sd = x.std(0, unbiased=False).float()
        std[p] = torch.where(sd > 1e-8, sd, torch.ones_like(sd))

    def gather(rows: torch.Tensor) -> torch.Tensor:  # rows [P, b] -> standardised [P, b, d]
        x = features[rows, feat[:, None]]
        return (x - mean[:, None, :]) / std[:, None, :]

    # Class weights n / (2 n_c) of each probe's train split.
    y_train = y_t[train_idx]
    counts = torch.stack([(y_train == 0).sum(1), (y_train == 1).sum(1)], 1).double()
    class_w = (n_train / (2 * counts.clamp(min=1))).float()  # [P, 2]

    stack = _ProbeStack(
        [_init_seed(s, f, generator_seed) for s, f in zip(probe_seeds, feature_index)],
        d, hidden_size, dropout, device, dropout_seed=generator_seed,
    )
    opt = torch.optim.AdamW(stack.params, lr=learning_rate, weight_decay=weight_decay)
    seed_list = list(dict.fromkeys(probe_seeds))

    @torch.no_grad()
    def f1_of(rows: torch.Tensor) -> torch.Tensor:
        preds = []
        for start in range(0, rows.shape[1], eval_chunk):
            chunk = rows[:, start : start + eval_chunk]
            preds.append(stack(gather(chunk), train=False).argmax(-1))
        pred = torch.cat(preds, 1) == 1
        return binary_f1_rows(y_t[rows] == 1, pred)

    best_val = torch.full((P,), -1.0, dtype=torch.float64, device=device)
    best_test = torch.zeros(P, dtype=torch.float64, device=device)
    best_epoch = torch.zeros(P, dtype=torch.long, device=device)
    rows_p = torch.arange(P, device=device)[:, None]
    for epoch in range(1, epochs + 1):
        # One shuffle per probe seed and epoch: every layer of a seed sees the same batches.
        perms = {s: _permutation(n_train, s, epoch, generator_seed) for s in seed_list}
        order = torch.stack([perms[s] for s in probe_seeds]).to(device)
        for start in range(0, n_train, batch_size):
            rows = train_idx[rows_p, order[:, start : start + batch_size]]
            logits = stack(gather(rows), train=True)  # [P, b, 2]
            target = y_t[rows]
            w = class_w[rows_p, target]  # [P, b]
            ce = F.cross_entropy(logits.reshape(-1, 2), target.reshape(-1), reduction="none").view_as(w)
            loss = ((w * ce).sum(1) / w.sum(1)).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        val = f1_of(val_idx)
        better = val > best_val
        if better.any():
            test = f1_of(test_idx)
            best_val = torch.where(better, val, best_val)
            best_test = torch.where(better, test, best_test)
            best_epoch = torch.where(better, torch.full_like(best_epoch, epoch), best_epoch)
    return pd.DataFrame(
        {
            "probe": np.arange(P),
            "val_f1": best_val.cpu().numpy(),
            "test_f1": best_test.cpu().numpy(),
            "best_epoch": best_epoch.cpu().numpy(),
        }
    )


# --------------------------------------------------------------------------- layers and weights


def probing_weights(curve: np.ndarray, frozen_layer1_f1: float) -> np.ndarray:
    """Unnormalised gains ``[L]``: ``max(0, F1_l - F1_{l-1})``, l = 1..L, with F1_0 := frozen layer 1.

    ``curve`` is the mean test F1 of layers 0..L of the analysed model (layer 0 is not used).
    """
    curve = np.asarray(curve, dtype=float)
    previous = np.concatenate([[frozen_layer1_f1], curve[1:-1]])
    return np.maximum(0.0, curve[1:] - previous)


def probe_layers(
    states: np.ndarray | torch.Tensor,
    frozen_layer1: np.ndarray | torch.Tensor,
    memorised: np.ndarray,
    settings: ProbingSettings,
    device: torch.device | str = "cpu",
) -> tuple[pd.DataFrame, np.ndarray]:
    """Probe layers 0..L of ``states`` ``[N, L+1, d]`` and the frozen model's layer 1 ``[N, d]``.

    Returns the raw table (one row per model, layer and probe seed: ``layer``, ``probe_seed``,
    ``model``, ``val_f1``, ``test_f1``, ``best_epoch``, and the curve: ``mean_test_f1`` of that
    model and layer, and for the noisy model's layers 1..L ``baseline_f1``, ``gain``, ``weight``)
    and the normalised weights ``[L]``. ``settings`` gives the probe seeds, the probe options and,
    in ``seed``, the run seed of the probes' generators.
    """
    device = torch.device(device)
    states_t = torch.as_tensor(np.asarray(states, dtype=np.float32))
    frozen_t = torch.as_tensor(np.asarray(frozen_layer1, dtype=np.float32))
    N, Lp1, d = states_t.shape
    if frozen_t.shape != (N, d):
        raise ValueError(f"frozen layer-1 states have shape {tuple(frozen_t.shape)}, expected ({N}, {d})")
    L = Lp1 - 1
    features = torch.cat([states_t, frozen_t[:, None, :]], 1).to(device)  # feature L+1 = frozen layer 1
    seeds = list(settings.seeds)
    specs = [("noisy", layer, s) for layer in range(Lp1) for s in seeds] + [("frozen", 1, s) for s in seeds]
    feature_index = [layer if model == "noisy" else Lp1 for model, layer, _ in specs]
    y = np.asarray(memorised, dtype=bool).astype(np.int64)
    log.info(
        "probing %d examples (%d memorised), %d layers + frozen layer 1, %d probe seeds: %d probes",
        N, int(y.sum()), Lp1, len(seeds), len(specs),
    )
    scores = train_probes(
        features, y, feature_index, [s for _, _, s in specs], generator_seed=settings.seed, **settings.probe_options()
    )
    raw = pd.DataFrame(
        {
            "layer": [layer for _, layer, _ in specs],
            "probe_seed": [s for _, _, s in specs],
            "model": [m for m, _, _ in specs],
        }
    )
    raw = pd.concat([raw, scores[["val_f1", "test_f1", "best_epoch"]]], axis=1)
    raw["mean_test_f1"] = raw.groupby(["model", "layer"])["test_f1"].transform("mean")
    curve = raw[raw["model"] == "noisy"].groupby("layer")["test_f1"].mean().reindex(range(Lp1)).to_numpy()
    frozen_f1 = float(raw.loc[raw["model"] == "frozen", "test_f1"].mean())
    gains = probing_weights(curve, frozen_f1)
    weights = normalise(gains)
    baseline = np.concatenate([[frozen_f1], curve[1:-1]])
    per_layer = pd.DataFrame(
        {"layer": np.arange(1, L + 1), "model": "noisy", "baseline_f1": baseline, "gain": gains, "weight": weights}
    )
    raw = raw.merge(per_layer, on=["model", "layer"], how="left")
    for layer in range(Lp1):
        log.info("layer %2d: mean test F1 %.3f%s", layer, curve[layer],
                 f"  gain {gains[layer - 1]:.3f}" if layer else "")
    log.info("frozen layer 1: mean test F1 %.3f", frozen_f1)
    return raw, weights


def run_probing(
    examples_path: str | Path,
    tokens_path: str | Path,
    model_dir: str | Path,
    frozen_dir: str | Path,
    settings: Mapping[str, Any] | ProbingSettings,
    raw_path: str | Path,
    weights_path: str | Path,
    memorised: MemorisedSpec = None,
) -> pd.DataFrame:
    """The ``probing`` rule: pooled states of both models, probes, raw table and weights.

    ``settings``: :class:`ProbingSettings` or the rule's params dict. The probe target is
    membership of the memorised set (default the noisy training examples); every training
    example is probed, so with an explicit set noisy examples outside it count as negatives.
    """
    s = ProbingSettings.from_dict(settings)
    device, job = start_job(s, examples_path, tokens_path, memorised)
    model = load_classifier(model_dir).to(device)
    states = pooled_states(model, job.train, s.eval_batch_size, device, s.precision)
    del model
    frozen = load_classifier(frozen_dir).to(device)
    frozen_layer1 = pooled_states(frozen, job.train, s.eval_batch_size, device, s.precision)[:, 1]
    del frozen
    raw, weights = probe_layers(states, frozen_layer1, job.memorised, s, device)
    meta = provenance(
        "probing",
        s,
        {"examples": examples_path, "tokens": tokens_path, "model": model_dir, "frozen": frozen_dir},
        memorised=job.memorised_source,
        n_examples=len(job.train),
        n_memorised=int(job.memorised.sum()),
        standardisation="per feature, with the train-split mean and std of each probe",
    )
    write_outputs(raw, weights_frame(weights, "probing"), raw_path, weights_path, meta)
    return raw
