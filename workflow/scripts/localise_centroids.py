"""Adapter: centroid analysis of one (dataset, model, variant, seed)."""

from memloc.job import start
from memloc.localise.centroids import run_centroids

job = start(snakemake, torch_threads=True)
run_centroids(**job.files, settings=job.settings)
