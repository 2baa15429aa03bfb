"""Adapter: techniques' weights on control models + control traces -> summary/control_accuracy*.parquet."""

from memloc.control.accuracy import run_control_accuracy
from memloc.job import start

job = start(snakemake)
run_control_accuracy(list(job.input.weights), list(job.input.traces), job.output.table, job.output.summary, **job.options,
                     provenance=job.provenance)
job.write_report_copies()
