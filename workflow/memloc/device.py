"""Device, precision and thread selection: CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import contextlib
import logging
import os

import torch

from memloc.precision import FIXED

log = logging.getLogger("memloc.device")


#: Device preferences memloc accepts (``training.device``); ``cuda:N`` names one of several GPUs.
PREFERENCES = ("auto", "cpu", "cuda", "mps")


def _check_preference(preference: str) -> None:
    if preference in PREFERENCES:
        return
    if isinstance(preference, str) and preference.startswith("cuda:") and preference[5:].isdigit():
        index = int(preference[5:])
        if not torch.cuda.is_available():
            raise RuntimeError(f"device '{preference}' requested but torch sees no CUDA device; use 'auto' or 'cpu'.")
        if index >= torch.cuda.device_count():
            raise RuntimeError(
                f"device '{preference}' requested but torch sees {torch.cuda.device_count()} CUDA device(s) "
                f"(cuda:0..cuda:{torch.cuda.device_count() - 1}); check CUDA_VISIBLE_DEVICES."
            )
        return
    raise ValueError(f"unknown device {preference!r}; use one of {', '.join(PREFERENCES)} (or cuda:N).")


def select_device(preference: str = "auto") -> torch.device:
    """Resolve ``auto|cpu|cuda|mps`` to an available torch device (never silently a missing one)."""
    _check_preference(preference)
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("training.device is 'cuda' but torch sees no CUDA device; use 'auto' or 'cpu'.")
    if preference == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise RuntimeError("training.device is 'mps' but torch sees no Apple MPS device; use 'auto' or 'cpu'.")
    return torch.device(preference)


def autocast(device: torch.device, precision: str):
    """Autocast context for ``precision``; fp32 (and fp16 off CUDA) is a no-op.

    ``auto`` must have been resolved first (:func:`memloc.precision.resolve_precision`, once per job).
    """
    if precision not in FIXED:
        raise ValueError(
            f"precision {precision!r} reached autocast unresolved; a job resolves training.precision: auto "
            "once with memloc.precision.resolve_precision and runs in its choice"
        )
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "fp16":
        if device.type != "cuda":
            log.warning("precision fp16 is honoured on CUDA only; running fp32 on %s", device.type)
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def needs_grad_scaler(device: torch.device, precision: str) -> bool:
    return precision == "fp16" and device.type == "cuda"


def set_threads(threads: int | None) -> None:
    """Match torch's intra-op threads to the job's ``threads:`` so parallel jobs do not oversubscribe."""
    if threads and threads > 0:
        torch.set_num_threads(int(threads))
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))


def set_determinism(seed: int, deterministic: bool) -> None:
    """Seed every RNG memloc uses; optionally demand deterministic kernels."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        if torch.backends.cudnn.is_available():
            torch.backends.cudnn.benchmark = False
