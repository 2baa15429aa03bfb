"""Tiny test inputs that several test files build: token sets, random classifiers, data archives.

Every builder draws its random numbers in a fixed order from its own seeded generator, so a test
gets the same data on every run. Test files wrap them with their own sizes and defaults.
"""

from __future__ import annotations

import csv
import io
import tarfile
from pathlib import Path

import numpy as np
import torch

from memloc.data import registry
from memloc.models.blocks import block_access
from memloc.models.random import build_random_classifier
from memloc.tokens import TokenSet

# Small attention windows, so that local / sliding-window attention acts on sequences of about ten
# tokens, and Qwen2 mixes attention types across a 4-block model (blocks 3..4 sliding).
LOCAL_ATTENTION = {
    "gpt_neo": {"window_size": 4},
    "qwen2": {"use_sliding_window": True, "sliding_window": 4, "max_window_layers": 2},
    "mistral": {"sliding_window": 4},
}

# ---------------------------------------------------------------- token sets


def random_tokens(
    n: int, seed: int = 0, *, vocab: int, lengths: tuple[int, int], n_classes: int = 2, with_types: bool = False
) -> TokenSet:
    """Ids in [5, vocab) (never the pad id 0), lengths drawn from the inclusive range ``lengths`` so
    batches are padded, then random labels (all 0 for ``n_classes=1``). ``with_types``: the second
    half of each sequence is segment 1, as for a BERT sentence pair."""
    rng = np.random.default_rng(seed)
    low, high = lengths
    ids = [rng.integers(5, vocab, size=int(rng.integers(low, high + 1))).astype(np.int64) for _ in range(n)]
    types = [(np.arange(len(x)) >= len(x) // 2).astype(np.int64) for x in ids] if with_types else None
    labels = rng.integers(0, n_classes, size=n).astype(np.int64)
    return TokenSet(np.arange(n, dtype=np.int64), ids, types, labels, pad_token_id=0)


def learnable_tokens(
    n: int, seed: int = 0, *, vocab: int, lengths: tuple[int, int], n_classes: int = 2, offset: int = 0
) -> TokenSet:
    """The label is the class of the second token (id 2 + label, after the start id 1); the other ids
    lie in [10, vocab). A tiny model learns it within a few epochs. Example ids start at ``offset``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, size=n)
    low, high = lengths
    ids = []
    for y in labels:
        seq = rng.integers(10, vocab, size=int(rng.integers(low, high + 1)))
        seq[0], seq[1] = 1, 2 + int(y)
        ids.append(seq.astype(np.int64))
    return TokenSet(np.arange(n, dtype=np.int64) + offset, ids, None, labels.astype(np.int64), pad_token_id=0)


# ---------------------------------------------------------------- models


def tiny_classifier(
    family: str, seed: int = 0, *, layers: int, vocab: int, hidden: int = 16, labels: int = 2, **config
) -> torch.nn.Module:
    """A seeded random classifier with two attention heads; ``config`` overrides its model config."""
    return build_random_classifier(
        family, num_layers=layers, hidden_size=hidden, num_heads=2, vocab_size=vocab, num_labels=labels, seed=seed, **config
    )


def amplified(model: torch.nn.Module, factor: float = 50.0) -> torch.nn.Module:
    """Scale the head's weight matrices: tiny random models otherwise give logits near 1e-3."""
    with torch.no_grad():
        for p in block_access(model).head_parameters():
            if p.ndim >= 2:
                p.mul_(factor)
    return model


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every parameter and buffer, to compare against after training."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------- data files

MOVIE_LINES = [
    "1\t2.5\tA clich\u00e9 done well.",
    "2\t-3.0\tDreadful.",
    "3\t0.0\tA film.",
    "4\t-2.4\tBorderline awful.",
    "5\t0.8\tMildly nice, PB&amp; J.",
    "6\t2.41\tVery good.",
]


def tar_gz(members: dict[str, bytes]) -> bytes:
    """A gzipped tar archive holding ``members`` (name -> content)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_vader_sdist(path: Path, lines: list[str] = MOVIE_LINES) -> Path:
    """A stand-in for the vaderSentiment sdist: CRLF lines, the last without a line end, next to
    members the registry must skip."""
    data = "\r\n".join(lines).encode("utf-8")
    inner = tar_gz({registry.MOVIE_INNER: data, "hutto_ICWSM_2014/other.txt": b"x"})
    path.write_bytes(tar_gz({registry.MOVIE_OUTER: inner, "vaderSentiment-3.3.2/setup.py": b""}))
    return path


# ---------------------------------------------------------------- tokenizers

BPE_CORPUS = ["the word bank by the river", "a bank account", "money in the bank", "the river is wide"]


def decoder_tokenizer(eos: str = "<|endoftext|>", bos: str | None = None):
    """A tiny byte-level BPE tokenizer like GPT-Neo's / Pythia's (``bos`` given: like OPT's, which
    prepends it): an EOS token, no separator token, EOS as pad token (as materialising sets it); a
    text pair is the two texts concatenated."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = [eos] + ([bos] if bos and bos != eos else [])
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(BPE_CORPUS, trainer)
    if bos:
        bos_id = tok.token_to_id(bos)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, bos_id)]
        )
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, bos_token=bos, pad_token=eos)


