"""Adapter: summary/layer_weights.parquet (+ probing F1) -> summary/mcog.parquet."""

import pandas as pd

from memloc.job import start
from memloc.stats.collect import read_optional
from memloc.stats.mcog import mcog_table

job = start(snakemake)
p = job.params
table = mcog_table(pd.read_parquet(job.input.weights), probing=read_optional(job.input.get("probing")), n_boot=p.bootstrap,
                   confidence=p.confidence, seed=p.seed)
job.write(table, metadata={"bootstrap": p.bootstrap, "confidence": p.confidence})
