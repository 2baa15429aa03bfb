"""Adapter: fetch one registry archive into resources/registry/."""

from memloc.data.registry import fetch
from memloc.logs import setup

setup(snakemake.log[0])
fetch(snakemake.params.corpus, snakemake.params.resources_dir)
