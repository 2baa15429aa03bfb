"""``training.precision: auto``: measure once per job whether bf16 autocast pays here, and record it.

Whether bf16 autocast is faster than fp32 depends on the chip, not on the model: CPUs with AMX
run bf16 matrix products several times faster than fp32, CPUs with only AVX512-BF16 somewhat
faster, older ones slower (docs/protocol.md §4.5). ``auto`` therefore measures it on the job's
own device and threads, at the model's own matrix sizes, before the job does any model work:
:func:`measure_bf16_speedup` times the forward and weight-gradient products of each distinct
weight matrix of one block on a realistic number of tokens, in fp32 and under bf16 autocast, best
of a few interleaved trials. bf16 is chosen where ``fp32 time / bf16 time`` reaches
``training.auto_precision_min_speedup``, else fp32; fp16 never is. On CUDA bf16 is considered only
where the device supports it.

The choice (:class:`PrecisionChoice`) is made once per job, used for its training and evaluation,
kept by a resumed job (the loop's resume state holds it) and written as the ``precision`` entry of
the job's metadata; the measurements sit under ``precision_probe``, which ``memloc diff`` ignores
(they describe the machine, not the result).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from memloc.errors import ConfigError

log = logging.getLogger("memloc.precision")

#: Precisions autocast runs (``training.precision`` also accepts ``auto``, resolved here).
FIXED = ("fp32", "bf16", "fp16")
#: /proc/cpuinfo flags that say whether the CPU has bf16 matrix or vector units.
CPU_FLAGS = ("amx_bf16", "amx_tile", "amx_int8", "avx512_bf16", "avx512f")
#: The probe's token count is a training batch's real tokens, capped so a large model's probe stays short.
MAX_PROBE_TOKENS = 1024
#: Trials per precision (the best counts): MIN_TRIALS, then more up to MAX_TRIALS while the trials so far
#: took under PROBE_BUDGET_S (at the default's sizes about 0.3 s in all on an idle 2-core CPU).
MIN_TRIALS, MAX_TRIALS, PROBE_BUDGET_S = 2, 5, 0.5

S = TypeVar("S")


def cpu_features(cpuinfo: str | Path = "/proc/cpuinfo") -> dict[str, Any]:
    """The CPU's model name, which of :data:`CPU_FLAGS` it reports and torch's CPU kernel level.

    ``flags`` is None where ``cpuinfo`` cannot be read (not Linux).
    """
    model, flags = None, None
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        text = None
    if text is not None:
        found: set[str] = set()
        for line in text.splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and model is None:
                model = value.strip()
            elif key == "flags":
                found.update(value.split())
        flags = [f for f in CPU_FLAGS if f in found]
    return {"model": model, "flags": flags, "torch_capability": torch.backends.cpu.get_cpu_capability()}


def describe_cpu(features: dict[str, Any]) -> str:
    """One line for logs and benchmark tables, e.g. ``AMD EPYC: avx512f avx512_bf16, no AMX (torch AVX512)``."""
    flags = features.get("flags")
    if flags is None:
        found = "CPU flags unknown"
    else:
        amx = any(f.startswith("amx") for f in flags)
        found = (" ".join(flags) or "none of " + " ".join(CPU_FLAGS)) + ("" if amx else ", no AMX")
    return f"{features.get('model') or 'unknown CPU'}: {found} (torch {features.get('torch_capability')})"


@dataclass(frozen=True)
class ProbeShape:
    """What the probe multiplies: ``tokens`` rows by each distinct ``(out, in)`` weight matrix of a block."""

    tokens: int
    matrices: tuple[tuple[int, int], ...]


def probe_shape(model: torch.nn.Module, lengths, batch_size: int) -> ProbeShape:
    """The model's own matrix sizes (block 1's 2-D weights) and a batch's real tokens (mean length x batch)."""
    from memloc.models.blocks import block_access

    mats = sorted({(int(p.shape[0]), int(p.shape[1])) for p in block_access(model).block_parameters(1) if p.dim() == 2})
    tokens = int(round(batch_size * float(np.mean(lengths)))) if len(lengths) else 1
    return ProbeShape(max(1, min(tokens, MAX_PROBE_TOKENS)), tuple(mats))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def measure_bf16_speedup(device: torch.device, shape: ProbeShape) -> tuple[float, float, int]:
    """``(fp32 seconds, bf16 seconds, trials)``: best time of one pass over the probe's products per precision.

    A pass runs, per weight ``W`` (out x in) and activations ``x`` (tokens x in), the forward ``x W^T``
    and the weight gradient ``g^T x`` of a training step, in fp32 and under bf16 autocast (which
    also pays autocast's casts, as training does). The two precisions alternate, after one warm-up
    pass each, so a neighbour's load hits both alike. A private generator leaves the job's RNGs alone.
    """
    gen = torch.Generator().manual_seed(0)
    work = []
    for out_dim, in_dim in shape.matrices:
        w = torch.rand(out_dim, in_dim, generator=gen).to(device)
        x = torch.rand(shape.tokens, in_dim, generator=gen).to(device)
        g = torch.rand(shape.tokens, out_dim, generator=gen).to(device)
        work.append((w, x, g))

    def one_pass(bf16: bool) -> float:
        _sync(device)
        t0 = time.perf_counter()
        with torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
            for w, x, g in work:
                _ = x @ w.T  # forward
                _ = g.T @ x  # weight gradient
        _sync(device)
        return time.perf_counter() - t0

    one_pass(False), one_pass(True)
    best = {False: float("inf"), True: float("inf")}
    start, trials = time.perf_counter(), 0
    while trials < MIN_TRIALS or (trials < MAX_TRIALS and time.perf_counter() - start < PROBE_BUDGET_S):
        for bf16 in (False, True):
            best[bf16] = min(best[bf16], one_pass(bf16))
        trials += 1
    return best[False], best[True], trials


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision a job runs in: what the config asked for, what it got and, for ``auto``, why."""

    requested: str
    resolved: str
    #: For ``auto``: the measurement and the rule (bf16_speedup, min_speedup, device, threads,
    #: tokens, matrices, trials, fp32/bf16/probe seconds, cpu features; or a note why none ran).
    precision_probe: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        """The ``precision`` metadata entry (JSON-ready)."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> PrecisionChoice:
        return cls(record["requested"], record["resolved"], record.get("precision_probe"))

    def apply(self, settings: S) -> S:
        """``settings`` (a frozen dataclass with ``precision``) running in the resolved precision."""
        return replace(settings, precision=self.resolved)  # type: ignore[type-var]


