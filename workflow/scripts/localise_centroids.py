"""Adapter: centroid analysis of one (dataset, model, variant, seed) (DESIGN §4)."""

from memloc.device import set_threads
from memloc.localise.centroids import run_centroids
from memloc.logs import setup

setup(snakemake.log[0])
set_threads(snakemake.threads)
run_centroids(
    examples_path=snakemake.input.examples,
    tokens_path=snakemake.input.tokens,
    model_dir=snakemake.input.model,
    settings=dict(snakemake.params.settings),
    memorised=snakemake.input.get("memorised") or None,
    raw_path=snakemake.output.raw,
    events_path=snakemake.output.events,
)
