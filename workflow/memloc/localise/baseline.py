"""The baseline model of a localisation run (docs/protocol.md §6.1, §7.3).

Forgetting gradients (``divide_frozen``) and probing (layer 1) compare the analysed model with a
model whose blocks the main task never updated: the ``frozen`` variant for ordinary models, and
``control.baseline`` for control models (``frozen``, or ``control-frozen``, which also carries the
auxiliary task). ``localisation.baseline_seed`` fixes the baseline's training seed for every run
(the paper: seed 1); null keeps each run's own seed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from memloc.control.pairs import is_control_variant


def baseline_variant(cfg: Mapping[str, Any], variant: str) -> str:
    """The variant a run of ``variant`` is compared with."""
    return cfg["control"]["baseline"] if is_control_variant(variant) else "frozen"


def baseline_seed(cfg: Mapping[str, Any], seed: int) -> int:
    """The training seed of the baseline of a run with training seed ``seed``."""
    fixed = cfg["localisation"]["baseline_seed"]
    return int(seed) if fixed is None else int(fixed)


def baseline_seeds(cfg: Mapping[str, Any], seeds: Iterable[int]) -> list[int]:
    """The seeds whose baseline models runs with training seeds ``seeds`` need (first-seen order)."""
    return list(dict.fromkeys(baseline_seed(cfg, s) for s in seeds))
