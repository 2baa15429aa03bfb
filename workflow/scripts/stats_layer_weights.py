"""Adapter: per-run weight files -> summary/layer_weights.parquet."""

from memloc.io import write_parquet
from memloc.logs import setup
from memloc.stats.collect import collect_layer_weights
from memloc.provenance import from_snakemake

setup(snakemake.log[0])
write_parquet(collect_layer_weights(snakemake.input.weights), snakemake.output.table, metadata=from_snakemake(snakemake))
