"""Adapter: summary/control_accuracy.parquet -> figures/control_accuracy.{pdf,png}."""

import pandas as pd

from memloc.figures.control import plot_control
from memloc.job import start

job = start(snakemake)
plot_control(pd.read_parquet(job.input.table), job.figure_stem, datasets=job.params.datasets)
