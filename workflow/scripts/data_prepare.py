"""Adapter: prepare results/data/{dataset}.parquet and its labels.json."""

from memloc.data.prepare import prepare_dataset
from memloc.job import start

job = start(snakemake)
prepare_dataset(job.params.spec, job.params.resources_dir, job.output.examples, job.output.labels)
