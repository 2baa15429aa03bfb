"""Centroid analysis (docs/protocol.md §6.8): when do memorised examples cross over to their new label?

For each ordered class pair (a, b) and each analysed layer (``layers``: 0..L, or the block
outputs 1..L as published; pooled hidden states from one batched pass,
:func:`memloc.localise.hidden.pooled_states`, of the training examples):

* the centroids ``c_a`` and ``c_b`` of the *clean* training examples of classes a and b;
* every example is projected onto the line through them, scaled so ``c_a -> 0`` and ``c_b -> 1``:
  ``t(x) = (x - c_a) . (c_b - c_a) / |c_b - c_a|^2``;
* three groups are projected: ``clean_a`` (clean examples labelled a), ``noisy`` (memorised
  examples labelled a whose original label is b) and ``clean_b`` (clean examples labelled b).

Events per pair, and with ``pooling: pooled`` also of the positions pooled over every pair
(the published protocol: one event per run):

* **crossing** (``crossing``): ``first_below``, the first layer whose mean ``noisy`` position is
  below 0.5 (the memorised examples, originally b, now sit closer to their training label a);
  ``last_downward``, the last layer whose mean is below 0.5 while the previous analysed layer's
  was above it (the layer before the first counts as above), as the published notebook reads it;
* **initiation** = the first layer from which, at that layer and every later one, the 87.5th
  percentile of ``clean_a`` lies below the 12.5th percentile of ``clean_b`` (the classes are
  separated).

Either is NaN when it never happens. A pair without clean examples of either class is skipped
with a log line; so is a pair without noisy examples, except that its clean positions still
join the pool when pooling (the published script pools every ordered pair). "Clean" means
neither noisy nor in the memorised set.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from memloc.errors import ConfigError
from memloc.io import write_parquet
from memloc.localise.common import MemorisedSpec, job_precision, provenance, start_job
from memloc.localise.hidden import pooled_states
from memloc.localise.settings import PooledStateSettings
from memloc.models.loading import load_classifier

log = logging.getLogger("memloc.localise.centroids")

GROUPS = ("clean_a", "noisy", "clean_b")
FIRST_LAYER = {"with_embeddings": 0, "blocks": 1}  # localisation.centroids.layers -> first analysed layer
POOLINGS = ("per_pair", "pooled")
CROSSINGS = ("first_below", "last_downward")
RAW_COLUMNS = ["class_a", "class_b", "layer", "group", "n", "mean", "p12_5", "median", "p87_5"]
EVENT_COLUMNS = ["scope", "class_a", "class_b", "n_noisy", "crossing_layer", "initiation_layer"]
LOW_Q, HIGH_Q = 12.5, 87.5
CHUNK = 4096  # examples per step when averaging / projecting (bounds memory on large data sets)


@dataclass(frozen=True)
class CentroidsSettings(PooledStateSettings):
    """``localisation.centroids`` plus the shared and pooled-state keys."""

    technique: ClassVar[str] = "centroids"

    max_pairs: int | None  # ordered class pairs analysed, most memorised examples first; None: all
    layers: str  # "with_embeddings": 0..L; "blocks": 1..L (the block outputs, as published)
    pooling: str  # "per_pair": events per pair and their mean; "pooled": also of the positions of every pair pooled
    crossing: str  # "first_below" or "last_downward" (see crossing_layer)

    def __post_init__(self) -> None:
        for key, allowed in (("layers", FIRST_LAYER), ("pooling", POOLINGS), ("crossing", CROSSINGS)):
            if getattr(self, key) not in allowed:
                raise ConfigError(
                    f"{self.block}.{key} is {getattr(self, key)!r}; expected one of {', '.join(allowed)} "
                    "(set it in the config; docs/protocol.md §6.8)"
                )


def project(x: np.ndarray, c_a: np.ndarray, c_b: np.ndarray) -> np.ndarray:
    """Positions of ``x`` (``[..., d]``) on the line through ``c_a`` (0) and ``c_b`` (1).

    ``t(x) = (x - c_a) . (c_b - c_a) / |c_b - c_a|^2``, computed in the precision of ``x``
    (at least float32) after centring on ``c_a``. Broadcasts over leading dimensions, e.g.
    ``x [n, layers, d]`` with centroids ``[layers, d]``. NaN where the two centroids coincide.
    """
    x = np.asarray(x)
    dtype = np.result_type(x.dtype, np.float32)
    c_a = np.asarray(c_a, dtype=np.float64)
    axis = np.asarray(c_b, dtype=np.float64) - c_a
    sq = (axis * axis).sum(-1)
    dots = np.einsum("...d,...d->...", x.astype(dtype, copy=False) - c_a.astype(dtype), axis.astype(dtype))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sq > 0, dots.astype(np.float64) / sq, np.nan)


def _chunks(idx: np.ndarray, size: int = CHUNK):
    for start in range(0, len(idx), size):
        yield idx[start : start + size]


def group_mean(states: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Mean ``[L+1, d]`` (float64) of ``states[idx]``, accumulated in chunks."""
    total = np.zeros(states.shape[1:], dtype=np.float64)
    for chunk in _chunks(idx):
        total += states[chunk].sum(0, dtype=np.float64)
    return total / len(idx)


