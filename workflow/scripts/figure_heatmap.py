"""Adapter: summary/heatmaps.parquet -> figures/heatmap_{technique}.{pdf,png}."""

import pandas as pd

from memloc.figures.heatmaps import plot_heatmaps
from memloc.job import start
from memloc.stats.collect import read_optional

job = start(snakemake)
plot_heatmaps(pd.read_parquet(job.input.table), job.figure_stem, technique=job.wildcards.technique, datasets=job.params.datasets,
              memorised_runs=read_optional(job.input.get("memorised_runs")))
