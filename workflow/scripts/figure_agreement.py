"""Adapter: summary/statistics.parquet -> figures/agreement_{between}.{pdf,png}."""

import pandas as pd

from memloc.figures.agreement import plot_agreement
from memloc.job import start

job = start(snakemake)
plot_agreement(pd.read_parquet(job.input.table), job.figure_stem, between=job.wildcards.between, method=job.params.method)
