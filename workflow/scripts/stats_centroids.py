"""Adapter: centroid projections and events -> summary/centroids.parquet, summary/centroid_events.parquet."""

from memloc.job import start
from memloc.stats.collect import collect_centroid_events, collect_centroids

job = start(snakemake)
job.write(collect_centroids(job.input.raw))
job.write(collect_centroid_events(job.input.events), "events")
