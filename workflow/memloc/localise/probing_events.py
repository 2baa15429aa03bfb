"""Probing events (docs/protocol.md §6.7): where memorisation overtakes generalisation, and where the task is read out.

From the label probes of one run (macro F1 per layer and probe seed, also on the noisy and on the
clean test examples), with F1 the mean over probe seeds at layer l = 0..L:

* **event layer**: the first layer where the noisy-label probe's F1 on noisy test examples exceeds
  the original-label probe's F1 on the same examples by more than ``margin``: from it on the
  representation says "the (wrong) training label" more clearly than "the original label";
* **initiation layer**: the first layer where the original-label probe's F1 on clean test
  examples, normalised as ``(F1_l - chance) / (max_l F1_l - chance)``, exceeds ``fraction``.
  ``chance`` is the macro F1 of a random permutation of the training labels against themselves,
  whose expectation is exactly 1/C for C classes (class c's F1 is TP/n_c with E[TP] = n_c^2 / N).

Either is NaN when it never happens (the initiation also when no layer beats chance).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: The three curves the events read: (probe target, test examples).
CURVES = {
    "noisy_label_on_noisy": ("noisy_label", "test_f1_noisy"),
    "clean_label_on_noisy": ("clean_label", "test_f1_noisy"),
    "clean_label_on_clean": ("clean_label", "test_f1_clean"),
}
EVENT_COLUMNS = ["num_layers", "event_layer", "initiation_layer", "chance_f1", "peak_f1"]


def chance_macro_f1(labels: np.ndarray) -> float:
    """Expected macro F1 of a random permutation of ``labels`` against themselves: 1 / (classes present)."""
    return 1.0 / len(np.unique(np.asarray(labels)))


def event_layer(noisy_label_f1, clean_label_f1, margin: float, layers=None) -> float:
    """The first layer whose noisy-label F1 exceeds the clean-label F1 by more than ``margin`` (NaN: never)."""
    a, b = np.asarray(noisy_label_f1, dtype=float), np.asarray(clean_label_f1, dtype=float)
    layers = np.arange(len(a)) if layers is None else np.asarray(layers)
    hit = np.flatnonzero(a > b + margin)
    return float(layers[hit[0]]) if len(hit) else float("nan")


def initiation_layer(curve, chance: float, fraction: float, layers=None) -> float:
    """The first layer whose F1, normalised from ``chance`` to the curve's maximum, exceeds ``fraction``
    (NaN when no layer beats chance)."""
    c = np.asarray(curve, dtype=float)
    layers = np.arange(len(c)) if layers is None else np.asarray(layers)
    peak = np.nanmax(c) if np.isfinite(c).any() else float("nan")
    if not peak > chance:
        return float("nan")
    hit = np.flatnonzero((c - chance) / (peak - chance) > fraction)
    return float(layers[hit[0]]) if len(hit) else float("nan")


def label_curves(labels: pd.DataFrame) -> pd.DataFrame:
    """The curves of :data:`CURVES` by layer: mean over probe seeds (undefined scores left out)."""
    out = {}
    for name, (target, column) in CURVES.items():
        sub = labels[labels["target"] == target]
        out[name] = sub.groupby("layer")[column].mean()
    return pd.DataFrame(out).sort_index()


def probing_events(labels: pd.DataFrame, chance: float, margin: float, fraction: float) -> pd.DataFrame:
    """One row: ``num_layers`` (L), ``event_layer``, ``initiation_layer``, ``chance_f1``, ``peak_f1``.

    ``labels`` is a run's label-probe table (``target``, ``layer``, ``test_f1_noisy``, ``test_f1_clean``).
    """
    curves = label_curves(labels)
    layers = curves.index.to_numpy()
    row = {
        "num_layers": int(layers.max()),
        "event_layer": event_layer(curves["noisy_label_on_noisy"], curves["clean_label_on_noisy"], margin, layers),
        "initiation_layer": initiation_layer(curves["clean_label_on_clean"], chance, fraction, layers),
        "chance_f1": float(chance),
        "peak_f1": float(curves["clean_label_on_clean"].max()),
    }
    return pd.DataFrame([row], columns=EVENT_COLUMNS).astype({"num_layers": "int64"})
