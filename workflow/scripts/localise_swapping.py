"""Adapter: layer swapping for one (dataset, model, variant, seed)."""

from memloc.job import start
from memloc.localise.swapping import run_swapping

job = start(snakemake, torch_threads=True)
run_swapping(**job.files, settings=job.settings)
