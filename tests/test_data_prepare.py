"""prepare_dataset: the examples table every later stage reads (docs/protocol.md §3.2), and errors that
stop before anything is written."""

import dataclasses
import json

import pandas as pd
import pytest

from memloc.data import prepare_dataset, registry
from memloc.data.prepare import CONTRACT_COLUMNS
from memloc.errors import DataError
from memloc.io import read_metadata, sha256_file

from builders import labelled_rows, make_vader_sdist, write_csv


def _spec(train, eval=None, **over):
    spec = {
        "name": "toy",
        "source": {"kind": "file", "train": str(train), "eval": str(eval) if eval else None, "format": "auto"},
        "columns": {"text_a": "sentence", "text_b": None, "label": "label"},
        "label_map": None, "max_train_examples": None, "max_eval_examples": None,
        "eval_fraction": 0.2, "split_seed": 0, "noise": {"ratio": 0.15, "seed": 0},
    }
    spec.update(over)
    return spec


def _run(spec, tmp_path):
    out, labels = tmp_path / "out" / "toy.parquet", tmp_path / "out" / "toy.labels.json"
    df = prepare_dataset(spec, tmp_path / "resources", out, labels)
    return df, out, labels


def _fails(spec, tmp_path, *fragments):
    out, labels = tmp_path / "out" / "toy.parquet", tmp_path / "out" / "toy.labels.json"
    with pytest.raises(DataError) as err:
        prepare_dataset(spec, tmp_path / "resources", out, labels)
    for fragment in fragments:
        assert fragment in str(err.value), f"{fragment!r} not in: {err.value}"
    assert not out.exists() and not labels.exists()
    return str(err.value)


def test_contract_columns_types_and_noise_only_in_train(tmp_path):
    train = write_csv(tmp_path / "train.csv", labelled_rows((40, 27)))
    ev = write_csv(tmp_path / "eval.csv", labelled_rows((9, 8)))
    df, out, labels = _run(_spec(train, ev), tmp_path)
    back = pd.read_parquet(out)
    assert list(back.columns) == CONTRACT_COLUMNS
    assert back["example_id"].tolist() == list(range(len(back)))
    assert str(back["example_id"].dtype) == "int64" and str(back["label"].dtype) == "int64"
    assert back["is_noisy"].dtype == bool and back["text_b"].isna().all()
    assert back.groupby("split").size().to_dict() == {"train": 67, "validation": 8, "test": 9}
    ev_rows = back[back["split"] != "train"]
    assert not ev_rows["is_noisy"].any() and (ev_rows["label"] == ev_rows["label_orig"]).all()
    tr = back[back["split"] == "train"]
    assert (tr["label"] != tr["label_orig"]).equals(tr["is_noisy"])
    # floor(0.15 * 27) + floor(0.15 * 40) noisy examples; string labels sorted: neg=0, pos=1.
    assert tr["is_noisy"].sum() == 4 + 6
    doc = json.loads(labels.read_text())
    assert doc["names"] == ["neg", "pos"] and doc["n_noisy"] == 10
    assert doc["counts"]["train"] == {"neg": 27, "pos": 40}
    assert doc["provenance"]["sha256"] == {str(train): sha256_file(train), str(ev): sha256_file(ev)}
    meta = read_metadata(out)
    assert meta["spec_hash"] == doc["provenance"]["spec_hash"] and meta["memloc_version"]
    assert meta["input_sha256"][str(train)] == sha256_file(train)


def test_deterministic_and_seeded(tmp_path):
    train = write_csv(tmp_path / "train.csv", labelled_rows((60, 40)))
    a, *_ = _run(_spec(train, max_train_examples=50), tmp_path)
    b, *_ = _run(_spec(train, max_train_examples=50), tmp_path)
    pd.testing.assert_frame_equal(a, b)
    c, *_ = _run(_spec(train, max_train_examples=50, noise={"ratio": 0.15, "seed": 1}), tmp_path)
    assert a["text_a"].tolist() == c["text_a"].tolist(), "the noise seed does not move the split"
    assert not a["is_noisy"].equals(c["is_noisy"])


