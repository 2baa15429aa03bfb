"""Errors a user can act on: each message names the file, the field and the fix."""


class MemlocError(Exception):
    """Base class for errors caused by user input rather than by a bug."""


class ConfigError(MemlocError):
    """The configuration is invalid (unknown key, bad value, dangling reference)."""


class DataError(MemlocError):
    """An input data file or data set violates what memloc needs."""


class ModelError(MemlocError):
    """A model cannot be located, loaded or taken apart into blocks."""
