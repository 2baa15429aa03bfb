"""Adapter: summary/mcog.parquet -> figures/mcog.{pdf,png}."""

import pandas as pd

from memloc.figures.mcog import plot_mcog
from memloc.logs import setup

setup(snakemake.log[0])
plot_mcog(pd.read_parquet(snakemake.input.table), snakemake.output.pdf.removesuffix(".pdf"), datasets=snakemake.params.datasets)
