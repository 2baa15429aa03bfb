"""Label probes (docs/protocol.md §6.7): at which layer does the model hold the noisy label rather than the original one?

On the ``noisy`` variant only (``localisation.probing.label_probes``), every layer 0..L of the
analysed model is probed for two targets of every training example:

* ``noisy_label``: the training label (with the injected noise);
* ``clean_label``: the original label.

Each probe is the memorisation probe's MLP and schedule (:func:`memloc.localise.probes.train_probes`
with the block's options and its split per probe seed, so the three probes of a seed share their
split) with C outputs, unweighted cross-entropy and macro F1 (model selection and test), as the
published code's label probes. Besides the test F1 over all test examples, the table has the macro
F1 on the noisy (``test_f1_noisy``) and on the clean (``test_f1_clean``) test examples, from
which :mod:`memloc.localise.probing_events` derives the run's event and initiation layers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from memloc.errors import DataError
from memloc.io import write_parquet
from memloc.localise.common import MemorisedSpec, job_precision, provenance, start_job
from memloc.localise.hidden import pooled_states
from memloc.localise.probes import train_probes
from memloc.localise.probing import ProbingSettings
from memloc.localise.probing_events import chance_macro_f1, probing_events
from memloc.models.loading import load_classifier

log = logging.getLogger("memloc.localise.label_probes")

TARGETS = ("noisy_label", "clean_label")
LABEL_COLUMNS = ["target", "layer", "probe_seed", "val_f1", "test_f1", "test_f1_noisy", "test_f1_clean", "best_epoch"]


def probe_labels(
    states: np.ndarray | torch.Tensor,
    noisy_labels: np.ndarray,
    clean_labels: np.ndarray,
    is_noisy: np.ndarray,
    memorised: np.ndarray,
    n_classes: int,
    settings: ProbingSettings,
    device: torch.device | str = "cpu",
) -> pd.DataFrame:
    """Probe layers 0..L of ``states`` ``[N, L+1, d]`` for both label targets; the table of :data:`LABEL_COLUMNS`.

    ``memorised`` is what a stratified split stratifies by (as for the memorisation probe);
    ``is_noisy`` defines the noisy and clean test examples.
    """
    features = torch.as_tensor(np.asarray(states, dtype=np.float32)).to(torch.device(device))
    Lp1 = features.shape[1]
    seeds = list(settings.seeds)
    layers = [layer for layer in range(Lp1) for _ in seeds]
    probe_seeds = [s for _ in range(Lp1) for s in seeds]
    is_noisy = np.asarray(is_noisy, dtype=bool)
    options = {**settings.probe_options(), "class_weights": None}
    frames = []
    for target, y in zip(TARGETS, (noisy_labels, clean_labels)):
        log.info("label probes (%s): %d examples, %d classes, %d layers x %d probe seeds", target, len(y), n_classes,
                 Lp1, len(seeds))
        scores = train_probes(
            features, np.asarray(y), layers, probe_seeds, metric="macro", n_classes=n_classes,
            strata=np.asarray(memorised, dtype=bool), groups={"noisy": is_noisy, "clean": ~is_noisy},
            generator_seed=settings.seed, **options,
        )
        frames.append(scores.assign(target=target, layer=layers, probe_seed=probe_seeds))
    return pd.concat(frames, ignore_index=True)[LABEL_COLUMNS]


def original_labels(examples_path: str | Path, example_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``label_orig`` and ``is_noisy`` of the training examples ``example_ids``, in that order."""
    examples = pd.read_parquet(examples_path, columns=["example_id", "split", "label_orig", "is_noisy"])
    train = examples[examples["split"] == "train"].set_index("example_id")
    missing = np.setdiff1d(example_ids, train.index.to_numpy())
    if len(missing):
        raise DataError(f"{examples_path}: training examples {missing[:5].tolist()} are missing; re-run data_prepare")
    rows = train.loc[example_ids]
    return rows["label_orig"].to_numpy(dtype=np.int64), rows["is_noisy"].to_numpy(dtype=bool)


def run_label_probes(
    examples_path: str | Path,
    tokens_path: str | Path,
    model_dir: str | Path,
    settings: Mapping[str, Any] | ProbingSettings,
    labels_path: str | Path,
    events_path: str | Path,
    memorised: MemorisedSpec = None,
) -> pd.DataFrame:
    """The ``localise_label_probes`` rule: pooled states, both label probes, the label table and the events."""
    s = ProbingSettings.from_dict(settings)
    device, job = start_job(s, examples_path, tokens_path, memorised)
    clean_labels, is_noisy = original_labels(examples_path, job.train.example_ids)
    if not is_noisy.any() or is_noisy.all():
        raise DataError(f"{examples_path}: label probes need noisy and clean training examples (is_noisy)")
    model = load_classifier(model_dir).to(device)
    choice = job_precision(s, model, job.train, s.eval_batch_size, device)
    states = pooled_states(model, job.train, s.eval_batch_size, device, choice.resolved, s.final_norm)
    del model
    labels = probe_labels(states, job.train.labels, clean_labels, is_noisy, job.memorised, job.n_classes, s, device)
    events = probing_events(labels, chance_macro_f1(job.train.labels), s.event_margin, s.initiation_fraction)
    log.info("probing event layer %s, initiation layer %s", events.loc[0, "event_layer"], events.loc[0, "initiation_layer"])
    meta = provenance(
        "probing",
        s,
        {"examples": examples_path, "tokens": tokens_path, "model": model_dir},
        memorised=job.memorised_source,
        n_examples=len(job.train),
        n_noisy=int(is_noisy.sum()),
        n_classes=job.n_classes,
        precision=choice.record(),
    )
    write_parquet(labels, labels_path, metadata=meta)
    write_parquet(events, events_path, metadata=meta)
    log.info("wrote %s (%d rows) and %s", labels_path, len(labels), events_path)
    return labels
