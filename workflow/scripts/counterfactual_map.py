"""Adapter: the memorisation map figure of one (dataset, model)."""

from memloc.counterfactual.summary import run_memorisation_map
from memloc.logs import setup

setup(snakemake.log[0])
run_memorisation_map(
    snakemake.input.memorisation,
    pdf_path=snakemake.output.pdf,
    png_path=snakemake.output.png,
    title=f"{snakemake.wildcards.dataset} / {snakemake.wildcards.model}",
)
