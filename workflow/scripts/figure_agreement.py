"""Adapter: summary/statistics.parquet -> figures/agreement_{between}.{pdf,png}."""

import pandas as pd

from memloc.figures.agreement import plot_agreement
from memloc.logs import setup

setup(snakemake.log[0])
plot_agreement(
    pd.read_parquet(snakemake.input.table),
    snakemake.output.pdf.removesuffix(".pdf"),
    between=snakemake.wildcards.between,
    method=snakemake.params.method,
)
