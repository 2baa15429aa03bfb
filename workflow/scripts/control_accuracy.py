"""Adapter: techniques' weights on control models + control traces -> summary/control_accuracy*.parquet."""

from memloc.control.accuracy import run_control_accuracy
from memloc.logs import setup
from memloc.provenance import from_snakemake

setup(snakemake.log[0])
run_control_accuracy(
    weights_paths=list(snakemake.input.weights),
    trace_paths=list(snakemake.input.traces),
    table_path=snakemake.output.table,
    summary_path=snakemake.output.summary,
    checkpoints=dict(snakemake.params.checkpoints),
    learned_accuracy=snakemake.params.learned_accuracy,
    bootstrap=snakemake.params.bootstrap,
    confidence=snakemake.params.confidence,
    seed=snakemake.params.seed,
    provenance=from_snakemake(snakemake),
)
