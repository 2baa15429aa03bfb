"""Adapter: counterfactual summary.json files -> summary/counterfactual.parquet."""

from memloc.io import write_parquet
from memloc.logs import setup
from memloc.stats.collect import collect_counterfactual
from memloc.provenance import from_snakemake

setup(snakemake.log[0])
write_parquet(collect_counterfactual(snakemake.input.summaries, snakemake.params.families), snakemake.output.table, metadata=from_snakemake(snakemake))
