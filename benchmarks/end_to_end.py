"""The embedded default end to end: wall time and a per-rule breakdown from the rules' benchmark files.

Why: a user's first question is "how long will my run take, and where does the time go". Every
memloc rule declares ``benchmark:``, so Snakemake leaves one TSV per job under
``results/benchmarks/<rule>/...`` (seconds, peak RSS, CPU time). This module either reads an
existing results tree or runs ``snakemake --cores N`` on a fresh working directory and times it.

The wall time of a tree read after the fact is the span from the earliest job start (file mtime
minus its seconds) to the latest job end; for a run made here it is the measured wall clock.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
def rule_of(rel: Path) -> str:
    """The rule of a benchmark file (memloc.paths.BENCHMARK and RULE_BENCHMARK): its folder, or its
    name for a rule run once. ``train_finetune/movies/minilm/noisy/seed1.tsv`` -> ``train_finetune``;
    ``stats_mcog.tsv`` -> ``stats_mcog``."""
    return rel.with_suffix("").parts[0]


def read_benchmarks(results: Path) -> pd.DataFrame:
    """One row per job: rule, path, seconds, peak RSS (MB), end time (epoch seconds)."""
    root = Path(results) / "benchmarks"
    rows = []
    for f in sorted(root.rglob("*.tsv")):
        table = pd.read_csv(f, sep="\t")
        if table.empty:
            continue
        last = table.iloc[-1]  # with --benchmark-repeats, the last repeat
        rows.append(
            {
                "rule": rule_of(f.relative_to(root)),
                "path": str(f.relative_to(root)),
                "seconds": float(last["s"]),
                "max_rss_mb": float(last["max_rss"]) if pd.notna(last.get("max_rss")) else np.nan,
                "end": f.stat().st_mtime,
            }
        )
    if not rows:
        raise FileNotFoundError(f"{root}: no benchmark files; run the workflow first or pass --run-default.")
    return pd.DataFrame(rows)


def per_rule(jobs: pd.DataFrame) -> pd.DataFrame:
    """Jobs, total and mean seconds, share of the summed job time and peak RSS per rule."""
    g = jobs.groupby("rule")
    out = pd.DataFrame(
        {
            "jobs": g.size(),
            "seconds": g["seconds"].sum(),
            "mean_seconds": g["seconds"].mean(),
            "max_rss_mb": g["max_rss_mb"].max(),
        }
    )
    out["share"] = out["seconds"] / out["seconds"].sum()
    return out.sort_values("seconds", ascending=False).reset_index()


STARTUP = re.compile(r"start-up ([0-9.]+) s")


def read_startups(results: Path) -> pd.DataFrame:
    """One row per job log that records its start-up (``memloc.job.start``): rule and seconds."""
    root = Path(results) / "logs"
    rows = []
    for f in sorted(root.rglob("*.log")):
        match = STARTUP.search(f.read_text(errors="replace"))
        if match:
            rows.append({"rule": rule_of(f.relative_to(root)), "startup_s": float(match.group(1))})
    return pd.DataFrame(rows, columns=["rule", "startup_s"])


def startup_row(results: Path, jobs: pd.DataFrame) -> dict | None:
    """The share of all jobs' time spent starting up (interpreter, preamble, imports), or None
    when the logs predate the start-up line."""
    starts = read_startups(results)
    if starts.empty:
        return None
    total = float(jobs["seconds"].sum())
    training = starts.loc[starts["rule"].isin(TRAINING_RULES), "startup_s"].mean()
    return {
        "section": "end_to_end",
        "benchmark": "job start-up",
        "value": float(starts["startup_s"].sum()),
        "unit": "s",
        "reference": total,
        "ratio": float(starts["startup_s"].sum()) / total,
        "target": "",
        "detail": f"share of the summed job time; {len(starts)} job logs, {starts['startup_s'].mean():.2f} s each "
        f"(median {starts['startup_s'].median():.2f} s, training jobs {training:.2f} s)",
    }


#: Rules that train models (their start-up includes torch).
TRAINING_RULES = ("counterfactual_subset", "train_finetune", "control_finetune")


def floor_row(rules: pd.DataFrame, mfu: float, target_s: float = 10 * 60) -> dict:
    """How fast the training rules could be on this machine: their summed seconds times the fp32
    model-FLOP utilisation measured in the throughput section, i.e. their time if every second ran at
    the matmul peak. When this alone exceeds the target, no waste removal reaches it in fp32."""
    training = rules[rules["rule"].isin(TRAINING_RULES + ("localise_retraining",))]
    seconds = float(training["seconds"].sum())
    return {
        "section": "end_to_end",
        "benchmark": "training rules at the fp32 matmul peak",
        "value": seconds * mfu,
        "unit": "s",
        "reference": target_s,
        "ratio": seconds * mfu / target_s,
        "target": "",
        "detail": f"{seconds:.0f} s in {', '.join(training['rule'])} x fp32 MFU {mfu:.2f}: a lower bound on their "
        "wall time with fp32 arithmetic on these cores",
    }


def span_seconds(jobs: pd.DataFrame) -> float:
    """From the earliest job start to the latest job end."""
    return float(jobs["end"].max() - (jobs["end"] - jobs["seconds"]).min())


def run_default(workdir: Path, cores: int, configfile: Path | None = None) -> float:
    """Run the workflow in ``workdir`` (registry archives copied from the repo when present) and
    return its wall time in seconds."""
    workdir.mkdir(parents=True, exist_ok=True)
    resources = REPO / "resources"
    if resources.is_dir() and not (workdir / "resources").exists():
        shutil.copytree(resources, workdir / "resources")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", str(cores)]
    if configfile is not None:
        cmd += ["--configfile", str(configfile)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    t0 = time.perf_counter()
    with open(workdir / "snakemake.log", "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, env=env)
    return time.perf_counter() - t0


def end_to_end_rows(results: Path, wall: float | None = None, target_s: float = 10 * 60) -> tuple[list[dict], pd.DataFrame]:
    """Rows for the benchmark table (wall time against the 10-minute target, one per rule) and the
    per-rule table itself."""
    jobs = read_benchmarks(results)
    rules = per_rule(jobs)
    measured = wall if wall is not None else span_seconds(jobs)
    how = "measured wall clock" if wall is not None else "span of the rules' benchmark files"
    rows = [
        {
            "section": "end_to_end",
            "benchmark": "default workflow wall time",
            "value": measured,
            "unit": "s",
            "reference": target_s,
            "ratio": measured / target_s,
            "target": "<= 1 (10 min)",
            "detail": f"{how}; {len(jobs)} jobs, {jobs['seconds'].sum():.0f} s summed job time, "
            f"peak RSS {jobs['max_rss_mb'].max():.0f} MB",
        }
    ]
    for r in rules.itertuples():
        rows.append(
            {
                "section": "end_to_end",
                "benchmark": f"rule {r.rule}",
                "value": r.seconds,
                "unit": "s",
                "reference": float(jobs["seconds"].sum()),
                "ratio": r.share,
                "target": "",
                "detail": f"{r.jobs} job(s), {r.mean_seconds:.1f} s each, peak RSS {r.max_rss_mb:.0f} MB",
            }
        )
    startup = startup_row(results, jobs)
    if startup is not None:
        rows.append(startup)
    return rows, rules
