"""Adapter: train one control model (control-i-j or its twin control-i-j-clean)."""

from memloc.control.multitask import ControlSettings, run_control
from memloc.job import start
from memloc.training.loop import Settings

job = start(snakemake, torch_threads=True)
run_control(
    **job.files,
    variant=job.wildcards.variant,
    seed=job.params.seed,
    settings=Settings.from_dict(job.params.settings),
    control=ControlSettings.from_dict(job.params.control),
    out_dir=job.model_dir,
    work_dir=job.params.work_dir,
    provenance={"auxiliary_dataset": job.params.auxiliary, **job.provenance},
)
