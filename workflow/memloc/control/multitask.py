"""Control models: memorisation forced into two known blocks (docs/protocol.md §7.2, variant ``control-i-j``).

A control model is two classifiers over ONE stack of transformer blocks:

* the **main** classifier (the model every technique later analyses) trains on the main data
  set's noisy labels (``label``; the clean twin ``control-i-j-clean`` on ``label_orig``), and its
  steps update only blocks ``i`` and ``j`` and the main head (``control-frozen``, the control
  models' baseline: the main head only);
* the **auxiliary** classifier, a second ``AutoModelForSequenceClassification`` loaded from the same
  pretrained weights with its own head and the auxiliary data set's number of classes, whose
  block list is replaced by the main model's (the very same modules), trains on the auxiliary
  data set's original labels (``label_orig``) at its own learning rate (paper: 5e-6) and updates
  every block and its head.

With ``share_pooler_and_norm`` the two classifiers also share the rest of the head outside
their classification layers (BERT's pooler, a decoder's final norm, OPT's ``project_out``), as
the published code's one model with two classification layers; then both tasks train them.
Embeddings are frozen in both (they are identical copies of the pretrained embeddings, so they
need not be shared). Each task has its own AdamW optimiser and linear warm-up/decay schedule over
its own steps, its own gradient clipping, and its steps touch only its own parameters
(``requires_grad`` is switched per step, so a main step does not even compute gradients for the
other blocks). Every epoch runs all main batches and all auxiliary batches, interleaved in an
order that depends only on (seed, epoch), so a killed job resumes to the same weights.

Outputs are those of :func:`memloc.training.finetune.run_finetune` (``final/``, ``memorised/``,
``trace.parquet``, ``predictions.parquet``), so every technique runs on control models unchanged;
each checkpoint directory also holds ``aux_head.safetensors`` (the auxiliary head) and its
``memloc.json`` records the pair, the auxiliary task and the settings. The ``memorised``
checkpoint is the first epoch whose main-task train macro-F1 reaches ``memorised_f1``.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import pandas as pd
import torch

from memloc import __version__
from memloc.control.pairs import main_task_blocks
from memloc.device import select_device, set_determinism
from memloc.errors import DataError, ModelError
from memloc.io import atomic_dir, write_parquet
from memloc.models.blocks import BlockAccess, block_access
from memloc.models.loading import load_classifier
from memloc.precision import probe_shape
from memloc.settings import BlockSettings
from memloc.tokens import TokenSet, load_split_tokensets, load_tokenset
from memloc.training.batching import train_batches
from memloc.training.evaluation import score_rows
from memloc.training.finetune import predictions_table
from memloc.training.loop import FitResult, Settings, classifier_task, train_loop

log = logging.getLogger("memloc.control")

MAIN, AUX = "main", "aux"
AUX_HEAD_FILE = "aux_head.safetensors"
# Offsets that give the auxiliary head's initialisation and batch order their own streams.
_AUX_INIT_OFFSET = 7919
_AUX_ORDER_OFFSET = 104729
_INTERLEAVE_TAG = 0x63746C


@dataclass(frozen=True)
class ControlSettings(BlockSettings):
    """Options of control training (the validated config's ``control`` block, as passed to the job).

    ``epochs`` / ``learning_rate`` override the model's training settings for the main task
    (``None``: the model's own); the auxiliary task trains at ``auxiliary_learning_rate`` with the
    same batch size, warm-up share, clipping and weight decay. ``auxiliary_max_train_examples``
    caps the auxiliary training examples (a seeded subsample) and so its share of each epoch.
    """

    block: ClassVar[str] = "control"
    hint: ClassVar[str] = "The rule passes memloc.control.config.training_settings of the validated config."

    auxiliary_learning_rate: float
    auxiliary_max_train_examples: int | None
    epochs: int | None
    learning_rate: float | None
    share_pooler_and_norm: bool

    def main_settings(self, settings: Settings) -> Settings:
        """The model's training settings with this block's overrides applied."""
        changes = {}
        if self.epochs is not None:
            changes["epochs"] = int(self.epochs)
        if self.learning_rate is not None:
            changes["learning_rate"] = float(self.learning_rate)
        return replace(settings, **changes) if changes else settings


# --------------------------------------------------------------------------- the two-headed model


def share_blocks(main, aux) -> None:
    """Make ``aux`` run the main model's block modules (the same ``nn.ModuleList`` object)."""
    ma, aa = block_access(main), block_access(aux)
    if ma.family != aa.family or ma.num_layers != aa.num_layers:
        raise ModelError(
            f"control: main ({ma.family}, {ma.num_layers} blocks) and auxiliary ({aa.family}, "
            f"{aa.num_layers} blocks) classifiers differ in architecture"
        )
    setattr(aa.blocks_parent, aa.blocks_attr, ma.blocks)


def share_head_body(main, aux) -> list[str]:
    """Make ``aux`` run the main model's head modules inside the base model (BERT's pooler, a
    decoder's final norm): every head parameter but the classification layer's is then shared.

    Returns the shared modules' paths (relative to the base model)."""
    head = {id(p) for p in block_access(aux).head_parameters()}
    base, main_base = aux.base_model, main.base_model
    shared: list[str] = []
    for path, module in base.named_modules():
        params = list(module.parameters())
        if not path or not params or not all(id(p) in head for p in params):
            continue
        if any(path.startswith(f"{done}.") for done in shared):
            continue
        parent, _, name = path.rpartition(".")
        setattr(base.get_submodule(parent) if parent else base, name, main_base.get_submodule(path))
        shared.append(path)
    return shared


class ControlModel:
    """A main and an auxiliary classifier sharing their blocks; the main task trains ``pair`` only
    (``None``: no block, the main head alone).

    Build it from two classifiers loaded from the same pretrained weights (the auxiliary one with
    its own number of labels); the auxiliary model's own blocks (with ``share_pooler_and_norm``
    also its pooler / final norm, :func:`share_head_body`) are replaced by the main model's.
    """

    def __init__(self, main, aux, pair: tuple[int, int] | None, share_pooler_and_norm: bool):
        share_blocks(main, aux)
        if share_pooler_and_norm:
            log.info("control: the auxiliary classifier shares the main one's %s", ", ".join(share_head_body(main, aux)))
        self.main, self.aux = main, aux
        self.main_access: BlockAccess = block_access(main)
        self.aux_access: BlockAccess = block_access(aux)
        L = self.main_access.num_layers
        if pair is not None:
            i, j = int(pair[0]), int(pair[1])
            if not 1 <= i < j <= L:
                raise ModelError(f"control pair {i}-{j} outside the model's blocks 1..{L} (need i < j)")
            pair = (i, j)
        self.pair = pair

    @property
    def num_layers(self) -> int:
        return self.main_access.num_layers

    def main_parameters(self) -> list[torch.nn.Parameter]:
        """What a main-task step updates: blocks i and j (none without a pair) and the main head
        (shared parts included)."""
        blocks = [p for b in (self.pair or ()) for p in self.main_access.block_parameters(b)]
        return blocks + self.main_access.head_parameters()

    def aux_parameters(self) -> list[torch.nn.Parameter]:
        """What an auxiliary step updates: every (shared) block and the auxiliary head."""
        blocks = [p for b in range(1, self.num_layers + 1) for p in self.aux_access.block_parameters(b)]
        return blocks + self.aux_access.head_parameters()

    def parameters_of(self, task: str) -> list[torch.nn.Parameter]:
        return self.main_parameters() if task == MAIN else self.aux_parameters()

    def model_of(self, task: str):
        return self.main if task == MAIN else self.aux

    def to(self, device) -> "ControlModel":
        self.main.to(device)
        self.aux.to(device)
        return self

    def train(self) -> None:
        self.main.train()
        self.aux.train()

    # What the training loop needs (memloc.training.loop.Trainee): checkpoints hold the main
    # classifier and the auxiliary head.
    def parameters(self) -> list[torch.nn.Parameter]:
        return list(self.main.parameters()) + list(self.aux.parameters())

    def train_mode(self) -> None:
        self.train()

    def snapshot(self) -> dict[str, dict[str, torch.Tensor]]:
        return {
            "main": {k: v.detach().cpu().clone() for k, v in self.main.state_dict().items()},
            "aux_head": self.aux_head_state(),
        }

    def restore(self, state: dict[str, dict[str, torch.Tensor]]) -> None:
        self.main.load_state_dict(state["main"])
        self.load_aux_head_state(state["aux_head"])

    # The auxiliary head (every auxiliary parameter or buffer outside embeddings and blocks).
    def aux_head_state(self) -> dict[str, torch.Tensor]:
        skip = {id(p) for p in self.aux_access.embedding_parameters()}
        skip.update(id(p) for p in self.aux_access.blocks.parameters())
        skip.update(id(b) for b in self.aux_access.blocks.buffers())
        for module in self.aux_access.embeddings:
            skip.update(id(b) for b in module.buffers())
        out = {}
        for name, t in list(self.aux.named_parameters()) + list(self.aux.named_buffers()):
            if id(t) not in skip:
                out[name] = t.detach().cpu().clone().contiguous()
        return out

    def load_aux_head_state(self, state: dict[str, torch.Tensor]) -> None:
        own = dict(self.aux.named_parameters())
        own.update(dict(self.aux.named_buffers()))
        with torch.no_grad():
            for name, value in state.items():
                if name not in own:
                    raise ModelError(f"auxiliary head state has unknown entry {name!r}")
                own[name].copy_(value.to(own[name].device))


def load_control_model(
    pretrained_dir: str | Path, n_main: int, n_aux: int, pair: tuple[int, int] | None, seed: int, share_pooler_and_norm: bool
) -> ControlModel:
    """Main classifier (head seeded exactly like ``finetune``'s) plus an auxiliary one, sharing blocks."""
    main = load_classifier(pretrained_dir, num_labels=n_main, seed=seed)
    aux = load_classifier(pretrained_dir, num_labels=n_aux, seed=seed + _AUX_INIT_OFFSET)
    return ControlModel(main, aux, pair, share_pooler_and_norm)


# --------------------------------------------------------------------------- batches and steps


def control_batches(
    main_lengths: np.ndarray, aux_lengths: np.ndarray, batch_size: int, seed: int, epoch: int, bucket: bool = True
) -> list[tuple[str, np.ndarray]]:
    """One epoch: every main and every auxiliary batch, shuffled together; depends only on (seed, epoch).

    Within each task the batch order is :func:`memloc.training.batching.train_batches`' (the
    auxiliary task on its own seed stream); the interleaving is a seeded random permutation of
    the task labels.
    """
    main = train_batches(main_lengths, batch_size, seed, epoch, bucket)
    aux = train_batches(aux_lengths, batch_size, seed + _AUX_ORDER_OFFSET, epoch, bucket) if len(aux_lengths) else []
    tasks = np.array([0] * len(main) + [1] * len(aux), dtype=np.int8)
    tasks = tasks[np.random.default_rng([int(seed), int(epoch), _INTERLEAVE_TAG]).permutation(len(tasks))]
    it_main, it_aux = iter(main), iter(aux)
    return [(MAIN, next(it_main)) if t == 0 else (AUX, next(it_aux)) for t in tasks]


# --------------------------------------------------------------------------- the loop


def fit_control(
    cm: ControlModel,
    main_train: TokenSet,
    aux_train: TokenSet,
    settings: Settings,
    control: ControlSettings,
    seed: int,
    device: torch.device,
    n_main: int,
    n_aux: int,
    eval_sets: dict[str, TokenSet] | None = None,
    aux_eval_sets: dict[str, TokenSet] | None = None,
    train_groups: dict[str, np.ndarray] | None = None,
    work_dir: str | Path | None = None,
    batch_fn: Callable[[int, int], list[tuple[str, np.ndarray]]] | None = None,
) -> FitResult:
    """Train a control model for ``settings.epochs`` epochs on the shared training loop
    (``settings`` already holds any control overrides, see :meth:`ControlSettings.main_settings`).

    Trace splits: ``train`` (+ ``train_groups``, e.g. ``train_noisy``/``train_clean``) and
    ``eval_sets`` for the main task; ``aux_train`` and ``aux_eval_sets`` (e.g. ``aux_validation``)
    for the auxiliary task; a ``task`` column says which. ``work_dir`` holds the resume state.
    ``batch_fn(seed, epoch)`` overrides :func:`control_batches` (tests).
    """
    cm.to(device)

    def batches_for(epoch: int) -> list[tuple[str, np.ndarray]]:
        if batch_fn is not None:
            return batch_fn(seed, epoch)
        return control_batches(main_train.lengths, aux_train.lengths, settings.batch_size, seed, epoch, settings.length_buckets)

    def evaluate(precision: str) -> list[dict]:
        args = (settings.eval_batch_size, device, precision)
        main = score_rows(cm.main, main_train, n_main, *args, train_groups, eval_sets, extra={"task": MAIN})
        aux = score_rows(cm.aux, aux_train, n_aux, *args, None, aux_eval_sets, prefix="aux_", extra={"task": AUX})
        return main + aux

    tasks = {
        MAIN: classifier_task(cm.main, main_train, cm.main_parameters(), settings.learning_rate, device),
        AUX: classifier_task(cm.aux, aux_train, cm.aux_parameters(), control.auxiliary_learning_rate, device),
    }
    run_key = {
        "control": asdict(control),
        "pair": cm.pair,
        "seed": seed,
        "n": [len(main_train), len(aux_train)],
        "ids": [main_train.example_ids[:50].tolist(), aux_train.example_ids[:50].tolist()],
    }
    return train_loop(
        cm, tasks, batches_for, settings, device, evaluate, run_key, work_dir,
        probe=lambda: probe_shape(cm.main, main_train.lengths, settings.batch_size),
    )


# --------------------------------------------------------------------------- the job


def save_control_checkpoint(cm: ControlModel, path: Path, info: dict) -> None:
    """The main classifier as ``save_pretrained`` writes it (loadable by ``load_classifier``),
    plus ``aux_head.safetensors`` and ``memloc.json``, replaced atomically."""
    from safetensors.torch import save_file

    with atomic_dir(path) as tmp:
        cm.main.save_pretrained(tmp, safe_serialization=True)
        save_file(cm.aux_head_state(), str(tmp / AUX_HEAD_FILE), metadata={"memloc": json.dumps(info, default=str)})
        (tmp / "memloc.json").write_text(json.dumps(info, indent=2, default=str) + "\n")


def load_aux_head(checkpoint_dir: str | Path) -> dict[str, torch.Tensor]:
    """The auxiliary head saved with a control checkpoint."""
    from safetensors.torch import load_file

    return load_file(str(Path(checkpoint_dir) / AUX_HEAD_FILE))


def _n_classes(examples: pd.DataFrame) -> int:
    return int(max(examples["label"].max(), examples["label_orig"].max()) + 1)


def auxiliary_train_rows(aux_examples: pd.DataFrame, max_examples: int | None, seed: int) -> pd.DataFrame:
    """The auxiliary training examples, subsampled (seeded, order kept) to ``max_examples``."""
    train = aux_examples[aux_examples["split"] == "train"].reset_index(drop=True)
    if train.empty:
        raise DataError("control: the auxiliary data set has no training examples")
    if max_examples is not None and len(train) > max_examples:
        keep = np.sort(np.random.default_rng([int(seed), _AUX_ORDER_OFFSET]).choice(len(train), int(max_examples), replace=False))
        train = train.iloc[keep].reset_index(drop=True)
    return train


def run_control(
    examples_path: str,
    tokens_path: str,
    aux_examples_path: str,
    aux_tokens_path: str,
    pretrained_dir: str,
    variant: str,
    seed: int,
    settings: Settings,
    control: ControlSettings,
    out_dir: str,
    work_dir: str,
    provenance: dict | None = None,
) -> FitResult:
    """Train one control model (``control-i-j``, its twin ``control-i-j-clean`` or the baseline
    ``control-frozen``) and write the outputs of ``finetune``: ``final/``, ``memorised/``,
    ``trace.parquet``, ``predictions.parquet``."""
    pair, clean = main_task_blocks(variant)
    out_dir, work_dir = Path(out_dir), Path(work_dir)
    settings = control.main_settings(settings)
    if not settings.freeze_embeddings:
        log.warning("control models always freeze the embeddings (training.freeze_embeddings=false is ignored here)")

    examples = pd.read_parquet(examples_path)
    n_main = _n_classes(examples)
    label_col = "label_orig" if clean else "label"
    sets = load_split_tokensets(tokens_path, examples, label_col)
    is_noisy = {s: examples.loc[examples["split"] == s, "is_noisy"].to_numpy() for s in sets}

    aux_examples = pd.read_parquet(aux_examples_path)
    n_aux = _n_classes(aux_examples)
    aux_train = load_tokenset(
        aux_tokens_path, auxiliary_train_rows(aux_examples, control.auxiliary_max_train_examples, seed), "label_orig"
    )
    aux_val_rows = aux_examples[aux_examples["split"] == "validation"]
    aux_eval = {"aux_validation": load_tokenset(aux_tokens_path, aux_val_rows, "label_orig")} if len(aux_val_rows) else {}

    set_determinism(seed, settings.deterministic)
    device = select_device(settings.device)
    cm = load_control_model(pretrained_dir, n_main, n_aux, pair, seed, control.share_pooler_and_norm)
    torch.manual_seed(seed)  # dropout stream independent of how many heads were initialised
    log.info(
        "control %s (main task trains %s, on %s) seed=%d: main %s with %d train examples, %d classes; "
        "auxiliary %s with %d train examples, %d classes, lr %.3g; device %s",
        variant, f"blocks {pair[0]} and {pair[1]}" if pair else "the head only", label_col, seed, examples_path,
        len(sets["train"]), n_main,
        aux_examples_path, len(aux_train), n_aux, control.auxiliary_learning_rate, device,
    )
    noisy_mask = is_noisy["train"]
    result = fit_control(
        cm, sets["train"], aux_train, settings, control, seed, device, n_main, n_aux,
        eval_sets={"validation": sets["validation"]},
        aux_eval_sets=aux_eval,
        train_groups={"train_noisy": noisy_mask, "train_clean": ~noisy_mask},
        work_dir=work_dir,
    )
    info = {
        "variant": variant,
        "seed": seed,
        "control_pair": list(pair or ()),
        "control_clean_twin": clean,
        "trained_labels": label_col,
        "auxiliary_examples": str(aux_examples_path),
        "auxiliary_num_labels": n_aux,
        "memorised_epoch": result.memorised_epoch,
        "memorised_reached": result.memorised_reached,
        "epochs": settings.epochs,
        "precision": result.precision.record(),
        "memloc_version": __version__,
        **(provenance or {}),
    }
    meta = {**info, "settings": asdict(settings), "control": asdict(control)}
    run_settings = result.precision.apply(settings)
    preds = [predictions_table(cm.main, sets, run_settings, device, "final", is_noisy)]
    save_control_checkpoint(cm, out_dir / "final", {**info, "checkpoint": "final"})
    cm.restore(result.memorised_state)
    preds.append(predictions_table(cm.main, sets, run_settings, device, "memorised", is_noisy))
    save_control_checkpoint(cm, out_dir / "memorised", {**info, "checkpoint": "memorised"})
    write_parquet(pd.concat(preds, ignore_index=True), out_dir / "predictions.parquet", metadata=meta)
    write_parquet(result.trace, out_dir / "trace.parquet", metadata=meta)
    shutil.rmtree(work_dir, ignore_errors=True)
    return result
