"""Adapter: fine-tune one (dataset, model, variant, seed)."""

from pathlib import Path

from memloc.device import set_threads
from memloc.logs import setup
from memloc.provenance import from_snakemake
from memloc.training.finetune import run_finetune
from memloc.training.loop import Settings

setup(snakemake.log[0])
set_threads(snakemake.threads)
run_finetune(
    examples_path=snakemake.input.examples,
    tokens_path=snakemake.input.tokens,
    pretrained_dir=snakemake.input.pretrained,
    variant=snakemake.wildcards.variant,
    seed=snakemake.params.seed,
    settings=Settings.from_dict(snakemake.params.settings),
    out_dir=str(Path(snakemake.output.trace).parent),
    work_dir=snakemake.params.work_dir,
    provenance=from_snakemake(snakemake),
)
