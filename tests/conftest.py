"""Set-up shared by every test: one torch thread, and ``tests/`` importable for :mod:`builders`."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    # `from builders import ...` (and the slow tests' `from test_workflow import ...`) under any
    # pytest import mode, not only the default `prepend`.
    sys.path.insert(0, str(TESTS))


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tiny models run fastest single-threaded; intra-op threads only contend on a busy machine.

    Session-wide, so module-scoped fixtures that train or run models are covered too.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
