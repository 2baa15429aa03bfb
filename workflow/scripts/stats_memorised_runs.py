"""Adapter: the noisy models' traces -> summary/memorised_runs.parquet (was memorisation reached?)."""

from memloc.job import start
from memloc.stats.memorised import collect_memorised_runs

job = start(snakemake)
job.write(collect_memorised_runs(job.input.traces, job.params.checkpoint))
