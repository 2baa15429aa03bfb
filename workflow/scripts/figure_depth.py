"""Adapter: M-CoG, events, counterfactual, validation, memorised runs, statistics -> figures/depth_generalisation.{pdf,png}."""

import pandas as pd

from memloc.figures.depth import plot_depth
from memloc.job import start
from memloc.stats.collect import read_optional
from memloc.stats.depth import depth_frame
from memloc.stats.mcog import mixed_depths

job = start(snakemake)
optional = {name: read_optional(job.input.get(name))
            for name in ("counterfactual", "validation", "probing_events", "centroid_events")}
mcog = pd.read_parquet(job.input.mcog)
frame = depth_frame(mcog, **optional)
plot_depth(frame, job.figure_stem, statistics=pd.read_parquet(job.input.statistics), datasets=job.params.datasets,
           normalised=mixed_depths(mcog), memorised_runs=read_optional(job.input.get("memorised_runs")),
           unmemorised=job.params.unmemorised)
