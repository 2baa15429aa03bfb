"""Target block pairs of the control models and their variant names (docs/protocol.md §7.1).

A control model ``control-i-j`` memorises its noisy labels in blocks ``i`` and ``j`` only (1-based,
``i < j``); its clean twin ``control-i-j-clean`` trains the same way on the original labels and is
the donor for layer swapping. ``control-frozen`` is the control models' own baseline (``control.baseline``):
its main task trains the head only while the auxiliary task trains every block, as in a control model.

Pair sets, scaled to the number of blocks L:

``default``
    the first two, middle two and last two blocks: ``(1, 2)``, ``(L//2, L//2 + 1)``, ``(L-1, L)``;
    for L = 12 the paper's 1-2, 6-7, 11-12, for L = 6: 1-2, 3-4, 5-6. The middle pair is the pair
    of adjacent blocks whose centre is closest to the model's centre (L + 1) / 2; for odd L two
    pairs are equally close (both contain the middle block (L + 1) / 2) and the lower one is taken,
    e.g. L = 7: 3-4. For L < 6 the three pairs overlap and duplicates are dropped (L = 4: 1-2, 2-3,
    3-4; L = 3: 1-2, 2-3; L = 2: 1-2).
``all_adjacent``
    every adjacent pair ``(i, i + 1)``, i = 1..L-1.
an explicit list
    ``["1-2", "3-5"]`` or ``[[1, 2], [3, 5]]``: any ``1 <= i < j <= L``.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

from memloc.errors import ConfigError, ModelError

PREFIX = "control"
CLEAN_SUFFIX = "clean"
PAIR_SETS = ("default", "all_adjacent")

#: The control baseline variant: main task head only, auxiliary task every block.
FROZEN_VARIANT = f"{PREFIX}-frozen"
#: Regular expression of every variant the control training job trains (control models, their
#: clean twins and the control baseline), usable as a Snakemake wildcard constraint.
VARIANT_PATTERN = r"control-[1-9]\d*-[1-9]\d*(?:-clean)?|control-frozen"
#: Only the control models themselves (no twins).
MODEL_VARIANT_PATTERN = r"control-[1-9]\d*-[1-9]\d*"

_VARIANT = re.compile(r"^control-([1-9]\d*)-([1-9]\d*)(-clean)?$")
_PAIR = re.compile(r"^\s*([1-9]\d*)\s*-\s*([1-9]\d*)\s*$")

Pair = tuple[int, int]


def default_pairs(num_layers: int) -> list[Pair]:
    """First two, middle two and last two blocks (duplicates dropped, in that order)."""
    L = _check_layers(num_layers)
    mid = L // 2
    return _unique([(1, 2), (mid, mid + 1), (L - 1, L)])


def all_adjacent_pairs(num_layers: int) -> list[Pair]:
    """Every adjacent pair ``(i, i + 1)``."""
    L = _check_layers(num_layers)
    return [(i, i + 1) for i in range(1, L)]


def target_pairs(num_layers: int, spec: str | Sequence = "default") -> list[Pair]:
    """The pairs a run trains control models for: ``spec`` is a pair-set name or explicit pairs."""
    if isinstance(spec, str):
        if spec == "default":
            return default_pairs(num_layers)
        if spec == "all_adjacent":
            return all_adjacent_pairs(num_layers)
        raise ConfigError(f"control.pairs: unknown pair set {spec!r}; "
                          f"use one of {', '.join(PAIR_SETS)} or a list like ['1-2', '6-7'].")
    L = _check_layers(num_layers)
    pairs = _unique(parse_pair(p) for p in spec)
    if not pairs:
        raise ConfigError("control.pairs: the list of pairs is empty.")
    bad = [f"{i}-{j}" for i, j in pairs if j > L]
    if bad:
        raise ConfigError(f"control.pairs: {', '.join(bad)} name blocks beyond the model's {L} blocks.")
    return pairs


def parse_pair(pair: Any) -> Pair:
    """``"i-j"``, ``(i, j)`` or ``[i, j]`` -> ``(i, j)`` with ``1 <= i < j``."""
    if isinstance(pair, str):
        m = _PAIR.match(pair)
        if not m:
            raise ConfigError(f"control pair {pair!r} is not of the form 'i-j' (1-based block numbers).")
        i, j = int(m.group(1)), int(m.group(2))
    else:
        try:
            i, j = (int(x) for x in pair)
        except (TypeError, ValueError):
            raise ConfigError(f"control pair {pair!r} is not a pair of block numbers.") from None
    if not 1 <= i < j:
        raise ConfigError(f"control pair {i}-{j}: need 1 <= i < j (1-based block numbers, the lower first).")
    return i, j


def pair_label(pair: Pair) -> str:
    """``(6, 7)`` -> ``"6-7"`` (the ``target_layers`` column)."""
    return f"{pair[0]}-{pair[1]}"


def variant_name(pair: Pair, clean: bool = False) -> str:
    """``(6, 7)`` -> ``control-6-7``; with ``clean`` the twin ``control-6-7-clean``."""
    i, j = parse_pair(pair)
    name = f"{PREFIX}-{i}-{j}"
    return f"{name}-{CLEAN_SUFFIX}" if clean else name


def parse_variant(name: str) -> tuple[int, int, bool]:
    """``control-6-7`` -> ``(6, 7, False)``; ``control-6-7-clean`` -> ``(6, 7, True)``."""
    m = _VARIANT.match(name)
    if not m:
        raise ValueError(f"{name!r} is not a control variant (expected control-i-j or control-i-j-clean)")
    i, j = int(m.group(1)), int(m.group(2))
    if i >= j:
        raise ValueError(f"{name!r}: the lower block comes first (control-{min(i, j)}-{max(i, j)})")
    return i, j, bool(m.group(3))


def main_task_blocks(variant: str) -> tuple[Pair | None, bool]:
    """What the main task of a control-training variant trains: ``(pair, clean)`` for
    ``control-i-j[-clean]``, ``(None, False)`` for ``control-frozen`` (head only, noisy labels)."""
    if variant == FROZEN_VARIANT:
        return None, False
    i, j, clean = parse_variant(variant)
    return (i, j), clean


def is_control_variant(name: str) -> bool:
    try:
        parse_variant(name)
    except ValueError:
        return False
    return True


def twin_of(variant: str) -> str:
    """The clean donor of a variant: ``clean`` for ``noisy`` (and any non-control variant),
    ``control-i-j-clean`` for ``control-i-j``. A twin and ``control-frozen`` have none."""
    if variant == FROZEN_VARIANT:
        raise ValueError(f"{variant} is the control baseline; it has no donor")
    if not is_control_variant(variant):
        return "clean"
    i, j, clean = parse_variant(variant)
    if clean:
        raise ValueError(f"{variant} is itself a clean twin; it has no donor")
    return variant_name((i, j), clean=True)


def control_variants(num_layers: int, spec: str | Sequence = "default", twins: bool = False) -> list[str]:
    """Variant names of a model with ``num_layers`` blocks (with ``twins``, each followed by its twin)."""
    out = []
    for pair in target_pairs(num_layers, spec):
        out.append(variant_name(pair))
        if twins:
            out.append(variant_name(pair, clean=True))
    return out


# --------------------------------------------------------------------------- number of blocks

_LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")


def layers_from_config_json(path: str | Path) -> int:
    """Number of transformer blocks recorded in a Hugging Face ``config.json`` (or its directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    cfg = json.loads(path.read_text())
    for key in _LAYER_KEYS:
        value = cfg.get(key)
        if isinstance(value, int) and value > 0:
            return value
    raise ModelError(f"{path}: no layer count ({', '.join(_LAYER_KEYS)}) in the model config")


@lru_cache(maxsize=None)
def _layers_cached(source_json: str, pretrained_dir: str | None) -> int:
    if pretrained_dir and (Path(pretrained_dir) / "config.json").is_file():
        return layers_from_config_json(pretrained_dir)
    source = json.loads(source_json)
    kind = source.get("kind")
    if kind in ("hf", "gguf"):
        # Offline first: a num_layers hint, a known hub id, or a GGUF header (no config download).
        from memloc.models.loading import offline_num_layers

        value = offline_num_layers(source)
        if value is not None:
            return value
    if kind == "random":
        return int(source.get("num_layers", 4))
    if kind == "package":
        from memloc.models.loading import _package_path

        return layers_from_config_json(_package_path(source["package"]))
    if kind == "hf":
        path = source["path"]
        if Path(path).is_dir():
            return layers_from_config_json(path)
        from transformers import AutoConfig  # hub id: the config only (cached by Hugging Face)

        cfg = AutoConfig.from_pretrained(path, revision=source.get("revision"))
        value = getattr(cfg, "num_hidden_layers", None)
        if not isinstance(value, int) or value <= 0:
            raise ModelError(f"{path}: cannot read the number of blocks from the model config")
        return value
    raise ModelError(f"unknown model source kind {kind!r}; use package, hf, gguf or random.")


def model_num_layers(spec: dict, pretrained_dir: str | Path | None = None) -> int:
    """Blocks L of a configured model, without loading weights.

    Read from ``pretrained_dir/config.json`` when it exists, else from the model's source: a
    random model's ``num_layers``, an ``hf``/``gguf`` source's ``num_layers`` (a hub id memloc
    knows, e.g. the paper's models, or a GGUF header need none), a package's or local
    directory's ``config.json``, or a hub id's config (Hugging Face cache; honours ``HF_HUB_OFFLINE``).
    """
    source = spec["source"] if "source" in spec else spec
    return _layers_cached(json.dumps(source, sort_keys=True), None if pretrained_dir is None else str(pretrained_dir))


def _check_layers(num_layers: int) -> int:
    L = int(num_layers)
    if L < 2:
        raise ConfigError(f"control models need at least two blocks; this model has {L}.")
    return L


def _unique(pairs: Iterable[Pair]) -> list[Pair]:
    return list(dict.fromkeys(pairs))
