"""Counterfactual memorisation end to end on a tiny random model: subset training to figure."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from memloc.counterfactual.estimate import MEMORISATION_COLUMNS
from memloc.counterfactual.subsets import SUBSET_COLUMNS, run_subset, subset_mask
from memloc.counterfactual.summary import run_memorisation, run_memorisation_map, run_memorised_set
from memloc.io import read_metadata, write_parquet
from memloc.training.loop import Settings

from builders import tiny_classifier

VOCAB = 120
# A validated training block, as the rule passes it.
SETTINGS = asdict(Settings.with_defaults(epochs=1, learning_rate=3e-3, batch_size=8, eval_batch_size=32, device="cpu"))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Examples table, token cache and a pretrained directory of a tiny random BERT."""
    root = tmp_path_factory.mktemp("cf")
    rng = np.random.default_rng(0)
    n_train, n_eval = 48, 8
    n = n_train + n_eval
    label_orig = rng.integers(0, 2, n)
    is_noisy = np.zeros(n, dtype=bool)
    is_noisy[rng.choice(n_train, 7, replace=False)] = True
    label = np.where(is_noisy, 1 - label_orig, label_orig)
    ids = np.arange(100, 100 + n)
    examples = pd.DataFrame(
        {
            "example_id": ids,
            "split": ["train"] * n_train + ["validation"] * (n_eval // 2) + ["test"] * (n_eval // 2),
            "text_a": [f"text {i}" for i in ids],
            "text_b": [None] * n,
            "label_orig": label_orig,
            "label": label,
            "is_noisy": is_noisy,
        }
    )
    write_parquet(examples, root / "examples.parquet")
    seqs = []
    for y in label_orig:
        seq = rng.integers(10, VOCAB, size=int(rng.integers(4, 10)))
        seq[0], seq[1] = 1, 2 + int(y)
        seqs.append(seq.astype(np.int32))
    tokens = pd.DataFrame(
        {"example_id": ids, "input_ids": seqs, "length": [len(s) for s in seqs], "truncated": False}
    )
    write_parquet(tokens, root / "tokens.parquet", metadata={"pad_token_id": 0})
    model = tiny_classifier("bert", 0, layers=2, vocab=VOCAB, hidden=32)
    model.save_pretrained(root / "pretrained")
    return root


def test_subset_training_to_figure(inputs, tmp_path):
    train = pd.read_parquet(inputs / "examples.parquet").query("split == 'train'").reset_index(drop=True)
    tables = []
    for k in (1, 2, 3):
        out = tmp_path / f"k{k}.parquet"
        work = tmp_path / "work" / f"k{k}"
        run_subset(
            inputs / "examples.parquet", inputs / "tokens.parquet", inputs / "pretrained", k=k, fraction=0.5, stratify=True,
            settings=SETTINGS, out_path=out, work_dir=work, split_seed=0, noise_seed=0,
        )
        assert out.is_file() and not work.exists()
        stored = pd.read_parquet(out)
        assert set(SUBSET_COLUMNS) <= set(stored.columns)
        # Every training example is scored, in and out.
        assert sorted(stored.example_id) == sorted(train.example_id)
        expected = dict(zip(train.example_id, subset_mask(train, 0.5, k, 0, 0, stratify=True)))
        assert stored.in_train.tolist() == [expected[i] for i in stored.example_id]
        assert stored.p_label.between(0, 1).all()
        assert stored.correct.dtype == bool
        assert read_metadata(out)["precision"] == {"requested": "fp32", "resolved": "fp32", "precision_probe": None}
        tables.append(out)
    d = tmp_path / "cf"
    summary = run_memorisation(
        inputs / "examples.parquet", tables, d / "memorisation.parquet", d / "summary.json", d / "reliability.parquet",
        n_boot=50, reliability_splits=3,
    )
    mem = pd.read_parquet(d / "memorisation.parquet")
    assert tuple(mem.columns) == MEMORISATION_COLUMNS and len(mem) == len(train)
    assert ((mem.n_in + mem.n_out) == 3).all()
    on_disk = json.loads((d / "summary.json").read_text())
    assert on_disk["n_models"] == 3 and "generalisation_mean" in on_disk and "auc_noisy" in on_disk
    assert summary["n_examples"] == len(train)
    assert pd.read_parquet(d / "reliability.parquet").k.tolist() == [2, 3]
    top = run_memorised_set("top_cm", d / "set.parquet", inputs / "examples.parquet", d / "memorisation.parquet", 0.2)
    assert not (top.memorised & top.is_noisy).any() and top.memorised.sum() >= 1
    run_memorisation_map(d / "memorisation.parquet", d / "map.pdf", d / "map.png", title="toy")
    assert (d / "map.png").stat().st_size > 0 and (d / "map.pdf").stat().st_size > 0
