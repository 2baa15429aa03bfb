"""Adapter: the noisy models' predictions -> summary/validation.parquet (normalised validation accuracy)."""

from memloc.job import start
from memloc.stats.collect import collect_validation

job = start(snakemake)
job.write(collect_validation(job.input.predictions))
