"""The ``memloc`` command: ``memloc summary [RESULTS]`` prints the key numbers of a finished run;
``memloc check [RESULTS]`` validates its tables against their schemas (:mod:`memloc.check`);
``memloc diff A B`` compares two results trees, floats within a tolerance (:mod:`memloc.diff`);
``memloc export-summary RESULTS DEST`` writes the cached results figures are rendered from
(:mod:`memloc.summary_cache`).

Subcommands register themselves in :data:`COMMANDS` (name -> (help, add_arguments, run)), so a new
one (e.g. ``check``) is a function pair and one entry.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Callable, Sequence

ALL_SEEDS = -1


def _fmt(x, digits: int = 2) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return str(x)
    return "-" if not math.isfinite(x) else f"{x:.{digits}f}"


def _with_ci(value, lo, hi, digits: int = 2) -> str:
    text = _fmt(value, digits)
    if all(isinstance(v, (int, float)) and math.isfinite(v) for v in (lo, hi)):
        text += f" [{_fmt(lo, digits)}, {_fmt(hi, digits)}]"
    return text


def _table(df) -> str:
    """A plain left-aligned text table (no index)."""
    cols = [str(c) for c in df.columns]
    cells = [[str(v) for v in row] for row in df.itertuples(index=False)]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)


def _section(title: str, body: str, out) -> None:
    print(f"\n{title}\n{'=' * len(title)}\n{body}", file=out)


# ---------------------------------------------------------------- summary


def _read_summary(summary: Path, table: str):
    """``summary/<table>.parquet`` as a frame, or None where the run did not write it."""
    import pandas as pd

    path = summary / f"{table}.parquet"
    return pd.read_parquet(path) if path.exists() else None


def _memorisation_section(summary: Path, out) -> None:
    """Per noisy run, whether it memorised its noisy labels (``memorised_runs.parquet``), and a
    warning naming the runs that did not: their localisation describes a half-memorised model."""
    import pandas as pd

    from memloc.stats.memorised import not_memorised

    df = _read_summary(summary, "memorised_runs")
    if df is None:
        return
    df = df.sort_values(["dataset", "model", "seed"])
    rows = [
        {"dataset": r.dataset, "model": r.model, "seed": int(r.seed), "checkpoint": f"{r.checkpoint} (epoch {int(r.epoch)})",
         "noisy acc": _fmt(r.noisy_accuracy, 3), "threshold": _fmt(r.threshold, 3),
         "memorised": "yes" if r.memorised else "NO", "epochs": f"{int(r.epochs_trained)}/{int(r.epochs)}"}
        for r in df.itertuples()
    ]
    body = _table(pd.DataFrame(rows)) if rows else "(no noisy runs)"
    bad = not_memorised(df)
    if bad:
        body += (f"\nWARNING: {len(bad)} noisy model(s) did not memorise their noisy labels (accuracy below the "
                 f"threshold at the analysed checkpoint): {', '.join(bad)}. Their localisation describes a "
                 "half-memorised model: raise training.epochs or use training.stopping: memorised.")
    _section("Memorisation of the noisy labels (accuracy of the noisy examples on their noisy labels)", body, out)


def _mcog_section(summary: Path, out) -> bool:
    import pandas as pd

    path = summary / "mcog.parquet"
    if not path.exists():
        _section("M-CoG", f"(missing: {path})", out)
        return False
    df = pd.read_parquet(path)
    agg = df[(df["seed"].astype(int) == ALL_SEEDS) & (df["variant"] == "noisy")]
    if agg.empty:
        _section("M-CoG", "(no seed-aggregated M-CoG of the noisy models)", out)
        return True
    from memloc.stats.agreement import ordered

    techniques = ordered(agg["technique"].unique())
    rows = []
    for (dataset, model), g in agg.groupby(["dataset", "model"], sort=True):
        row = {"dataset": dataset, "model": model}
        for t in techniques:
            r = g[g["technique"] == t]
            row[t] = _with_ci(r["mcog"].iloc[0], r["ci_low"].iloc[0], r["ci_high"].iloc[0]) if len(r) else "-"
        if "n_seeds" in g:
            row["seeds"] = str(int(g["n_seeds"].max()))
        rows.append(row)
    body = _table(pd.DataFrame(rows))
    body += "\n(mean over seeds; [interval] where one exists, see mcog.parquet's ci_method)"
    _section("M-CoG per technique (layer, 1-based)", body, out)
    return True


def _agreement_section(summary: Path, out) -> None:
    import pandas as pd

    st = _read_summary(summary, "statistics")
    if st is None:
        return
    sub = st[(st["analysis"] == "agreement_technique_mcog_pearson") & st["term"].str.contains("~", regex=False)]
    if sub.empty:
        return
    finite = sub[sub["estimate"].notna()]
    if finite.empty:
        note = sub["note"].iloc[0] if "note" in sub else ""
        _section("Technique agreement on M-CoG (Pearson)", f"(not computed: {note})", out)
        return
    rows = [
        {"pair": t.replace("~", " ~ "), "r": _with_ci(e, lo, hi), "p (Holm)": _fmt(p, 3), "n": str(int(n))}
        for t, e, lo, hi, p, n in finite[["term", "estimate", "ci_low", "ci_high", "p_adjusted", "n"]].itertuples(index=False)
    ]
    _section("Technique agreement on M-CoG (Pearson)", _table(pd.DataFrame(rows)), out)


#: Cross-task rows of statistics.parquet that `memloc summary` prints: (analysis, term prefix, label).
CROSS_TASK_ROWS = (
    ("depth_generalisation_spearman", "mcog[mean]", "M-CoG (mean of techniques) ~ generalisation score, Spearman"),
    ("depth_generalisation_mcog_norm_spearman", "mcog_norm[mean]", "depth-normalised M-CoG ~ generalisation score, Spearman"),
    ("mcog_model", "family (joint Wald)", "family effect on M-CoG (mixed model, chi-square)"),
    ("mcog_norm_model", "family (joint Wald)", "family effect on depth-normalised M-CoG (chi-square)"),
)


def _cross_task_section(summary: Path, out) -> None:
    """The study-level statistics that need many (task, model) pairs, or why they were not computed."""
    import pandas as pd

    st = _read_summary(summary, "statistics")
    if st is None:
        return
    rows = []
    for analysis, prefix, label in CROSS_TASK_ROWS:
        sub = st[(st["analysis"] == analysis) & st["term"].astype(str).str.startswith(prefix)]
        for r in sub.itertuples():
            if pd.isna(r.estimate):
                value = f"not computed: {r.note}"
            else:
                value = _with_ci(r.estimate, r.ci_low, r.ci_high)
            rows.append({"statistic": label, "term": r.term, "estimate": value, "p": _fmt(r.p_value, 3), "n": str(int(r.n))})
    if rows:
        _section("Cross-task statistics", _table(pd.DataFrame(rows)), out)


def _validation_section(summary: Path, out) -> None:
    """Validation accuracy of the noisy models next to their clean twins', averaged over seeds."""
    import pandas as pd

    df = _read_summary(summary, "validation")
    if df is None or df.empty:
        return
    acc = df.pivot_table(index=["dataset", "model"], columns="variant", values="accuracy", aggfunc="mean")
    seeds = df[df["variant"] == "noisy"].groupby(["dataset", "model"])["seed"].nunique()
    rows = []
    for (dataset, model), r in acc.iterrows():
        noisy, clean = r.get("noisy", float("nan")), r.get("clean", float("nan"))
        rows.append({"dataset": dataset, "model": model, "noisy": _fmt(noisy, 3), "clean twin": _fmt(clean, 3),
                     "clean - noisy": _fmt(clean - noisy, 3), "seeds": str(int(seeds.get((dataset, model), 0)))})
    _section("Validation accuracy (final checkpoint, mean over seeds)", _table(pd.DataFrame(rows)), out)


