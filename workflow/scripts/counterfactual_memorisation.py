"""Adapter: per-example counterfactual memorisation, summary and reliability from K subset models."""

from memloc.counterfactual.summary import run_memorisation
from memloc.device import set_threads
from memloc.logs import setup
from memloc.provenance import from_snakemake

setup(snakemake.log[0])
set_threads(snakemake.threads)
run_memorisation(
    examples_path=snakemake.input.examples,
    subset_paths=list(snakemake.input.subsets),
    memorisation_path=snakemake.output.memorisation,
    summary_path=snakemake.output.summary,
    reliability_path=snakemake.output.reliability,
    n_boot=snakemake.params.bootstrap,
    confidence=snakemake.params.confidence,
    seed=snakemake.params.seed,
    reliability_splits=snakemake.params.reliability_splits,
    provenance={"dataset": snakemake.wildcards.dataset, "model": snakemake.wildcards.model, **from_snakemake(snakemake)},
)
