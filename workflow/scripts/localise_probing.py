"""Adapter: probing of one (dataset, model, variant, seed)."""

from memloc.job import start
from memloc.localise.probing import run_probing

job = start(snakemake, torch_threads=True)
run_probing(**job.files, settings=job.settings)
