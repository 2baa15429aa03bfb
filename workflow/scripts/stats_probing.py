"""Adapter: raw probing tables -> summary/probing.parquet."""

from memloc.job import start
from memloc.stats.collect import collect_probing

job = start(snakemake)
job.write(collect_probing(job.input.raw))
