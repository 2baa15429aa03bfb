"""Adapter: layer retraining for one (dataset, model, variant, seed)."""

from memloc.device import set_threads
from memloc.localise.retraining import run_retraining
from memloc.logs import setup

setup(snakemake.log[0])
set_threads(snakemake.threads)
run_retraining(
    examples_path=snakemake.input.examples,
    tokens_path=snakemake.input.tokens,
    model_dir=snakemake.input.model,
    pretrained_dir=snakemake.input.pretrained,
    settings=dict(snakemake.params.settings),
    raw_path=snakemake.output.raw,
    weights_path=snakemake.output.weights,
    memorised=snakemake.input.get("memorised") or None,
    # Finished windows survive a killed job here and are picked up by the re-run.
    progress_path=snakemake.output.raw + ".progress.jsonl",
)