def _control_section(summary: Path, out) -> None:
    import pandas as pd

    df = _read_summary(summary, "control_accuracy")
    if df is None:
        return
    if df.empty:
        _section("Control accuracy", "(empty table)", out)
        return
    from memloc.stats.agreement import ordered

    pvals = {}
    stats_path = summary / "statistics.parquet"
    if stats_path.exists():
        st = pd.read_parquet(stats_path)
        st = st[st["analysis"] == "control_binomial"]
        pvals = dict(zip(st["term"], st["p_value"]))
    rows = []
    for t in ordered(df["technique"].unique()):
        g = df[df["technique"] == t]
        row = {
            "technique": t,
            "acc@1": _fmt(g["acc_at_1"].mean()),
            "acc@2": _fmt(g.get("acc_at_2", pd.Series(dtype=float)).mean()),
        }
        row["chance"] = _fmt(g["chance"].mean()) if "chance" in g else "-"
        row["runs"] = str(int(pd.to_numeric(g["acc_at_1"], errors="coerce").notna().sum()))
        if pvals:
            row["p (binomial)"] = _fmt(pvals.get(t, float("nan")), 3)
        rows.append(row)
    _section("Control accuracy (share of runs whose top layers are the trained ones)", _table(pd.DataFrame(rows)), out)


def _counterfactual_section(results: Path, out) -> None:
    import pandas as pd

    from memloc import paths
    from memloc.stats.collect import COUNTERFACTUAL_KEYS, parse_counterfactual_path

    table = results / "summary" / "counterfactual.parquet"
    if table.exists():  # the collected table (also in an exported summary cache)
        df = pd.read_parquet(table).sort_values(["dataset", "model"])
        keys = [k for k in COUNTERFACTUAL_KEYS if k in df]
        df = df[["dataset", "model", *keys]].astype(object)
        df[keys] = df[keys].map(lambda v: _fmt(v, 3))
        _section("Counterfactual memorisation", _table(df), out)
        return
    rows = []
    for path in sorted(results.glob(paths.fill(paths.COUNTERFACTUAL_SUMMARY, dataset="*", model="*"))):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            print(f"memloc: skipping {path}: {err}", file=sys.stderr)
            continue
        row = parse_counterfactual_path(path)
        for key in COUNTERFACTUAL_KEYS:
            row[key] = _fmt(data.get(key, float("nan")), 3)
        rows.append(row)
    if rows:
        _section("Counterfactual memorisation", _table(pd.DataFrame(rows)), out)


