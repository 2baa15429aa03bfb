"""Adapter: M-CoG, layer weights, events, counterfactual, validation, control, memorised runs -> summary/statistics.parquet."""

import pandas as pd

from memloc.job import start
from memloc.stats.collect import read_optional
from memloc.stats.statistics import statistics_table

job = start(snakemake)
optional = {name: read_optional(job.input.get(name))
            for name in ("counterfactual", "centroid_events", "control", "validation", "probing_events", "memorised_runs")}
p = job.params
table = statistics_table(mcog=pd.read_parquet(job.input.mcog), layer_weights=pd.read_parquet(job.input.weights),
                         families=p.families, confidence=p.confidence, include_control=p.include_control,
                         n_boot=p.bootstrap, seed=p.seed, unmemorised=p.unmemorised, **optional)
job.write(table, metadata={"confidence": p.confidence, "bootstrap": p.bootstrap, "seed": p.seed, "unmemorised": p.unmemorised})
