"""Adapter: summary/mcog.parquet -> figures/mcog.{pdf,png}."""

import pandas as pd

from memloc.figures.mcog import plot_mcog
from memloc.job import start
from memloc.stats.collect import read_optional

job = start(snakemake)
plot_mcog(pd.read_parquet(job.input.table), job.figure_stem, datasets=job.params.datasets,
          memorised_runs=read_optional(job.input.get("memorised_runs")))
