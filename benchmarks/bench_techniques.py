"""Batched vs per-example computation in the gradient, probing and centroid techniques.

    python benchmarks/bench_techniques.py                  # embedded default size, 1 CPU thread
    python benchmarks/bench_techniques.py --threads 2 --device cuda --repeats 3

Measured in one run, on a random 6-block, 384-wide BERT (the size of the embedded default's
all-MiniLM-L6-v2) with 120 memorised + 120 clean examples of about 25 tokens:

* forgetting gradients: the batched mean gradient (``block_values``: length-sorted padded batches,
  ``backward(sum / n)``) against a per-example loop (one forward/backward per example), both
  computing per-block norms of (mean memorised - mean clean gradient); target >= 20x;
* pooled hidden states: ``pooled_states`` with batches against batch size 1; target >= 5x;
* probing (informational): every probe of the default config (7 layers + frozen layer 1, 5 probe
  seeds, 30 epochs, 800 training examples) trained as one batched stack against the same probes
  trained one after another with the same code.

Each side is warmed up once, then timed ``--repeats`` times (best time reported). The results of
both sides are compared, so a speed-up never hides a different answer.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from memloc.localise.gradients import accumulate_mean_gradient, block_gradients_only, block_norm, block_values
from memloc.localise.hidden import pooled_states
from memloc.localise.probes import train_probes
from memloc.localise.probing import ProbingSettings
from memloc.models.random import build_random_classifier
from memloc.tokens import TokenSet


def make_tokens(n: int, seed: int, vocab: int) -> TokenSet:
    rng = np.random.default_rng(seed)
    ids = [rng.integers(1000, vocab, size=int(rng.integers(15, 36))).astype(np.int64) for _ in range(n)]
    for x in ids:
        x[0] = 101  # [CLS]
    return TokenSet(np.arange(n), ids, None, rng.integers(0, 2, size=n).astype(np.int64), pad_token_id=0)


def loop_block_values(model, memorised: TokenSet, clean: TokenSet, device) -> np.ndarray:
    """The per-example reference: one forward/backward per example, gradients summed / n."""
    with block_gradients_only(model) as blocks:
        for data, sign in ((memorised, 1.0), (clean, -1.0)):
            for i in range(len(data)):
                accumulate_mean_gradient(
                    model, data.subset([i]), sign / len(data), batch_size=1, loss="ce", device=device, precision="fp32"
                )
        return np.array([block_norm([p.grad for p in params], "l1") for params in blocks])


def timed(fn, repeats: int):
    fn()  # warm-up
    best, out = float("inf"), None
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, out


def measure(args) -> list[tuple]:
    """``(name, per-example seconds, batched seconds, target, check)`` per technique."""
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    vocab = 30522
    model = build_random_classifier("bert", num_layers=6, hidden_size=384, num_heads=12, vocab_size=vocab, seed=0)
    model.to(device)
    memorised, clean = make_tokens(args.n, 1, vocab), make_tokens(args.n, 2, vocab)
    both = make_tokens(2 * args.n, 3, vocab)
    rows = []

    t_batch, v_batch = timed(
        lambda: block_values(
            model, memorised, clean, loss="ce", norm="l1", batch_size=args.batch_size, device=device, precision="fp32"
        ),
        args.repeats,
    )
    t_loop, v_loop = timed(lambda: loop_block_values(model, memorised, clean, device), args.repeats)
    err = float(np.max(np.abs(v_batch - v_loop) / np.abs(v_loop)))
    rows.append(("forgetting gradients", t_loop, t_batch, ">= 20x", f"max rel diff {err:.1e}"))

    final_norm = ProbingSettings.with_defaults().final_norm
    t_hb, s_batch = timed(lambda: pooled_states(model, both, args.eval_batch_size, device, "fp32", final_norm), args.repeats)
    t_h1, s_one = timed(lambda: pooled_states(model, both, 1, device, "fp32", final_norm), args.repeats)
    diff = float(np.max(np.abs(s_batch - s_one)))
    rows.append(("pooled hidden states", t_h1, t_hb, ">= 5x", f"max abs diff {diff:.1e}"))

    if not args.skip_probing:
        rng = np.random.default_rng(0)
        n, d, n_features, seeds = 800, 384, 8, [1, 2, 3, 4, 5]
        features = torch.as_tensor(rng.normal(size=(n, n_features, d)).astype(np.float32), device=device)
        y = np.zeros(n, dtype=np.int64)
        y[rng.choice(n, 120, replace=False)] = 1
        probes = [(f, s) for f in range(n_features) for s in seeds]
        kw = ProbingSettings.with_defaults(dropout=0.0).probe_options()
        t_stack, together = timed(
            lambda: train_probes(features, y, [f for f, _ in probes], [s for _, s in probes], **kw), 1
        )
        t_alone, alone = timed(
            lambda: [train_probes(features, y, [f], [s], **kw) for f, s in probes], 1
        )
        same = np.max(np.abs(together["test_f1"].to_numpy() - np.array([a["test_f1"].iloc[0] for a in alone])))
        rows.append((f"probing ({len(probes)} probes)", t_alone, t_stack, "-", f"max test-F1 diff {same:.1e}"))

    return rows


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--n", type=int, default=120, help="memorised examples (and as many clean ones)")
    parser.add_argument("--batch-size", type=int, default=32, help="gradient batch size (config default 32)")
    parser.add_argument("--eval-batch-size", type=int, default=64, help="hidden-state batch size (config default 64)")
    parser.add_argument("--skip-probing", action="store_true")
    return parser


def main(argv=None) -> None:
    args = parser().parse_args(argv)
    rows = measure(args)
    device = args.device

    print(f"device {device}, {args.threads} thread(s), {args.n} memorised + {args.n} clean examples, "
          f"6-block 384-wide BERT; best of {args.repeats}")
    header = f"{'technique':<24}{'per-example / alone':>21}{'batched':>11}{'speed-up':>10}{'target':>9}   check"
    print(header)
    print("-" * len(header))
    for name, slow, fast, target, check in rows:
        print(f"{name:<24}{slow:>19.2f} s{fast:>9.2f} s{slow / fast:>9.1f}x{target:>9}   {check}")


if __name__ == "__main__":
    main()
