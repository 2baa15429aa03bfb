"""The paper's hub data sets, offline: every `hf` entry of config/paper.yaml, read through its own
column mapping, label map and splits from a local fixture with that data set's real schema
(column names and types, ClassLabel names, split names), written with save_to_disk. Also: the
paper config validates and its whole DAG is planned without the network."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from memloc import config as mconf
from memloc.data.noise import n_flips
from memloc.data.prepare import build_examples

REPO = Path(__file__).resolve().parents[1]
PAPER = REPO / "config" / "paper.yaml"

datasets = pytest.importorskip("datasets")
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value  # noqa: E402

S, I32, I64 = Value("string"), Value("int32"), Value("int64")
TREC_FINE = [
    "ABBR:abb", "ABBR:exp", "ENTY:animal", "ENTY:body", "ENTY:color", "ENTY:cremat", "ENTY:currency",
    "ENTY:dismed", "ENTY:event", "ENTY:food", "ENTY:instru", "ENTY:lang", "ENTY:letter", "ENTY:other",
    "ENTY:plant", "ENTY:product", "ENTY:religion", "ENTY:sport", "ENTY:substance", "ENTY:symbol",
    "ENTY:techmeth", "ENTY:termeq", "ENTY:veh", "ENTY:word", "DESC:def", "DESC:desc", "DESC:manner",
    "DESC:reason", "HUM:gr", "HUM:ind", "HUM:title", "HUM:desc", "LOC:city", "LOC:country",
    "LOC:mount", "LOC:other", "LOC:state", "NUM:code", "NUM:count", "NUM:date", "NUM:dist",
    "NUM:money", "NUM:ord", "NUM:other", "NUM:period", "NUM:perc", "NUM:speed", "NUM:temp",
    "NUM:volsize", "NUM:weight",
]
GLUE_PAIR = {"sentence1": S, "sentence2": S}


def glue(features: dict, names: list[str]) -> dict:
    """A (Super)GLUE-style data set: train, validation and a test split without labels."""
    return dict(features=features, splits=["train", "validation", "test"], unlabelled=["test"], names=names)


# name in paper.yaml -> (features, splits: name -> labelled?, class values per row, extra rows)
# `classes` are the raw label values the fixture cycles through (ints for ClassLabel/int columns).
SCHEMAS = {
    "wic": glue(
        {"word": S, "sentence1": S, "sentence2": S, "start1": I32, "start2": I32, "end1": I32, "end2": I32, "idx": I32,
         "label": ClassLabel(names=["False", "True"])},
        ["False", "True"],
    ),
    "rte": glue(
        {**GLUE_PAIR, "label": ClassLabel(names=["entailment", "not_entailment"]), "idx": I32},
        ["entailment", "not_entailment"],
    ),
    "mrpc": glue(
        {**GLUE_PAIR, "label": ClassLabel(names=["not_equivalent", "equivalent"]), "idx": I32},
        ["not_equivalent", "equivalent"],
    ),
    "cola": glue(
        {"sentence": S, "label": ClassLabel(names=["unacceptable", "acceptable"]), "idx": I32},
        ["unacceptable", "acceptable"],
    ),
    "boolq": glue(
        {"question": S, "passage": S, "idx": I32, "label": ClassLabel(names=["False", "True"])},
        ["False", "True"],
    ),
    "sst2": glue(
        {"sentence": S, "label": ClassLabel(names=["negative", "positive"]), "idx": I32},
        ["negative", "positive"],
    ),
    "sst5": dict(  # SetFit/sst5: plain int labels plus their text, no ClassLabel
        features={"text": S, "label": I64, "label_text": S},
        splits=["train", "validation", "test"],
        names=["0", "1", "2", "3", "4"],
    ),
    "emotion": dict(
        features={"text": S, "label": ClassLabel(names=["sadness", "joy", "love", "anger", "fear", "surprise"])},
        splits=["train", "validation", "test"],
        names=["sadness", "joy", "love", "anger", "fear", "surprise"],
    ),
    "implicithate": dict(  # stage-1 TSV: string classes, one split
        features={"post": S, "class": S},
        splits=["train"],
        raw=["not_hate", "implicit_hate", "explicit_hate"],
        names=["explicit_hate", "implicit_hate", "not_hate"],
    ),
    "stormfront": dict(  # hate_speech18: four ClassLabel classes, one split; paper.yaml makes it binary
        features={"text": S, "user_id": I64, "subforum_id": I64, "num_contexts": I64,
                  "label": ClassLabel(names=["noHate", "hate", "idk/skip", "relation"])},
        splits=["train"],
        names=["hate", "noHate"],
    ),
    "trec": dict(
        features={"text": S, "coarse_label": ClassLabel(names=["ABBR", "ENTY", "DESC", "HUM", "LOC", "NUM"]),
                  "fine_label": ClassLabel(names=TREC_FINE)},
        splits=["train", "test"],
        names=["ABBR", "ENTY", "DESC", "HUM", "LOC", "NUM"],
    ),
    "aux_nli": dict(
        features={"premise": S, "hypothesis": S,
                  "label": ClassLabel(names=["entailment", "neutral", "contradiction"]), "idx": I32},
        splits=["train", "validation_matched", "validation_mismatched", "test_matched", "test_mismatched"],
        unlabelled=["test_matched", "test_mismatched"],
        names=["entailment", "neutral", "contradiction"],
    ),
}
PAIR_TASKS = {"wic", "rte", "mrpc", "boolq", "aux_nli"}


def paper_raw() -> dict:
    return yaml.safe_load(PAPER.read_text())


def _value(feature, column: str, i: int, split: str, label_value):
    if column in ("label", "coarse_label", "class"):
        return label_value
    if isinstance(feature, ClassLabel):
        return i % feature.num_classes
    if feature.dtype.startswith("int"):
        return i
    return f"{column} {split} {i} ünïcode"


def _rows(name: str, split: str, n_per_class: int) -> dict:
    schema = SCHEMAS[name]
    features = schema["features"]
    label_col = next(c for c in ("label", "coarse_label", "class") if c in features)
    feature = features[label_col]
    values = schema.get("raw") or list(range(feature.num_classes if isinstance(feature, ClassLabel) else len(schema["names"])))
    if name == "stormfront":  # the two small classes, a few rows each, as in the real data
        values = [0] * n_per_class + [1] * n_per_class + [2, 2, 3, 3, 3]
    else:
        values = [v for v in values for _ in range(n_per_class)]
    if split in schema.get("unlabelled", ()):  # GLUE/SuperGLUE test splits carry label -1
        values = [-1] * len(values)
    cols = {c: [_value(f, c, i, split, values[i]) for i in range(len(values))] for c, f in features.items()}
    if name == "sst5":
        cols["label_text"] = [["very negative", "negative", "neutral", "positive", "very positive"][v] for v in values]
    return cols


def write_fixture(root: Path, name: str, n_train: int = 20, n_eval: int = 6) -> Path:
    schema = SCHEMAS[name]
    features = Features(schema["features"])
    dd = DatasetDict({
        split: Dataset.from_dict(_rows(name, split, n_train if split == "train" else n_eval), features=features)
        for split in schema["splits"]
    })
    path = root / name
    dd.save_to_disk(str(path))
    return path


def paper_spec_on_fixture(name: str, path: Path) -> dict:
    """The effective spec of paper.yaml's data set `name`, reading `path` instead of the hub."""
    raw = paper_raw()
    raw["datasets"][name]["source"]["path"] = str(path)
    cfg = mconf.validate(raw, source="paper.yaml (fixture)")
    return mconf.dataset_spec(cfg, name)


