"""The ``control`` config block: reference checks and what the rules need from it.

Every function takes the validated config: the schema (workflow/schemas/config.schema.yaml)
fills the block's defaults, so the block is read as it is.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from memloc.control.pairs import control_variants, model_num_layers, target_pairs
from memloc.errors import ConfigError

#: Keys handed to the training job (memloc.control.multitask.ControlSettings).
TRAINING_KEYS = ("auxiliary_learning_rate", "auxiliary_max_train_examples", "epochs", "learning_rate", "share_pooler_and_norm")


def check_control_config(cfg: dict, source: str = "config") -> None:
    """Dangling references in the ``control`` block (the schema cannot see them)."""
    block = cfg["control"]
    if block["auxiliary"] is not None:
        _check_defined(cfg, "datasets", block["auxiliary"], "control.auxiliary", source)
    for name in block["datasets"] or ():
        _check_defined(cfg, "datasets", name, "control.datasets", source)
    for name in block["models"] or ():
        _check_defined(cfg, "models", name, "control.models", source)
    pairs = block["pairs"]
    if not isinstance(pairs, str):
        target_pairs(10**6, pairs)  # syntax only; the depth is checked per model


def _check_defined(cfg: dict, block: str, name: str, key: str, source: str) -> None:
    """``name`` (the value of ``key``) must be a key of the top-level ``block`` (datasets, models)."""
    if name in cfg.get(block, {}):
        return
    defined = sorted(cfg.get(block, {}))
    close = difflib.get_close_matches(str(name), defined, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ConfigError(
        f"{source}: {key} names '{name}', which is not defined under {block}{hint}. Defined: {', '.join(defined)}."
    )


def control_datasets(cfg: dict) -> list[str]:
    """The data sets that get control models (``control.datasets``; null: the run's data sets)."""
    from memloc.config import run_datasets  # memloc.config imports this module

    names = cfg["control"]["datasets"]
    return run_datasets(cfg) if names is None else list(names)


def control_models(cfg: dict) -> list[str]:
    """The models that get control models (``control.models``; null: the run's models)."""
    from memloc.config import run_models  # memloc.config imports this module

    names = cfg["control"]["models"]
    return run_models(cfg) if names is None else list(names)


def control_seeds(cfg: dict) -> list[int]:
    """The training seeds of the control models (``control.seeds``; null: the run's seeds)."""
    seeds = cfg["control"]["seeds"]
    return list(cfg["run"]["seeds"] if seeds is None else seeds)


def auxiliary_dataset(cfg: dict, dataset: str) -> str:
    """The auxiliary data set of ``dataset``'s control models (``None`` in the config: itself)."""
    aux = cfg["control"]["auxiliary"]
    return dataset if aux is None else aux


def training_settings(cfg: dict) -> dict[str, Any]:
    """The keys of the control block that the training job reads."""
    return {k: cfg["control"][k] for k in TRAINING_KEYS}


def model_layers(cfg: dict, model: str, results: str | Path = "results") -> int:
    """Blocks L of configured model ``model`` (its materialised config when present)."""
    return model_num_layers(cfg["models"][model], Path(results) / "pretrained" / model)


def model_variants(cfg: dict, model: str, results: str | Path = "results", twins: bool = False) -> list[str]:
    """Control variant names of ``model`` (with ``twins``, each followed by its clean twin)."""
    return control_variants(model_layers(cfg, model, results), cfg["control"]["pairs"], twins=twins)
