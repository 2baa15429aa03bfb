"""training.stopping: a fine-tuning run stops once its noisy examples are fit (docs/protocol.md §4.5)."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from memloc.errors import ConfigError
from memloc.io import write_parquet
from memloc.training.batching import train_batches
from memloc.training.finetune import stopping_record, twin_epochs
from memloc.training.loop import Classifier, Settings, classifier_task, train_loop
from memloc.training.stopping import stop_rule

from builders import Killed, assert_resume_equals_uninterrupted, finetune_inputs, killed_at, learnable_tokens, tiny_classifier

CPU = torch.device("cpu")
#: Planted train_noisy accuracy per epoch: the threshold 0.99 is first reached at epoch 4.
PLANTED = {1: 0.2, 2: 0.6, 3: 0.9, 4: 0.995, 5: 0.97, 6: 1.0, 7: 1.0, 8: 1.0}


def opts(**changes) -> Settings:
    return Settings.with_defaults(**{"epochs": 8, "learning_rate": 3e-3, "batch_size": 16, "memorised_accuracy": 0.99, **changes})


def planted_run(settings: Settings, variant="noisy", twin=None, work_dir=None, kill_at=None, planted=PLANTED, rule=True):
    """A tiny model trained under the variant's stop rule, its train_noisy accuracy planted per epoch."""
    data = learnable_tokens(48, 0, vocab=100, lengths=(4, 8), n_classes=2)
    torch.manual_seed(2)
    model = tiny_classifier("bert", 1, layers=1, vocab=100, hidden=16)
    seen = []

    def order(seed, epoch):
        seen.append(epoch)
        return train_batches(data.lengths, settings.batch_size, seed, epoch, True)

    batches = killed_at(order, kill_at)

    def batches_for(epoch):
        return [("main", idx) for idx in batches(3, epoch)]

    def evaluate(precision):
        acc = planted[seen[-1]]
        return [{"split": "train", "loss": 1.0, "accuracy": 1.0, "macro_f1": 1.0, "n": 48},
                {"split": "train_noisy", "loss": 1.0, "accuracy": acc, "macro_f1": acc, "n": 8}]

    task = classifier_task(model, data, [p for p in model.parameters()], settings.learning_rate, CPU)
    stop = stop_rule(variant, settings, twin) if rule else None
    res = train_loop(Classifier(model), {"main": task}, batches_for, settings, CPU, evaluate, {"k": 1}, work_dir, False, stop)
    return Classifier(model).snapshot(), res


def test_memorised_stops_at_the_planted_epoch():
    _, res = planted_run(opts(stopping="memorised"))
    assert (res.threshold_epoch, res.epochs_trained) == (4, 4)
    assert res.trace["epoch"].max() == 4


def test_extra_epochs_train_past_the_threshold():
    _, res = planted_run(opts(stopping="memorised", extra_epochs=2))
    assert (res.threshold_epoch, res.epochs_trained) == (4, 6)


def test_extra_epochs_capped_by_epochs():
    _, res = planted_run(opts(stopping="memorised", extra_epochs=3, epochs=5))
    assert (res.threshold_epoch, res.epochs_trained) == (4, 5)


def test_never_memorised_trains_to_the_maximum_and_says_so():
    _, res = planted_run(opts(stopping="memorised"), planted={e: 0.5 for e in range(1, 9)})
    assert (res.threshold_epoch, res.epochs_trained) == (0, 8)
    rule = stop_rule("noisy", opts(stopping="memorised"), None)
    assert stopping_record(res, rule)["memorisation_reached"] is False
    assert stopping_record(res, rule)["threshold_epoch"] is None


def test_fixed_trains_every_epoch_and_still_records_the_threshold():
    state, res = planted_run(opts())
    assert (res.threshold_epoch, res.epochs_trained) == (4, 8)
    # The rule's watching changes nothing: same weights as a run without any rule.
    plain_state, plain = planted_run(opts(), rule=False)
    assert all(torch.equal(state[k], plain_state[k]) for k in state)
    pd.testing.assert_frame_equal(res.trace.drop(columns="seconds"), plain.trace.drop(columns="seconds"))


def test_resume_mid_run_with_the_rule_on(tmp_path):
    def run(work_dir, kill_at):
        return planted_run(opts(stopping="memorised", extra_epochs=1), work_dir=work_dir, kill_at=kill_at)

    res = assert_resume_equals_uninterrupted(run, tmp_path / "work", ["epoch", "split", "accuracy"])
    assert (res.threshold_epoch, res.epochs_trained) == (4, 5)


