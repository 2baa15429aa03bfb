"""The optimiser of every training task: AdamW, linear warm-up and decay, clipping, optional fp16 scaling.

One recipe for fine-tuning, subset models, control models (one per task) and layer retraining
(docs/protocol.md §4.2), so a change of recipe reaches every stage at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch

from memloc.device import needs_grad_scaler


class OptimSettings(Protocol):
    """The settings fields the recipe reads (training :class:`~memloc.training.loop.Settings` and
    retraining's settings both provide them)."""

    weight_decay: float
    warmup_ratio: float
    max_grad_norm: float
    precision: str


def linear_schedule(optimizer, warmup_steps: int, total_steps: int):
    """Linear warm-up over ``warmup_steps``, then linear decay to zero at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class TaskOptim:
    """Optimiser, schedule and (fp16) grad scaler of one task's parameters."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None
    params: list[torch.nn.Parameter]
    max_grad_norm: float

    def step(self, loss: torch.Tensor) -> None:
        """Backward, clip the global gradient norm of ``params``, step, advance the schedule.

        Gradients are cleared before and after, so a step never sees another task's gradients
        on shared parameters.
        """
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

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
    params: list[torch.nn.Parameter], lr: float, settings: OptimSettings, total_steps: int, device: torch.device
) -> TaskOptim:
    """AdamW (weight decay on matrices only) with linear warm-up and decay over ``total_steps``."""
    params = list(params)
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr
    )
    total = max(1, int(total_steps))
    scheduler = linear_schedule(optimizer, math.ceil(settings.warmup_ratio * total), total)
    scaler = torch.amp.GradScaler("cuda") if needs_grad_scaler(device, settings.precision) else None
    return TaskOptim(optimizer, scheduler, scaler, params, settings.max_grad_norm)
