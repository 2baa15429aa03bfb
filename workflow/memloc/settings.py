"""Frozen settings objects built from validated config blocks: exactly their keys, no defaults.

Defaults live in the config schema (workflow/schemas/config.schema.yaml) and nowhere else. Every
stage builds its settings object with :func:`exact`, so a key that the schema, the rule and the
code disagree on fails loudly instead of silently taking a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, ClassVar, TypeVar

from memloc.errors import ConfigError

T = TypeVar("T")
B = TypeVar("B", bound="BlockSettings")


def exact(cls: type[T], params: Mapping[str, Any] | T, what: str, hint: str) -> T:
    """``cls`` (a frozen dataclass) from ``params`` holding exactly its fields (an instance passes through).

    ``what`` names the settings in the error (e.g. ``training settings``); ``hint`` says where a
    correct dict comes from.
    """
    if isinstance(params, cls):
        return params
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    missing = [n for n in names if n not in params]
    unknown = sorted(str(k) for k in params if k not in names)
    if missing or unknown:
        problems = [f"missing {', '.join(missing)}"] if missing else []
        problems += [f"unknown {', '.join(unknown)}"] if unknown else []
        raise ConfigError(f"{what}: {'; '.join(problems)}. {hint} Expected: {', '.join(names)}.")
    return cls(**{n: params[n] for n in names})


def defaults_config() -> dict[str, Any]:
    """The blocks of a config that sets nothing (schema defaults) with one model ``_``: what tests
    and benchmarks build settings from when they run outside a workflow."""
    from memloc.config import block_defaults

    blocks = ("training", "localisation", "control", "counterfactual")
    return {**{b: block_defaults(b) for b in blocks}, "models": {"_": {}}}


class BlockSettings:
    """Base of a frozen settings dataclass that mirrors config block :attr:`block` key for key."""

    block: ClassVar[str]
    #: Where a correct dict comes from (``{block}`` is replaced by :attr:`block`).
    hint: ClassVar[str] = "Build them from a config validated by memloc.config.validate, which fills every default."

    @classmethod
    def from_dict(cls: type[B], params: Mapping[str, Any] | B) -> B:
        """The settings from a dict with exactly this class's keys (an instance passes through)."""
        return exact(cls, params, f"{cls.block} settings", cls.hint.format(block=cls.block))

    @classmethod
    def with_defaults(cls: type[B], **changes: Any) -> B:
        """The schema's defaults with ``changes``: for code that runs outside a workflow (tests, benchmarks)."""
        block = defaults_config()[cls.block]
        return cls.from_dict({**{f.name: block[f.name] for f in fields(cls)}, **changes})  # type: ignore[arg-type]
