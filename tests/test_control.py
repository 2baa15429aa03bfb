"""Control models: target pairs, variant names, acc@k arithmetic, summaries, the figure."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from memloc import config as mconf
from memloc.control import config as ccfg
from memloc.control.accuracy import (
    ALL,
    control_accuracy_frames,
    noisy_train_accuracy,
    parse_trace_path,
    parse_weights_path,
    ranking,
    run_control_accuracy,
    summarise,
    top_k_credit,
)
from memloc.control.pairs import (
    FROZEN_VARIANT,
    MODEL_VARIANT_PATTERN,
    VARIANT_PATTERN,
    all_adjacent_pairs,
    control_variants,
    default_pairs,
    is_control_variant,
    layers_from_config_json,
    main_task_blocks,
    model_num_layers,
    parse_variant,
    target_pairs,
    twin_of,
    variant_name,
)
from memloc.errors import ConfigError
from memloc.localise.baseline import baseline_seed, baseline_seeds, baseline_variant

# --------------------------------------------------------------------------- pairs


@pytest.mark.parametrize(
    "L, expected",
    [
        (4, [(1, 2), (2, 3), (3, 4)]),
        (6, [(1, 2), (3, 4), (5, 6)]),
        (12, [(1, 2), (6, 7), (11, 12)]),
        (24, [(1, 2), (12, 13), (23, 24)]),
        (7, [(1, 2), (3, 4), (6, 7)]),  # odd: the lower of the two pairs holding the middle block 4
        (3, [(1, 2), (2, 3)]),
        (2, [(1, 2)]),
    ],
)
def test_default_pairs_scale_with_depth(L, expected):
    assert default_pairs(L) == expected
    assert target_pairs(L) == expected


@pytest.mark.parametrize("L", [4, 6, 12, 24])
def test_all_adjacent_pairs(L):
    pairs = all_adjacent_pairs(L)
    assert pairs == [(i, i + 1) for i in range(1, L)]
    assert len(pairs) == L - 1
    assert set(default_pairs(L)) <= set(pairs)
    assert target_pairs(L, "all_adjacent") == pairs


def test_middle_pair_is_centred():
    for L in range(4, 40):
        i, j = default_pairs(L)[1]
        assert j == i + 1 and abs((i + j) / 2 - (L + 1) / 2) <= 0.5


def test_explicit_pairs_and_errors():
    assert target_pairs(12, ["1-2", [3, 5], (6, 7), "1-2"]) == [(1, 2), (3, 5), (6, 7)]
    with pytest.raises(ConfigError, match="beyond"):
        target_pairs(6, ["5-7"])
    with pytest.raises(ConfigError):
        target_pairs(6, ["3-3"])
    with pytest.raises(ConfigError):
        target_pairs(6, "every")
    with pytest.raises(ConfigError):
        default_pairs(1)


def test_variant_names_round_trip():
    for L in (4, 6, 12, 24):
        for pair in all_adjacent_pairs(L) + [(1, L)]:
            for clean in (False, True):
                name = variant_name(pair, clean=clean)
                assert parse_variant(name) == (*pair, clean)
                assert re.fullmatch(VARIANT_PATTERN, name)
                assert bool(re.fullmatch(MODEL_VARIANT_PATTERN, name)) is (not clean)
    assert variant_name((6, 7)) == "control-6-7"
    assert variant_name((6, 7), clean=True) == "control-6-7-clean"
    assert twin_of("control-6-7") == "control-6-7-clean"
    assert twin_of("noisy") == "clean"
    with pytest.raises(ValueError):
        twin_of("control-6-7-clean")
    for bad in ("noisy", "clean", "frozen", "control-7-6", "control-0-1", "control-1-2-noisy", "control-1"):
        assert not is_control_variant(bad)
        assert not re.fullmatch(VARIANT_PATTERN, bad) or bad == "control-7-6"
    with pytest.raises(ValueError):
        parse_variant("control-7-6")
    assert control_variants(6, twins=True) == [
        "control-1-2", "control-1-2-clean", "control-3-4", "control-3-4-clean", "control-5-6", "control-5-6-clean",
    ]


def test_control_frozen_is_a_trained_variant_without_pair_or_twin():
    """The control baseline trains in control_finetune (VARIANT_PATTERN) but is no scored control model."""
    assert FROZEN_VARIANT == "control-frozen"
    assert re.fullmatch(VARIANT_PATTERN, FROZEN_VARIANT) and not re.fullmatch(MODEL_VARIANT_PATTERN, FROZEN_VARIANT)
    assert not re.fullmatch(VARIANT_PATTERN, "frozen")  # train_finetune's variant stays apart
    assert main_task_blocks(FROZEN_VARIANT) == (None, False)  # head only, noisy labels
    assert main_task_blocks("control-6-7") == ((6, 7), False)
    assert main_task_blocks("control-6-7-clean") == ((6, 7), True)
    assert not is_control_variant(FROZEN_VARIANT)
    with pytest.raises(ValueError, match="baseline"):
        twin_of(FROZEN_VARIANT)


def test_model_layers_from_config(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "gpt2", "n_layer": 5}')
    assert layers_from_config_json(tmp_path) == 5
    assert model_num_layers({"source": {"kind": "hf", "path": str(tmp_path)}}) == 5
    assert model_num_layers({"source": {"kind": "random", "model_type": "bert", "num_layers": 3}}) == 3
    # a materialised checkpoint wins over the source
    assert model_num_layers({"source": {"kind": "random", "model_type": "bert", "num_layers": 3}}, tmp_path) == 5


def test_config_block_and_references():
    default = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
    control = mconf.validate(default, source="config.yaml")["control"]  # the schema fills the block
    assert control["auxiliary_learning_rate"] == 5e-6 and control["pairs"] == "default"
    cfg = {"datasets": {"movies": {}, "topics": {}}, "control": control,
           "models": {"tiny": {"source": {"kind": "random", "model_type": "bert", "num_layers": 4}}}}
    assert ccfg.auxiliary_dataset(cfg, "movies") == "movies"
    assert ccfg.training_settings(cfg) == {"auxiliary_learning_rate": 5e-6, "auxiliary_max_train_examples": None,
                                           "epochs": None, "learning_rate": None, "share_pooler_and_norm": False}
    cfg["control"] = {**control, "auxiliary": "topics", "pairs": "all_adjacent"}
    ccfg.check_control_config(cfg)
    assert ccfg.auxiliary_dataset(cfg, "movies") == "topics"
    assert ccfg.model_variants(cfg, "tiny", "/nonexistent") == ["control-1-2", "control-2-3", "control-3-4"]
    cfg["control"]["auxiliary"] = "topic"
    with pytest.raises(ConfigError, match="did you mean 'topics'"):
        ccfg.check_control_config(cfg)


def test_control_datasets_and_seeds_default_to_the_run_and_are_checked():
    default = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
    cfg = mconf.validate({**default, "run": {"datasets": list(default["datasets"])[:1], "seeds": [1, 2, 3]}})
    assert ccfg.control_datasets(cfg) == list(default["datasets"])[:1] and ccfg.control_seeds(cfg) == [1, 2, 3]
    name = list(default["datasets"])[0]
    cfg = mconf.validate({**default, "control": {"datasets": [name], "seeds": [1]}, "run": {"seeds": [1, 2, 3]}})
    assert ccfg.control_datasets(cfg) == [name] and ccfg.control_seeds(cfg) == [1]
    with pytest.raises(ConfigError, match=rf"control.datasets names '{name}x'.*did you mean '{name}'"):
        mconf.validate({**default, "control": {"datasets": [name + "x"]}}, source="my.yaml")


def test_control_models_default_to_the_run_and_are_checked():
    default = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
    name = list(default["models"])[0]
    two = {**default["models"], "other": default["models"][name]}
    cfg = mconf.validate({**default, "models": two, "run": {"models": None}})
    assert ccfg.control_models(cfg) == [name, "other"], "null: every run model"
    cfg = mconf.validate({**default, "models": two, "control": {"models": ["other"]}, "run": {"models": None}})
    assert ccfg.control_models(cfg) == ["other"]
    with pytest.raises(ConfigError, match=rf"my.yaml: control.models names '{name}x', which is not defined under models"
                                          rf".*did you mean '{name}'"):
        mconf.validate({**default, "control": {"models": [name + "x"]}}, source="my.yaml")


# --------------------------------------------------------------------------- baselines


def test_baseline_variant_and_seed_follow_the_config():
    cfg = {"control": {"baseline": "frozen"}, "localisation": {"baseline_seed": None}}
    assert baseline_variant(cfg, "noisy") == "frozen" and baseline_variant(cfg, "control-6-7") == "frozen"
    assert baseline_seed(cfg, 3) == 3 and baseline_seeds(cfg, [1, 2, 3]) == [1, 2, 3]
    cfg = {"control": {"baseline": "control-frozen"}, "localisation": {"baseline_seed": 1}}
    assert baseline_variant(cfg, "noisy") == "frozen"  # ordinary models keep the head-only model
    assert baseline_variant(cfg, "control-6-7") == "control-frozen"
    assert baseline_seed(cfg, 3) == 1 and baseline_seeds(cfg, [1, 2, 3]) == [1]
    assert baseline_seeds(cfg, [2, 3]) == [1]  # the seed-1 baseline even when seed 1 is not run


# --------------------------------------------------------------------------- acc@k


LAYERS = [1, 2, 3, 4]


@pytest.mark.parametrize(
    "weights, pair, acc1, acc2, tie1, tie2",
    [
        ([0.1, 0.5, 0.3, 0.2], (2, 3), 1.0, 1.0, False, False),
        ([0.1, 0.5, 0.3, 0.2], (1, 4), 0.0, 0.0, False, False),
        ([0.1, 0.5, 0.3, 0.2], (3, 4), 0.0, 0.5, False, False),
        ([0.1, 0.5, 0.3, 0.2], (1, 2), 1.0, 0.5, False, False),
        # tie for the top: layers 1 and 2 share it, one of them is a target
        ([0.5, 0.5, 0.1, 0.1], (1, 3), 0.5, 0.5, True, False),
        # probing-like zeros: the second slot is shared by layers 2, 3, 4 (two of them targets)
        ([0.3, 0.0, 0.0, 0.0], (3, 4), 0.0, (0 + 2 / 3) / 2, False, True),
        # all equal: exactly chance 2/L
        ([0.0, 0.0, 0.0, 0.0], (2, 3), 0.5, 0.5, True, True),
        # NaN ranks last
        ([math.nan, 0.2, 0.1, math.nan], (1, 2), 1.0, 0.5, False, False),
    ],
)
def test_top_k_credit_hand_computed(weights, pair, acc1, acc2, tie1, tie2):
    a1, t1 = top_k_credit(weights, LAYERS, pair, 1)
    a2, t2 = top_k_credit(weights, LAYERS, pair, 2)
    assert a1 == pytest.approx(acc1)
    assert a2 == pytest.approx(acc2)
    assert (t1, t2) == (tie1, tie2)


def test_tied_credit_is_the_mean_over_tie_orders():
    rng = np.random.default_rng(0)
    layers = np.arange(1, 7)
    for _ in range(40):
        w = rng.integers(0, 3, size=6).astype(float)  # many ties
        pair = tuple(sorted(rng.choice(layers, 2, replace=False)))
        # Monte Carlo over random tie-breaks: sort by weight, ties in random order
        keys = -10 * w + rng.random((4000, 6))
        order = np.argsort(keys, axis=1)
        for k in (1, 2):
            share = np.isin(layers[order[:, :k]], pair).mean()
            assert top_k_credit(w, layers, pair, k)[0] == pytest.approx(share, abs=0.04)


def test_ranking_breaks_ties_by_lower_layer():
    assert ranking([0.2, 0.5, 0.5, math.nan], np.array(LAYERS)) == [2, 3, 1, 4]


def weights_table(w):
    return pd.DataFrame({"technique": "t", "layer": np.arange(1, len(w) + 1), "weight": w})


def ids(technique, variant, dataset="d1", model="m", seed=1):
    return {"technique": technique, "dataset": dataset, "model": model, "variant": variant, "seed": seed}


def test_not_learned_runs_are_reported_but_excluded():
    frames = [
        (ids("swapping", "control-1-2"), weights_table([0.9, 0.1, 0.0, 0.0])),
        (ids("swapping", "control-3-4"), weights_table([0.9, 0.1, 0.0, 0.0])),  # a miss, but not learned
        (ids("swapping", "control-3-4-clean"), weights_table([0.9, 0.1, 0.0, 0.0])),  # twins are never scored
    ]
    acc = {("d1", "m", "control-1-2", 1, "final"): 0.97, ("d1", "m", "control-3-4", 1, "final"): 0.42}
    table = control_accuracy_frames(frames, acc, "final", learned_accuracy=0.9)
    assert len(table) == 2
    hit = table[table.variant == "control-1-2"].iloc[0]
    miss = table[table.variant == "control-3-4"].iloc[0]
    assert hit.learned and hit.acc_at_1 == 1.0 and hit.acc_at_2 == 1.0 and hit.chance == 0.5
    assert hit.target_layers == "1-2" and hit.top_layer == 1 and hit.ranking.startswith("1,2")
    assert not miss.learned and math.isnan(miss.acc_at_1) and math.isnan(miss.acc_at_2)
    assert miss.acc_at_1_raw == 0.0 and miss.train_noisy_accuracy == 0.42 and "not learned" in miss.note
    summary = summarise(table, bootstrap=200)
    row = summary[(summary.technique == "swapping") & (summary.model == ALL)].iloc[0]
    assert row.acc_at_1 == 1.0 and row.n_learned == 1 and row.n_not_learned == 1 and row.n_runs == 2
    assert math.isnan(row.acc_at_1_low)  # one unit: no interval


def test_learned_accuracy_zero_scores_every_control_model():
    """The paper scores every control model; learned_accuracy 0 (a schema-valid value) does the same."""
    default = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
    assert mconf.validate({**default, "control": {"learned_accuracy": 0}})["control"]["learned_accuracy"] == 0
    frames = [(ids("probing", "control-3-4"), weights_table([0.1, 0.2, 0.3, 0.4]))]
    table = control_accuracy_frames(frames, {("d1", "m", "control-3-4", 1, "final"): 0.0}, "final", learned_accuracy=0)
    row = table.iloc[0]
    assert row.learned and row.acc_at_1 == 1.0 and row.acc_at_2 == 1.0 and "not learned" not in row.note
    assert summarise(table, bootstrap=0).iloc[0].n_not_learned == 0


def test_summary_means_and_bootstrap_over_units():
    frames, acc = [], {}
    for d in ("d1", "d2"):
        for pair, w in (("1-2", [0.9, 0.1, 0, 0]), ("2-3", [0.9, 0.1, 0, 0]), ("3-4", [0, 0, 0.2, 0.9])):
            for seed in (1, 2):
                v = f"control-{pair}"
                frames.append((ids("gradients", v, d, seed=seed), weights_table(w)))
                acc[(d, "m", v, seed, "memorised")] = 1.0
    table = control_accuracy_frames(frames, acc, {"gradients": "memorised"})
    assert table.learned.all() and (table.checkpoint == "memorised").all()
    summary = summarise(table, bootstrap=500, seed=3)
    row = summary.iloc[0]
    assert row.n_units == 6 and row.n_runs == 12
    assert row.acc_at_1 == pytest.approx(4 / 6)  # 1-2 hit, 2-3 miss at 1, 3-4 hit
    assert row.acc_at_2 == pytest.approx((1 + 0.5 + 1) / 3)
    assert 0 <= row.acc_at_1_low <= row.acc_at_1 <= row.acc_at_1_high <= 1
    pd.testing.assert_frame_equal(summary, summarise(table, bootstrap=500, seed=3))


def trace_frame(noisy_acc_by_epoch, memorised_epoch):
    rows = []
    for e, a in enumerate(noisy_acc_by_epoch, start=1):
        for split, acc in (("train", 0.99), ("train_noisy", a), ("aux_train", 0.8)):
            rows.append({"epoch": e, "split": split, "task": "aux" if split.startswith("aux") else "main",
                         "loss": 0.1, "accuracy": acc, "macro_f1": acc})
    t = pd.DataFrame(rows)
    t["memorised_epoch"] = t.epoch == memorised_epoch
    return t


def test_noisy_train_accuracy_per_checkpoint():
    t = trace_frame([0.3, 0.95, 0.99], memorised_epoch=2)
    assert noisy_train_accuracy(t, "final") == 0.99
    assert noisy_train_accuracy(t, "memorised") == 0.95
    assert math.isnan(noisy_train_accuracy(t[t.split != "train_noisy"]))


def test_path_parsing():
    assert parse_weights_path("r/localisation/probing/sst2/bert/control-6-7/seed3.weights.parquet") == ids(
        "probing", "control-6-7", "sst2", "bert", 3
    )
    assert parse_trace_path("r/models/sst2/bert/control-6-7/seed3/trace.parquet") == {
        "dataset": "sst2", "model": "bert", "variant": "control-6-7", "seed": 3
    }
    with pytest.raises(ValueError):
        parse_weights_path("r/probing/seed3.parquet")


def test_run_control_accuracy_from_files_and_figure(tmp_path):
    from memloc.figures.control import plot_control
    from memloc.io import write_parquet

    weights, traces = [], []
    for v, w in (("control-1-2", [0.1, 0.9, 0.0, 0.0]), ("control-3-4", [0.1, 0.9, 0.0, 0.0])):
        trace = tmp_path / "models" / "d1" / "m" / v / "seed1" / "trace.parquet"
        trace.parent.mkdir(parents=True)
        write_parquet(trace_frame([0.5, 0.95], memorised_epoch=2), trace)
        traces.append(trace)
        for technique in ("swapping", "gradients"):
            p = tmp_path / "localisation" / technique / "d1" / "m" / v / "seed1.weights.parquet"
            p.parent.mkdir(parents=True, exist_ok=True)
            write_parquet(weights_table(w), p)
            weights.append(p)
    table, summary = run_control_accuracy(
        weights, traces, tmp_path / "s" / "control_accuracy.parquet", tmp_path / "s" / "control_accuracy_summary.parquet",
        checkpoints={"swapping": "final", "gradients": "memorised"}, bootstrap=100,
    )
    back = pd.read_parquet(tmp_path / "s" / "control_accuracy.parquet")
    assert len(back) == 4 and {"technique", "dataset", "model", "target_layers", "acc_at_1", "acc_at_2", "chance"} <= set(back)
    assert back.acc_at_1.tolist() == [1.0, 0.0, 1.0, 0.0] and back.learned.all()
    assert set(pd.read_parquet(tmp_path / "s" / "control_accuracy_summary.parquet").technique) == {"swapping", "gradients"}
    out = plot_control(summary, tmp_path / "fig" / "control_accuracy_summary", table=table)
    assert [p.suffix for p in out] == [".pdf", ".png"] and all(p.stat().st_size > 0 for p in out)
    empty = plot_control(summary.iloc[0:0], tmp_path / "fig" / "empty")
    assert all(p.exists() for p in empty)


def test_control_overlay_on_the_default_validates():
    """`--configfile config.yaml config/control.yaml`: Snakemake merges the overlay into the default."""
    repo = Path(__file__).resolve().parents[1]

    def merge(base: dict, over: dict) -> dict:
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        return out

    default = yaml.safe_load((repo / "config.yaml").read_text())
    cfg = mconf.validate(merge(default, yaml.safe_load((repo / "config" / "control.yaml").read_text())), source="control.yaml")
    assert cfg["control"]["enabled"] is True
    # The overlay only adds the control setup: data, model and training stay the default's.
    plain = mconf.validate(default, source="config.yaml")
    assert {k: cfg[k] for k in ("datasets", "models", "training")} == {k: plain[k] for k in ("datasets", "models", "training")}
