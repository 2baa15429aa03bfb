"""Adapter: summary/control_accuracy{,_summary}.parquet -> figures/control_accuracy_summary.{pdf,png}."""

import pandas as pd

from memloc.control.figure import plot_control_summary
from memloc.logs import setup

setup(snakemake.log[0])
plot_control_summary(
    pd.read_parquet(snakemake.input.summary),
    snakemake.output.pdf.removesuffix(".pdf"),
    table=pd.read_parquet(snakemake.input.table),
)