def test_holdout_subsample_and_halving_sizes(tmp_path):
    train = write_csv(tmp_path / "train.csv", labelled_rows((300, 200)))
    df, *_ = _run(_spec(train, max_train_examples=100, max_eval_examples=41, eval_fraction=0.2), tmp_path)
    sizes = df.groupby("split").size().to_dict()
    assert sizes == {"train": 100, "validation": 20, "test": 21}
    tr = df[df["split"] == "train"]
    assert tr["label_orig"].value_counts().to_dict() == {1: 60, 0: 40}
    assert not set(tr["text_a"]) & set(df.loc[df["split"] != "train", "text_a"])


def test_integer_labels_kept_or_remapped(tmp_path):
    rows = [(f"t{i}", i % 3) for i in range(60)]
    df, _, labels = _run(_spec(write_csv(tmp_path / "a.csv", rows)), tmp_path)
    assert json.loads(labels.read_text())["names"] == ["0", "1", "2"]
    assert sorted(df["label_orig"].unique()) == [0, 1, 2]
    rows = [(f"t{i}", [3, 7, 10][i % 3]) for i in range(60)]
    df, _, labels = _run(_spec(write_csv(tmp_path / "b.csv", rows)), tmp_path)
    assert json.loads(labels.read_text())["names"] == ["3", "7", "10"]
    first = df[df["text_a"] == "t2"]["label_orig"].item()
    assert first == 2


def test_label_map_merges_classes(tmp_path):
    rows = [(f"t{i}", ["great", "good", "bad"][i % 3]) for i in range(60)]
    spec = _spec(write_csv(tmp_path / "a.csv", rows), label_map={"great": "positive", "good": "positive", "bad": "negative"})
    _, _, labels = _run(spec, tmp_path)
    doc = json.loads(labels.read_text())
    assert doc["names"] == ["negative", "positive"]
    assert sum(doc["counts"]["train"].values()) == 48 and doc["counts"]["train"]["positive"] == 32


def test_hf_classlabel_names_and_pair_texts(tmp_path):
    import datasets

    feats = datasets.Features({"s1": datasets.Value("string"), "s2": datasets.Value("string"),
                               "label": datasets.ClassLabel(names=["entailment", "contradiction"])})
    def ds(n):
        return datasets.Dataset.from_dict({"s1": [f"a{i}" for i in range(n)], "s2": [f"b{i}" for i in range(n)],
                                           "label": [i % 2 for i in range(n)]}, features=feats)
    datasets.DatasetDict({"train": ds(40), "validation": ds(10)}).save_to_disk(str(tmp_path / "nli"))
    spec = _spec("x", source={"kind": "hf", "path": str(tmp_path / "nli"), "name": None, "train_split": "train",
                              "eval_split": "validation", "revision": None},
                 columns={"text_a": "s1", "text_b": "Q: {s2}", "label": "label"})
    df, _, labels = _run(spec, tmp_path)
    assert json.loads(labels.read_text())["names"] == ["entailment", "contradiction"]
    row = df[df["text_a"] == "a3"].iloc[0]
    assert row["text_b"] == "Q: b3" and row["label_orig"] == 1
    spec["label_map"] = {"entailment": "yes", "contradiction": "no"}
    _, _, labels = _run(spec, tmp_path)
    assert json.loads(labels.read_text())["names"] == ["no", "yes"]


