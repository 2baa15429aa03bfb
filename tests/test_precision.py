"""training.precision: auto (memloc.precision): the choice follows the measured ratio, is made once
per job, is recorded in the trace, predictions and checkpoints, and survives a resume.

The probe's measurement is planted (``measured``), so nothing here depends on this machine's speed.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import memloc.device as mdev
import memloc.precision as mprec
import memloc.training.evaluation as evaluation
import memloc.training.loop as loop
from memloc import config as mconf
from memloc.config import block_defaults
from memloc.errors import ConfigError
from memloc.io import read_metadata
from memloc.training.batching import train_batches
from memloc.training.finetune import run_finetune, trainable_parameters
from memloc.training.loop import Settings, fit

from builders import Killed, finetune_inputs, killed_at, learnable_tokens, tiny_classifier

CPU = torch.device("cpu")
SHAPE = mprec.ProbeShape(8, ((4, 4),))
CPUINFO = """processor\t: 0
model name\t: Example Xeon
flags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8
processor\t: 1
model name\t: Example Xeon
flags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8
"""


@pytest.fixture
def measured(monkeypatch):
    """``measured(ratio)``: the probe reports bf16 ``ratio`` times as fast as fp32; returns the probed shapes."""
    shapes: list = []

    def plant(ratio: float) -> list:
        shapes.clear()

        def fake(device, shape):
            shapes.append(shape)
            return float(ratio), 1.0, 3  # fp32 seconds, bf16 seconds, trials

        monkeypatch.setattr(mprec, "measure_bf16_speedup", fake)
        return shapes

    return plant


@pytest.fixture
def autocasts(monkeypatch):
    """The precision of every autocast the training loop and evaluation open, in order."""
    seen: list[str] = []

    def recording(device, precision):
        seen.append(precision)
        return mdev.autocast(device, precision)

    monkeypatch.setattr(loop, "autocast", recording)
    monkeypatch.setattr(evaluation, "autocast", recording)
    return seen


# --------------------------------------------------------------------------- the rule


@pytest.mark.parametrize("ratio, expected", [(2.0, "bf16"), (1.2, "bf16"), (1.19, "fp32"), (0.67, "fp32")])
def test_auto_picks_bf16_only_at_the_measured_threshold(measured, ratio, expected):
    shapes = measured(ratio)
    choice = mprec.resolve_precision("auto", CPU, lambda: SHAPE, 1.2)
    assert (choice.requested, choice.resolved) == ("auto", expected)
    probe = choice.precision_probe
    assert probe["bf16_speedup"] == pytest.approx(ratio) and probe["min_speedup"] == 1.2
    assert (probe["device"], probe["tokens"], probe["matrices"]) == ("cpu", 8, [[4, 4]])
    assert probe["threads"] == torch.get_num_threads()
    assert set(probe["cpu"]) == {"model", "flags", "torch_capability"}
    assert shapes == [SHAPE]


@pytest.mark.parametrize("fixed", ["fp32", "bf16", "fp16"])
def test_a_fixed_precision_is_kept_without_probing(measured, fixed):
    shapes = measured(10.0)
    choice = mprec.resolve_precision(fixed, CPU, lambda: pytest.fail("no shape for a fixed precision"), 1.2)
    assert choice.record() == {"requested": fixed, "resolved": fixed, "precision_probe": None}
    assert shapes == []


def test_auto_on_a_cuda_device_without_bf16_is_fp32_unprobed(measured, monkeypatch):
    shapes = measured(10.0)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Old GPU")
    choice = mprec.resolve_precision("auto", torch.device("cuda"), lambda: SHAPE, 1.2)
    assert choice.resolved == "fp32" and "does not support bf16" in choice.precision_probe["note"]
    assert shapes == []


def test_auto_is_fp32_where_the_bf16_probe_fails(monkeypatch):
    def unsupported(device, shape):
        raise RuntimeError("bf16 autocast unsupported here")

    monkeypatch.setattr(mprec, "measure_bf16_speedup", unsupported)
    choice = mprec.resolve_precision("auto", CPU, lambda: SHAPE, 1.2)
    assert choice.resolved == "fp32" and "unsupported here" in choice.precision_probe["note"]


def test_an_unknown_precision_is_refused():
    with pytest.raises(ConfigError, match="training.precision 'bf32'"):
        mprec.resolve_precision("bf32", CPU, lambda: SHAPE, 1.2)


def test_autocast_refuses_an_unresolved_auto():
    with pytest.raises(ValueError, match="'auto' reached autocast unresolved"):
        mdev.autocast(CPU, "auto")


def test_the_real_probe_measures_both_precisions_and_leaves_the_rng_alone():
    torch.manual_seed(3)
    before = torch.get_rng_state()
    fp32_s, bf16_s, trials = mprec.measure_bf16_speedup(CPU, mprec.ProbeShape(16, ((8, 16), (16, 8))))
    assert fp32_s > 0 and bf16_s > 0 and mprec.MIN_TRIALS <= trials <= mprec.MAX_TRIALS
    assert torch.equal(torch.get_rng_state(), before)


def test_probe_shape_is_the_models_matrices_and_a_batch_of_real_tokens():
    model = tiny_classifier("bert", 0, layers=2, vocab=50, hidden=16)
    shape = mprec.probe_shape(model, np.array([4, 6, 8]), batch_size=10)
    assert shape == mprec.ProbeShape(60, ((16, 16), (16, 64), (64, 16)))
    assert mprec.probe_shape(model, np.array([500, 700]), batch_size=16).tokens == mprec.MAX_PROBE_TOKENS


# --------------------------------------------------------------------------- CPU features


def test_cpu_features_reads_the_matrix_and_bf16_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(CPUINFO)
    features = mprec.cpu_features(info)
    assert features["model"] == "Example Xeon"
    assert features["flags"] == ["amx_bf16", "amx_tile", "amx_int8", "avx512_bf16", "avx512f"]
    assert features["torch_capability"] == torch.backends.cpu.get_cpu_capability()
    assert mprec.describe_cpu(features).startswith("Example Xeon: amx_bf16 amx_tile amx_int8 avx512_bf16 avx512f (torch ")
    info.write_text(CPUINFO.replace(" amx_bf16 amx_tile amx_int8", "").replace(" avx512_bf16", ""))
    assert mprec.describe_cpu(mprec.cpu_features(info)).startswith("Example Xeon: avx512f, no AMX")


def test_cpu_features_without_cpuinfo(tmp_path):
    features = mprec.cpu_features(tmp_path / "absent")
    assert features["flags"] is None and features["model"] is None
    assert "CPU flags unknown" in mprec.describe_cpu(features)


# --------------------------------------------------------------------------- config


def _config() -> dict:
    return yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())


def test_the_default_stays_fp32():
    training = block_defaults("training")
    assert (training["precision"], training["auto_precision_min_speedup"]) == ("fp32", 1.2)


def test_schema_accepts_auto_globally_and_per_model():
    raw = _config()
    model = raw["run"]["models"][0]
    raw["training"]["precision"] = "auto"
    raw["models"][model]["training"] = {"auto_precision_min_speedup": 1.5}
    effective = mconf.model_spec(mconf.validate(copy.deepcopy(raw), source="config.yaml"), model)["training"]
    assert (effective["precision"], effective["auto_precision_min_speedup"]) == ("auto", 1.5)
    raw["models"][model]["training"] = {"precision": "auto"}
    assert mconf.model_spec(mconf.validate(raw, source="config.yaml"), model)["training"]["precision"] == "auto"


@pytest.mark.parametrize(
    "key, value",
    [("precision", "bf32"), ("precision", "AUTO"), ("auto_precision_min_speedup", 0.9), ("auto_precision_min_speedup", "fast")],
)
def test_schema_rejects_bad_values_naming_the_key(key, value):
    raw = _config()
    raw["training"][key] = value
    with pytest.raises(ConfigError, match=key):
        mconf.validate(raw, source="config.yaml")


# --------------------------------------------------------------------------- a real job


@pytest.mark.parametrize("ratio, expected", [(2.5, "bf16"), (0.8, "fp32")])
def test_a_finetune_job_runs_in_and_records_its_choice(tmp_path, measured, autocasts, ratio, expected):
    shapes = measured(ratio)
    inputs = finetune_inputs(tmp_path / "in")
    settings = Settings.with_defaults(
        epochs=2, learning_rate=3e-3, batch_size=16, eval_batch_size=32, precision="auto", device="cpu"
    )
    out = tmp_path / "noisy"
    run_finetune(str(inputs / "examples.parquet"), str(inputs / "tokens.parquet"), str(inputs / "pretrained"), "noisy", 1,
                 settings, str(out), str(tmp_path / "work"))
    assert len(shapes) == 1  # one probe per job
    assert shapes[0].matrices == ((16, 16), (16, 64), (64, 16))  # the tiny BERT's block matrices
    assert set(autocasts) == {expected}  # training, the trace's evaluation and the predictions
    for table in ("trace", "predictions"):
        meta = read_metadata(out / f"{table}.parquet")
        assert meta["settings"]["precision"] == "auto"
        assert (meta["precision"]["requested"], meta["precision"]["resolved"]) == ("auto", expected)
        assert meta["precision"]["precision_probe"]["bf16_speedup"] == pytest.approx(ratio)
        assert "cpu" in meta["precision"]["precision_probe"]
    for checkpoint in ("final", "memorised"):
        info = json.loads((out / checkpoint / "memloc.json").read_text())
        assert info["precision"]["resolved"] == expected


def test_a_default_job_records_fp32_without_a_probe(tmp_path, measured):
    shapes = measured(10.0)
    inputs = finetune_inputs(tmp_path / "in")
    out = tmp_path / "noisy"
    run_finetune(str(inputs / "examples.parquet"), str(inputs / "tokens.parquet"), str(inputs / "pretrained"), "noisy", 1,
                 Settings.with_defaults(epochs=1, device="cpu"), str(out), str(tmp_path / "work"))
    assert read_metadata(out / "trace.parquet")["precision"] == {"requested": "fp32", "resolved": "fp32", "precision_probe": None}
    assert shapes == []


def test_a_resumed_run_keeps_the_precision_it_started_in(tmp_path, measured, autocasts):
    data = learnable_tokens(48, 0, vocab=60, lengths=(4, 9))
    opts = Settings.with_defaults(epochs=4, learning_rate=3e-3, batch_size=8, precision="auto")
    work = tmp_path / "work"

    def run(kill_at):
        torch.manual_seed(5)
        model = tiny_classifier("bert", 3, layers=1, vocab=60)
        order = killed_at(lambda seed, epoch: train_batches(data.lengths, opts.batch_size, seed, epoch, True), kill_at)
        return fit(model, trainable_parameters(model, "noisy", True), data, opts, 7, CPU, 2, work_dir=work, batch_fn=order)

    measured(3.0)
    with pytest.raises(Killed):
        run(kill_at=3)
    assert set(autocasts) == {"bf16"}
    shapes = measured(0.5)  # the machine is now slower in bf16: a fresh job would pick fp32
    autocasts.clear()
    res = run(kill_at=None)
    assert shapes == []  # no new probe
    assert res.precision.resolved == "bf16" and res.precision.precision_probe["bf16_speedup"] == 3.0
    assert autocasts and set(autocasts) == {"bf16"}  # epochs 3 and 4 trained and evaluated in bf16
    assert res.trace["epoch"].max() == 4
