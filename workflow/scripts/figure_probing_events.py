"""Adapter: summary/probing_events.parquet -> figures/probing_events.{pdf,png}."""

import pandas as pd

from memloc.figures.label_probes import plot_probing_events
from memloc.job import start
from memloc.stats.collect import read_optional

job = start(snakemake)
plot_probing_events(pd.read_parquet(job.input.table), job.figure_stem, datasets=job.params.datasets,
                    memorised_runs=read_optional(job.input.get("memorised_runs")))