def run_summary(args: argparse.Namespace, out=None) -> int:
    out = out or sys.stdout
    results = Path(args.results)
    summary = results / "summary"
    if not summary.is_dir():
        print(
            f"memloc: no summary tables in {summary}: run snakemake first "
            f"(e.g. `snakemake --cores 2`), then `memloc summary {results}`.",
            file=sys.stderr,
        )
        return 1
    print(f"memloc summary of {results}", file=out)
    _memorisation_section(summary, out)
    _validation_section(summary, out)
    _mcog_section(summary, out)
    _agreement_section(summary, out)
    _cross_task_section(summary, out)
    _control_section(summary, out)
    _counterfactual_section(results, out)
    return 0


def add_summary_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="?", default="results", help="the workflow's results directory (default: results)")


# ---------------------------------------------------------------- check


def add_check_arguments(p: argparse.ArgumentParser) -> None:
    from memloc.check import add_check_arguments as add

    add(p)


def run_check(args: argparse.Namespace) -> int:
    from memloc.check import run_check as run

    return run(args)


# ---------------------------------------------------------------- diff


def add_diff_arguments(p: argparse.ArgumentParser) -> None:
    from memloc.diff import Options

    p.add_argument("a", metavar="RESULTS_A", help="the reference results directory")
    p.add_argument("b", metavar="RESULTS_B", help="the results directory to compare with it")
    p.add_argument("--rtol", type=float, default=Options.rtol, help=f"relative float tolerance (default {Options.rtol:g})")
    p.add_argument("--atol", type=float, default=Options.atol, help=f"absolute float tolerance (default {Options.atol:g})")
    p.add_argument(
        "--ignore", action="append", default=[], metavar="NAME",
        help="a further column or JSON/metadata key not to compare (repeatable), e.g. --ignore settings",
    )


def run_diff(args: argparse.Namespace, out=None) -> int:
    """Exit 0 when the trees agree, 1 when they differ, 2 when one is not a directory."""
    from memloc.diff import Options, diff_trees, render

    out = out or sys.stdout
    for path in (args.a, args.b):
        if not Path(path).is_dir():
            print(f"memloc diff: {path} is not a directory; give two results directories, e.g. "
                  "`memloc diff results-before results`.", file=sys.stderr)
            return 2
    if args.rtol < 0 or args.atol < 0:
        print("memloc diff: --rtol and --atol must be >= 0.", file=sys.stderr)
        return 2
    result = diff_trees(args.a, args.b, Options(rtol=args.rtol, atol=args.atol, ignore=frozenset(args.ignore)))
    print(render(result), file=out)
    return 0 if result.equal else 1


# ---------------------------------------------------------------- export-summary


def add_export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", metavar="RESULTS", help="the finished run's results directory, e.g. results")
    p.add_argument("dest", metavar="DEST", help="the cache to write: a new or empty directory, or an earlier cache to replace")
    p.add_argument("--configfile", action="append", metavar="FILE",
                   help="the run's config file, as given to snakemake (repeat for several, in the same order; "
                        "default: config.yaml)")


def run_export(args: argparse.Namespace, out=None) -> int:
    """Exit 0 with the cache written, 1 when the run's results or the config are not usable."""
    from memloc.config import load_files, validate
    from memloc.errors import MemlocError
    from memloc.summary_cache import MANIFEST, export_cache

    out = out or sys.stdout
    configs = args.configfile or ["config.yaml"]
    try:
        cfg = validate(load_files(configs), source=", ".join(configs))
        manifest = export_cache(args.results, args.dest, cfg, configs)
    except MemlocError as err:
        print(f"memloc export-summary: {err}", file=sys.stderr)
        return 1
    size = sum(f["bytes"] for f in manifest["files"].values())
    print(f"memloc export-summary: {len(manifest['files'])} files ({size / 1024:.0f} KiB) and {MANIFEST} in {args.dest}; "
          f"render them with run.summary_cache: {args.dest} (docs/protocol.md §9.1).", file=out)
    return 0


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "summary": ("print M-CoG, control accuracy and counterfactual summaries as tables", add_summary_arguments, run_summary),
    "check": (
        "validate every table under RESULTS against its schema and report stale provenance (exit 1 if anything is wrong)",
        add_check_arguments,
        run_check,
    ),
    "diff": (
        "compare two results trees table by table, floats within a tolerance; timing and code-version "
        "provenance ignored (exit 1 if anything differs)",
        add_diff_arguments,
        run_diff,
    ),
    "export-summary": (
        "copy the tables a finished run's figures and report read into a directory that can be committed, with a "
        "manifest; a workflow with run.summary_cache set to it renders them without training",
        add_export_arguments,
        run_export,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    from memloc import __version__

    parser = argparse.ArgumentParser(prog="memloc", description="Memorisation localisation: inspect a workflow's results.")
    parser.add_argument("--version", action="version", version=f"memloc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, add_args, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_args(p)
        p.set_defaults(func=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
