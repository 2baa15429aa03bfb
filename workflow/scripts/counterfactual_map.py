"""Adapter: the memorisation map figure of one (dataset, model)."""

from memloc.counterfactual.summary import run_memorisation_map
from memloc.job import start

job = start(snakemake)
run_memorisation_map(
    job.input.memorisation,
    pdf_path=job.output.pdf,
    png_path=job.output.png,
    title=f"{job.wildcards.dataset} / {job.wildcards.model}",
)
