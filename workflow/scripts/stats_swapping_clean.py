"""Adapter: raw swapping windows -> summary/swapping_clean.parquet (clean accuracy per swapped window)."""

from memloc.job import start
from memloc.stats.collect import collect_swapping_clean

job = start(snakemake)
job.write(collect_swapping_clean(job.input.raw))
