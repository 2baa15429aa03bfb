"""The optimiser of every training task: AdamW, linear warm-up and decay, clipping, optional fp16 scaling.

One recipe for fine-tuning, subset models, control models (one per task) and layer retraining
(docs/protocol.md §4.5), so a change of recipe reaches every stage at once. Three settings choose
between memloc's recipe and the published code's (torch AdamW defaults, transformers' linear
schedule, clipping over every parameter): ``weight_decay_scope``, ``lr_schedule`` and, in the
loop (:func:`memloc.training.loop.train_loop`), ``clip_scope``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol

import torch

from memloc.device import needs_grad_scaler
from memloc.errors import ConfigError


class OptimSettings(Protocol):
    """The settings fields the recipe reads (training :class:`~memloc.training.loop.Settings` and
    retraining's settings both provide them)."""

    weight_decay: float
    weight_decay_scope: str
    warmup_ratio: float
    lr_schedule: str
    max_grad_norm: float
    clip_scope: str
    precision: str


def schedule_factor(kind: str, warmup_ratio: float, total_steps: int) -> Callable[[int], float]:
    """The learning-rate factor of 0-based step s over ``total_steps`` = S steps.

    ``linear`` (memloc): W = ceil(ratio * S); (s + 1) / W during warm-up, so the first step already
    has lr / W. ``hf_linear`` (transformers' ``get_scheduler("linear", num_warmup_steps=int(ratio * S))``,
    the published code): W = floor(ratio * S); s / W during warm-up, so the first step has lr 0.
    Both then decay linearly: (S - s) / (S - W), reaching 0 at s = S.
    """
    if kind == "linear":
        warmup, offset = math.ceil(warmup_ratio * total_steps), 1
    elif kind == "hf_linear":
        warmup, offset = int(warmup_ratio * total_steps), 0
    else:
        raise ConfigError(f"lr_schedule {kind!r} is not one of linear, hf_linear (see the config schema's training block)")

    def factor(step: int) -> float:
        if step < warmup:
            return (step + offset) / max(1, warmup)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


def decay_groups(params: list[torch.nn.Parameter], weight_decay: float, scope: str) -> list[dict]:
    """AdamW parameter groups: decay on matrices only (``matrices``) or on every parameter (``all``,
    torch's AdamW as the published code uses it: biases and norms decay too)."""
    if scope == "all":
        return [{"params": params, "weight_decay": weight_decay}]
    if scope != "matrices":
        raise ConfigError(f"weight_decay_scope {scope!r} is not one of matrices, all (see the config schema's training block)")
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@dataclass
class TaskOptim:
    """Optimiser, schedule and (fp16) grad scaler of one task's parameters.

    ``params`` are what the optimiser updates; ``grad_params`` (a superset) are the parameters whose
    gradients a step computes, clips over and clears: ``params`` itself, or with ``clip_scope: all``
    every parameter of the trained model(s), frozen ones included (never updated: the optimiser
    does not hold them).
    """

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None
    params: list[torch.nn.Parameter]
    grad_params: list[torch.nn.Parameter]
    max_grad_norm: float

    def _clear(self) -> None:
        for p in self.grad_params:
            p.grad = None

    def step(self, loss: torch.Tensor) -> None:
        """Backward, clip the global gradient norm of ``grad_params``, step, advance the schedule.

        Gradients are cleared before and after, so a step never sees another task's gradients
        on shared parameters.
        """
        self._clear()
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.grad_params, self.max_grad_norm)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.grad_params, self.max_grad_norm)
            self.optimizer.step()
        self.scheduler.step()
        self._clear()

    def state_dict(self) -> dict:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
        }

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])


def make_task_optim(
    params: list[torch.nn.Parameter],
    grad_params: list[torch.nn.Parameter],
    lr: float,
    settings: OptimSettings,
    total_steps: int,
    device: torch.device,
) -> TaskOptim:
    """AdamW over ``params`` with the warm-up/decay schedule ``settings.lr_schedule`` over ``total_steps``;
    ``grad_params`` as in :class:`TaskOptim`."""
    params = list(params)
    grad_params = list(grad_params)
    optimizer = torch.optim.AdamW(decay_groups(params, settings.weight_decay, settings.weight_decay_scope), lr=lr)
    total = max(1, int(total_steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule_factor(settings.lr_schedule, settings.warmup_ratio, total))
    scaler = None
    if needs_grad_scaler(device, settings.precision):
        if len(grad_params) != len(params):
            # The scaler unscales and checks for overflow only the optimiser's own gradients.
            raise ConfigError(
                "clip_scope: all cannot run with precision fp16 on CUDA (the gradient scaler sees only the "
                "trained parameters' gradients); set the model's training.precision to fp32 or bf16, or clip_scope: trainable"
            )
        scaler = torch.amp.GradScaler("cuda")
    return TaskOptim(optimizer, scheduler, scaler, params, grad_params, settings.max_grad_norm)
