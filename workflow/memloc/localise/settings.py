"""The settings of one localisation job: a frozen object built from the params its rule passes.

Defaults live in the config schema (workflow/schemas/config.schema.yaml) and nowhere else: the
validated config holds every key, and :func:`technique_params` turns it into the params dict of
one job (the technique's block of ``localisation`` plus the keys every job shares, and for the
techniques reading pooled hidden states the keys of :class:`PooledStateSettings`). Each
technique subclasses :class:`JobSettings` with the keys of its block and builds its settings with
:meth:`JobSettings.from_dict`, which takes exactly those keys: a missing key or an unknown one
is an error, because a mismatch means the schema, the rule and the code disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, TypeVar

from memloc import config as mconf
from memloc.settings import BlockSettings, defaults_config

S = TypeVar("S", bound="JobSettings")

#: Keys of the validated config that every localisation job receives besides its technique's block.
SHARED_KEYS = ("max_window", "eval_batch_size", "device", "precision", "auto_precision_min_speedup", "deterministic", "seed")

#: Techniques whose jobs read pooled hidden states (probing, with its label probes; centroids) and
#: so also receive the ``localisation`` keys of :class:`PooledStateSettings`.
POOLED_TECHNIQUES = ("probing", "centroids")


@dataclass(frozen=True)
class JobSettings(BlockSettings):
    """The keys every localisation job receives (see :data:`SHARED_KEYS`); a technique's subclass
    adds the keys of its ``localisation`` block."""

    technique: ClassVar[str] = "localisation"
    block: ClassVar[str] = "localisation"
    hint: ClassVar[str] = (
        "A job takes exactly the keys of {block} in the validated config plus the shared "
        f"{', '.join(SHARED_KEYS)}, as memloc.localise.settings.technique_params builds them."
    )

    max_window: int | None  # localisation.max_window
    eval_batch_size: int  # localisation.eval_batch_size
    device: str  # the model's training.device
    precision: str  # the model's training.precision (``auto``: resolved once per job, memloc.precision)
    auto_precision_min_speedup: float  # the model's training.auto_precision_min_speedup
    deterministic: bool  # the model's training.deterministic
    seed: int  # the run's training seed

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.block = f"localisation.{cls.technique}"

    @classmethod
    def with_defaults(cls: type[S], **changes: Any) -> S:
        """What the rule passes for a config of schema defaults (run seed 0), with ``changes``: for
        code that runs outside a workflow (tests, benchmarks)."""
        return cls.from_dict({**technique_params(defaults_config(), cls.technique, "_", 0), **changes})

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (recorded in every output's provenance)."""
        return asdict(self)


@dataclass(frozen=True)
class PooledStateSettings(JobSettings):
    """The shared keys plus those of the techniques reading pooled hidden states
    (:data:`POOLED_TECHNIQUES`, memloc.localise.hidden.pooled_states)."""

    final_norm: bool  # localisation.final_norm: layer L after a decoder's final norm


def technique_params(cfg: Mapping[str, Any], technique: str, model: str, seed: int, dataset: str | None = None) -> dict[str, Any]:
    """The params dict of one job of ``technique`` on ``model`` (trained on ``dataset``) with training seed ``seed``.

    ``cfg`` is the validated config (every default filled). Device, precision (with its ``auto``
    threshold) and determinism are the model's effective training settings on that data set.
    """
    loc = cfg["localisation"]
    training = mconf.model_spec(dict(cfg), model, dataset)["training"]
    pooled = {"final_norm": loc["final_norm"]} if technique in POOLED_TECHNIQUES else {}
    return {
        **pooled,
        **loc[technique],
        "max_window": loc["max_window"],
        "eval_batch_size": loc["eval_batch_size"],
        "device": training["device"],
        "precision": training["precision"],
        "auto_precision_min_speedup": training["auto_precision_min_speedup"],
        "deterministic": training["deterministic"],
        "seed": int(seed),
    }
