"""Adapter: centroid projections and events -> summary/centroids.parquet, summary/centroid_events.parquet."""

from memloc.io import write_parquet
from memloc.logs import setup
from memloc.stats.collect import collect_centroid_events, collect_centroids
from memloc.provenance import from_snakemake

setup(snakemake.log[0])
meta = from_snakemake(snakemake)  # one record (and one pass over the inputs) for both tables
write_parquet(collect_centroids(snakemake.input.raw), snakemake.output.table, metadata=meta)
write_parquet(collect_centroid_events(snakemake.input.events), snakemake.output.events, metadata=meta)
