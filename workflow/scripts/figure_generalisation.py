"""Adapter: summary/mcog.parquet + summary/counterfactual.parquet -> figures/mcog_generalisation.{pdf,png}."""

import pandas as pd

from memloc.figures.generalisation import plot_generalisation
from memloc.logs import setup

setup(snakemake.log[0])
plot_generalisation(
    pd.read_parquet(snakemake.input.mcog),
    pd.read_parquet(snakemake.input.counterfactual),
    snakemake.output.pdf.removesuffix(".pdf"),
    datasets=snakemake.params.datasets,
)
