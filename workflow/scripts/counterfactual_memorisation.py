"""Adapter: per-example counterfactual memorisation, summary and reliability from K subset models."""

from memloc.counterfactual.summary import run_memorisation
from memloc.job import start

job = start(snakemake)
run_memorisation(
    examples_path=job.input.examples,
    subset_paths=list(job.input.subsets),
    memorisation_path=job.output.memorisation,
    summary_path=job.output.summary,
    reliability_path=job.output.reliability,
    n_boot=job.params.bootstrap,
    confidence=job.params.confidence,
    seed=job.params.seed,
    reliability_splits=job.params.reliability_splits,
    provenance=job.pair_provenance(),
)
