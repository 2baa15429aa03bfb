"""Adapter: summary/control_accuracy{,_summary}.parquet -> figures/control_accuracy.{pdf,png}."""

import pandas as pd

from memloc.figures.control import plot_control
from memloc.logs import setup

setup(snakemake.log[0])
plot_control(
    pd.read_parquet(snakemake.input.summary),
    snakemake.output.pdf.removesuffix(".pdf"),
    table=pd.read_parquet(snakemake.input.table),
    datasets=snakemake.params.datasets,
)
