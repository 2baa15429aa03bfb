"""Adapter: per-run weight files -> summary/layer_weights.parquet."""

from memloc.job import start
from memloc.stats.collect import collect_layer_weights

job = start(snakemake)
job.write(collect_layer_weights(job.input.weights))
