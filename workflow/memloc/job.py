"""The one entry of every workflow script adapter: the job's log, threads, files and provenance.

A rule's ``script:`` gets a ``snakemake`` object. ``job = start(snakemake)`` routes memloc's log to
the job's log file and hands back what every adapter passes on, so an adapter says only which
package function it calls with which of the job's files::

    job = start(snakemake, torch_threads=True)
    run_swapping(**job.files, settings=job.settings)

:attr:`Job.files` maps the rules' input and output names to the keywords the package's run
functions take (:data:`FILE_KEYWORDS`), the one naming convention between the two.
"""

from __future__ import annotations

import logging
import time
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from memloc.io import write_parquet
from memloc.logs import setup
from memloc.provenance import from_snakemake

#: Rule input/output name -> keyword of the package's run functions. An input left empty by the
#: rule (a control model has no memorised-set file) is passed as None.
FILE_KEYWORDS = {
    "examples": "examples_path",
    "tokens": "tokens_path",
    "aux_examples": "aux_examples_path",
    "aux_tokens": "aux_tokens_path",
    "pretrained": "pretrained_dir",
    "model": "model_dir",
    "twin": "twin_dir",
    "twin_trace": "twin_trace_path",
    "frozen": "frozen_dir",
    "memorised": "memorised",
    "raw": "raw_path",
    "weights": "weights_path",
    "events": "events_path",
    "labels": "labels_path",
}
#: Outputs named ``<name>_csv`` are the report's CSV copy of the Parquet output ``<name>``.
CSV_SUFFIX = "_csv"


class Job:
    """One running job: the ``snakemake`` object's input, output, params and wildcards, and what is derived from them."""

    def __init__(self, smk: Any):
        self.smk = smk
        self.input, self.output, self.params, self.wildcards = smk.input, smk.output, smk.params, smk.wildcards

    @property
    def options(self) -> dict:
        """The rule's params as keywords (for rules whose params are named as the function's arguments)."""
        return dict(self.params.items())

    @property
    def settings(self) -> dict:
        """The technique or training settings the rule passes as ``params.settings``."""
        return dict(self.params.settings)

    @property
    def files(self) -> dict[str, Any]:
        """The job's named inputs, then outputs, that :data:`FILE_KEYWORDS` knows, under their keywords.

        Outputs are read only for the names the package's run functions write (raw, weights,
        events, labels), so a training job's ``memorised`` checkpoint output never shadows an input.
        """
        out = {FILE_KEYWORDS[k]: (v or None) for k, v in self.input.items() if k in FILE_KEYWORDS}
        out.update({FILE_KEYWORDS[k]: v for k, v in self.output.items() if k in ("raw", "weights", "events", "labels")})
        return out

    @property
    def figure_stem(self) -> str:
        """The path of a figure job's PDF and PNG without the extension (the plotting functions add both)."""
        return self.output.pdf.removesuffix(".pdf")

    @property
    def model_dir(self) -> str:
        """The model directory a training job writes (the folder of its trace)."""
        return str(Path(self.output.trace).parent)

    @cached_property
    def provenance(self) -> dict:
        """The job's provenance record (settings hash, input digests), computed once per job."""
        return from_snakemake(self.smk)

    def pair_provenance(self) -> dict:
        """The metadata of a (dataset, model) table: both names, then the provenance record."""
        return {"dataset": self.wildcards.dataset, "model": self.wildcards.model, **self.provenance}

    def write(self, table: pd.DataFrame, output: str = "table", metadata: dict | None = None) -> None:
        """Write summary ``table`` to Parquet output ``output`` with the job's provenance, and its report copy."""
        write_parquet(table, self.output[output], metadata={**(metadata or {}), **self.provenance})
        self.write_report_copies([output], table)

    def write_report_copies(self, outputs=None, table: pd.DataFrame | None = None) -> None:
        """The CSV copy of each Parquet output that has a ``<name>_csv`` output (the report's copy)."""
        for name in outputs if outputs is not None else [k for k, _ in self.output.items()]:
            csv = f"{name}{CSV_SUFFIX}"
            if csv in self.output.keys():
                (table if table is not None else pd.read_parquet(self.output[name])).to_csv(self.output[csv], index=False)


#: The log line :func:`start` writes; ``benchmarks/end_to_end.py`` sums it over a run's job logs.
STARTUP_MESSAGE = "start-up %.2f s (interpreter, Snakemake's script preamble, imports)"


def startup_seconds() -> float:
    """Seconds since this process was created: what a job spent before its own work began."""
    import psutil

    return time.time() - psutil.Process().create_time()


def start(smk: Any, torch_threads: bool = False) -> Job:
    """Route memloc's log to the job's log file; with ``torch_threads`` match torch's threads to the
    rule's ``threads:`` (jobs that run models), so parallel jobs do not oversubscribe the cores.
    Logs the job's start-up time (:data:`STARTUP_MESSAGE`), the fixed cost every job pays."""
    setup(smk.log[0])
    if torch_threads:
        from memloc.device import set_threads

        set_threads(smk.threads)
    logging.getLogger("memloc.job").info(STARTUP_MESSAGE, startup_seconds())
    return Job(smk)
