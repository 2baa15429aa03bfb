"""Adapter: train one control model (control-i-j or its twin control-i-j-clean)."""

from pathlib import Path

from memloc.control.multitask import ControlSettings, run_control
from memloc.device import set_threads
from memloc.logs import setup
from memloc.training.loop import Settings
from memloc.provenance import from_snakemake

setup(snakemake.log[0])
set_threads(snakemake.threads)
run_control(
    examples_path=snakemake.input.examples,
    tokens_path=snakemake.input.tokens,
    aux_examples_path=snakemake.input.aux_examples,
    aux_tokens_path=snakemake.input.aux_tokens,
    pretrained_dir=snakemake.input.pretrained,
    variant=snakemake.wildcards.variant,
    seed=snakemake.params.seed,
    settings=Settings.from_dict(snakemake.params.settings),
    control=ControlSettings.from_dict(snakemake.params.control),
    out_dir=str(Path(snakemake.output.trace).parent),
    work_dir=snakemake.params.work_dir,
    provenance={"auxiliary_dataset": snakemake.params.auxiliary, **from_snakemake(snakemake)},
)
