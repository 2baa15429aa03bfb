"""Adapter: probing and centroid events + statistics -> figures/events_probing_centroids.{pdf,png}."""

import pandas as pd

from memloc.figures.events import plot_events
from memloc.job import start
from memloc.stats.collect import read_optional

job = start(snakemake)
plot_events(read_optional(job.input.get("probing_events")), read_optional(job.input.get("centroid_events")),
            job.figure_stem, statistics=pd.read_parquet(job.input.statistics), datasets=job.params.datasets,
            memorised_runs=read_optional(job.input.get("memorised_runs")), unmemorised=job.params.unmemorised)
