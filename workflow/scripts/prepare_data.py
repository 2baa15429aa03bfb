"""Adapter: prepare results/data/{dataset}.parquet and its labels.json."""

from memloc.data.prepare import prepare_dataset
from memloc.logs import setup

setup(snakemake.log[0])
prepare_dataset(snakemake.params.spec, snakemake.params.resources_dir, snakemake.output.examples, snakemake.output.labels)
