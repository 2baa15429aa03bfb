"""Training throughput and model FLOP utilisation (MFU) against a matmul peak measured in the same run.

Why: fine-tuning is most of memloc's cost, so its speed is the product's speed, and tokens/s alone
does not say how much is left on the table. MFU = achieved model FLOP/s / the best FLOP/s this
process reaches on a large square matrix multiply with the same threads and precision.

Model FLOPs are counted analytically from the architecture and the *real* (unpadded) tokens, so
padding never counts as useful work: per token and block, a forward pass costs
``2 (4 d^2 + 2 d f)`` in the projections and ``4 s d`` in attention (``s`` the example's length);
a training step costs three forward passes (backward = input and weight gradients), plus the pooler
and head. The timed loop is :func:`memloc.training.loop.fit` itself (its per-epoch ``seconds``,
which exclude evaluation), so the number is the production loop's, optimiser step included.

The bf16/fp32 row names the CPU features found (AMX, AVX512-BF16: :func:`memloc.precision.cpu_features`),
and a last row sets the short probe of ``training.precision: auto`` (the matrix products only)
beside the training speed-up it predicts, with its cost and its choice.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from memloc.models.random import build_random_classifier
from memloc.precision import cpu_features, describe_cpu, probe_shape, resolve_precision
from memloc.tokens import TokenSet
from memloc.training.finetune import trainable_parameters
from memloc.training.loop import Settings, fit

#: all-MiniLM-L6-v2, the embedded default: 6 blocks, width 384, 12 heads, feed-forward 1536.
DEFAULT_SHAPE = {"num_layers": 6, "hidden_size": 384, "num_heads": 12, "vocab_size": 30522}
#: The embedded default's batches of 16 sentences (config.yaml's training.batch_size).
BATCH_SIZE = 16


def matmul_peak(dtype: torch.dtype, device: torch.device, size: int = 2048, seconds: float = 2.0) -> float:
    """Best FLOP/s of ``size x size @ size x size`` over repeated trials lasting about ``seconds``."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    flops = 2.0 * size**3
    torch.matmul(a, b)  # warm-up
    best, spent = 0.0, 0.0
    while spent < seconds:
        _sync(device)
        t0 = time.perf_counter()
        torch.matmul(a, b)
        _sync(device)
        dt = time.perf_counter() - t0
        spent += dt
        best = max(best, flops / dt)
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def sentence_tokens(n: int, seed: int = 0, vocab: int = 30522, mean_len: int = 27) -> TokenSet:
    """Synthetic sentences with movie-review-like lengths (CLS + words + SEP, 8-64 tokens)."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.poisson(mean_len, size=n), 8, 64)
    ids = [rng.integers(1000, vocab, size=int(k)).astype(np.int64) for k in lengths]
    for x in ids:
        x[0], x[-1] = 101, 102
    return TokenSet(np.arange(n), ids, None, rng.integers(0, 2, size=n).astype(np.int64), pad_token_id=0)


def training_flops(model, lengths: np.ndarray, epochs: int = 1) -> float:
    """Model FLOPs of training on examples of ``lengths`` (unpadded), forward + backward."""
    cfg = model.config
    d = cfg.hidden_size
    f = getattr(cfg, "intermediate_size", 4 * d)
    layers = cfg.num_hidden_layers
    tokens = float(np.sum(lengths))
    per_token_block = 2 * (4 * d * d + 2 * d * f)
    attention = 4.0 * d * float(np.sum(np.asarray(lengths, dtype=np.float64) ** 2))  # sum over examples of 4 s^2 d
    head = 2.0 * (d * d + d * cfg.num_labels) * len(lengths)  # pooler + classifier, once per example
    forward = layers * (per_token_block * tokens + attention) + head
    return 3.0 * forward * epochs


def train_throughput(
    model_factory,
    data: TokenSet,
    precision: str,
    device: torch.device,
    length_buckets: bool = True,
    epochs: int = 2,
    batch_size: int = BATCH_SIZE,
) -> dict:
    """Tokens/s and model FLOP/s of ``fit``'s training loop; the first epoch is the warm-up."""
    model = model_factory()
    logging.getLogger("memloc.train").setLevel(logging.ERROR)  # random labels never reach "memorised"
    settings = Settings.with_defaults(
        epochs=epochs, learning_rate=1e-4, batch_size=batch_size, precision=precision, length_buckets=length_buckets
    )
    result = fit(model, trainable_parameters(model, "noisy", True), data, settings, 1, device, n_classes=2)
    seconds = result.trace.drop_duplicates("epoch")["seconds"].to_numpy()
    timed = float(seconds[1:].min()) if len(seconds) > 1 else float(seconds[0])
    tokens = float(data.lengths.sum())
    flops = training_flops(model, data.lengths)
    return {"seconds": timed, "tokens_per_s": tokens / timed, "flops_per_s": flops / timed}


