"""Adapter: summary/control_accuracy.parquet -> figures/control_accuracy.{pdf,png}."""

import pandas as pd

from memloc.figures.control import plot_control
from memloc.logs import setup

setup(snakemake.log[0])
plot_control(pd.read_parquet(snakemake.input.table), snakemake.output.pdf.removesuffix(".pdf"), datasets=snakemake.params.datasets)
