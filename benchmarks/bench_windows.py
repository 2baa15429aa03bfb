"""Speed-ups of the window techniques' shortcuts over the plain computation, side by side.

    python benchmarks/bench_windows.py                       # bert, 12 blocks, hidden 64, CPU
    python benchmarks/bench_windows.py --family gpt2 --layers 6 --hidden 128
    python benchmarks/bench_windows.py --device cuda --hidden 768 --heads 12 --batch 32
    python benchmarks/bench_windows.py --out results/benchmarks/windows.parquet

Layer swapping, all L(L+1)/2 windows over the same batches:
  naive       copy each window's blocks from the twin into the model, full forward, copy back;
  per_window  capture block inputs once per batch, then one forward from block s through the
              mixed block list twin[s..e] + noisy[e+1..L] per window (no weight copies);
  memloc      memloc.localise.swapping.swapped_logits: as per_window, but windows sharing a start
              share the twin chain (one pass per start, then only noisy blocks e+1..L per window).

Layer retraining, every window with the same training batches:
  step        one training step (forward + backward + AdamW) per window and batch, the plain
              train-mode forward vs forward_from_block(s) on cached prefix states (cache build
              time per start included);
  job         memloc.localise.retraining.retrain_windows end to end, cache_prefix False vs True.

Writes nothing but stdout unless --out is given (a small Parquet table of the timings).
"""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from memloc.localise.common import split_inputs
from memloc.localise.retraining import (
    RetrainSettings,
    compute_prefix_cache,
    retrain_windows,
    set_train_modes,
    trainable_parameters,
    window_logits,
)
from memloc.localise.swapping import swapped_logits
from memloc.localise.windows import windows
from memloc.models.blocks import block_access, capture_block_inputs, copy_blocks, forward_from_block
from memloc.models.random import build_random_classifier
from memloc.tokens import TokenSet
from memloc.training.evaluation import model_inputs

VOCAB = 1000


