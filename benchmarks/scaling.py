"""Cost per rule against training-set size and against the number of blocks, and peak memory per rule.

Why: before a user scales from the embedded default to their own model and data set, they need to
know which rules grow how fast. This module runs the real workflow (``snakemake --cores N``) on a
synthetic two-class corpus with a randomly initialised BERT of fixed width, once per grid point,
reads each rule's benchmark files and fits ``seconds ~ c * x^k`` per rule by least squares on the
logarithms (``k`` is the scaling exponent; 1 = linear).

The random model need not learn the task for its cost to be measured. Every job also pays a fixed
start-up (importing torch and transformers, a few seconds), which pulls the exponent of a cheap
rule toward 0; the table keeps the seconds at each point so that is visible.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from end_to_end import per_rule, read_benchmarks, run_default

WORDS_POS = ["good", "great", "fine", "lovely", "superb", "moving", "sharp", "witty"]
WORDS_NEG = ["bad", "awful", "poor", "dull", "weak", "flat", "tired", "messy"]
FILLER = ["the", "film", "plot", "was", "a", "story", "with", "its", "cast", "and", "script", "ending"]


def synthetic_corpus(path: Path, n: int, seed: int = 0) -> Path:
    """``n`` two-class sentences of 12-30 words (kept small enough that the model can memorise)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        label = int(rng.integers(0, 2))
        k = int(rng.integers(12, 31))
        words = list(rng.choice(FILLER, size=k - 3)) + list(rng.choice(WORDS_POS if label else WORDS_NEG, size=3))
        rng.shuffle(words)
        rows.append({"sentence": " ".join(words), "label": label})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def grid_config(data: Path, n: int, blocks: int, hidden: int) -> dict:
    """A full memloc config (every stage, small epochs) for one grid point."""
    return {
        "datasets": {
            "synthetic": {
                "source": {"kind": "file", "train": str(data)},
                "columns": {"text_a": "sentence"},
                "max_train_examples": n,
                "max_eval_examples": 100,
            }
        },
        "models": {
            "randombert": {
                "source": {
                    "kind": "random",
                    "model_type": "bert",
                    "num_layers": blocks,
                    "hidden_size": hidden,
                    "num_heads": 4,
                },
                "max_length": 40,
            }
        },
        "training": {"epochs": 2, "learning_rate": 1e-3, "batch_size": 16},
        "counterfactual": {"models": 2, "epochs": 2, "learning_rate": 1e-3, "bootstrap": 50},
        "localisation": {"retraining": {"epochs": 1}, "probing": {"seeds": [1], "epochs": 5}},
        "stats": {"bootstrap": 50},
        "run": {"seeds": [1]},
    }


def fit_exponent(x: np.ndarray, seconds: np.ndarray) -> float:
    """Least-squares slope of log(seconds) on log(x)."""
    x, s = np.asarray(x, dtype=float), np.asarray(seconds, dtype=float)
    ok = (x > 0) & (s > 0)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[ok]), np.log(s[ok]), 1)[0])


def run_grid(points: list[tuple[int, int]], hidden: int, cores: int, keep: Path | None = None) -> pd.DataFrame:
    """Per-rule seconds and peak RSS at every ``(n, blocks)`` point."""
    frames = []
    with tempfile.TemporaryDirectory(prefix="memloc-scaling-") as tmp:
        root = keep or Path(tmp)
        for n, blocks in points:
            work = root / f"n{n}-L{blocks}"
            work.mkdir(parents=True, exist_ok=True)
            data = synthetic_corpus(work / "corpus.csv", int(n * 1.5) + 200)
            cfg = work / "config.yaml"
            cfg.write_text(yaml.safe_dump(grid_config(data, n, blocks, hidden)))
            wall = run_default(work, cores, cfg)
            rules = per_rule(read_benchmarks(work / "results"))
            frames.append(rules.assign(n=n, blocks=blocks, wall=wall))
            print(f"  scaling point n={n} blocks={blocks}: {wall:.0f} s wall", flush=True)
    return pd.concat(frames, ignore_index=True)


def scaling_rows(
    sizes: list[int], blocks: list[int], base_n: int, base_blocks: int, hidden: int, cores: int
) -> tuple[list[dict], pd.DataFrame]:
    """Rows with each rule's exponent in training-set size and in blocks, and its peak memory."""
    points = sorted({(n, base_blocks) for n in sizes} | {(base_n, L) for L in blocks})
    grid = run_grid(points, hidden, cores)
    rows = []
    for rule, g in grid.groupby("rule"):
        by_n = g[g.blocks == base_blocks].sort_values("n")
        by_L = g[g.n == base_n].sort_values("blocks")
        k_n = fit_exponent(by_n.n, by_n.seconds)
        k_L = fit_exponent(by_L.blocks, by_L.seconds)
        seconds_n = ", ".join(f"{s:.1f}" for s in by_n.seconds)
        seconds_L = ", ".join(f"{s:.1f}" for s in by_L.seconds)
        where_n = f"n={list(by_n.n)} at {base_blocks} blocks: {seconds_n} s"
        where_L = f"blocks={list(by_L.blocks)} at n={base_n}: {seconds_L} s"
        for what, value, unit, detail in (
            ("exponent in training-set size", k_n, "exponent", where_n),
            ("exponent in blocks", k_L, "exponent", where_L),
            ("peak RSS", float(g["max_rss_mb"].max()), "MB", "largest over the grid"),
        ):
            rows.append(
                {
                    "section": "scaling",
                    "benchmark": f"rule {rule}: {what}",
                    "value": value,
                    "unit": unit,
                    "reference": np.nan,
                    "ratio": np.nan,
                    "target": "",
                    "detail": detail,
                }
            )
    return rows, grid
