"""Adapter: cache token ids of a prepared data set for one model."""

import pandas as pd

from memloc.io import read_metadata
from memloc.logs import setup
from memloc.provenance import from_snakemake
from memloc.models.loading import load_pretrained_tokenizer
from memloc.tokens import write_tokens

setup(snakemake.log[0])
examples = pd.read_parquet(snakemake.input.examples)
tokenizer = load_pretrained_tokenizer(snakemake.input.pretrained)
provenance = {"data": read_metadata(snakemake.input.examples).get("spec_hash"), **from_snakemake(snakemake)}
write_tokens(examples, tokenizer, snakemake.params.max_length, snakemake.output[0], provenance)
