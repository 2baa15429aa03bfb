"""Small synthetic per-run tables in the shapes of docs/protocol.md §3.2, for tests, demos and figure checks.

Nothing here is a result: the numbers are drawn from a seeded generator so that every summary
table and figure can be built without running the models.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from memloc.stats.collect import (
    centroid_event_frames,
    centroid_frames,
    heatmaps_frames,
    layer_weights_frames,
    probing_frames,
    swapping_clean_frames,
)


def window_table(num_layers: int, rng, centre: float) -> pd.DataFrame:
    """One row per window (start, size, end, error, acc_memorised, acc_clean)."""
    rows = []
    for start in range(1, num_layers + 1):
        for end in range(start, num_layers + 1):
            layers = np.arange(start, end + 1)
            err = float(np.clip(np.exp(-0.5 * ((layers - centre) / 1.5) ** 2).sum() / 3 + rng.normal(0, 0.02), 0, 1))
            rows.append(dict(start=start, size=end - start + 1, end=end, error=err, acc_memorised=1 - err, acc_clean=0.997))
    return pd.DataFrame(rows)


def probing_table(num_layers: int, rng, probe_seeds: int = 3, centre: float = 3.0) -> pd.DataFrame:
    rows = []
    # Like the probing stage: the noisy model at layers 0..L, the frozen model at layer 1 only.
    for net, layers in (("noisy", range(num_layers + 1)), ("frozen", [1])):
        for ps in range(probe_seeds):
            for layer in layers:
                base = 0.3 + (0.4 / (1 + np.exp(-(layer - centre))) if net == "noisy" else 0.02 * layer)
                f1 = float(base + rng.normal(0, 0.02))
                rows.append(dict(layer=layer, probe_seed=ps, model=net, val_f1=f1, test_f1=f1))
    return pd.DataFrame(rows)


def centroid_table(num_layers: int, rng, crossing: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, events = [], []
    for a, b in ((0, 1), (1, 0)):
        for layer in range(num_layers + 1):
            noisy = 1.0 / (1 + np.exp(layer - crossing))  # from b (1) towards a (0)
            for group, mean in (("clean_a", 0.0), ("noisy", noisy), ("clean_b", 1.0)):
                mean = float(mean + rng.normal(0, 0.03))
                rows.append(dict(class_a=a, class_b=b, layer=layer, group=group, mean=mean, p12_5=mean - 0.2, p87_5=mean + 0.2))
        events.append(dict(scope="pair", class_a=a, class_b=b,
                           crossing_layer=float(crossing), initiation_layer=float(crossing + 1)))
    events.append(dict(scope="mean", class_a=pd.NA, class_b=pd.NA,
                       crossing_layer=float(crossing), initiation_layer=float(crossing + 1)))
    ev = pd.DataFrame(events).astype({"class_a": "Int64", "class_b": "Int64"})
    return pd.DataFrame(rows), ev


def summary_tables(
    datasets: Sequence[str] = ("movies",),
    models: Sequence[str] = ("minilm",),
    seeds: Sequence[int] = (1,),
    techniques: Sequence[str] = ("swapping", "retraining", "gradients", "probing"),
    num_layers: int = 4,
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    """The summary tables (layer_weights, heatmaps, probing, centroids, centroid_events,
    swapping_clean) of a synthetic run over the given grid."""
    from memloc.stats.collect import heatmap_layer_weights, window_heatmap
    from memloc.stats.mcog import probing_layer_weights

    rng = np.random.default_rng(seed)
    weights, heats, probes, cents, evs = [], [], [], [], []
    for di, dataset in enumerate(datasets):
        for model in models:
            for s in seeds:
                centre = 1.5 + di * 0.7 + rng.normal(0, 0.2)
                base = {"dataset": dataset, "model": model, "variant": "noisy", "seed": s}
                for tech in techniques:
                    ids = {"technique": tech, **base}
                    if tech in ("swapping", "retraining"):
                        raw = window_table(num_layers, rng, centre)
                        heats.append((ids, raw))
                        w = heatmap_layer_weights(window_heatmap(raw))
                    elif tech == "probing":
                        raw = probing_table(num_layers, rng, centre=centre)
                        probes.append((base, raw))
                        w = probing_layer_weights(raw).reset_index()
                    else:
                        g = np.exp(-0.5 * ((np.arange(1, num_layers + 1) - centre) / 1.5) ** 2) + rng.random(num_layers) * 0.1
                        w = pd.DataFrame({"layer": np.arange(1, num_layers + 1), "weight": g / g.sum()})
                    weights.append((ids, w))
                raw, ev = centroid_table(num_layers, rng, crossing=int(round(centre)) + 1)
                cents.append((base, raw))
                evs.append((base, ev))
    return {
        "layer_weights": layer_weights_frames(weights),
        "heatmaps": heatmaps_frames(heats),
        "probing": probing_frames(probes),
        "centroids": centroid_frames(cents),
        "centroid_events": centroid_event_frames(evs),
        "swapping_clean": swapping_clean_frames((ids, raw) for ids, raw in heats if ids["technique"] == "swapping"),
    }


def control_table(techniques=("swapping", "retraining", "gradients", "probing"), datasets=("movies",),
                  models=("minilm",), num_layers: int = 4, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    skill = {"swapping": 0.95, "retraining": 0.95, "gradients": 0.6, "probing": 0.5}
    rows = []
    pairs = [(i, j) for i in range(1, num_layers + 1) for j in range(i + 1, num_layers + 1)]
    for t in techniques:
        for d in datasets:
            for m in models:
                for i, j in pairs:
                    hit = float(rng.random() < skill.get(t, 0.5))
                    rows.append(dict(technique=t, dataset=d, model=m, target_layers=f"{i}-{j}", acc_at_1=hit,
                                     acc_at_2=float(min(1.0, hit * 0.5 + (rng.random() < 0.5) * 0.5)), chance=2 / num_layers))
    return pd.DataFrame(rows)


def counterfactual_table(datasets=("movies",), models=("minilm",), families=None, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i, d in enumerate(datasets):
        for m in models:
            rows.append(dict(dataset=d, model=m, family=(families or {}).get(d, "other"),
                             generalisation_mean=0.3 + 0.1 * i + rng.normal(0, 0.02), cm_noisy_mean=0.5, cm_clean_mean=0.05,
                             auc_noisy=0.9, reliability=0.8))
    return pd.DataFrame(rows)


def probing_events_table(datasets=("movies",), models=("minilm",), seeds=(1,), num_layers: int = 4,
                         seed: int = 0) -> pd.DataFrame:
    """``summary/probing_events.parquet`` rows: later data sets get later events."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, d in enumerate(datasets):
        for m in models:
            for s in seeds:
                event = min(num_layers, 1 + i + int(rng.integers(0, 2)))
                rows.append(dict(dataset=d, model=m, variant="noisy", seed=s, num_layers=num_layers,
                                 event_layer=float(event), initiation_layer=float(min(num_layers, event + 1))))
    return pd.DataFrame(rows)


def validation_table(datasets=("movies",), models=("minilm",), seeds=(1,), seed: int = 0) -> pd.DataFrame:
    """``summary/validation.parquet`` rows with accuracies that fall with the data set's index."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, d in enumerate(datasets):
        for m in models:
            for s in seeds:
                acc = float(np.clip(0.95 - 0.05 * i + rng.normal(0, 0.005), 0, 1))
                rows.append(dict(dataset=d, model=m, variant="noisy", seed=s, n=500, accuracy=acc, chance=0.5,
                                 accuracy_norm=(acc - 0.5) / 0.5))
    return pd.DataFrame(rows)
