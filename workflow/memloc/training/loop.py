"""The one training loop of memloc: fine-tuning, subset models, control models and layer retraining.

:func:`train_loop` owns everything the stages share: one optimiser per task (the recipe of
:mod:`memloc.training.optim`), per-step gradient switching, optional autocast, a text progress
bar, per-epoch scoring into a trace, the ``memorised`` checkpoint (the first epoch whose train
macro-F1 reaches the threshold) and resume from the last finished epoch. What differs between the
stages is passed in: the tasks (which batches, which parameters, which forward pass), the batch
order of an epoch, the scoring and what a checkpoint holds (docs/protocol.md §4.2).

Resume: a killed job continues where it stopped and ends with the same weights as an
uninterrupted run, because batch order depends only on (seed, epoch) and every RNG state is saved
with the epoch. Precision: ``training.precision: auto`` is resolved once, before the first epoch
(:func:`memloc.precision.resolve_precision`), and the choice is saved with every epoch, so a
resumed run keeps the precision it started in.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Protocol

import numpy as np
import pandas as pd
import torch

from memloc.device import autocast
from memloc.errors import ConfigError
from memloc.io import stable_hash
from memloc.models.blocks import unique_parameters
from memloc.precision import PrecisionChoice, ProbeShape, probe_shape, resolve_precision
from memloc.settings import BlockSettings
from memloc.tokens import TokenSet
from memloc.training.batching import train_batches
from memloc.training.evaluation import model_inputs, score_rows
from memloc.training.optim import TaskOptim, make_task_optim
from memloc.training.stopping import StopRule

log = logging.getLogger("memloc.train")


@dataclass(frozen=True)
class Settings(BlockSettings):
    """Hyperparameters of one training run: the validated config's ``training`` block (a model's
    effective one). Its defaults live in the config schema only."""

    block: ClassVar[str] = "training"

    epochs: int
    learning_rate: float
    batch_size: int
    eval_batch_size: int
    warmup_ratio: float
    lr_schedule: str
    weight_decay: float
    weight_decay_scope: str
    max_grad_norm: float
    clip_scope: str
    memorised_f1: float
    stopping: str
    memorised_accuracy: float
    extra_epochs: int
    freeze_embeddings: bool
    length_buckets: bool
    precision: str
    auto_precision_min_speedup: float
    device: str
    deterministic: bool


@dataclass
class FitResult:
    trace: pd.DataFrame
    memorised_epoch: int
    memorised_reached: bool
    memorised_state: Any
    epoch_losses: list[list[float]]
    #: The stop rule's record (:mod:`memloc.training.stopping`): the first epoch whose noisy
    #: examples reached its threshold (0: never, or no rule) and the epochs trained.
    threshold_epoch: int = 0
    epochs_trained: int = 0
    # Evaluation logits by split of the final and the memorised weights (set by :func:`fit`; None
    # where the pass did not run in this process, e.g. an epoch before a resume).
    final_logits: dict[str, np.ndarray] | None = None
    memorised_logits: dict[str, np.ndarray] | None = None
    #: The precision the run trained and evaluated in (``auto`` resolved; kept across a resume).
    precision: PrecisionChoice | None = None


@dataclass
class Task:
    """One objective of a training run.

    ``forward(idx)`` runs the batch of examples at ``idx`` and returns ``(logits, labels)`` on the
    training device; a step of this task updates only ``params``, at peak rate ``learning_rate``.
    """

    params: list[torch.nn.Parameter]
    learning_rate: float
    forward: Callable[[np.ndarray], tuple[torch.Tensor, torch.Tensor]]


class Trainee(Protocol):
    """What the loop needs of the trained model(s) besides the tasks."""

    def parameters(self) -> Iterable[torch.nn.Parameter]:
        """Every parameter whose ``requires_grad`` the loop switches per step (with ``clip_scope:
        all``, every one of them gets gradients and counts in the clipped norm)."""

    def train_mode(self) -> None:
        """Put the model(s) in training mode at the start of each epoch."""

    def snapshot(self) -> Any:
        """CPU copy of the weights a checkpoint and the resume state hold."""

    def restore(self, state: Any) -> None:
        """Load a :meth:`snapshot`."""


class Classifier:
    """:class:`Trainee` of one ``nn.Module`` (its whole state dict is the checkpoint)."""

    def __init__(self, model: torch.nn.Module, train_mode: Callable[[], None] | None = None):
        self.model = model
        self._train_mode = train_mode

    def parameters(self) -> Iterable[torch.nn.Parameter]:
        return self.model.parameters()

    def train_mode(self) -> None:
        if self._train_mode is not None:
            self._train_mode()
        else:
            self.model.train()

    def snapshot(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    def restore(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)


def classifier_task(model, data: TokenSet, params: Iterable[torch.nn.Parameter], learning_rate: float, device) -> Task:
    """A task that trains ``model`` on the labels of ``data`` (positions index ``data``)."""

    def forward(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        batch = data.collate(idx)
        labels = batch["labels"].to(device)
        return model(**model_inputs(batch, device)).logits, labels

    return Task(list(params), learning_rate, forward)


class _Progress:
    """One log line per ~10% of an epoch: a text progress bar readable in a log file."""

    def __init__(self, epoch: int, epochs: int, n_batches: int, width: int = 20):
        self.epoch, self.epochs, self.n, self.width = epoch, epochs, n_batches, width
        self.every = max(1, n_batches // 10)
        self.t0 = time.perf_counter()
        self.examples = 0

    def step(self, i: int, loss: float, n_examples: int) -> None:
        self.examples += n_examples
        if (i + 1) % self.every and i + 1 != self.n:
            return
        frac = (i + 1) / self.n
        bar = "#" * round(frac * self.width) + "." * (self.width - round(frac * self.width))
        rate = self.examples / max(1e-9, time.perf_counter() - self.t0)
        log.info(
            "epoch %d/%d [%s] %3d%% %d/%d batches  loss %.4f  %.1f examples/s",
            self.epoch, self.epochs, bar, round(100 * frac), i + 1, self.n, loss, rate,
        )


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class _ResumeState:
    """``work_dir/state.pt`` (the last finished epoch) and ``memorised.pt``, keyed by the run."""

    def __init__(self, work_dir: str | Path | None, run_key: str):
        self.dir = Path(work_dir) if work_dir else None
        self.key = run_key

    def load(self) -> dict | None:
        path = self.dir / "state.pt" if self.dir else None
        if path is None or not path.exists():
            return None
        state = torch.load(path, map_location="cpu", weights_only=False)
        if state.get("run_key") != self.key:
            log.info("ignoring resume state from a different run in %s", path)
            return None
        log.info("resuming from the end of epoch %d (%s)", state["epoch"], path)
        if state["memorised_epoch"]:
            state["memorised_state"] = torch.load(self.dir / "memorised.pt", map_location="cpu", weights_only=False)
        return state

    def save_memorised(self, snapshot) -> None:
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
            _atomic_torch_save(snapshot, self.dir / "memorised.pt")

    def save(self, state: dict) -> None:
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
            _atomic_torch_save({"run_key": self.key, **state}, self.dir / "state.pt")


def _steps_per_task(batches: list[tuple[str, np.ndarray]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name, _ in batches:
        counts[name] = counts.get(name, 0) + 1
    return counts


def gradient_parameters(
    params: list[torch.nn.Parameter], all_params: list[torch.nn.Parameter], clip_scope: str
) -> list[torch.nn.Parameter]:
    """What a step of a task computes gradients for and clips over.

    ``trainable``: the task's own parameters (frozen ones get no gradient at all). ``all``: every
    parameter of the trainee, once each, as the published code's ``clip_grad_norm_(model.parameters(), 1)``
    with nothing set to ``requires_grad=False``: frozen parameters on the forward path get gradients
    that enlarge the norm (and so shrink the clip factor) but are never applied.
    """
    if clip_scope == "trainable":
        return list(params)
    if clip_scope != "all":
        raise ConfigError(f"clip_scope {clip_scope!r} is not one of trainable, all (see the config schema's training block)")
    return unique_parameters(all_params)


def _run_precision(settings, device: torch.device, state: dict | None, probe: Callable[[], ProbeShape] | None) -> PrecisionChoice:
    """The precision a resumed run started in, else ``settings.precision`` resolved now (``auto``: measured)."""
    if state is not None and "precision" in state:
        choice = PrecisionChoice.from_record(state["precision"])
        log.info("resuming in %s, the precision the run started in (requested %s)", choice.resolved, choice.requested)
        return choice
    if settings.precision == "auto" and probe is None:
        raise ValueError("training.precision auto needs the model's matrix sizes: pass train_loop(..., probe=...)")
    return resolve_precision(settings.precision, device, probe, settings.auto_precision_min_speedup)


def train_loop(
    trainee: Trainee,
    tasks: dict[str, Task],
    batches_for: Callable[[int], list[tuple[str, np.ndarray]]],
    settings,
    device: torch.device,
    evaluate: Callable[[str], list[dict]] | None = None,
    run_key: dict | None = None,
    work_dir: str | Path | None = None,
    progress: bool = True,
    stop: StopRule | None = None,
    probe: Callable[[], ProbeShape] | None = None,
) -> FitResult:
    """Train ``tasks`` for ``settings.epochs`` epochs; every stage that trains calls this.

    ``batches_for(epoch)`` lists the epoch's steps as ``(task name, example positions)``; it must
    depend only on the epoch (and fixed seeds), so a resumed run replays it. Each task gets its own
    optimiser over its own steps (:func:`~memloc.training.optim.make_task_optim`; ``settings``
    provides the recipe's fields and ``epochs``, ``precision``). A step switches gradients on for
    its task's parameters only (``clip_scope: trainable``) or for every parameter
    (``clip_scope: all``, :func:`gradient_parameters`); the optimiser updates the task's only.

    ``evaluate(precision)`` returns the epoch's trace rows, evaluated in the run's resolved
    precision (the first is the train row whose macro-F1 marks the ``memorised`` checkpoint at
    ``settings.memorised_f1``); without it there is no trace and no memorised checkpoint.
    ``work_dir`` holds the resume state, keyed by ``run_key`` (plus the settings); the caller
    removes it once its outputs are written. ``stop`` (fine-tuning only) may end training before
    ``settings.epochs``; the schedules keep their length ``settings.epochs``. ``probe()`` gives the
    matrix sizes that ``settings.precision: auto`` is measured at (needed only for ``auto``); the
    choice, or the one a resumed run started with, is :attr:`FitResult.precision`.
    """
    if stop is not None and evaluate is None:
        raise ValueError("a stop rule reads the per-epoch evaluation: pass evaluate with stop")
    all_params = list(trainee.parameters())
    for p in all_params:
        p.requires_grad_(False)
    key = {"settings": asdict(settings), **({"stop": asdict(stop)} if stop is not None else {}), **(run_key or {})}
    resume = _ResumeState(work_dir, stable_hash(key))
    state = resume.load()
    choice = _run_precision(settings, device, state, probe)
    settings = choice.apply(settings)  # the run's settings from here on hold the resolved precision

    first = batches_for(1)
    steps = _steps_per_task(first)
    grad_params = {name: gradient_parameters(task.params, all_params, settings.clip_scope) for name, task in tasks.items()}
    optims: dict[str, TaskOptim] = {
        name: make_task_optim(
            task.params, grad_params[name], task.learning_rate, settings, steps.get(name, 0) * settings.epochs, device
        )
        for name, task in tasks.items()
    }
    wanted = {name: {id(p) for p in params} for name, params in grad_params.items()}

    rows: list[dict] = []
    memorised_epoch, memorised_state = 0, None
    threshold_epoch, epochs_trained = 0, 0
    start_epoch = 1
    if state is not None:
        trainee.restore(state["weights"])
        for name, optim in optims.items():
            optim.load_state_dict(state["optim"][name])
        _set_rng_state(state["rng"])
        rows = state["trace"]
        memorised_epoch = state["memorised_epoch"]
        memorised_state = state.get("memorised_state")
        threshold_epoch = state["threshold_epoch"]
        epochs_trained = state["epoch"]
        start_epoch = epochs_trained + 1

    epoch_losses: list[list[float]] = []
    for epoch in range(start_epoch, settings.epochs + 1):
        trainee.train_mode()
        t0 = time.perf_counter()
        batches = first if epoch == 1 else batches_for(epoch)
        bar = _Progress(epoch, settings.epochs, len(batches)) if progress else None
        losses: list[float] = []
        current = None
        for i, (name, idx) in enumerate(batches):
            if name != current:
                for p in all_params:
                    p.requires_grad_(id(p) in wanted[name])
                current = name
            with autocast(device, settings.precision):
                logits, labels = tasks[name].forward(idx)
            loss = torch.nn.functional.cross_entropy(logits.float(), labels)
            optims[name].step(loss)
            losses.append(float(loss.detach()))
            if bar is not None:
                bar.step(i, losses[-1], len(idx))
        for p in all_params:
            p.requires_grad_(False)
        epoch_losses.append(losses)
        epochs_trained = epoch
        train_seconds = time.perf_counter() - t0
        if evaluate is None:
            if progress:
                log.info("epoch %d/%d done in %.1fs (no per-epoch evaluation)", epoch, settings.epochs, train_seconds)
        else:
            epoch_rows = [{"epoch": epoch, **r, "seconds": train_seconds} for r in evaluate(settings.precision)]
            rows.extend(epoch_rows)
            train_f1 = epoch_rows[0]["macro_f1"]
            scores = "  ".join(
                f"{r['split']} loss {r['loss']:.4f} acc {r['accuracy']:.4f} f1 {r['macro_f1']:.4f}" for r in epoch_rows
            )
            log.info("epoch %d/%d done in %.1fs: %s", epoch, settings.epochs, train_seconds, scores)
            if not memorised_epoch and train_f1 >= settings.memorised_f1:
                memorised_epoch = epoch
                memorised_state = trainee.snapshot()
                log.info(
                    "train macro-F1 %.4f >= %.3f: epoch %d is the memorised checkpoint", train_f1, settings.memorised_f1, epoch
                )
                resume.save_memorised(memorised_state)
            if stop is not None and not threshold_epoch and stop.reached(epoch_rows):
                threshold_epoch = epoch
                log.info("train_noisy accuracy >= %.3f first at epoch %d", stop.threshold, epoch)
            if stop is not None and stop.stops_after(epoch, threshold_epoch):
                log.info("stopping after epoch %d of at most %d (training.stopping: %s)", epoch, settings.epochs, stop.stopping)
                break
        if epoch < settings.epochs:
            resume.save(
                {
                    "epoch": epoch,
                    "weights": trainee.snapshot(),
                    "optim": {name: optim.state_dict() for name, optim in optims.items()},
                    "rng": _rng_state(),
                    "trace": rows,
                    "memorised_epoch": memorised_epoch,
                    "threshold_epoch": threshold_epoch,
                    "precision": choice.record(),
                }
            )

    if evaluate is None:
        return FitResult(pd.DataFrame(), 0, False, None, epoch_losses, 0, epochs_trained, precision=choice)
    reached = bool(memorised_epoch)
    if not reached:
        memorised_epoch = epochs_trained
        memorised_state = trainee.snapshot()
        log.warning(
            "train macro-F1 never reached %.3f; the memorised checkpoint is the final epoch (flagged in the trace)",
            settings.memorised_f1,
        )
    trace = pd.DataFrame(rows)
    trace["memorised_epoch"] = trace["epoch"] == memorised_epoch
    trace["memorised_reached"] = reached
    return FitResult(
        trace, memorised_epoch, reached, memorised_state, epoch_losses, threshold_epoch, epochs_trained, precision=choice
    )


def fit(
    model,
    trainable: Iterable[torch.nn.Parameter],
    train: TokenSet,
    settings: Settings,
    seed: int,
    device: torch.device,
    n_classes: int,
    eval_sets: dict[str, TokenSet] | None = None,
    train_groups: dict[str, np.ndarray] | None = None,
    work_dir: str | Path | None = None,
    batch_fn: Callable[[int, int], list[np.ndarray]] | None = None,
    stop: StopRule | None = None,
    trace: bool = True,
) -> FitResult:
    """Train the ``trainable`` parameters of one classifier on ``train`` (fine-tuning, subset models).

    ``train_groups`` maps a trace split name (e.g. ``train_noisy``) to a boolean mask over
    ``train``; those rows come from the per-epoch train evaluation at no extra cost.
    ``batch_fn(seed, epoch)`` overrides the batch order (tests); ``stop`` may end training early.
    ``trace=False`` skips the per-epoch evaluation (no trace, no memorised checkpoint) for callers
    that use only the final weights: evaluation runs in eval mode and draws no random numbers, so
    the trained weights are bitwise those of a traced run.
    ``precision: auto`` is measured at the model's matrix sizes and a batch of ``train``'s tokens;
    later evaluation of the job uses ``result.precision`` (:meth:`~memloc.precision.PrecisionChoice.apply`).
    """
    model.to(device)

    def batches_for(epoch: int) -> list[tuple[str, np.ndarray]]:
        if batch_fn is not None:
            order = batch_fn(seed, epoch)
        else:
            order = train_batches(train.lengths, settings.batch_size, seed, epoch, settings.length_buckets)
        return [("main", idx) for idx in order]

    history: list[dict[str, np.ndarray]] = []

    def evaluate(precision: str) -> list[dict]:
        history.append({})
        return score_rows(
            model, train, n_classes, settings.eval_batch_size, device, precision, train_groups, eval_sets,
            logits_out=history[-1],
        )

    task = classifier_task(model, train, trainable, settings.learning_rate, device)
    run_key = {"seed": seed, "n": len(train), "ids": train.example_ids[:50].tolist()}
    result = train_loop(
        Classifier(model), {"main": task}, batches_for, settings, device, evaluate if trace else None, run_key, work_dir,
        stop=stop,
        probe=lambda: probe_shape(model, train.lengths, settings.batch_size),
    )
    if history:
        # history holds the epochs this process evaluated: the last len(history) of them.
        last_epoch = result.epochs_trained or settings.epochs  # a stop rule may end training early
        first_epoch = last_epoch - len(history) + 1
        result.final_logits = history[-1]
        if result.memorised_epoch >= first_epoch:
            result.memorised_logits = history[result.memorised_epoch - first_epoch]
    return result
