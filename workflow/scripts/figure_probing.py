"""Adapter: summary/probing.parquet -> figures/probing_f1.{pdf,png}."""

import pandas as pd

from memloc.figures.probing import plot_probing
from memloc.job import start
from memloc.stats.collect import read_optional

job = start(snakemake)
plot_probing(pd.read_parquet(job.input.table), job.figure_stem, datasets=job.params.datasets,
             memorised_runs=read_optional(job.input.get("memorised_runs")))
