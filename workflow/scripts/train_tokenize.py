"""Adapter: cache token ids of a prepared data set for one model."""

import pandas as pd

from memloc.io import read_metadata
from memloc.job import start
from memloc.models.loading import load_pretrained_tokenizer
from memloc.tokens import write_tokens

job = start(snakemake)
provenance = {"data": read_metadata(job.input.examples).get("spec_hash"), **job.provenance}
write_tokens(pd.read_parquet(job.input.examples), load_pretrained_tokenizer(job.input.pretrained), job.params.max_length,
             job.output[0], provenance)
