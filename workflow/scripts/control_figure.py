"""Adapter: summary/control_accuracy{,_summary}.parquet -> figures/control_accuracy_summary.{pdf,png}."""

import pandas as pd

from memloc.control.figure import plot_control_summary
from memloc.job import start

job = start(snakemake)
plot_control_summary(pd.read_parquet(job.input.summary), job.figure_stem, table=pd.read_parquet(job.input.table))