def group_positions(states: np.ndarray, idx: np.ndarray, c_a: np.ndarray, c_b: np.ndarray) -> np.ndarray:
    """Positions ``[n, L+1]`` of ``states[idx]`` (projected in chunks, bounded memory)."""
    if len(idx) == 0:
        return np.empty((0, states.shape[1]))
    return np.concatenate([project(states[chunk], c_a, c_b) for chunk in _chunks(idx)])


def crossing_layer(noisy_mean: np.ndarray, layers: np.ndarray, rule: str) -> float:
    """The layer (from ``layers``, one per entry of ``noisy_mean``) where the mean noisy position
    crosses 0.5; NaN if it never does.

    ``first_below``: the first layer with a mean below 0.5. ``last_downward``: the last layer with
    a mean below 0.5 whose previous layer's mean is above 0.5, the layer before the first counting
    as above (the published notebook's rule: a curve that dips below 0.5, climbs back and
    crosses again crosses at the second drop; one that ends above 0.5 keeps its last drop).
    """
    mean = np.asarray(noisy_mean, dtype=float)
    below = mean < 0.5
    if rule == "first_below":
        hits = np.flatnonzero(below)
        return float(layers[hits[0]]) if hits.size else float("nan")
    if rule == "last_downward":
        before = np.concatenate([[np.inf], mean[:-1]])
        hits = np.flatnonzero((before > 0.5) & below)
        return float(layers[hits[-1]]) if hits.size else float("nan")
    raise ConfigError(f"localisation.centroids.crossing is {rule!r}; expected one of {', '.join(CROSSINGS)}")


def initiation_layer(a_high: np.ndarray, b_low: np.ndarray, layers: np.ndarray) -> float:
    """First layer (from ``layers``) from which ``a_high < b_low`` holds at every later layer; NaN if never."""
    separated = np.asarray(a_high) < np.asarray(b_low)
    if not separated[-1]:
        return float("nan")
    # The last layer where separation fails; initiation is the one after it.
    failing = np.flatnonzero(~separated)
    return float(layers[failing[-1] + 1] if failing.size else layers[0])


def position_stats(t: np.ndarray) -> dict[str, Any]:
    """``n``, ``mean``, ``p12_5``, ``median``, ``p87_5`` over examples of positions ``t [n, layers]``."""
    return {
        "n": len(t),
        "mean": t.mean(0),
        "p12_5": np.percentile(t, LOW_Q, axis=0),
        "median": np.median(t, axis=0),
        "p87_5": np.percentile(t, HIGH_Q, axis=0),
    }


def events_of(stats: Mapping[str, Mapping[str, Any]], layers: np.ndarray, rule: str) -> tuple[float, float]:
    """(crossing, initiation) from the position statistics of the three groups."""
    crossing = crossing_layer(stats["noisy"]["mean"], layers, rule)
    return crossing, initiation_layer(stats["clean_a"]["p87_5"], stats["clean_b"]["p12_5"], layers)


def class_pairs(
    labels: np.ndarray, label_orig: np.ndarray, noisy: np.ndarray, max_pairs: int | None
) -> list[tuple[int, int, int]]:
    """Ordered pairs ``(a, b, n_noisy)`` of classes a != b, most noisy examples first.

    ``n_noisy`` counts memorised examples labelled a that were originally b. With ``max_pairs``
    only the first pairs of that order (ties by (a, b)) are kept; None keeps all.
    """
    classes = np.union1d(np.unique(labels), np.unique(label_orig))
    pairs = [
        (int(a), int(b), int(np.sum(noisy & (labels == a) & (label_orig == b))))
        for a in classes
        for b in classes
        if a != b
    ]
    pairs.sort(key=lambda t: (-t[2], t[0], t[1]))
    return pairs if max_pairs is None else pairs[: int(max_pairs)]


