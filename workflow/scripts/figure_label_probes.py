"""Adapter: summary/label_probes.parquet (+ probing events) -> figures/label_probes.{pdf,png}."""

import pandas as pd

from memloc.figures.label_probes import plot_label_probes
from memloc.job import start
from memloc.stats.collect import read_optional

job = start(snakemake)
plot_label_probes(pd.read_parquet(job.input.table), job.figure_stem, events=pd.read_parquet(job.input.events),
                  datasets=job.params.datasets, memorised_runs=read_optional(job.input.get("memorised_runs")))
