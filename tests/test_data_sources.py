"""Source adapters: every format a user may bring reads into the same rows, with origins that
point at the right line, and fails with the file and position when the bytes are wrong."""

import json

import pandas as pd
import pytest

from memloc.data import sources
from memloc.data.sources.files import read_table
from memloc.errors import DataError

ROWS = [("a good film", "pos"), ("a bad film, really", "neg"), ("café au lait", "pos")]
COLS = {"text_a": "sentence", "text_b": None, "label": "label"}


def _spec(source, columns=COLS):
    return {"name": "t", "source": source, "columns": columns}


def _write(path, fmt, rows=ROWS):
    df = pd.DataFrame(rows, columns=["sentence", "label"])
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "tsv":
        path.write_text("sentence\tlabel\n" + "".join(f"{t}\t{l}\n" for t, l in rows), encoding="utf-8")
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps({"sentence": t, "label": l}) + "\n" for t, l in rows), encoding="utf-8")
    else:
        df.to_parquet(path)
    return path


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_file_formats_read_the_same_rows(tmp_path, fmt):
    train = _write(tmp_path / f"train.{fmt}", fmt)
    raw = sources.load(_spec({"kind": "file", "train": str(train), "eval": None, "format": "auto"}))
    assert raw.train["text_a"].tolist() == [t for t, _ in ROWS]
    assert raw.train["label"].tolist() == [l for _, l in ROWS]
    assert raw.train["text_b"].isna().all() and raw.eval is None
    assert str(train) in raw.inputs and len(raw.inputs[str(train)]) == 64
    first = raw.train["origin"].iloc[0]
    assert first == (f"{train}:row 0" if fmt == "parquet" else f"{train}:line {1 if fmt == 'jsonl' else 2}")


def test_csv_origins_follow_multiline_fields(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('sentence,label\n"two\nlines",a\nnext,b\n', encoding="utf-8")
    df, origins = read_table(path)
    assert df["sentence"].tolist() == ["two\nlines", "next"]
    assert origins == [f"{path}:line 2", f"{path}:line 4"]


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_long_text_field_is_read_whole_and_the_field_limit_restored(tmp_path, fmt):
    import csv

    article = "word " * 50_000  # 250 kB, beyond the csv module's default 128 kB field limit
    path = _write(tmp_path / f"long.{fmt}", fmt, rows=[(article.strip(), "pos"), ("short", "neg")])
    limit = csv.field_size_limit()
    df, origins = read_table(path)
    assert df["sentence"].tolist() == [article.strip(), "short"]
    assert origins == [f"{path}:line 2", f"{path}:line 3"]
    assert csv.field_size_limit() == limit


def test_tsv_is_read_literally(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text('sentence\tlabel\n"quoted" start\t1\n', encoding="utf-8")
    df, _ = read_table(path)
    assert df["sentence"].tolist() == ['"quoted" start']


def test_explicit_format_overrides_extension(tmp_path):
    path = _write(tmp_path / "data.txt", "tsv")
    with pytest.raises(DataError, match="format"):
        read_table(path)
    df, _ = read_table(path, "tsv")
    assert len(df) == 3


def test_invalid_utf8_names_file_offset_line_and_fix(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("sentence,label\nok,a\ncaf\xe9,b\n".encode("latin-1"))
    with pytest.raises(DataError) as err:
        read_table(path)
    msg = str(err.value)
    assert str(path) in msg and "byte offset 23" in msg and "line 3" in msg and "UTF-8" in msg


def test_ragged_row_names_line(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("sentence\tlabel\nfine\t1\ntab\tinside\t0\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"t\.tsv:line 3: 3 fields"):
        read_table(path)


def test_missing_column_lists_present_columns(tmp_path):
    train = _write(tmp_path / "train.csv", "csv")
    spec = _spec({"kind": "file", "train": str(train)}, {"text_a": "text", "text_b": None, "label": "label"})
    with pytest.raises(DataError) as err:
        sources.load(spec)
    assert str(train) in str(err.value) and "'text'" in str(err.value) and "sentence, label" in str(err.value)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        sources.load(_spec({"kind": "file", "train": str(tmp_path / "nope.csv")}))


# --- Hugging Face -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory):
    import datasets

    root = tmp_path_factory.mktemp("hf")
    feats = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})
    sst = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": ["good", "bad", "fine"], "label": [1, 0, 1]}, features=feats),
        "validation": datasets.Dataset.from_dict({"text": ["meh", "great"], "label": [0, 1]}, features=feats),
    })
    sst.save_to_disk(str(root / "sst"))
    wic = datasets.DatasetDict({
        split: datasets.Dataset.from_dict({
            "word": ["bank", "run"], "sentence1": ["river bank", "run fast"],
            "sentence2": ["bank loan", "run a shop"], "label": [0, 1],
        })
        for split in ("train", "validation")
    })
    wic.save_to_disk(str(root / "wic"))
    plain = root / "plain"
    plain.mkdir()
    (plain / "train.csv").write_text("text,label\nhello,x\nworld,y\n")
    (plain / "validation.csv").write_text("text,label\nagain,y\n")
    return root


def test_hf_load_from_disk_gives_classlabel_names_and_dir_hash(hf_dirs):
    path = str(hf_dirs / "sst")
    raw = sources.load(_spec({"kind": "hf", "path": path, "name": None, "train_split": "train",
                              "eval_split": "validation", "revision": None},
                             {"text_a": "text", "text_b": None, "label": "label"}))
    assert raw.label_names == ["neg", "pos"]
    assert raw.train["text_a"].tolist() == ["good", "bad", "fine"] and raw.train["label"].tolist() == [1, 0, 1]
    assert raw.eval["origin"].tolist() == [f"{path}[validation]:row 0", f"{path}[validation]:row 1"]
    assert list(raw.inputs) == [path]


def test_hf_pair_task_with_templates(hf_dirs):
    cols = {"text_a": "{word}: {sentence1}", "text_b": "{word}: {sentence2}", "label": "label"}
    raw = sources.load(_spec({"kind": "hf", "path": str(hf_dirs / "wic"), "eval_split": "validation"}, cols))
    assert raw.train["text_a"].tolist() == ["bank: river bank", "run: run fast"]
    assert raw.train["text_b"].tolist() == ["bank: bank loan", "run: run a shop"]
    assert raw.label_names is None


def test_hf_template_with_unknown_column(hf_dirs):
    cols = {"text_a": "{lemma}: {sentence1}", "text_b": None, "label": "label"}
    with pytest.raises(DataError) as err:
        sources.load(_spec({"kind": "hf", "path": str(hf_dirs / "wic"), "eval_split": "validation"}, cols))
    assert "'lemma'" in str(err.value) and "sentence1" in str(err.value) and "wic[train]" in str(err.value)


def test_hf_unknown_split_lists_splits(hf_dirs):
    with pytest.raises(DataError, match="Splits present: train, validation"):
        sources.load(_spec({"kind": "hf", "path": str(hf_dirs / "sst"), "eval_split": "test"},
                           {"text_a": "text", "text_b": None, "label": "label"}))


def test_hf_load_dataset_path_on_local_data_dir(hf_dirs, tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
    raw = sources.load(_spec({"kind": "hf", "path": str(hf_dirs / "plain"), "eval_split": "validation"},
                             {"text_a": "text", "text_b": None, "label": "label"}))
    assert raw.train["label"].tolist() == ["x", "y"] and raw.eval["text_a"].tolist() == ["again"]
    assert raw.inputs == {} and raw.fingerprint["path"] == str(hf_dirs / "plain")