def throughput_rows(device: torch.device, threads: int, n: int = 400, epochs: int = 2) -> list[dict]:
    """fp32 and bf16 training at the embedded default's sizes, each against its own matmul peak,
    the ``precision: auto`` probe against the training speed-up, plus length-bucketed batches against
    unbucketed ones (fp32). ``threads``: torch's threads, set by the caller (named in the details)."""
    data = sentence_tokens(n)

    def factory():
        return build_random_classifier("bert", seed=0, **DEFAULT_SHAPE)

    rows = []
    for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        peak = matmul_peak(dtype, device)
        run = train_throughput(factory, data, precision, device, epochs=epochs)
        rows.append(
            {
                "section": "throughput",
                "benchmark": f"training {precision}",
                "value": run["tokens_per_s"],
                "unit": "tokens/s",
                "reference": peak,
                "ratio": run["flops_per_s"] / peak,
                "target": ">= 0.60 MFU" if precision == "fp32" else "",
                "detail": f"{run['flops_per_s'] / 1e9:.1f} GFLOP/s model vs {peak / 1e9:.1f} GFLOP/s "
                f"{precision} matmul peak; {run['seconds']:.1f} s per epoch of {n} examples",
            }
        )
    bf16, fp32 = rows[1]["value"], rows[0]["value"]
    found = describe_cpu(cpu_features()) if device.type == "cpu" else torch.cuda.get_device_name(device)
    rows.append(
        {
            "section": "throughput",
            "benchmark": "bf16 autocast vs fp32",
            "value": bf16,
            "unit": "tokens/s",
            "reference": fp32,
            "ratio": bf16 / fp32,
            "target": ">= 2 with AMX",
            "detail": f"speed-up of training.precision: bf16 over fp32 on {device}, {threads} thread(s); {found}",
        }
    )
    threshold = Settings.with_defaults().auto_precision_min_speedup
    choice = resolve_precision("auto", device, lambda: probe_shape(factory(), data.lengths, BATCH_SIZE), threshold)
    probe = choice.precision_probe
    measured = probe.get("bf16_speedup", float("nan"))
    rows.append(
        {
            "section": "throughput",
            "benchmark": "precision auto probe vs training",
            "value": measured,
            "unit": "x",
            "reference": bf16 / fp32,
            "ratio": measured / (bf16 / fp32),
            "target": "",
            "detail": f"bf16/fp32 of the probe's matrix products ({probe.get('tokens')} tokens x {probe.get('matrices')}, "
            f"{probe.get('trials')} trials, {probe.get('probe_seconds', 0.0):.2f} s) against training's; auto chose "
            f"{choice.resolved} at the default threshold {threshold}{'; ' + probe['note'] if 'note' in probe else ''}",
        }
    )
    flat = train_throughput(factory, data, "fp32", device, length_buckets=False, epochs=epochs)
    rows.append(
        {
            "section": "throughput",
            "benchmark": "length-bucketed vs shuffled batches",
            "value": fp32,
            "unit": "tokens/s",
            "reference": flat["tokens_per_s"],
            "ratio": fp32 / flat["tokens_per_s"],
            "target": "> 1",
            "detail": "speed-up of training.length_buckets (dynamic padding within buckets), fp32",
        }
    )
    return rows
