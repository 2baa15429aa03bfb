"""Probing (docs/protocol.md §6.7): from which layer on can a small MLP tell memorised examples apart?

Every training example's pooled hidden state at layers 0..L comes from one batched pass per model
(:func:`memloc.localise.hidden.pooled_states`); the ``frozen`` model contributes its layer 1, the
baseline of layer 1. Per layer and probe seed a probe of :mod:`memloc.localise.probes` learns
"memorised or not" (F1 of the memorised class):

* a 70/10/20 train/validation/test split of the training examples, stratified by the target
  (``split: stratified``) or not (``random``, the published code's), seeded by the probe seed
  only (so every layer of one seed sees the same split);
* by default features standardised with the mean and standard deviation of the probe's train
  split — hidden-state scales grow with depth by orders of magnitude, and standardising keeps
  one learning rate right for every layer (``standardise: false``: raw features, the published code's);
* an MLP ``d -> hidden -> hidden -> 2`` with GELU and dropout (after each hidden layer, or on the
  input: ``dropout_position``), AdamW, cross-entropy with class weights (``balanced``:
  ``n / (2 n_c)`` of the train split; or fixed, the published [0.33, 0.67]);
* ``epochs`` epochs of shuffled mini-batches; from epoch ``select_from_epoch`` on, the epoch with
  the best validation F1 (the earliest on ties) is selected and its test F1 reported
  (``selection_fallback`` says which probe a run without any positive validation F1 keeps).

Layer weights: ``w_l = max(0, F1_l - F1_{l-1})`` with ``F1`` the mean test F1 over probe seeds,
for l = 1..L, where ``F1_0`` is the frozen model's layer-1 F1; then normalised to sum to 1.

All probes (every layer of both models x every probe seed) train together as one batched MLP
(:func:`memloc.localise.probes.train_probes`). The label probes and probing events of the same
block's ``label_probes`` are :mod:`memloc.localise.label_probes`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from memloc.errors import ConfigError
from memloc.localise.common import MemorisedSpec, job_precision, provenance, start_job, weights_frame, write_outputs
from memloc.localise.hidden import normalise, pooled_states
from memloc.localise.probes import train_probes
from memloc.localise.settings import PooledStateSettings
from memloc.models.loading import load_classifier

log = logging.getLogger("memloc.localise.probing")

#: The keys of ``localisation.probing`` that are keyword arguments of :func:`train_probes`.
PROBE_KEYS = (
    "hidden_size", "dropout", "learning_rate", "weight_decay", "epochs", "batch_size",
    "standardise", "class_weights", "dropout_position", "split", "select_from_epoch", "selection_fallback",
)


@dataclass(frozen=True)
class ProbingSettings(PooledStateSettings):
    """``localisation.probing`` plus the shared and pooled-state keys (``seed`` seeds the probes' generators)."""

    technique: ClassVar[str] = "probing"

    seeds: tuple[int, ...]  # probe seeds: one split, initialisation and batch order each
    hidden_size: int
    dropout: float
    learning_rate: float
    weight_decay: float
    epochs: int
    batch_size: int
    standardise: bool  # scale features with the train split's mean and sd
    class_weights: str | list[float]  # "balanced" or one weight per class (clean, memorised)
    dropout_position: str  # "hidden" (after each hidden layer) or "input"
    split: str  # "stratified" or "random"
    select_from_epoch: int  # first epoch (1-based) whose probe can be selected
    selection_fallback: str  # "first" or "last": see memloc.localise.probes.train_probes
    label_probes: bool  # also probe the training and the original label (noisy variant)
    event_margin: float  # probing event: noisy-label F1 above clean-label F1 by more than this
    initiation_fraction: float  # initiation: normalised clean-label F1 above this

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", tuple(int(x) for x in self.seeds))
        if self.select_from_epoch > self.epochs:
            raise ConfigError(
                f"localisation.probing.select_from_epoch = {self.select_from_epoch} exceeds epochs = {self.epochs}: "
                "no epoch could be selected; lower select_from_epoch or raise epochs."
            )

    def probe_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`train_probes` that these settings fix."""
        return {k: getattr(self, k) for k in PROBE_KEYS}


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
    choice = job_precision(s, model, job.train, s.eval_batch_size, device)
    precision = choice.resolved
    states = pooled_states(model, job.train, s.eval_batch_size, device, precision, s.final_norm)
    del model
    frozen = load_classifier(frozen_dir).to(device)
    frozen_layer1 = pooled_states(frozen, job.train, s.eval_batch_size, device, precision, s.final_norm)[:, 1]
    del frozen
    raw, weights = probe_layers(states, frozen_layer1, job.memorised, s, device)
    meta = provenance(
        "probing",
        s,
        {"examples": examples_path, "tokens": tokens_path, "model": model_dir, "frozen": frozen_dir},
        memorised=job.memorised_source,
        n_examples=len(job.train),
        n_memorised=int(job.memorised.sum()),
        precision=choice.record(),
        standardisation="per feature, with the train-split mean and std of each probe" if s.standardise else "none",
    )
    write_outputs(raw, weights_frame(weights, "probing"), raw_path, weights_path, meta)
    return raw
