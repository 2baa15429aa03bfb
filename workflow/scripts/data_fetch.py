"""Adapter: fetch one registry archive into resources/registry/."""

from memloc.data.registry import fetch
from memloc.job import start

job = start(snakemake)
fetch(job.params.corpus, job.params.resources_dir)
