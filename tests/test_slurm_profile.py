"""profiles/slurm packs small GPU jobs: a dry run of config/paper.yaml shows the groups and what each asks for.

The slurm executor plugin is optional (CI does not install it). Snakemake forms the groups and computes a
group's resources in the main process whatever the executor, so the profile's packing keys, turned into
command-line arguments by Snakemake's own profile parser, are handed to a dry run with the local executor.
A wrapper prints each group job as Snakemake builds it for submission: its members and its resources
(GroupJob.resources, which the plugin turns into --cpus-per-task, --mem, -t and --gres). Where the plugin is
installed, the profile itself is dry-run as well and must plan the same submissions.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from snakemake.profiles import ProfileConfigFileParser

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
PAPER = REPO / "config" / "paper.yaml"

#: Profile keys that decide the packing (everything else is about talking to SLURM).
PACKING_KEYS = ("groups", "group-components", "cores", "set-resources", "default-resources")
PACKED_RULES = {
    "counterfactual_subset",
    "control_finetune",
    *(f"localise_{t}" for t in ("swapping", "retraining", "gradients", "probing", "label_probes", "centroids")),
}
#: README ("Clusters", "SLURM"): submissions for config/paper.yaml with and without packing.
SUBMISSIONS_PACKED, SUBMISSIONS_UNPACKED = 911, 3563

# Prints every group job with its members and resources, then runs Snakemake's command line as usual.
_WRAPPER = """
import json, sys
import snakemake.jobs
from snakemake.cli import main

_log_info = snakemake.jobs.GroupJob.log_info

def log_info(self):
    members = sorted(([job.rule.name, dict(job.wildcards_dict)] for job in self.jobs), key=json.dumps)
    print("MEMLOC_GROUP " + json.dumps({"id": self.groupid, "members": members, "threads": self.threads,
                                        "resources": dict(self.resources.items())}, default=str), flush=True)
    return _log_info(self)

snakemake.jobs.GroupJob.log_info = log_info
main(sys.argv[1:])
"""


def packing_args(profile: Path = PROFILE) -> list[str]:
    """The profile's packing keys as Snakemake's profile parser hands them to the command line."""
    with profile.open() as fh:
        parsed = ProfileConfigFileParser().parse(fh)
    args: list[str] = []
    for key in PACKING_KEYS:
        if key in parsed:
            value = parsed[key]
            args += [f"--{key}", *(value if isinstance(value, list) else [value])]
    return args


def dry_run(workdir: Path, *args: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    cmd = [sys.executable, "-c", _WRAPPER, "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--configfile", str(PAPER), "-n", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout + res.stderr


def groups_of(output: str) -> list[dict]:
    return [json.loads(line.split(" ", 1)[1]) for line in output.splitlines() if line.startswith("MEMLOC_GROUP ")]


def submissions(output: str) -> int:
    """SLURM submissions of a dry run: group jobs plus top-level jobs, less `all` (no action) and data_fetch (local)."""
    entries = re.findall(r"^rule (\w+):|Group job ", output, flags=re.M)
    return sum(1 for rule in entries if rule not in ("all", "data_fetch"))


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> str:
    return dry_run(tmp_path_factory.mktemp("packed"), "--workflow-profile", "none", *packing_args())


@pytest.mark.slow
def test_paper_subset_models_of_one_pair_share_one_submission(packed):
    k = yaml.safe_load(PAPER.read_text())["counterfactual"]["models"]
    subsets = [g for g in groups_of(packed) if g["id"].startswith("subsets_")]
    assert len(subsets) == 12 * 4  # one per (data set, model)
    for group in subsets:
        rules = {rule for rule, _ in group["members"]}
        pairs = {(wc["dataset"], wc["model"]) for _, wc in group["members"]}
        assert rules == {"counterfactual_subset"}
        assert len(pairs) == 1 and group["id"] == "subsets_{}_{}".format(*pairs.pop())
        assert sorted(int(wc["k"]) for _, wc in group["members"]) == list(range(1, k + 1))


@pytest.mark.slow
def test_paper_localisation_and_control_models_are_packed_per_model(packed):
    groups = groups_of(packed)
    localise = [g for g in groups if g["id"].startswith("localise_")]
    control = [g for g in groups if g["id"].startswith("control_")]
    assert len(groups) == 48 + len(localise) + len(control)
    # The techniques on one model: six on each of the 144 noisy models, four on each of the 108 control models.
    assert Counter(len(g["members"]) for g in localise) == {6: 144, 4: 108}
    for group in localise:
        models = {(wc["dataset"], wc["model"], wc["variant"], wc["seed"]) for _, wc in group["members"]}
        assert len(models) == 1 and all(rule.startswith("localise_") for rule, _ in group["members"])
    # Seven control models (3 pairs with clean twins, control-frozen) per (data set, model) of seed 1.
    assert Counter(len(g["members"]) for g in control) == {7: 36}
    assert all({rule for rule, _ in g["members"]} == {"control_finetune"} for g in control)
    # Every job of a packed rule is in a group, and nothing else is.
    in_groups = Counter(rule for g in groups for rule, _ in g["members"])
    assert set(in_groups) == PACKED_RULES
    assert not re.findall(rf"^rule ({'|'.join(PACKED_RULES)}):", packed, flags=re.M)


@pytest.mark.slow
def test_a_group_submission_asks_for_one_gpu_and_cores_cpus(packed):
    cores = int(yaml.safe_load(PROFILE.read_text())["cores"])
    groups = groups_of(packed)
    assert groups
    for group in groups:
        res = group["resources"]
        assert res["gres"] == "gpu:1" and not res["gpu"], (group["id"], res)  # --gres=gpu:1, no --gpus
        assert res["slurm_partition"] == "gpu"
        # Members run cores/2 at a time (threads: 2 each): the CPUs and memory of one round.
        at_once = min(len(group["members"]), cores // 2)
        assert group["threads"] == 2 * at_once <= cores
        assert res["mem_mb"] == 8000 * at_once


@pytest.mark.slow
def test_paper_submission_counts_with_and_without_packing(packed, tmp_path):
    assert submissions(packed) == SUBMISSIONS_PACKED
    unpacked = dry_run(tmp_path, "--workflow-profile", "none")
    assert not groups_of(unpacked)
    assert submissions(unpacked) == SUBMISSIONS_UNPACKED


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
                    reason="snakemake-executor-plugin-slurm is not installed (pip install -e '.[slurm]')")
def test_the_profile_itself_plans_the_same_submissions(packed, tmp_path):
    output = dry_run(tmp_path, "--workflow-profile", str(PROFILE.parent))
    assert submissions(output) == SUBMISSIONS_PACKED
    assert sorted(g["id"] for g in groups_of(output)) == sorted(g["id"] for g in groups_of(packed))
