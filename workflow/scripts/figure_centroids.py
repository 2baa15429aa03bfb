"""Adapter: summary/centroids.parquet (+ events) -> figures/centroid_trajectories.{pdf,png}."""

import pandas as pd

from memloc.figures.centroids import plot_centroids
from memloc.job import start
from memloc.stats.collect import read_optional

job = start(snakemake)
plot_centroids(pd.read_parquet(job.input.table), job.figure_stem, events=pd.read_parquet(job.input.events),
               datasets=job.params.datasets, memorised_runs=read_optional(job.input.get("memorised_runs")))
