"""Adapter: layer retraining for one (dataset, model, variant, seed)."""

from memloc.job import start
from memloc.localise.retraining import run_retraining

job = start(snakemake, torch_threads=True)
# Finished windows survive a killed job in the progress file and are picked up by the re-run.
run_retraining(**job.files, settings=job.settings, progress_path=job.output.raw + ".progress.jsonl")