def labelled_rows(n_per_class=(30, 20), names=("pos", "neg")) -> list[tuple[str, str]]:
    """(text, label name) rows, ``n`` per class, with distinct texts."""
    out = []
    for name, n in zip(names, n_per_class, strict=True):
        out += [(f"{name} sentence number {i}", name) for i in range(n)]
    return out


def write_csv(path: Path, records, header=("sentence", "label")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(records)
    return path


class Killed(RuntimeError):
    """Stands for a SIGKILL in the middle of a training job."""


def killed_at(batch_fn, kill_at: int | None):
    """``batch_fn(seed, epoch)`` that dies when epoch ``kill_at`` starts (never for ``None``)."""

    def batches(seed, epoch):
        if kill_at is not None and epoch == kill_at:
            raise Killed
        return batch_fn(seed, epoch)

    return batches


def assert_resume_equals_uninterrupted(run, work: Path, trace_columns: list[str]):
    """``run(work_dir, kill_at)`` trains from scratch and returns ``(snapshot, result)``. Killed at
    epoch 3 and run again on the same ``work`` dir, it must end with the uninterrupted run's
    weights, bit for bit, and trace. Returns the resumed result."""
    import pandas as pd
    import pytest

    ref_state, ref = run(None, None)
    with pytest.raises(Killed):
        run(work, 3)
    assert (work / "state.pt").exists()
    state, res = run(work, None)
    for part, tensors in ref_state.items():
        for k, v in (tensors.items() if isinstance(tensors, dict) else [(part, tensors)]):
            other = state[part][k] if isinstance(tensors, dict) else state[part]
            assert torch.equal(v, other), f"{part} {k}"
    pd.testing.assert_frame_equal(ref.trace[trace_columns], res.trace[trace_columns])
    return res


def record_final_norm(monkeypatch, module) -> list[bool]:
    """Wrap ``module.pooled_states`` (a localisation rule's module) so that each call's
    ``final_norm`` is appended to the returned list: what the rule passed down from its settings."""
    original = module.pooled_states
    seen: list[bool] = []

    def recording(model, data, batch_size, device, precision, final_norm):
        seen.append(final_norm)
        return original(model, data, batch_size, device, precision, final_norm)

    monkeypatch.setattr(module, "pooled_states", recording)
    return seen


def drawn_text(monkeypatch, plot) -> str:
    """Every text on the figure ``plot`` draws (captured instead of written)."""
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    from memloc.figures import style

    figs = []
    monkeypatch.setattr(style, "save", lambda fig, stem: figs.append(fig))
    plot()
    (fig,) = figs
    text = " ".join(" ".join(t.get_text().split()) for t in fig.findobj(Text))
    plt.close(fig)
    return text


def finetune_inputs(root):
    """Examples table, token cache and pretrained directory of a tiny random BERT (7 noisy examples):
    the inputs of a real ``run_finetune`` job."""
    import pandas as pd

    from memloc.io import write_parquet

    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    n_train, n_eval = 40, 8
    n = n_train + n_eval
    label_orig = rng.integers(0, 2, n)
    is_noisy = np.zeros(n, dtype=bool)
    is_noisy[rng.choice(n_train, 7, replace=False)] = True
    ids = np.arange(n)
    write_parquet(pd.DataFrame({
        "example_id": ids, "split": ["train"] * n_train + ["validation"] * (n_eval // 2) + ["test"] * (n_eval // 2),
        "text_a": [f"text {i}" for i in ids], "text_b": [None] * n, "label_orig": label_orig,
        "label": np.where(is_noisy, 1 - label_orig, label_orig), "is_noisy": is_noisy,
    }), root / "examples.parquet")
    seqs = [np.array([1, 2 + int(y), *rng.integers(10, 100, size=4)], dtype=np.int32) for y in label_orig]
    write_parquet(pd.DataFrame({"example_id": ids, "input_ids": seqs, "length": [len(s) for s in seqs], "truncated": False}),
                  root / "tokens.parquet", metadata={"pad_token_id": 0})
    tiny_classifier("bert", 0, layers=1, vocab=100, hidden=16).save_pretrained(root / "pretrained")
    return root
