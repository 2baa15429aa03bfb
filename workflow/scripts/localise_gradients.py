"""Adapter: forgetting gradients of one (dataset, model, variant, seed)."""

from memloc.job import start
from memloc.localise.gradients import run_gradients

job = start(snakemake, torch_threads=True)
run_gradients(**job.files, settings=job.settings)
