"""Adapter: summary/centroid_events.parquet -> figures/centroid_crossing_initiation.{pdf,png}."""

import pandas as pd

from memloc.figures.centroid_events import plot_centroid_events
from memloc.job import start
from memloc.stats.collect import read_optional

job = start(snakemake)
plot_centroid_events(pd.read_parquet(job.input.events), job.figure_stem, datasets=job.params.datasets,
                     memorised_runs=read_optional(job.input.get("memorised_runs")))
