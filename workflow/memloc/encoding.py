"""How an example's texts reach a model's tokenizer (docs/protocol.md §4.4).

The examples table is model-independent; a pair task's two texts and the ``{SEP}`` placeholder of
a text template become model-specific here. ``pair`` hands the tokenizer a text pair (today's
default); ``joined`` makes one string ``"a SEP b"`` with the model's separator, as the paper did
(its ``collate_tokenize``), so BERT sees no segment ids and truncation cuts the end of the string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Sequence

from memloc.errors import ModelError
from memloc.settings import exact

#: Model families whose separator is ``|`` when the tokenizer has none: the paper's GPT-Neo and
#: Pythia (GPT-NeoX) failed on WiC with their EOS token as separator.
PIPE_FAMILIES = ("gpt_neo", "gpt_neox")
PIPE = "|"


@dataclass(frozen=True)
class TokenSettings:
    """A model entry's tokenisation keys (``models.<m>``); defaults live in the config schema only."""

    max_length: int
    pair_encoding: str
    separator: str | None

    @classmethod
    def from_dict(cls, params: Mapping[str, Any] | TokenSettings) -> TokenSettings:
        return exact(cls, params, "tokenisation settings", "Take them from memloc.config.model_spec of a validated config.")

    @classmethod
    def from_model_spec(cls, spec: Mapping[str, Any]) -> TokenSettings:
        return cls.from_dict({f.name: spec[f.name] for f in fields(cls)})

    @classmethod
    def with_defaults(cls, **changes: Any) -> TokenSettings:
        """The schema's defaults with ``changes``: for code that runs outside a workflow (tests, benchmarks)."""
        from memloc.config import model_defaults

        return cls.from_model_spec({**model_defaults(), **changes})


def resolve_separator(tokenizer, model_type: str | None, configured: str | None) -> str:
    """The separator text: ``configured``, else the tokenizer's SEP token, else ``|`` for
    :data:`PIPE_FAMILIES`, else its EOS token."""
    if configured is not None:
        return configured
    if tokenizer.sep_token is not None:
        return str(tokenizer.sep_token)
    if model_type in PIPE_FAMILIES:
        return PIPE
    if tokenizer.eos_token is not None:
        return str(tokenizer.eos_token)
    raise ModelError(
        f"the tokenizer (model_type {model_type!r}) has neither a separator nor an EOS token, so joined pairs and "
        "the {SEP} placeholder have no separator. Set models.<m>.separator (e.g. '|')."
    )


def model_texts(
    text_a: Sequence[str],
    text_b: Sequence[str] | None,
    settings: TokenSettings,
    separator: str | None,
    marker: str | None,
) -> tuple[list[str], list[str] | None]:
    """The texts to tokenise: ``marker`` replaced by ``separator``, pairs joined when ``settings`` says so.

    Returns ``(first, second)``; ``second`` is None for single texts and for joined pairs.
    """
    first, second = list(text_a), None if text_b is None else list(text_b)
    if marker is not None:
        first = [t.replace(marker, separator) for t in first]
        second = None if second is None else [t.replace(marker, separator) for t in second]
    if settings.pair_encoding == "joined" and second is not None:
        first, second = [f"{a} {separator} {b}" for a, b in zip(first, second)], None
    return first, second


def needs_separator(settings: TokenSettings, has_pairs: bool, marker: str | None) -> bool:
    """Whether tokenisation uses a separator (joined pairs or a ``{SEP}`` placeholder)."""
    return marker is not None or (has_pairs and settings.pair_encoding == "joined")
