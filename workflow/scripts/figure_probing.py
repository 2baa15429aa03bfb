"""Adapter: summary/probing.parquet -> figures/probing_f1.{pdf,png}."""

import pandas as pd

from memloc.figures.probing import plot_probing
from memloc.logs import setup

setup(snakemake.log[0])
plot_probing(pd.read_parquet(snakemake.input.table), snakemake.output.pdf.removesuffix(".pdf"), datasets=snakemake.params.datasets)
