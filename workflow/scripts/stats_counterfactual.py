"""Adapter: counterfactual summary.json files -> summary/counterfactual.parquet."""

from memloc.job import start
from memloc.stats.collect import collect_counterfactual

job = start(snakemake)
job.write(collect_counterfactual(job.input.summaries, job.params.families))
