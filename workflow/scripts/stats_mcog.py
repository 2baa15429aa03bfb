"""Adapter: summary/layer_weights.parquet (+ probing F1) -> summary/mcog.parquet."""

import pandas as pd

from memloc.io import write_parquet
from memloc.logs import setup
from memloc.stats.collect import read_optional
from memloc.stats.mcog import mcog_table
from memloc.provenance import from_snakemake

setup(snakemake.log[0])
table = mcog_table(
    pd.read_parquet(snakemake.input.weights),
    probing=read_optional(snakemake.input.get("probing")),
    n_boot=snakemake.params.bootstrap,
    confidence=snakemake.params.confidence,
    seed=snakemake.params.seed,
)
write_parquet(table, snakemake.output.table, metadata={"bootstrap": snakemake.params.bootstrap, "confidence": snakemake.params.confidence, **from_snakemake(snakemake)})
