"""Adapter: train subset model k of a (dataset, model) and score every training example."""

from memloc.counterfactual.subsets import run_subset
from memloc.job import start

job = start(snakemake, torch_threads=True)
run_subset(
    **job.files,
    k=job.params.k,
    **job.params.subset,
    settings=job.params.settings,
    out_path=job.output[0],
    work_dir=job.params.work_dir,
    provenance=job.pair_provenance(),
)
