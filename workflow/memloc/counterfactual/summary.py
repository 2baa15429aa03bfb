"""The counterfactual-memorisation jobs after the subset models: estimator and memorised set.

:func:`run_memorisation` reads the K subset tables and writes the memorisation table, the
dataset-level summary (JSON) and the reliability curve; :func:`run_memorised_set` writes the
memorised-set table the localisation stages read.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from memloc.counterfactual.estimate import (
    attach_is_noisy,
    estimate_memorisation,
    json_safe,
    load_subset_predictions,
    summarise,
)
from memloc.counterfactual.memorised_set import memorised_set
from memloc.counterfactual.reliability import reliability_curve

log = logging.getLogger("memloc.counterfactual")


def run_memorisation(
    examples_path: str | Path,
    subset_paths: Sequence[str | Path],
    memorisation_path: str | Path,
    summary_path: str | Path,
    reliability_path: str | Path,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    reliability_splits: int = 20,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Estimate per-example memorisation from K subset tables and write the three outputs."""
    from memloc import __version__
    from memloc.io import write_json, write_parquet

    examples = pd.read_parquet(examples_path, columns=["example_id", "split", "is_noisy"])
    ids, in_train, p, correct = load_subset_predictions(list(subset_paths))
    n_models = in_train.shape[0]
    is_noisy = attach_is_noisy(ids, examples)
    n_train = int((examples["split"] == "train").sum())
    if len(ids) != n_train:
        log.warning("the subset tables cover %d examples but the examples table has %d training examples", len(ids), n_train)
    log.info("estimating counterfactual memorisation of %d examples from %d subset models (%d bootstrap resamples)",
             len(ids), n_models, n_boot)
    table, replicates = estimate_memorisation(ids, in_train, p, is_noisy, n_boot, confidence, seed)
    n_undefined = int(table["counterfactual_memorisation"].isna().sum())
    if n_undefined:
        log.warning(
            "%d examples have no counterfactual memorisation estimate (never in: %d, never out: %d); "
            "raise counterfactual.models to cover them",
            n_undefined, int((table.n_in == 0).sum()), int((table.n_out == 0).sum()),
        )
    curve = reliability_curve(in_train, p, n_splits=reliability_splits, seed=seed)
    at_k = curve.loc[curve["k"] == n_models].iloc[0]
    summary = summarise(table, replicates, confidence)
    inside = in_train
    summary.update(
        {
            "reliability": float(at_k["reliability"]),
            "reliability_half_correlation": float(at_k["half_correlation"]),
            "reliability_half_correlation_sd": float(at_k["half_correlation_sd"]),
            "accuracy_in_mean": float(correct[inside].mean()) if inside.any() else float("nan"),
            "accuracy_out_mean": float(correct[~inside].mean()) if (~inside).any() else float("nan"),
            "n_boot": int(n_boot),
            "seed": int(seed),
            "memloc_version": __version__,
            **(provenance or {}),
        }
    )
    summary = json_safe(summary)
    meta = {k: v for k, v in summary.items() if k in ("n_models", "n_boot", "confidence", "seed", "memloc_version")}
    meta.update(provenance or {})
    write_parquet(table, memorisation_path, metadata=meta)
    write_parquet(curve, reliability_path, metadata=meta)
    write_json(summary, summary_path)
    log.info(
        "generalisation %.4f, CM noisy %.4f vs clean %.4f (difference %.4f), AUC %.3f, reliability %.3f",
        *(summary.get(k) if summary.get(k) is not None else float("nan")
          for k in ("generalisation_mean", "cm_noisy_mean", "cm_clean_mean", "cm_difference", "auc_noisy", "reliability")),
    )
    return summary


def run_memorised_set(
    kind: str,
    out_path: str | Path,
    examples_path: str | Path | None = None,
    memorisation_path: str | Path | None = None,
    top_cm_share: float = 0.15,
    provenance: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Write the memorised-set table of ``kind`` (``noisy`` or ``top_cm``)."""
    from memloc.io import write_parquet

    examples = pd.read_parquet(examples_path) if examples_path else None
    memorisation = pd.read_parquet(memorisation_path) if memorisation_path else None
    table = memorised_set(kind, examples, memorisation, top_cm_share)
    log.info("memorised set %s: %d of %d training examples", kind, int(table.memorised.sum()), len(table))
    meta = {"set": kind, "top_cm_share": float(top_cm_share) if kind == "top_cm" else None, **(provenance or {})}
    write_parquet(table, out_path, metadata=meta)
    return table


def run_memorisation_map(
    memorisation_path: str | Path, pdf_path: str | Path, png_path: str | Path, title: str | None = None
) -> None:
    """Draw the memorisation map of one memorisation table to PDF and PNG."""
    from memloc.figures.memorisation import memorisation_map
    from memloc.figures.style import save_figure

    table = pd.read_parquet(memorisation_path)
    fig = memorisation_map(table, title=title)
    save_figure(fig, pdf_path, png_path)
