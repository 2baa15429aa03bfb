"""Adapter: label-probe tables and probing events -> summary/label_probes.parquet, summary/probing_events.parquet."""

from memloc.job import start
from memloc.stats.collect import collect_label_probes, collect_probing_events

job = start(snakemake)
job.write(collect_label_probes(job.input.labels))
job.write(collect_probing_events(job.input.events), "events")
