"""Adapter: forgetting gradients of one (dataset, model, variant, seed) (DESIGN §4)."""

from memloc.device import set_threads
from memloc.localise.gradients import run_gradients
from memloc.logs import setup

setup(snakemake.log[0])
set_threads(snakemake.threads)
run_gradients(
    examples_path=snakemake.input.examples,
    tokens_path=snakemake.input.tokens,
    model_dir=snakemake.input.model,
    frozen_dir=snakemake.input.frozen,
    settings=dict(snakemake.params.settings),
    memorised=snakemake.input.get("memorised") or None,
    raw_path=snakemake.output.raw,
    weights_path=snakemake.output.weights,
)