HF_DATASETS = sorted(n for n, d in paper_raw()["datasets"].items() if d["source"]["kind"] == "hf")


def test_every_hub_data_set_of_the_paper_has_a_fixture():
    assert set(HF_DATASETS) == set(SCHEMAS)


@pytest.mark.parametrize("name", HF_DATASETS)
def test_paper_mapping_reads_the_real_schema(tmp_path, name):
    path = write_fixture(tmp_path, name)
    spec = paper_spec_on_fixture(name, path)
    df, doc, _ = build_examples(spec, resources_dir=tmp_path)
    schema = SCHEMAS[name]

    assert doc["names"] == schema["names"]
    assert set(df["split"]) == {"train", "validation", "test"}
    assert df["text_a"].str.len().gt(0).all()
    if name in PAIR_TASKS:
        assert df["text_b"].notna().all() and df["text_b"].str.len().gt(0).all()
    else:
        assert df["text_b"].isna().all()

    # The evaluation split the paper names (never an unlabelled test split), or a 20% hold-out.
    train = df[df.split == "train"]
    n_eval = int((df.split != "train").sum())
    n_source_train = len(_rows(name, "train", 20)[next(iter(schema["features"]))])
    if spec["source"]["eval_split"] is None:
        assert spec["eval_fraction"] == 0.2
        assert len(train) + n_eval == n_source_train
        assert n_eval == pytest.approx(0.2 * n_source_train, abs=len(schema["names"]) + 2)
    else:
        assert spec["source"]["eval_split"] in schema["splits"]
        assert spec["source"]["eval_split"] not in schema.get("unlabelled", ())
        assert len(train) == n_source_train
    assert abs(int((df.split == "validation").sum()) - int((df.split == "test").sum())) <= len(schema["names"])

    # Noise: floor(0.15 * n_c) per class, labels moved to another class.
    counts = np.bincount(train["label_orig"], minlength=len(doc["names"]))
    assert int(train["is_noisy"].sum()) == sum(n_flips(0.15, int(n)) for n in counts)
    noisy = train[train.is_noisy]
    assert (noisy["label"] != noisy["label_orig"]).all()


