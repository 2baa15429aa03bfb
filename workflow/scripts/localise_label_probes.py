"""Adapter: label probes and probing events of one noisy (dataset, model, seed)."""

from memloc.job import start
from memloc.localise.label_probes import run_label_probes

job = start(snakemake, torch_threads=True)
run_label_probes(**job.files, settings=job.settings)
