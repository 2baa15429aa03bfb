"""Device selection (CUDA, then MPS, then CPU), explicit requests and autocast per device type.

Availability is monkeypatched, so every branch runs on a CPU-only machine; the tests marked
`gpu` run the real thing when a CUDA device is present.
"""

from __future__ import annotations

import contextlib
import logging
import types
import warnings

import pytest
import torch

from memloc import device as mdev

HAS_CUDA = torch.cuda.is_available()


@pytest.fixture
def fake(monkeypatch):
    """fake(cuda=..., mps=..., cuda_count=...) sets what torch reports as available."""

    def set_(cuda: bool = False, mps: bool | None = False, cuda_count: int = 1):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda_count if cuda else 0)
        if mps is None:  # torch builds without the MPS backend module
            monkeypatch.setattr(torch.backends, "mps", None, raising=False)
        else:
            monkeypatch.setattr(torch.backends, "mps", types.SimpleNamespace(is_available=lambda: mps), raising=False)

    return set_


# --------------------------------------------------------------------------- order CUDA -> MPS -> CPU


@pytest.mark.parametrize(
    "cuda, mps, expected",
    [
        (True, True, "cuda"),
        (True, False, "cuda"),
        (False, True, "mps"),
        (False, False, "cpu"),
        (False, None, "cpu"),
    ],
)
def test_auto_prefers_cuda_then_mps_then_cpu(fake, cuda, mps, expected):
    fake(cuda=cuda, mps=mps)
    assert mdev.select_device("auto") == torch.device(expected)
    assert mdev.select_device() == torch.device(expected)  # auto is the default


def test_explicit_cpu_wins_over_available_accelerators(fake):
    fake(cuda=True, mps=True)
    assert mdev.select_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("name", ["cuda", "mps"])
def test_explicit_available_device_is_returned(fake, name):
    fake(cuda=True, mps=True)
    assert mdev.select_device(name) == torch.device(name)


def test_explicit_cuda_without_cuda_fails_clearly(fake):
    fake(cuda=False, mps=True)
    with pytest.raises(RuntimeError, match=r"'cuda'.*no CUDA device.*'auto' or 'cpu'"):
        mdev.select_device("cuda")


@pytest.mark.parametrize("mps", [False, None])
def test_explicit_mps_without_mps_fails_clearly(fake, mps):
    fake(cuda=True, mps=mps)
    with pytest.raises(RuntimeError, match=r"'mps'.*no Apple MPS device.*'auto' or 'cpu'"):
        mdev.select_device("mps")


def test_unknown_device_names_the_choices(fake):
    fake(cuda=False)
    with pytest.raises(ValueError, match=r"unknown device 'tpu'.*auto, cpu, cuda, mps"):
        mdev.select_device("tpu")


def test_cuda_index(fake):
    fake(cuda=True, cuda_count=2)
    assert mdev.select_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(RuntimeError, match=r"cuda:2.*2 CUDA device\(s\).*CUDA_VISIBLE_DEVICES"):
        mdev.select_device("cuda:2")
    fake(cuda=False)
    with pytest.raises(RuntimeError, match="no CUDA device"):
        mdev.select_device("cuda:0")


def test_schema_device_choices_are_all_accepted():
    from memloc.config import load_schema

    choices = load_schema()["$defs"]["training"]["properties"]["device"]["enum"]
    assert set(choices) == set(mdev.PREFERENCES)


# --------------------------------------------------------------------------- autocast


def _autocast(device: str, precision: str):
    with warnings.catch_warnings():  # "CUDA is not available ... Disabling autocast" on CPU machines
        warnings.simplefilter("ignore", UserWarning)
        return mdev.autocast(torch.device(device), precision)


@pytest.mark.parametrize("device", ["cpu", "cuda", "mps"])
def test_fp32_is_a_no_op_everywhere(device):
    ctx = _autocast(device, "fp32")
    assert isinstance(ctx, contextlib.nullcontext)
    with ctx:
        assert not torch.is_autocast_enabled("cpu")
    assert not mdev.needs_grad_scaler(torch.device(device), "fp32")


@pytest.mark.parametrize("device", ["cpu", "cuda", "mps"])
def test_bf16_autocasts_on_the_device_type(device):
    ctx = _autocast(device, "bf16")
    assert isinstance(ctx, torch.autocast)
    assert ctx.device == device
    assert ctx.fast_dtype == torch.bfloat16
    assert not mdev.needs_grad_scaler(torch.device(device), "bf16")


def test_bf16_on_cpu_computes_in_bf16():
    a, b = torch.randn(4, 8), torch.randn(8, 3)
    with mdev.autocast(torch.device("cpu"), "bf16"):
        assert torch.is_autocast_enabled("cpu")
        assert (a @ b).dtype == torch.bfloat16
    assert (a @ b).dtype == torch.float32  # autocast ends with the block


def test_fp16_autocasts_and_scales_on_cuda_only():
    ctx = _autocast("cuda", "fp16")
    assert isinstance(ctx, torch.autocast)
    assert ctx.device == "cuda" and ctx.fast_dtype == torch.float16
    assert mdev.needs_grad_scaler(torch.device("cuda"), "fp16")


@pytest.mark.parametrize("device", ["cpu", "mps"])
def test_fp16_off_cuda_falls_back_to_fp32_with_a_warning(device, caplog):
    with caplog.at_level(logging.WARNING, logger="memloc.device"):
        ctx = mdev.autocast(torch.device(device), "fp16")
    assert isinstance(ctx, contextlib.nullcontext)
    assert "fp16 is honoured on CUDA only" in caplog.text
    assert not mdev.needs_grad_scaler(torch.device(device), "fp16")


# --------------------------------------------------------------------------- real GPU (skipped on CPU)


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA device")
def test_real_cuda_selection_and_autocast():
    dev = mdev.select_device("auto")
    assert dev.type == "cuda"
    a, b = torch.randn(4, 8, device=dev), torch.randn(8, 3, device=dev)
    with mdev.autocast(dev, "bf16"):
        assert (a @ b).dtype == torch.bfloat16
    with mdev.autocast(dev, "fp16"):
        assert (a @ b).dtype == torch.float16
    with mdev.autocast(dev, "fp32"):
        assert (a @ b).dtype == torch.float32