def test_registry_source_end_to_end(tmp_path, monkeypatch):
    lines = [f"{i}\t{(-1) ** i * (1 + i % 3)}.5\tsentence {i} caf\u00e9" for i in range(1, 61)] + ["61\t0.0\tzero"]
    path = registry.archive_path("movie_reviews", tmp_path / "resources")
    path.parent.mkdir(parents=True)
    make_vader_sdist(path, lines)
    monkeypatch.setitem(registry.CORPORA, "movie_reviews",
                        dataclasses.replace(registry.CORPORA["movie_reviews"], sha256=sha256_file(path)))
    spec = _spec("x", source={"kind": "registry", "corpus": "movie_reviews", "granularity": "binary"})
    df, out, labels = _run(spec, tmp_path)
    doc = json.loads(labels.read_text())
    assert doc["names"] == ["negative", "positive"] and len(df) == 60
    assert df.groupby("split").size().to_dict() == {"train": 48, "validation": 6, "test": 6}
    assert doc["provenance"]["sha256"] == {path.name: sha256_file(path)}
    assert "caf\u00e9" in df["text_a"].iloc[0]


# --- errors: each names the file and the row or column, and leaves no output ---------------


def test_empty_text(tmp_path):
    rows = labelled_rows()
    rows[3] = ("", "pos")
    train = write_csv(tmp_path / "train.csv", rows)
    _fails(_spec(train), tmp_path, f"{train}:line 5", "column 'sentence'", "empty")


def test_whitespace_text(tmp_path):
    rows = labelled_rows()
    rows[0] = ("  \t ", "pos")
    train = write_csv(tmp_path / "train.csv", rows)
    _fails(_spec(train), tmp_path, f"{train}:line 2", "column 'sentence'", "whitespace")


def test_missing_label_column(tmp_path):
    train = write_csv(tmp_path / "train.csv", labelled_rows(), header=("sentence", "target"))
    _fails(_spec(train), tmp_path, str(train), "column 'label'", "sentence, target")


def test_nan_label(tmp_path):
    path = tmp_path / "train.jsonl"
    records = [{"sentence": t, "label": l} for t, l in labelled_rows()]
    records[7]["label"] = float("nan")
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    _fails(_spec(path), tmp_path, f"{path}:line 8", "column 'label'", "missing")


def test_single_class(tmp_path):
    train = write_csv(tmp_path / "train.csv", labelled_rows((30,), ("pos",)))
    _fails(_spec(train), tmp_path, str(train), "single class", "'pos'", "column 'label'")


def test_label_outside_label_map(tmp_path):
    rows = labelled_rows()
    rows[10] = ("odd one", "maybe")
    train = write_csv(tmp_path / "train.csv", rows)
    _fails(_spec(train, label_map={"pos": "positive", "neg": "negative"}), tmp_path,
           f"{train}:line 12", "'maybe'", "label_map", "column 'label'")


def test_invalid_utf8(tmp_path):
    train = tmp_path / "train.csv"
    train.write_bytes("sentence,label\nnice,pos\nna\xefve,neg\n".encode("cp1252"))
    _fails(_spec(train), tmp_path, str(train), "line 3", "byte offset 26", "re-encode the file as UTF-8")


def test_too_few_examples_for_noise(tmp_path):
    train = write_csv(tmp_path / "train.csv", labelled_rows((40, 6)))
    ev = write_csv(tmp_path / "eval.csv", labelled_rows((4, 4)))
    msg = _fails(_spec(train, ev), tmp_path, str(train), "class 'neg' has 6 training example(s)")
    assert "at least 7" in msg
    _run(_spec(train, ev, noise={"ratio": 0.0, "seed": 0}), tmp_path)


def test_class_only_in_evaluation(tmp_path):
    train = write_csv(tmp_path / "train.csv", labelled_rows((30, 30)))
    ev = write_csv(tmp_path / "eval.csv", labelled_rows((3, 3, 3), ("pos", "neg", "meh")))
    _fails(_spec(train, ev), tmp_path, str(train), "'meh'", "no training examples")


def test_subsampling_keeps_enough_for_noise(tmp_path):
    train = write_csv(tmp_path / "train.csv", labelled_rows((500, 12)))
    df, *_ = _run(_spec(train, max_train_examples=60), tmp_path)
    tr = df[df["split"] == "train"]
    assert (tr["label_orig"] == 0).sum() >= 7 and tr[tr["label_orig"] == 0]["is_noisy"].sum() >= 1