def token_set(n: int, max_len: int, seed: int = 0) -> TokenSet:
    rng = np.random.default_rng(seed)
    ids = [rng.integers(5, VOCAB, size=int(rng.integers(max_len // 2, max_len + 1))).astype(np.int64) for _ in range(n)]
    labels = rng.integers(0, 2, size=n).astype(np.int64)
    return TokenSet(np.arange(n, dtype=np.int64), ids, None, labels, pad_token_id=0)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fns: dict, device, repeats: int) -> dict[str, float]:
    """Best wall time of each function, run round-robin so that load from other processes
    on a shared machine hits every contender alike."""
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def bench_swapping(noisy, twin, batches, wins, device, repeats):
    a, b = block_access(noisy), block_access(twin)
    work = copy.deepcopy(noisy)
    w = block_access(work)

    @torch.no_grad()
    def naive():
        for inputs in batches:
            for s, e in wins:
                copy_blocks(w, b, range(s, e + 1))
                work(**inputs)
                copy_blocks(w, a, range(s, e + 1))

    @torch.no_grad()
    def per_window():
        nb, tb = list(a.blocks), list(b.blocks)
        for inputs in batches:
            ids, mask, extra = split_inputs(inputs)
            hidden, _ = capture_block_inputs(a, ids, mask, **extra)
            for s, e in wins:
                forward_from_block(a, s, hidden[s - 1], ids, mask, blocks=nb[: s - 1] + tb[s - 1 : e] + nb[e:], **extra)

    def memloc():
        for inputs in batches:
            swapped_logits(a, b, inputs, wins)

    return timed({"naive": naive, "per_window": per_window, "memloc": memloc}, device, repeats)


def bench_retraining_steps(model, data, batch_idx, wins, device, repeats):
    access = block_access(model)
    state = copy.deepcopy(model.state_dict())

    def run(cached: bool):
        model.load_state_dict(state)
        cache = None
        for s, e in wins:
            if cached and (cache is None or cache.start != s):
                cache = compute_prefix_cache(access, s, data, 64, device, "fp32")
            params = trainable_parameters(access, s, e, freeze_pooler=False)
            keep = {id(p) for p in params}
            for p in model.parameters():
                p.requires_grad_(id(p) in keep)
            opt = torch.optim.AdamW(params, lr=1e-5)
            if cached:
                set_train_modes(access, s)
            else:
                model.train()
            for idx in batch_idx:
                batch = data.collate(idx)
                logits = window_logits(access, s, model_inputs(batch, device), cache if cached else None, idx)
                loss = torch.nn.functional.cross_entropy(logits, batch["labels"].to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        model.eval()

    return timed({"plain": lambda: run(False), "cached": lambda: run(True)}, device, repeats)


def bench_retraining_job(noisy, pretrained, data, memorised, settings, device, repeats):
    def job(cache_prefix: bool):
        opts = replace(settings, cache_prefix=cache_prefix)
        return lambda: retrain_windows(noisy, pretrained, data, memorised, opts, device=device)

    return timed({"plain": job(False), "cached": job(True)}, device, repeats)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="bert")
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--max-len", type=int, default=48)
    ap.add_argument("--batches", type=int, default=1, help="batches per window (swapping and training steps)")
    ap.add_argument("--job-examples", type=int, default=40, help="training examples of the end-to-end retraining job")
    ap.add_argument("--job-layers", type=int, default=6, help="blocks of the model in the end-to-end job")
    ap.add_argument("--repeats", type=int, default=3, help="round-robin repeats; the best time counts")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    return ap


def measure(args) -> list[dict]:
    """``{benchmark, baseline_s, fast_s, speedup}`` per window shortcut (also printed)."""
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    def build(seed, layers=args.layers):
        return build_random_classifier(args.family, num_layers=layers, hidden_size=args.hidden, num_heads=args.heads,
                                       vocab_size=VOCAB, seed=seed).to(device)

    noisy, twin = build(1), build(2)
    wins = windows(args.layers, None)
    data = token_set(args.batch * args.batches, args.max_len)
    batch_idx = [np.arange(i * args.batch, (i + 1) * args.batch) for i in range(args.batches)]
    batches = [model_inputs(data.collate(idx), device) for idx in batch_idx]
    rows = []
    print(f"{args.family}, {args.layers} blocks, hidden {args.hidden}, {len(wins)} windows, "
          f"{args.batches} batches of {args.batch} x <= {args.max_len} tokens, {device}, {args.threads} thread(s)")

    t = bench_swapping(noisy, twin, batches, wins, device, args.repeats)
    for name in ("per_window", "memloc"):
        rows.append({"benchmark": f"swapping_{name}", "baseline_s": t["naive"], "fast_s": t[name],
                     "speedup": t["naive"] / t[name]})
    print(f"swapping  naive {t['naive']:.3f}s  per-window mixed {t['per_window']:.3f}s "
          f"({t['naive'] / t['per_window']:.2f}x)  memloc {t['memloc']:.3f}s ({t['naive'] / t['memloc']:.2f}x)")

    t = bench_retraining_steps(noisy, data, batch_idx, wins, device, args.repeats)
    rows.append({"benchmark": "retraining_steps", "baseline_s": t["plain"], "fast_s": t["cached"],
                 "speedup": t["plain"] / t["cached"]})
    print(f"retraining steps  plain {t['plain']:.3f}s  cached prefix {t['cached']:.3f}s "
          f"({t['plain'] / t['cached']:.2f}x, cache builds included)")

    job_data = token_set(args.job_examples, args.max_len, seed=1)
    memorised = np.zeros(len(job_data), dtype=bool)
    memorised[: max(1, len(job_data) // 8)] = True
    settings = RetrainSettings.with_defaults(epochs=2, batch_size=args.batch, eval_batch_size=64, learning_rate=1e-4)
    job_noisy, job_pretrained = build(1, args.job_layers), build(3, args.job_layers)
    t = bench_retraining_job(job_noisy, job_pretrained, job_data, memorised, settings, device, args.repeats)
    rows.append({"benchmark": "retraining_job", "baseline_s": t["plain"], "fast_s": t["cached"],
                 "speedup": t["plain"] / t["cached"]})
    print(f"retraining job ({args.job_layers} blocks, {args.job_examples} examples, 2 epochs)  plain {t['plain']:.3f}s  "
          f"cached prefix {t['cached']:.3f}s ({t['plain'] / t['cached']:.2f}x)")
    return rows


def main(argv=None) -> None:
    args = parser().parse_args(argv)
    rows = measure(args)
    if args.out:
        from memloc.io import write_parquet

        table = pd.DataFrame(rows).assign(family=args.family, layers=args.layers, hidden=args.hidden,
                                          device=str(torch.device(args.device)), threads=args.threads)
        write_parquet(table, args.out, metadata={"argv": vars(args)})
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