def test_wic_template_and_pair(tmp_path):
    spec = paper_spec_on_fixture("wic", write_fixture(tmp_path, "wic"))
    df, _, _ = build_examples(spec, resources_dir=tmp_path)
    row = df[df.split == "train"].iloc[0]
    assert re.fullmatch(r"word train \d+ ünïcode: sentence1 train \d+ ünïcode", row["text_a"])
    assert row["text_b"].startswith("sentence2 train ")


def test_boolq_question_then_passage(tmp_path):
    spec = paper_spec_on_fixture("boolq", write_fixture(tmp_path, "boolq"))
    df, _, _ = build_examples(spec, resources_dir=tmp_path)
    assert df["text_a"].str.startswith("question ").all() and df["text_b"].str.startswith("passage ").all()


def test_trec_uses_the_coarse_label(tmp_path):
    spec = paper_spec_on_fixture("trec", write_fixture(tmp_path, "trec"))
    assert spec["columns"]["label"] == "coarse_label"
    df, doc, _ = build_examples(spec, resources_dir=tmp_path)
    assert len(doc["names"]) == 6 and df["label_orig"].max() == 5


def test_stormfront_is_binary_with_the_small_classes_merged(tmp_path):
    spec = paper_spec_on_fixture("stormfront", write_fixture(tmp_path, "stormfront"))
    df, doc, _ = build_examples(spec, resources_dir=tmp_path)
    assert doc["names"] == ["hate", "noHate"]
    total = {name: sum(doc["counts"][s][name] for s in doc["counts"]) for name in doc["names"]}
    # 20 hate + 3 relation -> hate; 20 noHate + 2 idk/skip -> noHate
    assert total == {"hate": 23, "noHate": 22}


def test_sst5_keeps_integer_classes_in_order(tmp_path):
    spec = paper_spec_on_fixture("sst5", write_fixture(tmp_path, "sst5"))
    df, doc, _ = build_examples(spec, resources_dir=tmp_path)
    assert doc["names"] == ["0", "1", "2", "3", "4"]
    # Source rows are in class order, so the first training rows are class 0.
    assert sorted(df.loc[df.split == "train", "label_orig"].unique()) == [0, 1, 2, 3, 4]


def test_emotion_class_names_from_the_class_label(tmp_path):
    spec = paper_spec_on_fixture("emotion", write_fixture(tmp_path, "emotion"))
    _, doc, _ = build_examples(spec, resources_dir=tmp_path)
    assert doc["names"] == ["sadness", "joy", "love", "anger", "fear", "surprise"]


def test_aux_nli_is_subsampled(tmp_path):
    spec = paper_spec_on_fixture("aux_nli", write_fixture(tmp_path, "aux_nli", n_train=900))
    df, _, _ = build_examples(spec, resources_dir=tmp_path)
    assert int((df.split == "train").sum()) == 2490


# --------------------------------------------------------------------------- the paper config