Measure = Callable[[torch.device, ProbeShape], tuple[float, float, int]]


def resolve_precision(
    requested: str,
    device: torch.device,
    shape: Callable[[], ProbeShape],
    min_speedup: float,
    measure: Measure | None = None,
) -> PrecisionChoice:
    """The job's precision: ``requested`` itself, or for ``auto`` bf16 where measured >= ``min_speedup`` x fp32.

    ``shape()`` is called (and the probe run, by ``measure`` or :func:`measure_bf16_speedup`) only for ``auto``.
    """
    if requested in FIXED:
        return PrecisionChoice(requested, requested)
    if requested != "auto":
        raise ConfigError(f"training.precision {requested!r} is not one of {', '.join(FIXED)}, auto (see the config schema)")
    device = torch.device(device)
    probe: dict[str, Any] = {"min_speedup": float(min_speedup), "device": str(device), "threads": torch.get_num_threads()}
    if device.type == "cpu":
        probe["cpu"] = cpu_features()
    if device.type == "cuda":
        probe["device_name"] = torch.cuda.get_device_name(device)
        if not torch.cuda.is_bf16_supported():
            probe["note"] = "this CUDA device does not support bf16"
            log.info("precision auto: fp32 (%s)", probe["note"])
            return PrecisionChoice(requested, "fp32", probe)
    dims = shape()
    probe.update(tokens=dims.tokens, matrices=[list(m) for m in dims.matrices])
    t0 = time.perf_counter()
    try:
        fp32_s, bf16_s, trials = (measure or measure_bf16_speedup)(device, dims)
    except (RuntimeError, TypeError, NotImplementedError) as err:  # bf16 autocast unsupported on this backend
        probe.update(note=f"bf16 probe failed: {err}", probe_seconds=time.perf_counter() - t0)
        log.warning("precision auto: fp32 (the bf16 probe failed on %s: %s)", device, err)
        return PrecisionChoice(requested, "fp32", probe)
    speedup = fp32_s / bf16_s if bf16_s > 0 else float("inf")
    probe.update(
        bf16_speedup=speedup, trials=trials, fp32_seconds=fp32_s, bf16_seconds=bf16_s, probe_seconds=time.perf_counter() - t0
    )
    resolved = "bf16" if speedup >= min_speedup else "fp32"
    log.info(
        "precision auto: %s (bf16 autocast measured %.2fx fp32 on %s with %d thread(s), %d tokens x %s; threshold %.2fx; "
        "probe %.2f s)%s",
        resolved, speedup, device, probe["threads"], dims.tokens, dims.matrices, min_speedup, probe["probe_seconds"],
        f"; {describe_cpu(probe['cpu'])}" if "cpu" in probe else "",
    )
    return PrecisionChoice(requested, resolved, probe)
