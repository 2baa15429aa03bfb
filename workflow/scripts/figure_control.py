"""Adapter: summary/control_accuracy{,_summary}.parquet -> figures/control_accuracy.{pdf,png}."""

import pandas as pd

from memloc.figures.control import plot_control
from memloc.job import start

job = start(snakemake)
plot_control(
    pd.read_parquet(job.input.summary),
    job.figure_stem,
    table=pd.read_parquet(job.input.table),
    datasets=job.params.datasets,
)
