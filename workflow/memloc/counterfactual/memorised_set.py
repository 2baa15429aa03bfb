"""The training examples the localisation techniques treat as memorised.

* ``noisy``: the injected label noise (the paper's choice): memorised = is_noisy.
* ``top_cm``: the clean training examples with the highest counterfactual memorisation, a share
  ``top_cm_share`` of all clean training examples. Ties are broken by ``example_id`` so the set
  is reproducible; clean examples without a CM estimate (never or always in a subset) are never
  picked. The noisy examples are not memorised in this set.

The table (``counterfactual/{dataset}/{model}/memorised_set.parquet``) has one row per training
example: ``example_id``, ``memorised`` (bool), ``set`` (the kind), ``is_noisy``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

MEMORISED_SET_KINDS = ("noisy", "top_cm")
MEMORISED_SET_COLUMNS = ("example_id", "memorised", "set", "is_noisy")


def n_top(n_clean: int, share: float) -> int:
    """How many clean examples a ``top_cm`` set holds: round(share * n_clean), at least 1."""
    return max(1, int(round(share * n_clean))) if n_clean else 0


def memorised_set(
    kind: str,
    examples: pd.DataFrame | None = None,
    memorisation: pd.DataFrame | None = None,
    top_cm_share: float = 0.15,
) -> pd.DataFrame:
    """One row per training example marking the memorised ones (see the module docstring).

    ``noisy`` needs ``examples`` (the examples table; its training split is used) or a
    memorisation table; ``top_cm`` needs ``memorisation``.
    """
    if kind not in MEMORISED_SET_KINDS:
        raise ValueError(f"unknown memorised set {kind!r}; expected one of {MEMORISED_SET_KINDS}")
    if kind == "noisy":
        if examples is not None:
            base = examples.loc[examples["split"] == "train", ["example_id", "is_noisy"]]
        elif memorisation is not None:
            base = memorisation[["example_id", "is_noisy"]]
        else:
            raise ValueError("memorised_set('noisy') needs the examples table or a memorisation table")
        base = base.sort_values("example_id").reset_index(drop=True)
        memorised = base["is_noisy"].to_numpy(dtype=bool)
    else:
        if memorisation is None:
            raise ValueError("memorised_set('top_cm') needs the memorisation table")
        if not 0 < top_cm_share < 1:
            raise ValueError(f"top_cm_share must lie in (0, 1), got {top_cm_share}")
        base = memorisation[["example_id", "is_noisy", "counterfactual_memorisation"]]
        base = base.sort_values("example_id").reset_index(drop=True)
        clean = ~base["is_noisy"].to_numpy(dtype=bool)
        cm = base["counterfactual_memorisation"].to_numpy(dtype=np.float64)
        candidates = np.flatnonzero(clean & np.isfinite(cm))
        take = min(n_top(int(clean.sum()), top_cm_share), len(candidates))
        # Highest CM first; lexsort's last key is primary, ties go to the smaller example_id.
        ids = base["example_id"].to_numpy()
        order = candidates[np.lexsort((ids[candidates], -cm[candidates]))]
        memorised = np.zeros(len(base), dtype=bool)
        memorised[order[:take]] = True
    return pd.DataFrame(
        {
            "example_id": base["example_id"].to_numpy(dtype=np.int64),
            "memorised": memorised,
            "set": kind,
            "is_noisy": base["is_noisy"].to_numpy(dtype=bool),
        }
    )


def read_memorised_ids(path: str | Path) -> np.ndarray:
    """Sorted ``example_id`` array of the memorised examples in a memorised-set table."""
    df = pd.read_parquet(path, columns=["example_id", "memorised"])
    return np.sort(df.loc[df["memorised"].astype(bool), "example_id"].to_numpy(dtype=np.int64))


def read_memorised_mask(path: str | Path, example_ids) -> np.ndarray:
    """Boolean mask over ``example_ids``: True where the example is in the memorised set."""
    return np.isin(np.asarray(example_ids), read_memorised_ids(path))