def test_paper_config_validates_with_the_paper_settings():
    cfg = mconf.validate(paper_raw(), source="paper.yaml")
    assert mconf.run_datasets(cfg) == [
        "wic", "rte", "mrpc", "cola", "boolq", "sst2", "sst5", "emotion", "implicithate", "stormfront", "trec", "reuters",
    ]
    families = {d: cfg["datasets"][d]["family"] for d in mconf.run_datasets(cfg)}
    assert {d for d, f in families.items() if f == "nlu"} == {"wic", "rte", "mrpc", "cola", "boolq"}
    assert {d for d, f in families.items() if f == "sentiment"} == {"sst2", "sst5", "emotion"}
    assert {d for d, f in families.items() if f == "hate"} == {"implicithate", "stormfront"}
    assert {d for d, f in families.items() if f == "topic"} == {"trec", "reuters"}
    assert cfg["datasets"]["reuters"]["source"]["kind"] == "registry"
    assert cfg["datasets"]["reuters"]["source"]["corpus"] == "reuters_r8"
    paths = {m: cfg["models"][m]["source"]["path"] for m in mconf.run_models(cfg)}
    assert paths == {
        "bert": "bert-base-cased",
        "opt": "facebook/opt-125m",
        "gptneo": "EleutherAI/gpt-neo-125m",
        "pythia": "EleutherAI/pythia-160m-deduped",
    }
    for m in paths:
        spec = mconf.model_spec(cfg, m)
        assert spec["max_length"] == 128
        t = spec["training"]
        assert (t["epochs"], t["learning_rate"], t["batch_size"], t["precision"]) == (50, 1e-5, 8, "fp32")
    assert cfg["run"]["seeds"] == [1, 2, 3]
    assert (cfg["counterfactual"]["models"], cfg["counterfactual"]["epochs"],
            cfg["counterfactual"]["learning_rate"]) == (30, 10, 3e-5)
    assert (cfg["localisation"]["retraining"]["epochs"], cfg["localisation"]["retraining"]["learning_rate"]) == (5, 3e-5)
    assert cfg["control"]["enabled"] and cfg["control"]["auxiliary"] in cfg["datasets"]
    assert cfg["control"]["auxiliary"] not in mconf.run_datasets(cfg)


def test_paper_model_depths_are_known_offline(monkeypatch):
    """The control pairs need each model's depth at DAG-build time; no hub config is read."""
    import transformers

    from memloc.control.pairs import _layers_cached, model_num_layers

    def no_hub(*args, **kwargs):
        raise AssertionError("AutoConfig.from_pretrained called while planning the DAG")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", no_hub)
    _layers_cached.cache_clear()
    cfg = mconf.validate(paper_raw(), source="paper.yaml")
    for m in mconf.run_models(cfg):
        assert model_num_layers(cfg["models"][m], "/nonexistent/pretrained") == 12


_NO_NETWORK = textwrap.dedent(
    """
    import os, socket
    _log = os.environ["MEMLOC_NETWORK_LOG"]
    _connect = socket.socket.connect
    def _guard(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            with open(_log, "a") as fh:
                fh.write(repr(address) + "\\n")
            raise OSError("network disabled in this test")
        return _connect(self, address)
    socket.socket.connect = _guard
    socket.create_connection = lambda address, *a, **k: _guard(socket.socket(), address)
    """
)


@pytest.mark.slow
def test_paper_dag_builds_offline(tmp_path):
    """`snakemake -n --configfile config/paper.yaml` plans every job with the network cut off."""
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(_NO_NETWORK)
    log = tmp_path / "network.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(guard), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "MEMLOC_NETWORK_LOG": str(log),
    }
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        env.pop(key, None)  # offline must not depend on these
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path / "work"),
           "--configfile", str(PAPER), "-n", "--quiet", "rules"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]
    assert not log.exists(), f"network access while planning: {log.read_text()}"
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", res.stdout + res.stderr, flags=re.M))
    counts = {k: int(v) for k, v in counts.items()}
    D, M, S, K, P = 12, 4, 3, 30, 3  # data sets, models, seeds, subset models, control pairs
    assert counts["data_prepare"] == D + 1  # + the auxiliary task
    assert counts["train_pretrained"] == M
    assert counts["train_finetune"] == D * M * S * 3
    assert counts["counterfactual_subset"] == D * M * K
    assert counts["control_finetune"] == D * M * P * 2 * S
    for technique in ("swapping", "retraining", "gradients", "probing"):
        assert counts[f"localise_{technique}"] == D * M * S * (1 + P)
    assert counts["localise_centroids"] == D * M * S
    assert counts["total"] == 5425  # README: "The paper DAG has 5,425 jobs"
