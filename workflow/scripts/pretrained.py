"""Adapter: materialise a model source as results/pretrained/{model}."""

from memloc.logs import setup
from memloc.models.loading import materialise

setup(snakemake.log[0])
materialise(snakemake.params.spec, snakemake.output[0])
