"""memloc's benchmark suite: one command, one Parquet table, one Markdown summary.

    python benchmarks/run.py                         # throughput, techniques, scaling, end to end from results/
    python benchmarks/run.py --run-default           # also run the embedded default afresh and time it
    python benchmarks/run.py --only throughput --device cuda

Sections (each measured in this run, side by side, never against numbers from another run):

1. ``throughput``: training tokens/s and model FLOP utilisation against a matmul peak measured here,
   in fp32 and bf16 autocast; the bf16/fp32 speed-up with the CPU features found, the ``precision: auto``
   probe beside it, and the bucketed/shuffled speed-up.
   ``jobs``: a fine-tuning job's predictions with reused trace logits against recomputing them,
   and two concurrent 1-thread training jobs against one 2-thread job (``benchmarks/jobs.py``).
2. ``techniques``: each technique shortcut against its plain reference (``bench_windows``,
   ``bench_techniques``), as ratios.
3. ``end_to_end``: the embedded default's wall time and per-rule breakdown from the rules'
   benchmark files (``results/benchmarks``), or from a fresh timed run with ``--run-default``.
4. ``scaling``: each rule's cost exponent in training-set size and in blocks, and its peak memory,
   from small real workflow runs of a random BERT.
5. ``precision``: the embedded default at 400 sentences in fp32 and in bf16 autocast; the noisy
   model's memorisation, its validation accuracy and each M-CoG must agree within stated tolerances.

Writes ``<out>/benchmarks.parquet`` (columns: section, benchmark, value, unit, reference, ratio,
target, detail, plus the device and threads) and ``<out>/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_techniques  # noqa: E402
import bench_windows  # noqa: E402
import end_to_end  # noqa: E402
import jobs  # noqa: E402
import precision  # noqa: E402
import scaling  # noqa: E402
import throughput  # noqa: E402

from memloc.io import write_parquet  # noqa: E402
from memloc.precision import cpu_features, describe_cpu  # noqa: E402

SECTIONS = ("throughput", "jobs", "techniques", "end_to_end", "scaling", "precision")
COLUMNS = ["section", "benchmark", "value", "unit", "reference", "ratio", "target", "detail"]


def technique_rows(device: str, threads: int) -> list[dict]:
    rows = []
    for r in bench_windows.measure(bench_windows.parser().parse_args(["--device", device, "--threads", str(threads)])):
        rows.append(
            {
                "section": "techniques",
                "benchmark": r["benchmark"].replace("_", " "),
                "value": r["fast_s"],
                "unit": "s",
                "reference": r["baseline_s"],
                "ratio": r["speedup"],
                "target": "> 1",
                "detail": "memloc shortcut vs plain reference (12-block 64-wide BERT, bench_windows)",
            }
        )
    args = bench_techniques.parser().parse_args(["--device", device, "--threads", str(threads)])
    for name, slow, fast, target, check in bench_techniques.measure(args):
        rows.append(
            {
                "section": "techniques",
                "benchmark": name,
                "value": fast,
                "unit": "s",
                "reference": slow,
                "ratio": slow / fast,
                "target": target if target != "-" else "",
                "detail": f"batched vs one example at a time (6-block 384-wide BERT); {check}",
            }
        )
    return rows


def markdown(table: pd.DataFrame, header: str) -> str:
    """One Markdown table per section."""
    out = [f"# memloc benchmarks\n\n{header}\n"]
    for section in SECTIONS:
        part = table[table.section == section]
        if part.empty:
            continue
        out.append(
            f"\n## {section}\n\n| benchmark | value | unit | reference | ratio | target | detail |\n"
            "|---|---:|---|---:|---:|---|---|"
        )
        for r in part.itertuples():
            out.append(
                f"| {r.benchmark} | {_num(r.value)} | {r.unit} | {_num(r.reference)} | {_num(r.ratio)} "
                f"| {r.target} | {r.detail} |"
            )
    return "\n".join(out) + "\n"


def _num(x) -> str:
    if x is None or pd.isna(x):
        return ""
    x = float(x)
    if abs(x) >= 1e6:
        return f"{x:.3g}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="benchmarks/out", help="directory for benchmarks.parquet and benchmarks.md")
    ap.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the default config's finetune threads)")
    ap.add_argument("--results", default="results", help="results tree whose benchmark files give the end-to-end section")
    ap.add_argument("--run-default", action="store_true", help="run the embedded default afresh in <out>/default and time it")
    ap.add_argument("--cores", type=int, default=2, help="snakemake --cores for --run-default and scaling")
    ap.add_argument("--sizes", type=int, nargs="+", default=[150, 300, 600], help="scaling: training-set sizes")
    ap.add_argument("--blocks", type=int, nargs="+", default=[2, 4, 8], help="scaling: numbers of blocks")
    ap.add_argument("--hidden", type=int, default=256, help="scaling: width of the random BERT")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    extra: dict[str, pd.DataFrame] = {}
    t0 = time.perf_counter()

    if "throughput" in args.only:
        print("== throughput", flush=True)
        rows += throughput.throughput_rows(device, args.threads)
    if "jobs" in args.only:
        print("== jobs", flush=True)
        rows += jobs.job_rows()
    if "techniques" in args.only:
        print("== techniques", flush=True)
        rows += technique_rows(args.device, args.threads)
    if "end_to_end" in args.only:
        print("== end to end", flush=True)
        wall, results = None, Path(args.results)
        if args.run_default:
            work = out / "default"
            wall = end_to_end.run_default(work, args.cores)
            results = work / "results"
        if (results / "benchmarks").is_dir():
            e2e, extra["per_rule"] = end_to_end.end_to_end_rows(results, wall)
            rows += e2e
            fp32 = [r for r in rows if r["benchmark"] == "training fp32"]
            if fp32:
                rows.append(end_to_end.floor_row(extra["per_rule"], fp32[0]["ratio"]))
        else:
            print(f"   skipped: {results}/benchmarks does not exist (run snakemake first, or pass --run-default)")
    base_n = sorted(args.sizes)[len(args.sizes) // 2]
    base_L = sorted(args.blocks)[len(args.blocks) // 2]
    if "scaling" in args.only:
        print("== scaling", flush=True)
        sc, extra["scaling_grid"] = scaling.scaling_rows(args.sizes, args.blocks, base_n, base_L, args.hidden, args.cores)
        rows += sc
    if "precision" in args.only:
        print("== precision", flush=True)
        rows += precision.precision_rows(args.cores)

    table = pd.DataFrame(rows, columns=COLUMNS).assign(device=str(device), threads=args.threads)
    header = (
        f"device {device} ({torch.cuda.get_device_name(0) if device.type == 'cuda' else describe_cpu(cpu_features())}), "
        f"{args.threads} torch thread(s), torch {torch.__version__}; {time.perf_counter() - t0:.0f} s in all"
    )
    write_parquet(table, out / "benchmarks.parquet", metadata={"argv": vars(args)})
    for name, frame in extra.items():
        write_parquet(frame, out / f"{name}.parquet")
    text = markdown(table, header)
    (out / "benchmarks.md").write_text(text)
    print(text)
    print(f"wrote {out / 'benchmarks.parquet'} and {out / 'benchmarks.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
