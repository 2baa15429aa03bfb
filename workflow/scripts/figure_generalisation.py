"""Adapter: summary/mcog.parquet + summary/counterfactual.parquet -> figures/mcog_generalisation.{pdf,png}."""

import pandas as pd

from memloc.figures.generalisation import plot_generalisation
from memloc.job import start
from memloc.stats.collect import read_optional

job = start(snakemake)
plot_generalisation(pd.read_parquet(job.input.mcog), pd.read_parquet(job.input.counterfactual), job.figure_stem,
                    datasets=job.params.datasets, memorised_runs=read_optional(job.input.get("memorised_runs")))
