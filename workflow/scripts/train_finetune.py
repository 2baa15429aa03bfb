"""Adapter: fine-tune one (dataset, model, variant, seed)."""

from memloc.job import start
from memloc.training.finetune import run_finetune
from memloc.training.loop import Settings

job = start(snakemake, torch_threads=True)
run_finetune(
    **job.files,
    variant=job.wildcards.variant,
    seed=job.params.seed,
    settings=Settings.from_dict(job.params.settings),
    out_dir=job.model_dir,
    work_dir=job.params.work_dir,
    provenance=job.provenance,
)
