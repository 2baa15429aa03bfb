"""Adapter: raw swapping/retraining windows -> summary/heatmaps.parquet (tidy H[n, l])."""

from memloc.job import start
from memloc.stats.collect import collect_heatmaps

job = start(snakemake)
job.write(collect_heatmaps(job.input.raw))
