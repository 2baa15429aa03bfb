"""Adapter: summary/layer_weights.parquet -> figures/layer_weights.{pdf,png}."""

import pandas as pd

from memloc.figures.weights import plot_layer_weights
from memloc.logs import setup

setup(snakemake.log[0])
plot_layer_weights(
    pd.read_parquet(snakemake.input.table),
    snakemake.output.pdf.removesuffix(".pdf"),
    families=snakemake.params.families,
    datasets=snakemake.params.datasets,
)
