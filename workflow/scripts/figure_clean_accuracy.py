"""Adapter: summary/swapping_clean.parquet -> figures/swapping_clean_accuracy.{pdf,png}."""

import pandas as pd

from memloc.figures.clean_accuracy import plot_clean_accuracy
from memloc.job import start
from memloc.stats.collect import read_optional

job = start(snakemake)
plot_clean_accuracy(pd.read_parquet(job.input.table), job.figure_stem, datasets=job.params.datasets,
                    memorised_runs=read_optional(job.input.get("memorised_runs")))
