"""bf16 autocast against fp32: a smaller embedded default twice, its results compared within tolerances.

Why: ``training.precision: bf16`` is only worth its speed if the science does not move. This runs
the embedded default's model and data (all-MiniLM-L6-v2, movie-review sentences) at 400 training
sentences, once per precision, and compares what a user reports: the noisy model's accuracy on its
noisy training labels (memorisation), its validation accuracy, and each technique's M-CoG. (The
counterfactual stage runs with two one-epoch subset models only to complete the DAG; its numbers
are not compared.)
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from end_to_end import run_default

#: |bf16 - fp32| a user can live with: accuracy (fraction), M-CoG in layers.
TOLERANCE = {"noisy train accuracy": 0.05, "validation accuracy": 0.05, "M-CoG": 0.5}
REPO = Path(__file__).resolve().parents[1]


def small_default(precision: str, n: int = 400) -> dict:
    """The repository's config.yaml at ``n`` training sentences, memorising within its epochs."""
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    for spec in cfg["datasets"].values():
        spec["max_train_examples"], spec["max_eval_examples"] = n, 200
    # Fewer sentences, fewer steps per epoch: 10 epochs at 1.5e-4 memorise the noisy labels.
    cfg["training"].update(epochs=10, learning_rate=1.5e-4, precision=precision)
    cfg["counterfactual"].update(models=2, epochs=1)
    cfg.setdefault("control", {})["enabled"] = False
    return cfg


def _results(results: Path) -> dict[str, float]:
    out = {}
    trace = pd.read_parquet(next((results / "models").rglob("noisy/seed1/trace.parquet")))
    last = trace[trace.epoch == trace.epoch.max()]
    out["noisy train accuracy"] = float(last.loc[last.split == "train_noisy", "accuracy"].iloc[0])
    out["validation accuracy"] = float(last.loc[last.split == "validation", "accuracy"].iloc[0])
    mcog = pd.read_parquet(results / "summary" / "mcog.parquet")
    for r in mcog[mcog.variant == "noisy"].itertuples():
        out[f"M-CoG {r.technique}"] = float(r.mcog)
    return out


def precision_rows(cores: int, n: int = 400) -> list[dict]:
    values, walls = {}, {}
    with tempfile.TemporaryDirectory(prefix="memloc-precision-") as tmp:
        for precision in ("fp32", "bf16"):
            work = Path(tmp) / precision
            work.mkdir()
            (work / "config.yaml").write_text(yaml.safe_dump(small_default(precision, n)))
            t0 = time.perf_counter()
            run_default(work, cores, work / "config.yaml")
            walls[precision] = time.perf_counter() - t0
            values[precision] = _results(work / "results")
            print(f"  precision {precision}: {walls[precision]:.0f} s wall", flush=True)
    rows = []
    for key, fp32 in values["fp32"].items():
        bf16 = values["bf16"].get(key, np.nan)
        tol = TOLERANCE["M-CoG"] if key.startswith("M-CoG") else TOLERANCE[key]
        diff = abs(bf16 - fp32)
        rows.append(
            {
                "section": "precision",
                "benchmark": f"bf16 vs fp32: {key}",
                "value": bf16,
                "unit": "layer" if key.startswith("M-CoG") else "",
                "reference": fp32,
                "ratio": diff / tol,
                "target": f"|diff| <= {tol} (ratio <= 1)",
                "detail": f"embedded default at {n} training sentences, 10 epochs; "
                f"{'within' if diff <= tol else 'OUTSIDE'} tolerance",
            }
        )
    rows.append(
        {
            "section": "precision",
            "benchmark": "bf16 vs fp32: workflow wall time",
            "value": walls["bf16"],
            "unit": "s",
            "reference": walls["fp32"],
            "ratio": walls["fp32"] / walls["bf16"],
            "target": "",
            "detail": "speed-up of the whole workflow run (start-up included)",
        }
    )
    return rows
