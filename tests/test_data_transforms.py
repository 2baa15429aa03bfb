"""Row filters before validation (docs/protocol.md §4.1): classes a label_map drops, the single-label
subset of a multi-label source, and repeated texts."""

import json

import pytest

from memloc.data import build_examples
from memloc.data.transforms import top_k_single_labels
from memloc.errors import DataError

from builders import labelled_rows, write_csv


def _spec(train, eval=None, columns=None, **over):
    spec = {
        "name": "toy",
        "source": {"kind": "file", "train": str(train), "eval": str(eval) if eval else None, "format": "auto"},
        "columns": columns or {"text_a": "sentence", "text_b": None, "label": "label"},
        "label_map": None, "single_label_top_k": None, "drop_duplicate_texts": False,
        "max_train_examples": None, "max_eval_examples": None,
        "eval_fraction": 0.2, "split_seed": 0, "noise": {"ratio": 0.15, "seed": 0},
    }
    spec.update(over)
    return spec


def _jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


# ---------------------------------------------------------------- label_map: null drops a class


def test_label_map_null_drops_the_class_before_splitting(tmp_path):
    names = ("pos", "idk", "neg", "rel")
    train = write_csv(tmp_path / "train.csv", labelled_rows((30, 5, 20, 3), names))
    ev = write_csv(tmp_path / "eval.csv", labelled_rows((6, 2, 6, 1), names))
    spec = _spec(train, ev, label_map={"pos": "pos", "neg": "neg", "idk": None, "rel": None})
    df, doc, _ = build_examples(spec, resources_dir=tmp_path)
    assert doc["names"] == ["neg", "pos"]
    assert sorted(df["label_orig"].unique()) == [0, 1] and sorted(df["label"].unique()) == [0, 1]
    assert doc["counts"]["train"] == {"neg": 20, "pos": 30}
    assert sum(doc["counts"]["validation"].values()) + sum(doc["counts"]["test"].values()) == 12
    assert not df["text_a"].str.startswith(("idk", "rel")).any()
    # Noise is drawn from the remaining classes only: floor(0.15 * 30) + floor(0.15 * 20).
    assert doc["n_noisy"] == 4 + 3
    assert "train: dropped 8 rows whose label label_map maps to null (idk, rel)" in doc["notes"]
    assert "eval: dropped 3 rows whose label label_map maps to null (idk, rel)" in doc["notes"]


def test_dropped_rows_are_gone_before_the_held_out_split(tmp_path):
    """Without an eval file the 80/20 hold-out is drawn from the kept rows only."""
    train = write_csv(tmp_path / "train.csv", labelled_rows((40, 10, 40), ("pos", "idk", "neg")))
    df, doc, _ = build_examples(_spec(train, label_map={"pos": "pos", "neg": "neg", "idk": None}), resources_dir=tmp_path)
    assert len(df) == 80 and int((df.split != "train").sum()) == 16
    assert doc["names"] == ["neg", "pos"]


def test_integer_label_map_keeps_the_remaining_numbers(tmp_path):
    train = write_csv(tmp_path / "train.csv", [(f"s {i}", i % 4) for i in range(80)])
    spec = _spec(train, label_map={"0": 0, "1": 1, "2": None, "3": None})
    df, doc, _ = build_examples(spec, resources_dir=tmp_path)
    assert doc["names"] == ["0", "1"] and len(df) == 40
    assert (df["label_orig"] == df["text_a"].str.split().str[1].astype(int) % 4).all()


def test_dropping_every_class_is_an_error(tmp_path):
    train = write_csv(tmp_path / "train.csv", labelled_rows())
    with pytest.raises(DataError) as err:
        build_examples(_spec(train, label_map={"pos": None, "neg": None}), resources_dir=tmp_path)
    msg = str(err.value)
    assert "data set 'toy'" in msg and "label_map maps every label ('pos', 'neg') to null" in msg
    assert "datasets.toy.label_map" in msg


def test_dropping_every_row_of_a_split_is_an_error(tmp_path):
    train = write_csv(tmp_path / "train.csv", labelled_rows((30, 20), ("idk", "rel")))
    with pytest.raises(DataError) as err:
        build_examples(_spec(train, label_map={"idk": None, "rel": None, "pos": "pos"}), resources_dir=tmp_path)
    assert str(train) in str(err.value) and "no example is left" in str(err.value)


def test_an_unmapped_label_is_still_an_error_when_others_are_dropped(tmp_path):
    train = write_csv(tmp_path / "train.csv", labelled_rows((30, 20, 4), ("pos", "neg", "odd")))
    with pytest.raises(DataError, match="label 'odd' .* is not in label_map"):
        build_examples(_spec(train, label_map={"pos": "pos", "neg": None}), resources_dir=tmp_path)


# ---------------------------------------------------------------- multi-label sources and repeated texts


def test_top_k_counts_single_labels_and_breaks_ties_by_first_occurrence():
    labels = [["b"], ["a"], ["c"], ["a", "c"], ["c", "a"], ["b"], ["a"], [], "c"]
    assert top_k_single_labels(labels, 2) == ["b", "a"]  # b, a and c have 2 each; c comes last
    assert top_k_single_labels(labels, 3) == ["b", "a", "c"]


def test_list_labels_need_single_label_top_k(tmp_path):
    train = _jsonl(tmp_path / "t.jsonl", [{"sentence": f"s {i}", "label": ["a", "b"][: 1 + i % 2]} for i in range(20)])
    with pytest.raises(DataError) as err:
        build_examples(_spec(train), resources_dir=tmp_path)
    assert f"{train}:line 1" in str(err.value) and "single_label_top_k" in str(err.value)


def test_single_label_top_k_on_plain_labels_keeps_the_most_frequent_classes(tmp_path):
    train = write_csv(tmp_path / "train.csv", labelled_rows((30, 5, 20), ("pos", "meh", "neg")))
    df, doc, _ = build_examples(_spec(train, single_label_top_k=2), resources_dir=tmp_path)
    assert doc["names"] == ["neg", "pos"] and len(df) == 50


def test_drop_duplicate_texts_compares_both_texts_within_a_split(tmp_path):
    rows = [{"a": f"premise {i % 20}", "b": f"hypothesis {i % 40}", "label": ["yes", "no"][i % 2]} for i in range(80)]
    train = _jsonl(tmp_path / "train.jsonl", rows)
    ev = _jsonl(tmp_path / "eval.jsonl", rows[:10])  # the same pairs as train: other split, kept
    columns = {"text_a": "a", "text_b": "b", "label": "label"}
    df, doc, _ = build_examples(_spec(train, ev, columns=columns, drop_duplicate_texts=True), resources_dir=tmp_path)
    assert doc["counts"]["train"] == {"no": 20, "yes": 20}  # rows 40..79 repeat rows 0..39
    assert int((df.split != "train").sum()) == 10
    assert "train: dropped 40 rows whose text occurs earlier in the split" in doc["notes"]
    kept, _, _ = build_examples(_spec(train, ev, columns=columns), resources_dir=tmp_path)
    assert int((kept.split == "train").sum()) == 80
