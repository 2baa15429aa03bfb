"""Adapter: summary/statistics.parquet (+ mcog, memorised runs) -> figures/agreement_{between}.{pdf,png}."""

import pandas as pd

from memloc.figures.agreement import plot_agreement
from memloc.job import start
from memloc.stats.collect import read_optional

job = start(snakemake)
plot_agreement(pd.read_parquet(job.input.table), job.figure_stem, between=job.wildcards.between, method=job.params.method,
               mcog=pd.read_parquet(job.input.mcog), memorised_runs=read_optional(job.input.get("memorised_runs")),
               unmemorised=job.params.unmemorised)
