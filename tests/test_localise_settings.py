"""Technique settings: built from the validated config's params, exact keys, no defaults of their own."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from memloc import config as mconf
from memloc.errors import ConfigError
from memloc.localise.centroids import CentroidsSettings
from memloc.localise.gradients import GradientsSettings
from memloc.localise.probing import ProbingSettings
from memloc.localise.settings import technique_params
from memloc.localise.swapping import SwappingSettings

REPO = Path(__file__).resolve().parents[1]
CLASSES = {"swapping": SwappingSettings, "gradients": GradientsSettings, "probing": ProbingSettings,
           "centroids": CentroidsSettings}


@pytest.fixture(scope="module")
def default_config() -> dict:
    return mconf.validate(yaml.safe_load((REPO / "config.yaml").read_text()), source="config.yaml")


@pytest.mark.parametrize("technique", sorted(CLASSES))
def test_the_rule_params_of_the_schema_build_every_settings_object(default_config, technique):
    model = default_config["run"]["models"][0]
    params = technique_params(default_config, technique, model, seed=3)
    settings = CLASSES[technique].from_dict(params)
    assert settings.as_dict() == {**params, **({"seeds": tuple(params["seeds"])} if technique == "probing" else {})}
    assert settings.seed == 3 and settings.device == default_config["training"]["device"]
    assert CLASSES[technique].from_dict(settings) is settings


def test_schema_defaults_are_the_former_code_defaults(default_config):
    """The numbers the techniques used before their defaults moved to the schema."""
    loc = mconf.validate({**yaml.safe_load((REPO / "config.yaml").read_text()), "localisation": {}})["localisation"]
    assert loc["eval_batch_size"] == 64 and loc["max_window"] is None and loc["final_norm"] is False
    assert loc["gradients"] == {"loss": "ce", "norm": "l1", "subtract_clean": True, "divide_frozen": True,
                                "batch_size": 32}
    assert loc["probing"] == {"seeds": [1, 2, 3, 4, 5], "hidden_size": 128, "dropout": 0.1, "learning_rate": 2e-4,
                              "weight_decay": 1e-5, "epochs": 30, "batch_size": 32, "standardise": True,
                              "class_weights": "balanced", "dropout_position": "hidden", "split": "stratified",
                              "select_from_epoch": 1, "selection_fallback": "first", "label_probes": False,
                              "event_margin": 0.1, "initiation_fraction": 0.9}
    assert loc["centroids"] == {"max_pairs": None, "layers": "with_embeddings", "pooling": "per_pair",
                                "crossing": "first_below"}


@pytest.mark.parametrize("technique, receives", [("probing", True), ("centroids", True), ("swapping", False),
                                                  ("gradients", False), ("retraining", False)])
def test_final_norm_reaches_the_techniques_reading_pooled_states(default_config, technique, receives):
    """localisation.final_norm goes to probing (and its label probes) and centroids, and no other job."""
    cfg = {**default_config, "localisation": {**default_config["localisation"], "final_norm": True}}
    params = technique_params(cfg, technique, default_config["run"]["models"][0], seed=1)
    assert params.get("final_norm") is (True if receives else None)
    if technique in CLASSES:
        assert CLASSES[technique].from_dict(params).as_dict().get("final_norm") is params.get("final_norm")


def test_missing_and_unknown_keys_are_named(default_config):
    params = technique_params(default_config, "probing", default_config["run"]["models"][0], seed=1)
    with pytest.raises(ConfigError, match=r"probing settings: missing epochs\b.*localisation\.probing"):
        ProbingSettings.from_dict({k: v for k, v in params.items() if k != "epochs"})
    with pytest.raises(ConfigError, match=r"unknown hidden_layers"):
        ProbingSettings.from_dict({**params, "hidden_layers": 2})
    with pytest.raises(ConfigError, match=r"swapping settings: missing eval_batch_size"):
        SwappingSettings.from_dict({"max_window": None, "device": "cpu", "precision": "fp32", "auto_precision_min_speedup": 1.2,
                                      "deterministic": True, "seed": 0})
