"""Adapter: summary/layer_weights.parquet -> figures/layer_weights.{pdf,png}."""

import pandas as pd

from memloc.figures.weights import plot_layer_weights
from memloc.job import start
from memloc.stats.collect import read_optional

job = start(snakemake)
plot_layer_weights(pd.read_parquet(job.input.table), job.figure_stem, families=job.params.families, datasets=job.params.datasets,
                   memorised_runs=read_optional(job.input.get("memorised_runs")))
