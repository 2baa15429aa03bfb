"""Adapter: M-CoG, layer weights, centroid events, counterfactual and control tables -> summary/statistics.parquet."""

import pandas as pd

from memloc.io import write_parquet
from memloc.logs import setup
from memloc.stats.collect import read_optional
from memloc.stats.statistics import statistics_table
from memloc.provenance import from_snakemake

setup(snakemake.log[0])
table = statistics_table(
    mcog=pd.read_parquet(snakemake.input.mcog),
    layer_weights=pd.read_parquet(snakemake.input.weights),
    families=snakemake.params.families,
    counterfactual=read_optional(snakemake.input.get("counterfactual")),
    centroid_events=read_optional(snakemake.input.get("centroid_events")),
    control=read_optional(snakemake.input.get("control")),
    confidence=snakemake.params.confidence,
    include_control=snakemake.params.include_control,
)
write_parquet(table, snakemake.output.table, metadata={"confidence": snakemake.params.confidence, **from_snakemake(snakemake)})
