"""Adapter: the memorised-set table (noisy examples, or clean examples with the highest CM)."""

from memloc.counterfactual.summary import run_memorised_set
from memloc.job import start

job = start(snakemake)
run_memorised_set(
    kind=job.params.kind,
    out_path=job.output[0],
    examples_path=job.input.examples,
    memorisation_path=job.input.get("memorisation"),
    top_cm_share=job.params.top_cm_share,
    provenance=job.pair_provenance(),
)
