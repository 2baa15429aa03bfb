"""`memloc diff`: two results trees agree up to a float tolerance, wall time and code-version
provenance; any other difference (a value, a row, a column, a file) is named and exits 1."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from memloc.cli import main
from memloc.io import write_parquet


def _predictions() -> pd.DataFrame:
    return pd.DataFrame({
        "example_id": np.repeat(np.arange(5), 2),
        "split": ["train", "eval"] * 5,
        "pred": [0, 1] * 5,
        "p_label": np.linspace(0.1, 0.9, 10),
        "seconds": np.arange(10, dtype=float),
    })


def _tree(root):
    meta = {"provenance": {"memloc_version": "0.1.0", "config_hash": "aaaa", "rule": "finetune",
                           "inputs": {"examples": {"path": "results/data/t.parquet", "digest": "sha256:1"}}},
            "num_layers": 6}
    write_parquet(_predictions(), root / "models" / "t" / "predictions.parquet", metadata=meta)
    write_parquet(pd.DataFrame({"epoch": [1, 2], "loss": [0.7, 0.5], "ids": [[1, 2], [3]]}),
                  root / "models" / "t" / "trace.parquet")
    summary = root / "counterfactual" / "t" / "m" / "summary.json"
    summary.parent.mkdir(parents=True)
    summary.write_text(json.dumps({"auc": 0.9, "counts": [3, 4], "seconds": 12.0, "memloc_version": "0.1.0"}))
    (root / "logs").mkdir()
    (root / "logs" / "finetune.log").write_text("started at 10:00\n")
    (root / "figures").mkdir()
    (root / "figures" / "map.png").write_bytes(b"\x89PNG 1")
    return root


@pytest.fixture
def trees(tmp_path):
    return _tree(tmp_path / "a"), _tree(tmp_path / "b")


def _rewrite(path, change, metadata=None):
    from memloc.io import read_metadata

    df = pd.read_parquet(path)
    changed = change(df)
    write_parquet(df if changed is None else changed, path, metadata=metadata or read_metadata(path))


def _diff(capsys, a, b, *extra):
    code = main(["diff", str(a), str(b), *extra])
    return code, capsys.readouterr().out


def test_identical_trees_exit_0_and_say_what_was_compared(trees, capsys):
    code, out = _diff(capsys, *trees)
    assert code == 0
    assert "2 tables compared, 0 differ" in out and "no difference" in out
    assert "1 figures" in out and "logs/" in out  # what was skipped or ignored is said


def test_changed_float_beyond_tolerance_names_file_and_column(trees, capsys):
    a, b = trees
    _rewrite(b / "models" / "t" / "predictions.parquet", lambda df: df.assign(p_label=df["p_label"] + np.r_[np.zeros(9), 1e-3]))
    code, out = _diff(capsys, a, b)
    assert code == 1
    line = next(line for line in out.splitlines() if line.startswith("models/t/predictions.parquet"))
    assert "column p_label: 1 of 10 values differ" in line and "max abs diff 0.001" in line
    assert "example_id=4" in line  # the row is named by its key
    assert "2 tables compared, 1 differ" in out and "DIFFERENT" in out


def test_float_within_tolerance_and_reordered_rows_are_equal(trees, capsys):
    a, b = trees
    _rewrite(b / "models" / "t" / "predictions.parquet", lambda df: df.assign(p_label=df["p_label"] * (1 + 1e-9)).iloc[::-1])
    assert _diff(capsys, a, b)[0] == 0
    assert _diff(capsys, a, b, "--rtol", "0", "--atol", "0")[0] == 1


def test_nan_equals_nan(trees, capsys):
    a, b = trees
    for root in trees:
        _rewrite(root / "models" / "t" / "predictions.parquet", lambda df: df.assign(p_label=np.nan))
    assert _diff(capsys, a, b)[0] == 0


def test_changed_exact_column_is_named(trees, capsys):
    a, b = trees
    _rewrite(b / "models" / "t" / "predictions.parquet", lambda df: df.assign(pred=[0, 1] * 4 + [1, 1]))
    code, out = _diff(capsys, a, b)
    assert code == 1 and "column pred: 1 of 10 values differ" in out


def test_timing_column_and_key_and_provenance_versions_are_ignored(trees, capsys):
    a, b = trees
    meta = {"provenance": {"memloc_version": "0.2.0", "config_hash": "bbbb", "rule": "train_finetune",
                           "inputs": {"examples": {"path": "elsewhere/t.parquet", "digest": "sha256:2"}}},
            "num_layers": 6}
    _rewrite(b / "models" / "t" / "predictions.parquet", lambda df: df.assign(seconds=df["seconds"] * 3), metadata=meta)
    summary = b / "counterfactual" / "t" / "m" / "summary.json"
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "seconds": 99.0, "memloc_version": "0.2.0"}))
    (b / "logs" / "finetune.log").write_text("started at 11:00\n")
    (b / "figures" / "map.png").write_bytes(b"\x89PNG 2")
    code, out = _diff(capsys, a, b)
    assert code == 0, out


def test_changed_metadata_result_and_json_value_are_reported(trees, capsys):
    a, b = trees
    _rewrite(b / "models" / "t" / "predictions.parquet", lambda df: None, metadata={"num_layers": 12})
    summary = b / "counterfactual" / "t" / "m" / "summary.json"
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "auc": 0.8, "counts": [3, 5]}))
    code, out = _diff(capsys, a, b)
    assert code == 1
    assert "predictions.parquet: metadata num_layers: 6 vs 12" in out
    assert "summary.json: auc: 0.9 vs 0.8" in out and "summary.json: counts[1]: 4 vs 5" in out


def test_missing_table_and_directory_are_reported(trees, capsys):
    a, b = trees
    (b / "models" / "t" / "trace.parquet").unlink()
    shutil.rmtree(b / "counterfactual" / "t")
    (b / "figures" / "map.png").unlink()
    code, out = _diff(capsys, a, b)
    assert code == 1
    assert "models/t/trace.parquet: only in A" in out
    assert "counterfactual/t/: only in A (1 file)" in out  # a whole missing directory is one line
    assert "figures/map.png: only in A" in out  # a figure's bytes are not compared, its presence is
    assert "3 files only in A, 0 only in B" in out


def test_changed_row_set_is_reported(trees, capsys):
    a, b = trees
    _rewrite(b / "models" / "t" / "predictions.parquet",
             lambda df: pd.concat([df.iloc[1:], df.iloc[[0]].assign(example_id=7)], ignore_index=True))
    code, out = _diff(capsys, a, b)
    assert code == 1
    assert "1 row(s) only in A (of 10; e.g. example_id=0, split='train')" in out
    assert "1 row(s) only in B (of 10; e.g. example_id=7, split='train')" in out


def test_schema_change_is_reported(trees, capsys):
    a, b = trees
    _rewrite(b / "models" / "t" / "predictions.parquet",
             lambda df: df.assign(pred=df["pred"].astype("int32"), extra=1.0))
    code, out = _diff(capsys, a, b)
    assert code == 1
    assert "schema: column(s) only in B: extra" in out
    assert "schema: column pred is int64 in A, int32 in B" in out


def test_list_columns_are_compared(trees, capsys):
    a, b = trees
    _rewrite(b / "models" / "t" / "trace.parquet", lambda df: df.assign(ids=[[1, 2], [4]]))
    code, out = _diff(capsys, a, b)
    assert code == 1 and "trace.parquet: column ids: 1 of 2 values differ (e.g. epoch=2: [3] vs [4])" in out


def test_repeated_keys_are_paired_by_value(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    write_parquet(pd.DataFrame({"technique": ["x", "x", "y"], "value": [1.0, 2.0, 3.0]}), a / "t.parquet")
    write_parquet(pd.DataFrame({"technique": ["x", "y", "x"], "value": [2.0, 3.0, 1.0]}), b / "t.parquet")
    assert _diff(capsys, a, b)[0] == 0
    write_parquet(pd.DataFrame({"technique": ["x", "y", "x"], "value": [2.0, 3.0, 1.5]}), b / "t.parquet")
    code, out = _diff(capsys, a, b)
    assert code == 1 and "column value: 1 of 3 values differ" in out


def test_safetensors_weights_compared_within_tolerance(tmp_path, capsys):
    from safetensors.numpy import save_file

    a, b = tmp_path / "a" / "final", tmp_path / "b" / "final"
    a.mkdir(parents=True), b.mkdir(parents=True)
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    save_file({"w": w, "step": np.array([3])}, str(a / "model.safetensors"))
    save_file({"w": w * (1 + 1e-8), "step": np.array([3])}, str(b / "model.safetensors"))
    assert _diff(capsys, a.parent, b.parent)[0] == 0
    save_file({"w": w + np.eye(2, 3, dtype=np.float32), "step": np.array([3])}, str(b / "model.safetensors"))
    code, out = _diff(capsys, a.parent, b.parent)
    assert code == 1 and "tensor w: 2 of 6 values differ, max abs diff 1" in out


def test_other_files_compared_by_bytes(tmp_path, capsys):
    for side, text in (("a", "[PAD]\nthe\n"), ("b", "[PAD]\nthe\na\n")):
        (tmp_path / side).mkdir()
        (tmp_path / side / "vocab.txt").write_text(text)
    code, out = _diff(capsys, tmp_path / "a", tmp_path / "b")
    assert code == 1 and "vocab.txt: the bytes differ" in out


def test_missing_directory_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    assert main(["diff", str(tmp_path / "a"), str(tmp_path / "nope")]) == 2
    assert "nope is not a directory" in capsys.readouterr().err


def test_console_script_exit_code(trees):
    import subprocess
    import sys

    a, b = trees
    _rewrite(b / "models" / "t" / "predictions.parquet", lambda df: df.assign(p_label=0.5))
    done = subprocess.run([sys.executable, "-m", "memloc.cli", "diff", str(a), str(b)], capture_output=True, text=True)
    assert done.returncode == 1 and "column p_label" in done.stdout


def test_one_row_summary_table_with_text_columns(tmp_path, capsys):
    """A summary table of one (data set, model) row, as the embedded default writes: equal to
    itself, and a changed value is named."""
    row = pd.DataFrame({"dataset": ["movies"], "model": ["minilm"], "auc_noisy": [0.875], "n_models": [12.0]})
    write_parquet(row, tmp_path / "a" / "summary" / "counterfactual.parquet")
    write_parquet(row, tmp_path / "b" / "summary" / "counterfactual.parquet")
    code, out = _diff(capsys, tmp_path / "a", tmp_path / "b")
    assert code == 0, out
    write_parquet(row.assign(auc_noisy=0.8), tmp_path / "b" / "summary" / "counterfactual.parquet")
    code, out = _diff(capsys, tmp_path / "a", tmp_path / "b")
    assert code == 1 and "column auc_noisy" in out, out


def test_precision_probe_measurements_are_ignored_but_the_choice_is_compared(trees, capsys):
    """`precision: auto` records how fast this machine was (precision_probe) and what it chose (resolved)."""
    a, b = trees

    def with_precision(root, resolved, speedup):
        path = root / "models" / "t" / "predictions.parquet"
        probe = {"bf16_speedup": speedup, "threads": 2, "cpu": {"flags": ["avx512f"]}}
        meta = {"num_layers": 6, "precision": {"requested": "auto", "resolved": resolved, "precision_probe": probe}}
        _rewrite(path, lambda df: None, metadata=meta)

    with_precision(a, "bf16", 1.31)
    with_precision(b, "bf16", 2.05)
    code, out = _diff(capsys, a, b)
    assert code == 0, out
    with_precision(b, "fp32", 1.05)
    code, out = _diff(capsys, a, b)
    assert code == 1 and "metadata precision.resolved: 'bf16' vs 'fp32'" in out and "bf16_speedup" not in out
