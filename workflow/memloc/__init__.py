"""memloc: localise where a fine-tuned transformer stores the examples it memorises."""

__version__ = "0.1.0"
