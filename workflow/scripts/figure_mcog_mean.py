"""Adapter: summary/mcog.parquet -> figures/mcog_technique_mean.{pdf,png}."""

import pandas as pd

from memloc.figures.mcog_mean import plot_mcog_mean
from memloc.job import start
from memloc.stats.collect import read_optional

job = start(snakemake)
plot_mcog_mean(pd.read_parquet(job.input.table), job.figure_stem, datasets=job.params.datasets,
               memorised_runs=read_optional(job.input.get("memorised_runs")))
