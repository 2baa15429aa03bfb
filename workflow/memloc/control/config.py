"""The ``control`` config block: defaults, reference checks and what the rules need from it.

The schema (workflow/schemas/config.schema.yaml) fills in the defaults; :data:`DEFAULTS` repeats
them so that the rules also work with a validated config that predates the block.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from memloc.control.pairs import control_variants, model_num_layers, target_pairs
from memloc.errors import ConfigError

DEFAULTS: dict[str, Any] = {
    "enabled": False,
    "auxiliary": None,
    "auxiliary_learning_rate": 5.0e-6,
    "auxiliary_max_train_examples": None,
    "epochs": None,
    "learning_rate": None,
    "pairs": "default",
    "techniques": ["swapping", "retraining", "gradients", "probing"],
    "learned_accuracy": 0.9,
    "bootstrap": 1000,
    "confidence": 0.95,
    "seed": 0,
}
#: Keys handed to the training job (memloc.control.multitask.ControlSettings).
TRAINING_KEYS = ("auxiliary_learning_rate", "auxiliary_max_train_examples", "epochs", "learning_rate")


def control_block(cfg: dict) -> dict[str, Any]:
    """The effective ``control`` block: the config's keys over :data:`DEFAULTS`."""
    return {**DEFAULTS, **(cfg.get("control") or {})}


def check_control_config(cfg: dict, source: str = "config") -> None:
    """Dangling references in the ``control`` block (the schema cannot see them)."""
    block = control_block(cfg)
    aux = block["auxiliary"]
    if aux is not None and aux not in cfg.get("datasets", {}):
        defined = sorted(cfg.get("datasets", {}))
        close = difflib.get_close_matches(str(aux), defined, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(
            f"{source}: control.auxiliary names '{aux}', which is not defined under datasets{hint}. "
            f"Defined: {', '.join(defined)}."
        )
    pairs = block["pairs"]
    if not isinstance(pairs, str):
        target_pairs(10**6, pairs)  # syntax only; the depth is checked per model


def auxiliary_dataset(cfg: dict, dataset: str) -> str:
    """The auxiliary data set of ``dataset``'s control models (``None`` in the config: itself)."""
    aux = control_block(cfg)["auxiliary"]
    return dataset if aux is None else aux


def training_settings(cfg: dict) -> dict[str, Any]:
    """The keys of the control block that the training job reads."""
    block = control_block(cfg)
    return {k: block[k] for k in TRAINING_KEYS}


def model_layers(cfg: dict, model: str, results: str | Path = "results") -> int:
    """Blocks L of configured model ``model`` (its materialised config when present)."""
    return model_num_layers(cfg["models"][model], Path(results) / "pretrained" / model)


def model_variants(cfg: dict, model: str, results: str | Path = "results", twins: bool = False) -> list[str]:
    """Control variant names of ``model`` (with ``twins``, each followed by its clean twin)."""
    return control_variants(model_layers(cfg, model, results), control_block(cfg)["pairs"], twins=twins)
