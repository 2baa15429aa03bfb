"""`memloc check`: table schemas, corrupted and stale tables, provenance records."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml

from memloc import __version__, provenance
from memloc.check import (
    SchemaError,
    check_frame,
    check_results,
    load_schema,
    load_schemas,
    match,
)
from memloc.cli import main
from memloc.data import prepare_dataset
from memloc.io import read_metadata, write_parquet

# Every Parquet contract table of docs/protocol.md §3.2 and the README, by schema title.
CONTRACT_TABLES = {
    "examples", "tokens", "trace", "predictions", "subset_predictions", "memorisation", "reliability",
    "memorised_set", "localisation_windows", "localisation_gradients", "localisation_probing",
    "localisation_centroids", "localisation_centroid_events", "localisation_weights", "layer_weights",
    "mcog", "heatmaps", "probing", "centroids", "centroid_events", "counterfactual", "statistics",
    "control_accuracy", "control_accuracy_summary", "localisation_label_probes", "localisation_probing_events",
    "label_probes", "probing_events",
    "validation", "swapping_clean", "memorised_runs",
}


# ---------------------------------------------------------------- a small hand-made results tree


def _csv(path: Path) -> Path:
    rows = [(f"pos sentence {i}", "pos") for i in range(30)] + [(f"neg sentence {i}", "neg") for i in range(20)]
    pd.DataFrame(rows, columns=["sentence", "label"]).to_csv(path, index=False)
    return path


def _spec(train: Path) -> dict:
    return {
        "name": "toy", "source": {"kind": "file", "train": str(train), "eval": None, "format": "auto"},
        "columns": {"text_a": "sentence", "text_b": None, "label": "label"}, "label_map": None,
        "max_train_examples": None, "max_eval_examples": None, "eval_fraction": 0.2, "split_seed": 0,
        "noise": {"ratio": 0.15, "seed": 0},
    }


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory) -> Path:
    """data, tokens, predictions and weights tables as memloc writes them (no training)."""
    from memloc.encoding import TokenSettings
    from memloc.models.loading import load_tokenizer
    from memloc.tokens import write_tokens

    root = tmp_path_factory.mktemp("small")
    results = root / "results"
    examples = prepare_dataset(_spec(_csv(root / "toy.csv")), root / "resources",
                               results / "data" / "toy.parquet", results / "data" / "toy.labels.json")
    data_meta = read_metadata(results / "data" / "toy.parquet")
    write_tokens(examples, load_tokenizer({"kind": "random"}), TokenSettings.with_defaults(max_length=16),
                 results / "tokens" / "toy" / "tiny.parquet", {"data": data_meta["spec_hash"]}, model_type="bert", marker=None)
    rng = np.random.default_rng(0)
    preds = []
    for checkpoint in ("final", "memorised"):
        p = rng.uniform(size=len(examples))
        pred = np.where(p > 0.5, examples["label"], 1 - examples["label"])
        preds.append(pd.DataFrame({
            "example_id": examples["example_id"], "split": examples["split"], "checkpoint": checkpoint,
            "label": examples["label"], "pred": pred, "p_label": p, "correct": pred == examples["label"],
            "is_noisy": examples["is_noisy"],
        }))
    run = results / "models" / "toy" / "tiny" / "noisy" / "seed1"
    cwd = os.getcwd()
    os.chdir(root)  # Snakemake runs jobs in the working directory and passes relative paths
    try:
        record = provenance.record({"epochs": 2}, {"examples": "results/data/toy.parquet"})
    finally:
        os.chdir(cwd)
    write_parquet(pd.concat(preds, ignore_index=True), run / "predictions.parquet",
                  metadata={"variant": "noisy", "seed": 1, **record})
    write_parquet(pd.DataFrame({"technique": "swapping", "layer": [1, 2], "weight": [0.25, 0.75]}),
                  results / "localisation" / "swapping" / "toy" / "tiny" / "noisy" / "seed1.weights.parquet",
                  metadata={"technique": "swapping", "settings": {}})
    return results


@pytest.fixture
def tree(small_tree, tmp_path) -> Path:
    """A private copy of the small tree to corrupt."""
    out = tmp_path / "results"
    shutil.copytree(small_tree, out)
    return out


def rewrite(path: Path, edit, meta_edit=None) -> None:
    """Rewrite a table with ``edit(df)`` applied, keeping (or editing) its memloc metadata."""
    meta = read_metadata(path)
    df = edit(pd.read_parquet(path))
    write_parquet(df, path, metadata=meta_edit(meta) if meta_edit else meta)


def findings(results: Path, **kwargs) -> list[str]:
    return [str(f) for f in check_results(results, **kwargs).findings]


# ---------------------------------------------------------------- schemas


def test_every_contract_table_has_a_valid_json_schema():
    schemas = load_schemas()
    assert {s.name for s in schemas} == CONTRACT_TABLES
    for s in schemas:
        jsonschema.Draft202012Validator.check_schema(s.schema)
        assert set(s.required) <= set(s.columns), s.name


@pytest.mark.parametrize(
    "rel, name",
    [
        ("data/toy.parquet", "examples"),
        ("tokens/toy/tiny.parquet", "tokens"),
        ("models/toy/tiny/control-1-2-clean/seed3/trace.parquet", "trace"),
        ("models/toy/tiny/noisy/seed1/predictions.parquet", "predictions"),
        ("counterfactual/toy/tiny/k12.parquet", "subset_predictions"),
        ("counterfactual/toy/tiny/memorised_set.parquet", "memorised_set"),
        ("localisation/swapping/toy/tiny/noisy/seed1.parquet", "localisation_windows"),
        ("localisation/retraining/toy/tiny/noisy/seed1.weights.parquet", "localisation_weights"),
        ("localisation/centroids/toy/tiny/noisy/seed1.events.parquet", "localisation_centroid_events"),
        ("localisation/probing/toy/tiny/noisy/seed1.events.parquet", "localisation_probing_events"),
        ("localisation/probing/toy/tiny/noisy/seed1.labels.parquet", "localisation_label_probes"),
        ("summary/probing_events.parquet", "probing_events"),
        ("summary/label_probes.parquet", "label_probes"),
        ("localisation/centroids/toy/tiny/noisy/seed1.parquet", "localisation_centroids"),
        ("summary/layer_weights.parquet", "layer_weights"),
        ("summary/control_accuracy_summary.parquet", "control_accuracy_summary"),
    ],
)
def test_paths_match_their_schema(rel, name):
    found = match(rel, load_schemas())
    assert found is not None and found[0].name == name


def test_a_schema_with_an_unimplemented_keyword_is_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({
        "type": "object", "x-memloc": {"path": "DATA"}, "required": ["a"],
        "properties": {"a": {"type": "integer", "multipleOf": 2}},
    }))
    with pytest.raises(SchemaError, match="multipleOf"):
        load_schema(path)


def _jsonable(v):
    if isinstance(v, np.ndarray):
        return [_jsonable(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        v = v.item()
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


def rows_valid(df: pd.DataFrame, schema) -> bool:
    """The reference semantics: every row, as a JSON object, validates against the schema."""
    validator = jsonschema.Draft202012Validator(schema.schema)
    return all(validator.is_valid({k: _jsonable(v) for k, v in row.items()}) for row in df.to_dict(orient="records"))


@pytest.mark.parametrize(
    "edit",
    [
        lambda df: df,
        lambda df: df.assign(p_label=df.p_label * 3),
        lambda df: df.assign(p_label=df.p_label - 0.5),
        lambda df: df.assign(p_label=np.where(df.index == 2, np.nan, df.p_label)),
        lambda df: df.assign(split=np.where(df.index == 1, "training", df.split)),
        lambda df: df.assign(checkpoint="best"),
        lambda df: df.assign(label=df.label.astype(float) + 0.5),
        lambda df: df.drop(columns=["pred"]),
        lambda df: df.assign(pred=-df.pred - 1),
        lambda df: df.assign(correct=df.correct.astype(int)),
    ],
    ids=["valid", "p>1", "p<0", "nan", "split", "checkpoint", "float-label", "no-pred", "negative", "int-bool"],
)
def test_vectorised_column_checks_agree_with_row_by_row_jsonschema(small_tree, edit):
    schema = next(s for s in load_schemas() if s.name == "predictions")
    df = edit(pd.read_parquet(small_tree / "models/toy/tiny/noisy/seed1/predictions.parquet"))
    problems = [p for p in check_frame(df, schema) if "unique" not in p]
    assert (not problems) == rows_valid(df, schema), problems


# ---------------------------------------------------------------- the checks on a tree


def test_clean_tree_passes(small_tree, capsys):
    assert main(["check", str(small_tree)]) == 0
    out = capsys.readouterr().out
    assert "4 tables checked: 0 error(s), 0 stale, 0 warning(s) -> OK" in out
    assert "2 of 4 tables record no provenance" in out


def _error(tree: Path, capsys, *fragments: str) -> str:
    assert main(["check", str(tree)]) == 1
    out = capsys.readouterr().out
    for fragment in fragments:
        assert fragment in out, f"{fragment!r} not in:\n{out}"
    assert "FAILED" in out
    return out


PREDS = "models/toy/tiny/noisy/seed1/predictions.parquet"
DATA = "data/toy.parquet"
TOKENS = "tokens/toy/tiny.parquet"
WEIGHTS = "localisation/swapping/toy/tiny/noisy/seed1.weights.parquet"


@pytest.mark.parametrize(
    "rel, edit, fragments",
    [
        (DATA, lambda df: pd.concat([df, df.iloc[[4]]], ignore_index=True),
         ["ERROR", DATA, "2 rows repeat a value of example_id, which must be unique", "example_id=4"]),
        (DATA, lambda df: df.assign(split=df.split.where(df.index != 3, "training")),
         ["column 'split': 1 value(s) outside ['train', 'validation', 'test']", "'training' (row 3)"]),
        (DATA, lambda df: df.assign(text_a=df.text_a.where(df.index != 5, "   ")),
         ["column 'text_a': 1 value(s) do not match the pattern"]),
        (DATA, lambda df: df.assign(label=df.label.where(~df.is_noisy, df.label_orig)),
         ["is_noisy disagrees with label != label_orig"]),
        (DATA, lambda df: df.assign(label_orig=df.label_orig.where(df.index != 0, 7), label=df.label.where(df.index != 0, 7)),
         ["column 'label': 1 value(s) >= 2, the number of classes in toy.labels.json"]),
        (DATA, lambda df: df.assign(label=df.label.astype(float)),
         ["column 'label': dtype float64 where the schema wants integer"]),
        (PREDS, lambda df: df.assign(p_label=df.p_label.where(df.index != 2, 1.5)),
         [PREDS, "column 'p_label': 1 value(s) not <= 1", "1.5 (row 2)"]),
        (PREDS, lambda df: df.assign(p_label=df.p_label.where(df.index != 2, np.nan)),
         ["column 'p_label': 1 missing (null/NaN) value(s)"]),
        (PREDS, lambda df: df.drop(columns=["correct"]), ["missing required column(s) correct"]),
        (PREDS, lambda df: df.assign(correct=~df.correct), ["correct disagrees with pred == label"]),
        (WEIGHTS, lambda df: df.assign(layer=[1, 3]), ["layers for {'technique': 'swapping'} are [1, 3], not 1..2"]),
        (WEIGHTS, lambda df: df.assign(technique="gradients"), ["holds 'gradients' but the file's path says 'swapping'"]),
        (TOKENS, lambda df: df.assign(length=df.length + 1), ["length differs from len(input_ids)"]),
    ],
    ids=["duplicate-ids", "split", "blank-text", "noise-flag", "label-names", "float-label", "p>1", "nan",
         "missing-column", "correct", "layers", "technique", "token-length"],
)
def test_corrupted_tables_fail_naming_file_column_and_fix(tree, capsys, rel, edit, fragments):
    rewrite(tree / rel, edit)
    out = _error(tree, capsys, *fragments)
    line = next(l for l in out.splitlines() if l.startswith("ERROR"))
    assert rel in line and "Fix: delete" in line and "re-run snakemake" in line and "[schema " in line


def test_missing_metadata_is_an_error(tree, capsys):
    rewrite(tree / TOKENS, lambda df: df, lambda meta: {k: v for k, v in meta.items() if k != "pad_token_id"})
    _error(tree, capsys, TOKENS, "metadata lacks pad_token_id")


def test_unreadable_table(tree, capsys):
    path = tree / PREDS
    path.write_bytes(path.read_bytes()[:200])
    _error(tree, capsys, PREDS, "cannot be read as Parquet")


def test_leftovers_and_unknown_tables_are_warnings_only(tree, capsys):
    (tree / "data" / ".toy.parquet.abc123.tmp").write_bytes(b"partial")
    (tree / "localisation" / "swapping" / "toy" / "tiny" / "noisy" / "seed1.parquet.progress.jsonl").write_text("{}\n")
    (tree / "extra").mkdir()
    pd.DataFrame({"x": [1]}).to_parquet(tree / "extra" / "notes.parquet")
    (tree / "work" / "models").mkdir(parents=True)
    (tree / "work" / "models" / "state.parquet").write_bytes(b"not checked")
    assert main(["check", str(tree)]) == 0
    out = capsys.readouterr().out
    assert "WARNING data/.toy.parquet.abc123.tmp: leftover temporary file" in out
    assert "WARNING extra/notes.parquet: no table schema describes this file" in out
    assert "seed1.parquet.progress.jsonl: progress of an interrupted job" in out
    assert "state.parquet" not in out


def test_stale_tokens_after_the_data_changed(tree, capsys):
    rewrite(tree / DATA, lambda df: df, lambda meta: {**meta, "spec_hash": "0123456789abcdef"})
    out = _error(tree, capsys, "STALE", TOKENS, "tokenised from data with spec hash", "now has 0123456789abcdef")
    assert "--forcerun" in out


def test_stale_examples_after_the_data_lost_rows(tree, capsys):
    rewrite(tree / DATA, lambda df: df.iloc[:-3])
    _error(tree, capsys, "STALE", PREDS, "example id(s) that data/toy.parquet does not have")


def test_stale_provenance_digest(tree, capsys):
    assert main(["check", str(tree)]) == 0
    capsys.readouterr()
    rewrite(tree / DATA, lambda df: df.assign(text_a=df.text_a + "!"))
    out = _error(tree, capsys, "STALE", PREDS, "input 'examples' (", "has changed since this table was written")
    assert "--forcerun" in out
    # --no-hash skips the digests (the examples table itself is still valid).
    assert main(["check", "--no-hash", str(tree)]) == 0


def test_changed_source_file_makes_the_data_table_stale(tmp_path, capsys):
    results = tmp_path / "results"
    source = _csv(tmp_path / "toy.csv")
    prepare_dataset(_spec(source), tmp_path / "resources", results / "data" / "toy.parquet", results / "data" / "toy.labels.json")
    assert main(["check", str(results)]) == 0
    assert "record no provenance" not in capsys.readouterr().out
    source.write_text(source.read_text().replace("pos sentence 3,", "pos sentence three,"))
    _error(results, capsys, "STALE", DATA, "input 'source[0]' (", "has changed since this table was written")


def test_provenance_resolves_a_moved_tree(tree, tmp_path, capsys):
    moved = tmp_path / "elsewhere" / "renamed"
    shutil.copytree(tree, moved)
    assert main(["check", str(moved)]) == 0


def test_missing_results_directory(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nope")]) == 2
    assert "no results directory" in capsys.readouterr().err


def test_console_script(small_tree):
    exe = Path(sys.executable).with_name("memloc")
    res = subprocess.run([str(exe), "check", str(small_tree)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "-> OK" in res.stdout


# ---------------------------------------------------------------- provenance helper


def test_provenance_record_and_digests(tmp_path, monkeypatch):
    f = tmp_path / "a.parquet"
    f.write_bytes(b"abc")
    d = tmp_path / "ckpt"
    (d / "sub").mkdir(parents=True)
    (d / "model.safetensors").write_bytes(b"w" * 100)
    (d / "sub" / "config.json").write_text("{}")
    (d / ".model.safetensors.123.tmp").write_text("ignored")
    rec = provenance.record({"lr": 1e-3, "epochs": 2}, {"examples": f, "model": d, "many": [f, f]})
    p = rec["provenance"]
    assert p["memloc_version"] == __version__
    assert p["config_hash"] == provenance.config_hash({"epochs": 2, "lr": 1e-3})  # key order does not matter
    assert p["inputs"]["examples"] == {
        "path": str(f), "digest": "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    }
    assert p["inputs"]["model"]["digest"].startswith("sha256-dir:")
    assert [e["path"] for e in p["inputs"]["many"]] == [str(f), str(f)]
    json.dumps(rec)  # Parquet metadata is JSON
    # Large files are hashed from their size and ends.
    monkeypatch.setattr(provenance, "FULL_HASH_LIMIT", 10)
    monkeypatch.setattr(provenance, "SAMPLE_BYTES", 4)
    provenance._CACHE.clear()
    big = provenance.digest(d / "model.safetensors")
    assert big.startswith("sha256-sampled:")
    (d / "model.safetensors").write_bytes(b"w" * 99 + b"x")
    assert provenance.digest(d / "model.safetensors") != big
    # changed_inputs reports what differs now, and what is gone.
    provenance._CACHE.clear()
    f.write_bytes(b"abd")
    changed = {name: current for name, _, _, current in provenance.changed_inputs(p)}
    assert set(changed) == {"examples", "many[0]", "many[1]", "model"}
    shutil.rmtree(d)
    assert dict((n, c) for n, _, _, c in provenance.changed_inputs(p))["model"] is None


def test_provenance_from_a_snakemake_job(tmp_path):
    from snakemake.iocontainers import Namedlist

    f = tmp_path / "x.parquet"
    f.write_bytes(b"x")
    job = type("Job", (), {})()
    job.params = Namedlist(fromdict={"settings": {"epochs": 2}, "seed": 1})
    job.input = Namedlist(fromdict={"examples": str(f)})
    job.wildcards = Namedlist(fromdict={"dataset": "toy"})
    job.rule = "finetune"
    p = provenance.from_snakemake(job)["provenance"]
    assert p["config_hash"] == provenance.config_hash({"seed": 1, "settings": {"epochs": 2}})
    assert p["inputs"]["examples"]["path"] == str(f)
    assert p["wildcards"] == {"dataset": "toy"} and p["rule"] == "finetune"
    write_parquet(pd.DataFrame({"a": [1]}), tmp_path / "t.parquet", metadata={"x": 1, **provenance.from_snakemake(job)})
    assert provenance.read(tmp_path / "t.parquet") == p


# ---------------------------------------------------------------- on the tiny workflow's tree


@pytest.mark.slow
def test_tiny_workflow_tree_passes_and_its_rows_satisfy_the_schemas(tmp_path_factory, capsys):
    from test_reproducibility import tiny_run

    results = tiny_run(tmp_path_factory)
    assert main(["check", str(results)]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "0 error(s), 0 stale, 0 warning(s) -> OK" in out
    schemas = load_schemas()
    checked = 0
    for path in sorted(results.rglob("*.parquet")):
        rel = path.relative_to(results).as_posix()
        if rel.startswith("work/"):
            continue
        schema, _ = match(rel, schemas)
        assert rows_valid(pd.read_parquet(path), schema), rel
        checked += 1
    assert checked >= 10


@pytest.mark.slow
def test_tiny_workflow_tree_corrupted_and_stale_copies(tmp_path_factory, tmp_path, capsys, monkeypatch):
    from test_reproducibility import tiny_run

    results = tmp_path / "results"
    shutil.copytree(tiny_run(tmp_path_factory), results)
    monkeypatch.chdir(tmp_path)  # the working directory of the run: inputs are recorded relative to it
    # Wire provenance into a model's predictions as the adapters will, then change its input.
    preds = results / "models/toy/tiny/noisy/seed1/predictions.parquet"
    rewrite(preds, lambda df: df, lambda meta: {**meta, **provenance.record(
        {"seed": 1}, {"examples": "results/data/toy.parquet", "tokens": "results/tokens/toy/tiny.parquet",
                      "pretrained": "results/pretrained/tiny"})})
    assert main(["check", str(results)]) == 0
    capsys.readouterr()
    rewrite(results / "tokens/toy/tiny.parquet", lambda df: df.iloc[::-1].reset_index(drop=True))
    trace = results / "models/toy/tiny/clean/seed1/trace.parquet"
    rewrite(trace, lambda df: df.assign(accuracy=df.accuracy + 2))
    # A retrained twin: the swapping table analysed another checkpoint.
    info = results / "models/toy/tiny/clean/seed1/final/memloc.json"
    info.write_text(json.dumps({**json.loads(info.read_text()), "epochs": 99}))
    out = _error(results, capsys,
                 "STALE   models/toy/tiny/noisy/seed1/predictions.parquet: input 'tokens'",
                 "ERROR   models/toy/tiny/clean/seed1/trace.parquet: column 'accuracy'",
                 "STALE   localisation/swapping/toy/tiny/noisy/seed1.parquet: checkpoint 'twin'",
                 "memloc.json fields epochs changed")
    assert "input 'examples'" not in out and "input 'pretrained'" not in out
