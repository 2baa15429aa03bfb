"""Tokenise a prepared data set once per (dataset, model) and reuse it in every later rule.

The cache is a Parquet table of token-id lists keyed by ``example_id``; :class:`TokenSet` turns
any subset of it into padded batches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from memloc import __version__
from memloc.encoding import TokenSettings, model_texts, needs_separator, resolve_separator
from memloc.io import read_metadata, write_parquet

log = logging.getLogger("memloc.tokens")


def tokenize_examples(
    examples: pd.DataFrame, tokenizer, settings: TokenSettings, *, model_type: str | None, marker: str | None
) -> tuple[pd.DataFrame, str | None]:
    """Token ids of every example, truncated to ``settings.max_length`` (texts cut are counted and logged).

    ``marker`` is the examples table's ``{SEP}`` placeholder (None when its templates have none);
    returns the table and the separator used (None when none was needed).
    """
    text_a = examples["text_a"].tolist()
    text_b = examples["text_b"].tolist() if "text_b" in examples else [None] * len(examples)
    text_b = [None if (b is None or (isinstance(b, float) and np.isnan(b))) else str(b) for b in text_b]
    has_pairs = any(b is not None for b in text_b)
    if has_pairs and any(b is None for b in text_b):
        raise ValueError("text_b is missing for some examples of a pair task; every example needs both texts")
    separator = None
    if needs_separator(settings, has_pairs, marker):
        separator = resolve_separator(tokenizer, model_type, settings.separator)
    first, second = model_texts(text_a, text_b if has_pairs else None, settings, separator, marker)
    max_length = settings.max_length
    full = tokenizer(first, second, truncation=False, add_special_tokens=True)
    enc = tokenizer(
        first,
        second,
        truncation="longest_first" if second is not None else True,
        max_length=max_length,
        add_special_tokens=True,
    )
    full_len = np.array([len(x) for x in full["input_ids"]])
    ids = [np.asarray(x, dtype=np.int32) for x in enc["input_ids"]]
    lengths = np.array([len(x) for x in ids])
    truncated = full_len > lengths
    out = pd.DataFrame(
        {
            "example_id": examples["example_id"].to_numpy(),
            "input_ids": ids,
            "length": lengths.astype(np.int32),
            "truncated": truncated,
        }
    )
    if "token_type_ids" in enc and second is not None:
        out["token_type_ids"] = [np.asarray(x, dtype=np.int8) for x in enc["token_type_ids"]]
    if truncated.any():
        log.warning(
            "%d of %d examples are longer than max_length=%d tokens and were truncated "
            "(raise the model's max_length to keep them whole)",
            int(truncated.sum()),
            len(examples),
            max_length,
        )
    return out, separator


def write_tokens(
    examples: pd.DataFrame, tokenizer, settings: TokenSettings, path: str | Path, provenance: dict,
    *, model_type: str | None, marker: str | None,
) -> pd.DataFrame:
    df, separator = tokenize_examples(examples, tokenizer, settings, model_type=model_type, marker=marker)
    meta = {
        **provenance,
        "memloc_version": __version__,
        "max_length": settings.max_length,
        "pad_token_id": int(tokenizer.pad_token_id),
        "n_truncated": int(df["truncated"].sum()),
    }
    if separator is not None:  # recorded only when used, so a default run's metadata is unchanged
        meta.update(pair_encoding=settings.pair_encoding, separator=separator)
    write_parquet(df, path, metadata=meta)
    return df


@dataclass
class TokenSet:
    """Token ids of a subset of examples, in a fixed order, with their labels."""

    example_ids: np.ndarray
    input_ids: list[np.ndarray]
    token_type_ids: list[np.ndarray] | None
    labels: np.ndarray
    pad_token_id: int

    def __len__(self) -> int:
        return len(self.example_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def subset(self, idx) -> "TokenSet":
        idx = np.asarray(idx, dtype=np.int64)
        return TokenSet(
            example_ids=self.example_ids[idx],
            input_ids=[self.input_ids[i] for i in idx],
            token_type_ids=None if self.token_type_ids is None else [self.token_type_ids[i] for i in idx],
            labels=self.labels[idx],
            pad_token_id=self.pad_token_id,
        )

    def with_labels(self, labels: np.ndarray) -> "TokenSet":
        return TokenSet(self.example_ids, self.input_ids, self.token_type_ids, np.asarray(labels), self.pad_token_id)

    def collate(self, idx) -> dict[str, torch.Tensor]:
        """Right-padded batch of the examples at positions ``idx`` (dynamic padding to the longest)."""
        idx = np.asarray(idx, dtype=np.int64)
        width = max(len(self.input_ids[i]) for i in idx)
        ids = np.full((len(idx), width), self.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        types = None if self.token_type_ids is None else np.zeros((len(idx), width), dtype=np.int64)
        for row, i in enumerate(idx):
            n = len(self.input_ids[i])
            ids[row, :n] = self.input_ids[i]
            mask[row, :n] = 1
            if types is not None:
                types[row, :n] = self.token_type_ids[i]
        batch = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}
        if types is not None:
            batch["token_type_ids"] = torch.from_numpy(types)
        batch["labels"] = torch.from_numpy(self.labels[idx].astype(np.int64))
        return batch


def _read_tokens(tokens_path: str | Path) -> tuple[pd.DataFrame, dict]:
    return pd.read_parquet(tokens_path).set_index("example_id"), read_metadata(tokens_path)


def _join(tokens: pd.DataFrame, meta: dict, tokens_path, examples: pd.DataFrame, label_column: str) -> TokenSet:
    missing = set(examples["example_id"]) - set(tokens.index)
    if missing:
        raise ValueError(
            f"{tokens_path}: no token ids for {len(missing)} example ids (e.g. {sorted(missing)[:5]}); "
            "the token cache is stale, delete it and re-run."
        )
    rows = tokens.loc[examples["example_id"].to_numpy()]
    types = None
    if "token_type_ids" in rows.columns:
        types = [np.asarray(x, dtype=np.int64) for x in rows["token_type_ids"]]
    return TokenSet(
        example_ids=examples["example_id"].to_numpy(dtype=np.int64),
        input_ids=[np.asarray(x, dtype=np.int64) for x in rows["input_ids"]],
        token_type_ids=types,
        labels=examples[label_column].to_numpy(dtype=np.int64),
        pad_token_id=int(meta.get("pad_token_id", 0)),
    )


def load_tokenset(tokens_path: str | Path, examples: pd.DataFrame, label_column: str = "label") -> TokenSet:
    """Join cached token ids to ``examples`` (any subset, kept in its order) with their labels."""
    tokens, meta = _read_tokens(tokens_path)
    return _join(tokens, meta, tokens_path, examples, label_column)


def load_split_tokensets(
    tokens_path: str | Path, examples: pd.DataFrame, label_column: str = "label",
    splits: tuple[str, ...] = ("train", "validation", "test"),
) -> dict[str, TokenSet]:
    """One :class:`TokenSet` per split, reading the token cache once."""
    tokens, meta = _read_tokens(tokens_path)
    return {s: _join(tokens, meta, tokens_path, examples[examples["split"] == s], label_column) for s in splits}
