"""How pair texts and the {SEP} placeholder reach each model's tokenizer (docs/protocol.md §4.4):
the default text pair, and the paper's joined string with BERT's [SEP], OPT's EOS and `|` for
GPT-Neo and GPT-NeoX (Pythia)."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from memloc import config as mconf
from memloc.encoding import TokenSettings, resolve_separator
from memloc.errors import ConfigError, ModelError
from memloc.io import read_metadata
from memloc.models.loading import load_tokenizer
from memloc.tokens import tokenize_examples, write_tokens

from builders import decoder_tokenizer

PAIRS = pd.DataFrame({
    "example_id": np.arange(3, dtype=np.int64),
    "text_a": ["the bank", "a river bank", "money"],
    "text_b": ["the river is wide", "in the bank", "a bank account"],
    "label": [0, 1, 0],
})
SINGLES = PAIRS.assign(text_b=None)
WIC = PAIRS.assign(text_a=["bank {SEP} the bank", "bank {SEP} a river bank", "money {SEP} money"])


@pytest.fixture(scope="module")
def bert_tok():
    return load_tokenizer({"kind": "random"})  # bert-base-uncased's vocabulary, with [SEP]


def ids(df: pd.DataFrame) -> list[list[int]]:
    return [list(map(int, x)) for x in df["input_ids"]]


def expected(tokenizer, texts, pairs=None, max_length=512):
    truncation = "longest_first" if pairs is not None else True
    return [list(x) for x in tokenizer(texts, pairs, truncation=truncation, max_length=max_length)["input_ids"]]


def encode(examples, tokenizer, model_type, marker=None, **settings):
    return tokenize_examples(examples, tokenizer, TokenSettings.with_defaults(**settings), model_type=model_type, marker=marker)


# ---------------------------------------------------------------- the default: today's tokens


@pytest.mark.parametrize("family", ["bert", "gpt_neo"])
def test_default_is_the_tokenizer_pair_with_segment_ids(bert_tok, family):
    tokenizer = bert_tok if family == "bert" else decoder_tokenizer()
    df, separator = encode(PAIRS, tokenizer, family, max_length=6)
    assert separator is None
    want = tokenizer(PAIRS["text_a"].tolist(), PAIRS["text_b"].tolist(), truncation="longest_first", max_length=6)
    assert ids(df) == [list(x) for x in want["input_ids"]]
    if family == "bert":
        assert [list(x) for x in df["token_type_ids"]] == [list(x) for x in want["token_type_ids"]]
        assert any(1 in x for x in want["token_type_ids"])
    singles, _ = encode(SINGLES, tokenizer, family, max_length=6)
    assert ids(singles) == expected(tokenizer, SINGLES["text_a"].tolist(), max_length=6)
    assert "token_type_ids" not in singles


def test_default_settings_come_from_the_schema():
    assert TokenSettings.with_defaults() == TokenSettings(max_length=128, pair_encoding="pair", separator=None)


def test_pair_encoding_is_validated():
    raw = {"datasets": {"d": {"source": {"kind": "file", "train": "t.csv"}}},
           "models": {"m": {"source": {"kind": "random", "model_type": "bert"}, "pair_encoding": "concat"}}}
    with pytest.raises(ConfigError, match="pair_encoding"):
        mconf.validate(raw, source="test")


# ---------------------------------------------------------------- joined pairs, as the paper


def test_bert_joined_pair_is_one_string_with_sep_and_no_segment_ids(bert_tok):
    df, separator = encode(PAIRS, bert_tok, "bert", pair_encoding="joined")
    assert separator == "[SEP]"
    assert ids(df) == expected(bert_tok, [f"{a} [SEP] {b}" for a, b in zip(PAIRS.text_a, PAIRS.text_b)])
    assert "token_type_ids" not in df  # the paper's token_type_ids are all 0, BERT's default
    assert all(x.count(bert_tok.sep_token_id) == 2 for x in ids(df))


def test_joined_pair_is_cut_at_its_end(bert_tok):
    df, _ = encode(PAIRS, bert_tok, "bert", pair_encoding="joined", max_length=5)
    full = expected(bert_tok, [f"{a} [SEP] {b}" for a, b in zip(PAIRS.text_a, PAIRS.text_b)])
    for got, whole in zip(ids(df), full):
        assert got[:-1] == whole[:4] and got[-1] == bert_tok.sep_token_id
    assert df["truncated"].all()


@pytest.mark.parametrize("model_type", ["gpt_neo", "gpt_neox"])
def test_gpt_neo_and_neox_join_pairs_with_a_pipe(model_type):
    tokenizer = decoder_tokenizer()
    df, separator = encode(PAIRS, tokenizer, model_type, pair_encoding="joined")
    assert separator == "|"
    assert ids(df) == expected(tokenizer, [f"{a} | {b}" for a, b in zip(PAIRS.text_a, PAIRS.text_b)])
    assert ids(df) != ids(encode(PAIRS, tokenizer, model_type)[0])  # not today's concatenation


def test_opt_joins_pairs_with_its_eos():
    tokenizer = decoder_tokenizer(eos="</s>", bos="</s>")
    df, separator = encode(PAIRS, tokenizer, "opt", pair_encoding="joined")
    assert separator == "</s>"
    assert ids(df) == expected(tokenizer, [f"{a} </s> {b}" for a, b in zip(PAIRS.text_a, PAIRS.text_b)])
    assert all(x.count(tokenizer.eos_token_id) == 2 for x in ids(df))  # the BOS and the separator


def test_a_configured_separator_wins(bert_tok):
    df, separator = encode(PAIRS, bert_tok, "bert", pair_encoding="joined", separator="||")
    assert separator == "||"
    assert ids(df) == expected(bert_tok, [f"{a} || {b}" for a, b in zip(PAIRS.text_a, PAIRS.text_b)])


def test_a_tokenizer_without_separator_or_eos_needs_one_configured():
    bare = SimpleNamespace(sep_token=None, eos_token=None)
    with pytest.raises(ModelError, match="models.<m>.separator"):
        resolve_separator(bare, "llama", None)
    assert resolve_separator(bare, "gpt_neox", None) == "|"
    assert resolve_separator(bare, "llama", "/") == "/"


# ---------------------------------------------------------------- the {SEP} placeholder (WiC)


@pytest.mark.parametrize("model_type, sep", [("bert", "[SEP]"), ("gpt_neo", "|"), ("gpt_neox", "|")])
def test_wic_is_word_sep_sentence1_sep_sentence2(bert_tok, model_type, sep):
    tokenizer = bert_tok if model_type == "bert" else decoder_tokenizer()
    df, separator = encode(WIC, tokenizer, model_type, marker="{SEP}", pair_encoding="joined")
    assert separator == sep
    words = ["bank", "bank", "money"]
    want = [f"{w} {sep} {a} {sep} {b}" for w, a, b in zip(words, PAIRS.text_a, PAIRS.text_b)]
    assert ids(df) == expected(tokenizer, want)


def test_placeholder_in_a_tokenizer_pair_gets_the_separator_too(bert_tok):
    df, separator = encode(WIC, bert_tok, "bert", marker="{SEP}")
    want = bert_tok([t.replace("{SEP}", "[SEP]") for t in WIC.text_a], PAIRS["text_b"].tolist(),
                    truncation="longest_first", max_length=128)
    assert separator == "[SEP]" and ids(df) == [list(x) for x in want["input_ids"]]


def test_placeholder_text_is_left_alone_without_the_marker(bert_tok):
    """A data set whose templates have no {SEP} tokenises its texts as they are."""
    df, separator = encode(WIC, bert_tok, "bert")
    assert separator is None
    assert ids(df) == [list(x) for x in bert_tok(WIC.text_a.tolist(), PAIRS.text_b.tolist(), truncation="longest_first",
                                                 max_length=128)["input_ids"]]


def test_write_tokens_records_the_separator_only_when_used(tmp_path, bert_tok):
    settings = TokenSettings.with_defaults(pair_encoding="joined")
    write_tokens(PAIRS, bert_tok, settings, tmp_path / "a.parquet", {"data": "x"}, model_type="bert", marker=None)
    meta = read_metadata(tmp_path / "a.parquet")
    assert (meta["pair_encoding"], meta["separator"], meta["max_length"]) == ("joined", "[SEP]", 128)
    write_tokens(PAIRS, bert_tok, TokenSettings.with_defaults(), tmp_path / "b.parquet", {"data": "x"},
                 model_type="bert", marker=None)
    assert "separator" not in read_metadata(tmp_path / "b.parquet")


def test_the_model_type_comes_from_the_materialised_checkpoint(tmp_path):
    from memloc.models.loading import load_pretrained_tokenizer, materialise, pretrained_model_type

    source = {"kind": "random", "model_type": "gpt_neox", "num_layers": 1, "hidden_size": 16, "num_heads": 2}
    materialise({"name": "tiny", "source": source}, tmp_path / "pretrained")
    assert pretrained_model_type(tmp_path / "pretrained") == "gpt_neox"
    tokenizer = load_pretrained_tokenizer(tmp_path / "pretrained")  # random models borrow BERT's vocabulary
    _, separator = encode(PAIRS, tokenizer, "gpt_neox", pair_encoding="joined")
    assert separator == "[SEP]"  # a tokenizer's own separator comes first


def test_train_tokenize_adapter_joins_wic_with_the_models_separator(tmp_path):
    """The rule's script end to end: settings from params, model type from the checkpoint, the
    placeholder marker from the examples table's metadata."""
    import json
    import runpy

    from snakemake.iocontainers import Namedlist

    from memloc.data import prepare_dataset

    from builders import write_csv

    rows = [("bank", f"sentence one {i}", f"sentence two {i}", "TF"[i % 2]) for i in range(40)]
    data = write_csv(tmp_path / "wic.csv", rows, header=("word", "sentence1", "sentence2", "label"))
    spec = {
        "name": "wic", "source": {"kind": "file", "train": str(data), "eval": None, "format": "auto"},
        "columns": {"text_a": "{word} {SEP} {sentence1}", "text_b": "sentence2", "label": "label"},
        "label_map": None, "single_label_top_k": None, "drop_duplicate_texts": False, "max_train_examples": None,
        "max_eval_examples": None, "eval_fraction": 0.2, "split_seed": 0, "noise": {"ratio": 0.15, "seed": 0},
    }
    examples = prepare_dataset(spec, tmp_path, tmp_path / "wic.parquet", tmp_path / "wic.labels.json")
    pretrained = tmp_path / "pretrained"
    tokenizer = decoder_tokenizer()
    tokenizer.save_pretrained(pretrained)
    (pretrained / "config.json").write_text(json.dumps({"model_type": "gpt_neox"}))
    settings = {"max_length": 512, "pair_encoding": "joined", "separator": None}
    smk = SimpleNamespace(
        input=Namedlist(fromdict={"examples": str(tmp_path / "wic.parquet"), "pretrained": str(pretrained)}),
        output=Namedlist(fromdict={"tokens": str(tmp_path / "tokens.parquet")}),
        params=Namedlist(fromdict={"settings": settings}), wildcards=Namedlist(fromdict={"dataset": "wic", "model": "m"}),
        log=[str(tmp_path / "x.log")], threads=1,
    )
    script = Path(__file__).resolve().parents[1] / "workflow" / "scripts" / "train_tokenize.py"
    runpy.run_path(str(script), init_globals={"snakemake": smk})
    got = pd.read_parquet(tmp_path / "tokens.parquet").set_index("example_id").loc[examples["example_id"]]
    want = [f"bank | {a.split(' {SEP} ')[1]} | {b}" for a, b in zip(examples["text_a"], examples["text_b"])]
    assert [list(x) for x in got["input_ids"]] == expected(tokenizer, want)
    assert read_metadata(tmp_path / "tokens.parquet")["separator"] == "|"
