"""Adapter: materialise a model source as results/pretrained/{model}."""

from memloc.job import start
from memloc.models.loading import materialise

job = start(snakemake)
materialise(job.params.spec, job.output[0])