def centroid_analysis(
    states: np.ndarray,
    labels: np.ndarray,
    label_orig: np.ndarray,
    memorised: np.ndarray,
    settings: CentroidsSettings,
    clean: np.ndarray | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Projections summary and events from pooled states ``[N, L+1, d]``.

    ``memorised`` is the memorised mask, ``clean`` the mask of clean examples (default
    ``~memorised``; examples in both count as memorised); ``settings.max_pairs`` bounds the pairs
    analysed (see :func:`class_pairs`), ``settings.layers`` the layers, ``settings.crossing`` the
    crossing rule. Returns

    * raw: ``class_a``, ``class_b``, ``layer``, ``group`` (clean_a / noisy / clean_b), ``n``,
      ``mean``, ``p12_5``, ``median``, ``p87_5`` of the positions; with ``pooling: pooled`` also
      ``scope``: "pair" rows (every pooled pair, its clean groups even without noisy examples)
      and "pooled" rows (``class_a``, ``class_b`` null) of the positions pooled over the pairs;
    * events: ``scope`` ("pair", "mean", and with pooling "pooled"), ``class_a``, ``class_b``,
      ``n_noisy``, ``crossing_layer``, ``initiation_layer`` (float, NaN if never); the "mean" row
      averages the pairs' layers over the pairs where they are defined (``n_pairs_crossing`` /
      ``n_pairs_initiation`` say how many); the "pooled" row holds the events of the pooled
      positions (both counts: the pairs pooled).
    """
    states = np.asarray(states)
    labels = np.asarray(labels)
    label_orig = np.asarray(label_orig)
    memorised = np.asarray(memorised, dtype=bool)
    clean = ~memorised if clean is None else np.asarray(clean, dtype=bool) & ~memorised
    first = FIRST_LAYER[settings.layers]
    states = states[:, first:]
    layers = np.arange(first, first + states.shape[1])
    pooling = settings.pooling == "pooled"
    pool: dict[str, list[np.ndarray]] = {g: [] for g in GROUPS}
    n_pooled = 0
    centroid_cache: dict[int, np.ndarray] = {}

    def centroid(c: int, idx: np.ndarray) -> np.ndarray:  # clean centroid of a class, once per class
        if c not in centroid_cache:
            centroid_cache[c] = group_mean(states, idx)
        return centroid_cache[c]

    def raw_frame(a, b, group: str, stats: Mapping[str, Any], scope: str) -> pd.DataFrame:
        frame = pd.DataFrame({"class_a": a, "class_b": b, "layer": layers, "group": group, **stats})
        return frame.assign(scope=scope) if pooling else frame

    raw_rows: list[pd.DataFrame] = []
    events: list[dict[str, Any]] = []
    for a, b, n_noisy in class_pairs(labels, label_orig, memorised, settings.max_pairs):
        members = {
            "clean_a": np.flatnonzero(clean & (labels == a)),
            "noisy": np.flatnonzero(memorised & (labels == a) & (label_orig == b)),
            "clean_b": np.flatnonzero(clean & (labels == b)),
        }
        if n_noisy == 0 and not pooling:
            log.info("pair %d -> %d skipped: no memorised examples labelled %d that were %d", a, b, a, b)
            continue
        if len(members["clean_a"]) == 0 or len(members["clean_b"]) == 0:
            log.info("pair %d -> %d skipped: no clean examples of class %s", a, b,
                     a if len(members["clean_a"]) == 0 else b)
            continue
        c_a = centroid(a, members["clean_a"])  # [layers, d]
        c_b = centroid(b, members["clean_b"])
        stats = {}
        for group in GROUPS:
            if len(members[group]) == 0:  # a pooled pair without noisy examples
                continue
            t = group_positions(states, members[group], c_a, c_b)  # [n, layers]
            if pooling:
                pool[group].append(t)
            stats[group] = position_stats(t)
            raw_rows.append(raw_frame(a, b, group, stats[group], "pair"))
        if pooling:
            n_pooled += 1
        if n_noisy == 0:
            log.info("pair %d -> %d: no memorised examples labelled %d that were %d; clean positions pooled only",
                     a, b, a, b)
            continue
        crossing, initiation = events_of(stats, layers, settings.crossing)
        log.info("pair %d -> %d (%d memorised): crossing %s, initiation %s", a, b, n_noisy, crossing, initiation)
        events.append(
            {"scope": "pair", "class_a": a, "class_b": b, "n_noisy": n_noisy,
             "crossing_layer": crossing, "initiation_layer": initiation}
        )
    ev = pd.DataFrame(events, columns=EVENT_COLUMNS)
    if ev.empty:
        log.warning("no class pair has memorised examples; the events table holds only an empty mean row")
    mean_row = {
        "scope": "mean",
        "class_a": pd.NA,
        "class_b": pd.NA,
        "n_noisy": int(ev["n_noisy"].sum()) if len(ev) else 0,
        "crossing_layer": float(ev["crossing_layer"].mean()) if len(ev) else np.nan,
        "initiation_layer": float(ev["initiation_layer"].mean()) if len(ev) else np.nan,
    }
    extra = [mean_row]
    if pooling:
        pooled_row, pooled_raw = pooled_events(pool, layers, settings.crossing)
        raw_rows += [raw_frame(pd.NA, pd.NA, group, stats, "pooled") for group, stats in pooled_raw.items()]
        log.info("%d pairs pooled (%d memorised): crossing %s, initiation %s", n_pooled, pooled_row["n_noisy"],
                 pooled_row["crossing_layer"], pooled_row["initiation_layer"])
        extra.append(pooled_row)
    raw = (
        pd.concat(raw_rows, ignore_index=True)
        if raw_rows
        else pd.DataFrame(columns=RAW_COLUMNS + (["scope"] if pooling else []))
    )
    if pooling:
        raw = raw.astype({"class_a": "Int64", "class_b": "Int64"})
    ev = pd.concat([ev, pd.DataFrame(extra)], ignore_index=True)
    ev["class_a"] = ev["class_a"].astype("Int64")
    ev["class_b"] = ev["class_b"].astype("Int64")
    ev["n_noisy"] = ev["n_noisy"].astype("int64")
    ev["crossing_layer"] = ev["crossing_layer"].astype(float)
    ev["initiation_layer"] = ev["initiation_layer"].astype(float)
    pairs = ev["scope"] == "pair"
    ev["n_pairs_crossing"] = np.where(pairs, np.nan, ev.loc[pairs, "crossing_layer"].notna().sum())
    ev["n_pairs_initiation"] = np.where(pairs, np.nan, ev.loc[pairs, "initiation_layer"].notna().sum())
    if pooling:
        ev.loc[ev["scope"] == "pooled", ["n_pairs_crossing", "n_pairs_initiation"]] = n_pooled
    return raw, ev


def pooled_events(pool: Mapping[str, list[np.ndarray]], layers: np.ndarray, rule: str) -> tuple[dict, dict]:
    """The "pooled" events row and the position statistics of each non-empty pooled group.

    Every pooled pair has both clean groups; the noisy group may be empty (no crossing then)."""
    stats = {g: position_stats(np.concatenate(pool[g])) for g in GROUPS if pool[g]}
    row = {"scope": "pooled", "class_a": pd.NA, "class_b": pd.NA, "n_noisy": 0,
           "crossing_layer": np.nan, "initiation_layer": np.nan}
    if "noisy" in stats:
        row["n_noisy"] = stats["noisy"]["n"]
        row["crossing_layer"] = crossing_layer(stats["noisy"]["mean"], layers, rule)
    if "clean_a" in stats:
        row["initiation_layer"] = initiation_layer(stats["clean_a"]["p87_5"], stats["clean_b"]["p12_5"], layers)
    return row, stats


def run_centroids(
    examples_path: str | Path,
    tokens_path: str | Path,
    model_dir: str | Path,
    settings: Mapping[str, Any] | CentroidsSettings,
    raw_path: str | Path,
    events_path: str | Path,
    memorised: MemorisedSpec = None,
) -> pd.DataFrame:
    """The ``centroids`` rule: pooled states of the model, projections, events.

    ``settings``: :class:`CentroidsSettings` or the rule's params dict.
    """
    s = CentroidsSettings.from_dict(settings)
    device, job = start_job(s, examples_path, tokens_path, memorised)
    examples = pd.read_parquet(examples_path, columns=["example_id", "label", "label_orig"])
    examples = examples.set_index("example_id").loc[job.train.example_ids]
    model = load_classifier(model_dir).to(device)
    choice = job_precision(s, model, job.train, s.eval_batch_size, device)
    states = pooled_states(model, job.train, s.eval_batch_size, device, choice.resolved, s.final_norm)
    raw, events = centroid_analysis(
        states,
        examples["label"].to_numpy(),
        examples["label_orig"].to_numpy(),
        job.memorised,
        s,
        job.clean,
    )
    meta = provenance(
        "centroids",
        s,
        {"examples": examples_path, "tokens": tokens_path, "model": model_dir},
        memorised=job.memorised_source,
        precision=choice.record(),
    )
    write_parquet(raw, raw_path, metadata=meta)
    write_parquet(events, events_path, metadata=meta)
    return events
