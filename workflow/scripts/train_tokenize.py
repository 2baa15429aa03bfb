"""Adapter: cache token ids of a prepared data set for one model."""

import pandas as pd

from memloc.encoding import TokenSettings
from memloc.io import read_metadata
from memloc.job import start
from memloc.models.loading import load_pretrained_tokenizer, pretrained_model_type
from memloc.tokens import write_tokens

job = start(snakemake)
data_meta = read_metadata(job.input.examples)
provenance = {"data": data_meta.get("spec_hash"), **job.provenance}
write_tokens(pd.read_parquet(job.input.examples), load_pretrained_tokenizer(job.input.pretrained),
             TokenSettings.from_dict(job.settings), job.output[0], provenance,
             model_type=pretrained_model_type(job.input.pretrained), marker=data_meta.get("separator_marker"))
