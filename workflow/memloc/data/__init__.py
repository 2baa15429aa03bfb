"""Data preparation (docs/protocol.md §4.1-§4.3): sources -> validated, split, noised examples table."""

from .noise import inject_noise
from .prepare import build_examples, prepare_dataset
from .sources import RawSplits, input_paths

__all__ = ["RawSplits", "build_examples", "inject_noise", "input_paths", "prepare_dataset"]
