"""Adapter: raw swapping/retraining windows -> summary/heatmaps.parquet (tidy H[n, l])."""

from memloc.io import write_parquet
from memloc.logs import setup
from memloc.stats.collect import collect_heatmaps
from memloc.provenance import from_snakemake

setup(snakemake.log[0])
write_parquet(collect_heatmaps(snakemake.input.raw), snakemake.output.table, metadata=from_snakemake(snakemake))
