"""Adapter: layer swapping for one (dataset, model, variant, seed)."""

from memloc.device import set_threads
from memloc.localise.swapping import run_swapping
from memloc.logs import setup

setup(snakemake.log[0])
set_threads(snakemake.threads)
run_swapping(
    examples_path=snakemake.input.examples,
    tokens_path=snakemake.input.tokens,
    model_dir=snakemake.input.model,
    twin_dir=snakemake.input.twin,
    settings=dict(snakemake.params.settings),
    raw_path=snakemake.output.raw,
    weights_path=snakemake.output.weights,
    memorised=snakemake.input.get("memorised") or None,
)
