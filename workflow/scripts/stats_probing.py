"""Adapter: raw probing tables -> summary/probing.parquet."""

from memloc.io import write_parquet
from memloc.logs import setup
from memloc.stats.collect import collect_probing
from memloc.provenance import from_snakemake

setup(snakemake.log[0])
write_parquet(collect_probing(snakemake.input.raw), snakemake.output.table, metadata=from_snakemake(snakemake))