def test_resume_after_the_threshold_keeps_its_epoch(tmp_path):
    """Killed after the threshold epoch (4), the resumed run still stops extra_epochs after it."""
    settings = opts(stopping="memorised", extra_epochs=2)
    with pytest.raises(Killed):
        planted_run(settings, work_dir=tmp_path, kill_at=6)
    _, res = planted_run(settings, work_dir=tmp_path)
    assert (res.threshold_epoch, res.epochs_trained) == (4, 6)
    assert sorted(res.trace["epoch"].unique()) == list(range(1, 7))


def test_clean_twin_trains_as_long_as_its_noisy_twin():
    _, res = planted_run(opts(stopping="memorised"), variant="clean", twin=6)
    assert res.epochs_trained == 6
    with pytest.raises(ConfigError, match="noisy twin"):
        stop_rule("clean", opts(stopping="memorised"), None)


def test_frozen_baseline_and_fixed_clean_train_every_epoch():
    _, res = planted_run(opts(stopping="memorised"), variant="frozen")
    assert (res.threshold_epoch, res.epochs_trained) == (4, 8)
    assert stop_rule("frozen", opts(stopping="memorised"), None).stopping == "fixed"
    assert stop_rule("clean", opts(), None).after is None


def test_twin_epochs_read_from_the_noisy_trace(tmp_path):
    path = tmp_path / "trace.parquet"
    write_parquet(pd.DataFrame({"epoch": [1]}), path, metadata={"epochs_trained": 5})
    assert twin_epochs(str(path)) == 5
    assert twin_epochs(None) is None
    write_parquet(pd.DataFrame({"epoch": [1]}), path, metadata={})
    with pytest.raises(ValueError, match="epochs_trained"):
        twin_epochs(str(path))


def test_finetune_jobs_record_the_rule_and_the_clean_twin_follows(tmp_path, monkeypatch):
    """run_finetune end to end on a tiny model, train_noisy accuracy planted: the noisy job stops
    at epoch 2 and says so in its trace metadata and checkpoints; its clean twin, given the noisy
    trace, trains 2 epochs; the frozen baseline trains all 4; the summary row reads the trace."""
    import json

    import memloc.training.loop as loop
    from memloc.io import read_metadata
    from memloc.stats.memorised import collect_memorised_runs
    from memloc.training.finetune import run_finetune

    real = loop.score_rows
    calls = []

    def planted(*args, **kwargs):
        rows = real(*args, **kwargs)
        calls.append(1)
        for row in rows:
            if row["split"] == "train_noisy":
                row["accuracy"] = {1: 0.5, 2: 1.0}.get(len(calls), 1.0)
        return rows

    monkeypatch.setattr(loop, "score_rows", planted)
    inputs = finetune_inputs(tmp_path / "in")
    settings = opts(epochs=4, stopping="memorised", eval_batch_size=32, device="cpu")

    def job(variant, twin=None):
        calls.clear()
        out = tmp_path / "models" / "d" / "tiny" / variant / "seed1"
        run_finetune(str(inputs / "examples.parquet"), str(inputs / "tokens.parquet"), str(inputs / "pretrained"), variant, 1,
                     settings, str(out), str(tmp_path / "work" / variant), twin_trace_path=twin)
        return out

    noisy = job("noisy")
    meta = read_metadata(noisy / "trace.parquet")
    record = (meta["stopping"], meta["threshold_epoch"], meta["epochs_trained"], meta["memorisation_reached"])
    assert record == ("memorised", 2, 2, True)
    assert json.loads((noisy / "final" / "memloc.json").read_text())["epochs_trained"] == 2
    clean = job("clean", str(noisy / "trace.parquet"))
    assert read_metadata(clean / "trace.parquet")["epochs_trained"] == 2
    frozen = read_metadata(job("frozen") / "trace.parquet")
    assert (frozen["stopping"], frozen["epochs_trained"]) == ("fixed", 4)
    row = collect_memorised_runs([str(noisy / "trace.parquet")], "final").iloc[0]
    assert (row.epoch, row.noisy_accuracy, bool(row.memorised), row.epochs_trained, row.epochs) == (2, 1.0, True, 2, 4)
