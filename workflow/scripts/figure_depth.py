"""Adapter: M-CoG, events, counterfactual, validation and statistics tables -> figures/depth_generalisation.{pdf,png}."""

import pandas as pd

from memloc.figures.depth import plot_depth
from memloc.job import start
from memloc.stats.collect import read_optional
from memloc.stats.depth import depth_frame

job = start(snakemake)
optional = {name: read_optional(job.input.get(name))
            for name in ("counterfactual", "validation", "probing_events", "centroid_events")}
frame = depth_frame(pd.read_parquet(job.input.mcog), **optional)
plot_depth(frame, job.figure_stem, statistics=pd.read_parquet(job.input.statistics), datasets=job.params.datasets)
