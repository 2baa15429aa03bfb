"""Adapter: summary/heatmaps.parquet -> figures/heatmap_{technique}.{pdf,png}."""

import pandas as pd

from memloc.figures.heatmaps import plot_heatmaps
from memloc.logs import setup

setup(snakemake.log[0])
plot_heatmaps(
    pd.read_parquet(snakemake.input.table),
    snakemake.output.pdf.removesuffix(".pdf"),
    technique=snakemake.wildcards.technique,
    datasets=snakemake.params.datasets,
)
