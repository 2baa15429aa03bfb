"""When a fine-tuning run stops: after ``training.epochs`` (``fixed``) or once the noisy labels are fit.

Tasks differ in how long memorising the flipped labels takes, so a fixed number of epochs can end
on a half-memorised model. With ``training.stopping: memorised`` the run stops
``training.extra_epochs`` after the first epoch whose ``train_noisy`` accuracy (the noisy examples
against their noisy labels) reaches ``training.memorised_accuracy``, capped by ``training.epochs``;
the learning-rate schedule keeps its length ``epochs``, so an early stop leaves it undecayed.
Either way the threshold is watched, so the trace metadata says whether memorisation was reached
(docs/protocol.md §4.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from memloc.errors import ConfigError

#: The trace split whose accuracy the rule watches: the noisy examples against their training labels.
WATCHED_SPLIT = "train_noisy"


@dataclass(frozen=True)
class StopRule:
    """Watch ``WATCHED_SPLIT`` accuracy against ``threshold``; with ``early``, stop ``extra_epochs``
    after it is first reached. ``after``: stop after exactly that many epochs whatever the
    threshold (the clean twin trains as long as its noisy twin)."""

    stopping: str
    threshold: float
    extra_epochs: int
    early: bool
    after: int | None

    def reached(self, epoch_rows: list[dict]) -> bool:
        """Whether an epoch's trace rows show the threshold reached (an empty group never does)."""
        for row in epoch_rows:
            if row["split"] == WATCHED_SPLIT:
                acc = row["accuracy"]
                return acc is not None and not math.isnan(acc) and acc >= self.threshold
        return False

    def stops_after(self, epoch: int, reached_epoch: int) -> bool:
        """Whether training ends after ``epoch`` (``reached_epoch``: 0 while the threshold is unreached)."""
        if self.after is not None:
            return epoch >= self.after
        return self.early and bool(reached_epoch) and epoch >= reached_epoch + self.extra_epochs


def stop_rule(variant: str, settings, twin_epochs: int | None) -> StopRule:
    """The rule of a fine-tuning variant (docs/protocol.md §4.5).

    ``noisy``: ``settings.stopping``. ``clean``: with ``memorised`` it trains ``twin_epochs``, the
    epochs its noisy twin trained (same steps, same schedule: a comparable swapping donor).
    ``frozen`` (the baseline) always trains ``settings.epochs``; its threshold is only watched.
    """
    if settings.stopping not in ("fixed", "memorised"):
        raise ConfigError(f"training.stopping {settings.stopping!r} is not one of fixed, memorised (see the config schema)")
    early = settings.stopping == "memorised" and variant == "noisy"
    after = None
    if settings.stopping == "memorised" and variant == "clean":
        if twin_epochs is None:
            raise ConfigError("training.stopping: memorised trains the clean twin as long as its noisy twin: pass its trace")
        after = int(twin_epochs)
    return StopRule(settings.stopping if variant != "frozen" else "fixed", settings.memorised_accuracy,
                    settings.extra_epochs, early, after)
