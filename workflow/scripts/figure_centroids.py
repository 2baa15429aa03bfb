"""Adapter: summary/centroids.parquet (+ events) -> figures/centroid_trajectories.{pdf,png}."""

import pandas as pd

from memloc.figures.centroids import plot_centroids
from memloc.logs import setup

setup(snakemake.log[0])
plot_centroids(
    pd.read_parquet(snakemake.input.table),
    snakemake.output.pdf.removesuffix(".pdf"),
    events=pd.read_parquet(snakemake.input.events),
    datasets=snakemake.params.datasets,
)
