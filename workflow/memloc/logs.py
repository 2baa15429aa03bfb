"""Route memloc's logging to a rule's log file (and stderr) with timestamps."""

from __future__ import annotations

import logging
import sys
import warnings


def setup(log_path: str | None = None, level: int = logging.INFO) -> logging.Logger:
    """Configure the ``memloc`` logger once per job; warnings are captured into the same log."""
    root = logging.getLogger("memloc")
    root.setLevel(level)
    for handler in root.handlers:
        handler.close()
    root.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        handlers.append(logging.FileHandler(log_path, mode="w"))
    for h in handlers:
        h.setFormatter(fmt)
        root.addHandler(h)
    logging.captureWarnings(True)
    warn_logger = logging.getLogger("py.warnings")
    warn_logger.handlers = list(handlers)
    warnings.filterwarnings("default")
    sys.excepthook = _log_uncaught
    return root


def _log_uncaught(exc_type, exc, tb) -> None:
    """Put a job's fatal error in its log file: user errors as one clear line, bugs with a traceback."""
    from memloc.errors import MemlocError

    log = logging.getLogger("memloc")
    if issubclass(exc_type, MemlocError):
        log.error("%s", exc)
    else:
        log.error("unexpected error", exc_info=(exc_type, exc, tb))
    sys.__excepthook__(exc_type, exc, tb)
