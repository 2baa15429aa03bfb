"""Adapter: the memorised-set table (noisy examples, or clean examples with the highest CM)."""

from memloc.counterfactual.summary import run_memorised_set
from memloc.logs import setup
from memloc.provenance import from_snakemake

setup(snakemake.log[0])
run_memorised_set(
    kind=snakemake.params.kind,
    out_path=snakemake.output[0],
    examples_path=snakemake.input.examples,
    memorisation_path=snakemake.input.get("memorisation"),
    top_cm_share=snakemake.params.top_cm_share,
    provenance={"dataset": snakemake.wildcards.dataset, "model": snakemake.wildcards.model, **from_snakemake(snakemake)},
)
