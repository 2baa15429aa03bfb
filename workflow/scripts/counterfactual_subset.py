"""Adapter: train subset model k of a (dataset, model) and score every training example."""

from memloc.counterfactual.subsets import run_subset
from memloc.device import set_threads
from memloc.logs import setup
from memloc.provenance import from_snakemake

setup(snakemake.log[0])
set_threads(snakemake.threads)
run_subset(
    examples_path=snakemake.input.examples,
    tokens_path=snakemake.input.tokens,
    pretrained_dir=snakemake.input.pretrained,
    k=snakemake.params.k,
    fraction=snakemake.params.subset["fraction"],
    split_seed=snakemake.params.subset["split_seed"],
    noise_seed=snakemake.params.subset["noise_seed"],
    settings=snakemake.params.settings,
    out_path=snakemake.output[0],
    work_dir=snakemake.params.work_dir,
    provenance={"dataset": snakemake.wildcards.dataset, "model": snakemake.wildcards.model, **from_snakemake(snakemake)},
)
