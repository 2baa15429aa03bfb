"""Adapter: M-CoG, layer weights, centroid events, counterfactual and control tables -> summary/statistics.parquet."""

import pandas as pd

from memloc.job import start
from memloc.stats.collect import read_optional
from memloc.stats.statistics import statistics_table

job = start(snakemake)
optional = {name: read_optional(job.input.get(name)) for name in ("counterfactual", "centroid_events", "control")}
table = statistics_table(mcog=pd.read_parquet(job.input.mcog), layer_weights=pd.read_parquet(job.input.weights),
                         families=job.params.families, confidence=job.params.confidence,
                         include_control=job.params.include_control, **optional)
job.write(table, metadata={"confidence": job.params.confidence})
