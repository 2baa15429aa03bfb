"""Depth-normalised M-CoG (docs/protocol.md §6.9, §8.3): (M-CoG - 1) / (L - 1) next to the raw value,
and the analyses that pool models of different depth, each on a planted answer that the raw
M-CoG gets wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from memloc.stats.agreement import agreement_rows, mcog_norm_agreement_rows
from memloc.stats.depth import depth_norm_rows, depth_rows
from memloc.stats.generalisation import generalisation_norm_rows, generalisation_rows
from memloc.stats.mcog import ALL_SEEDS, depth_normalised, mcog_table, mixed_depths
from memloc.stats.mixed import NORM_ANALYSIS, mcog_model_rows
from memloc.stats.tidy import finalize

DEPTHS = {"encoder": 6, "decoder": 30}


def rows_at(records, depths=DEPTHS):
    """Seed-aggregated rows from (technique, dataset, model, relative depth in 0..1)."""
    out = []
    for t, d, m, rel in records:
        L = depths[m]
        out.append(dict(technique=t, dataset=d, model=m, variant="noisy", seed=ALL_SEEDS, mcog=1 + rel * (L - 1),
                        mcog_norm=rel, ci_low=np.nan, ci_high=np.nan, ci_method="none", n_seeds=1, num_layers=L))
    return pd.DataFrame(out)


def test_mcog_table_adds_the_depth_normalised_value_per_model():
    """All weight on block 1: 0; on block L: 1; on the middle block of 5: 0.5, whatever the depth."""
    lw = []
    for model, L, top in (("short", 3, 3), ("long", 5, 3), ("first", 5, 1)):
        w = np.zeros(L)
        w[top - 1] = 1.0
        lw.append(pd.DataFrame(dict(technique="gradients", dataset="d", model=model, variant="noisy", seed=1,
                                    layer=np.arange(1, L + 1), weight=w, weight_norm=w)))
    t = mcog_table(pd.concat(lw, ignore_index=True), n_boot=0).set_index(["model", "seed"])
    assert t.loc[("short", 1), "mcog"] == 3 and t.loc[("short", 1), "mcog_norm"] == 1.0
    assert t.loc[("long", 1), "mcog"] == 3 and t.loc[("long", 1), "mcog_norm"] == 0.5
    assert t.loc[("first", ALL_SEEDS), "mcog_norm"] == 0.0
    assert t.loc[("long", ALL_SEEDS), "num_layers"] == 5 and t.loc[("short", 1), "num_layers"] == 3
    assert list(t.reset_index().columns).index("mcog_norm") == list(t.reset_index().columns).index("mcog") + 1
    assert mixed_depths(t.reset_index()) and not mixed_depths(t.reset_index().query("model == 'long'"))
    assert np.isnan(depth_normalised(1.0, 1))  # a one-block model has no depth to normalise


def test_technique_agreement_on_normalised_mcog_is_free_of_the_depth_confound():
    """Two techniques whose relative depths move in opposite directions over data sets, in a 6- and
    a 30-block model: raw M-CoG pooled over both models agrees (the deep model is high on both),
    the normalised M-CoG shows the planted disagreement. Model agreement needs no normalised rows."""
    recs = []
    for i in range(5):
        for m in DEPTHS:
            recs += [("swapping", f"d{i}", m, 0.2 + 0.1 * i), ("gradients", f"d{i}", m, 0.7 - 0.1 * i)]
    mc = rows_at(recs)
    raw = finalize(agreement_rows(mc)).set_index(["analysis", "term"])
    norm = finalize(mcog_norm_agreement_rows(mc, "noisy", 0.95)).set_index(["analysis", "term"])
    assert raw.loc[("agreement_technique_mcog_pearson", "swapping~gradients"), "estimate"] > 0.5  # the wrong sign
    assert norm.loc[("agreement_technique_mcog_norm_pearson", "swapping~gradients"), "estimate"] == pytest.approx(-1.0)
    assert norm.loc[("agreement_technique_mcog_norm_spearman", "swapping~gradients"), "estimate"] == pytest.approx(-1.0)
    assert set(norm.index.get_level_values(0)) == {"agreement_technique_mcog_norm_pearson",
                                                   "agreement_technique_mcog_norm_spearman"}


def test_mixed_model_on_normalised_mcog_recovers_the_relative_technique_effect():
    """Probing sits 0.2 of the depth above swapping in every model; the raw coefficient is in
    layers of whichever models dominate, the normalised one is the planted 0.2."""
    rng = np.random.default_rng(0)
    recs = [(t, f"d{i}", m, 0.3 + 0.05 * i + shift + rng.normal(0, 0.01))
            for m in ("encoder", "mid", "decoder") for i in range(5) for t, shift in (("swapping", 0.0), ("probing", 0.2))]
    mc = rows_at(recs, {**DEPTHS, "mid": 12})
    norm_rows = finalize(mcog_model_rows(mc, {}, value="mcog_norm", analysis=NORM_ANALYSIS))
    assert (norm_rows["analysis"] == "mcog_norm_model").all()
    norm = norm_rows.set_index("term")
    raw = finalize(mcog_model_rows(mc, {})).set_index("term")
    assert norm.loc["technique[T.probing]", "estimate"] == pytest.approx(0.2, abs=0.02)
    assert raw.loc["technique[T.probing]", "estimate"] > 1.0  # layers, not a share of the depth


def generalisation_case():
    """Relative depth = generalisation score in both models; the 30-block model generalises a bit
    better on every data set, so its (much larger) raw M-CoGs interleave with the scores."""
    recs, cf = [], []
    for i in range(5):
        for m, g in (("encoder", 0.2 + 0.1 * i), ("decoder", 0.25 + 0.1 * i)):
            recs += [("swapping", f"d{i}", m, g), ("gradients", f"d{i}", m, g)]
            cf.append(dict(dataset=f"d{i}", model=m, generalisation_mean=g))
    val = pd.DataFrame([dict(dataset=r["dataset"], model=r["model"], variant="noisy", seed=1,
                             accuracy_norm=r["generalisation_mean"]) for r in cf])
    return rows_at(recs), pd.DataFrame(cf), val


def test_generalisation_on_normalised_mcog_pools_models_of_different_depth():
    mc, cf, _ = generalisation_case()
    raw = finalize(generalisation_rows(mc, cf)).set_index(["analysis", "term"])
    norm = finalize(generalisation_norm_rows(mc, cf, "noisy", 0.95)).set_index(["analysis", "term"])
    assert raw.loc[("generalisation_spearman", "mcog[swapping] | all models"), "estimate"] < 0.95
    assert norm.loc[("generalisation_mcog_norm_spearman", "mcog_norm[swapping] | all models"), "estimate"] == pytest.approx(1.0)
    assert norm.loc[("generalisation_mcog_norm_slope", "mcog_norm[swapping] | all models"), "estimate"] == pytest.approx(1.0)
    assert {t.split(" | ")[1] for t in norm.index.get_level_values(1)} == {"all models"}  # per model: same ranks as raw


def test_depth_on_normalised_technique_mean():
    mc, cf, val = generalisation_case()
    boot = dict(variant="noisy", confidence=0.95, n_boot=50, seed=0)
    raw = finalize(depth_rows(mc, cf, val, **boot)).set_index(["analysis", "term"])
    norm = finalize(depth_norm_rows(mc, cf, val, **boot)).set_index(["analysis", "term"])
    assert raw.loc[("depth_generalisation_spearman", "mcog[mean] | all models"), "estimate"] < 0.95
    for analysis in ("depth_generalisation_mcog_norm_spearman", "depth_validation_mcog_norm_spearman"):
        assert norm.loc[(analysis, "mcog_norm[mean] | all models"), "estimate"] == pytest.approx(1.0)
    assert len(norm) == 2
