"""Adapter: the summary tables the figures read -> their CSV copies for the report (run.summary_cache)."""

import pandas as pd

from memloc.job import start

job = start(snakemake)
for name, path in job.input.items():
    pd.read_parquet(path).to_csv(job.output[name], index=False)
