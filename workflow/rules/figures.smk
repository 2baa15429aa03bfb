# Figures (DESIGN §5): each rule reads only cached summary tables plus its plotting module
# (and the shared style), so editing a plotting function re-runs only the figure jobs.
# Every figure is written as PDF and PNG; one colour and marker per data set throughout.

from pathlib import Path as _FigPath

FIGURES = f"{RESULTS}/figures"
FIGURE_SRC = _FigPath(workflow.basedir) / "workflow" / "memloc" / "figures"
FIGURE_EXTS = ["pdf", "png"]


def figure_code(module):
    """The plotting module's source and the shared style: inputs, so a code edit re-runs the figure."""
    return [str(FIGURE_SRC / f"{module}.py"), str(FIGURE_SRC / "style.py")]


def figure_outputs(stem, caption, category, subcategory=None, labels=None):
    """PDF and PNG of one figure, both in the report."""
    out = {}
    for ext in FIGURE_EXTS:
        kwargs = dict(caption=f"../report/{caption}.rst", category=category)
        if subcategory:
            kwargs["subcategory"] = subcategory
        kwargs["labels"] = {**(labels or {"figure": _FigPath(stem).name}), "format": ext.upper()}
        out[ext] = report(f"{FIGURES}/{stem}.{ext}", **kwargs)
    return out


def figure_common(name):
    return dict(log=f"{RESULTS}/logs/figures/{name}.log", benchmark=f"{RESULTS}/benchmarks/figures/{name}.tsv")


def figure_stems():
    """Stems (under results/figures) of every figure the config asks for."""
    stems = [f"heatmap_{t}" for t in STATS_WINDOW_TECHNIQUES]
    if STATS_WEIGHT_TECHNIQUES:
        stems += ["layer_weights", "mcog", "agreement_technique", "agreement_model"]
    if "probing" in LOC["techniques"]:
        stems.append("probing_f1")
    if "centroids" in LOC["techniques"]:
        stems.append("centroid_trajectories")
    if stats_use_control():
        stems.append("control_accuracy")
    if STATS_COUNTERFACTUAL and STATS_WEIGHT_TECHNIQUES:
        stems.append("mcog_generalisation")
    return stems


def figure_targets():
    """Every figure file (PDF and PNG) of the run (for `rule all`)."""
    return [f"{FIGURES}/{stem}.{ext}" for stem in figure_stems() for ext in FIGURE_EXTS]


_HEATMAP_OUT = figure_outputs(
    "heatmap_{technique}", "figure_heatmap", "Localisation", subcategory="{technique}",
    labels={"figure": "error heatmap", "technique": "{technique}"},
)
_AGREEMENT_OUT = figure_outputs(
    "agreement_{between}", "figure_agreement", "Agreement", labels={"figure": "agreement between {between}s"},
)
_WEIGHTS_OUT = figure_outputs("layer_weights", "figure_layer_weights", "Localisation")
_PROBING_OUT = figure_outputs("probing_f1", "figure_probing", "Localisation")
_CENTROIDS_OUT = figure_outputs("centroid_trajectories", "figure_centroids", "Localisation")
_MCOG_OUT = figure_outputs("mcog", "figure_mcog", "M-CoG")
_CONTROL_OUT = figure_outputs("control_accuracy", "figure_control", "Control")
_GENERALISATION_OUT = figure_outputs("mcog_generalisation", "figure_generalisation", "M-CoG")


rule figure_heatmap:
    """Memorisation error heatmap (window size x layer) of swapping or retraining."""
    input:
        table=f"{SUMMARY}/heatmaps.parquet",
        code=figure_code("heatmaps"),
    output:
        pdf=_HEATMAP_OUT["pdf"],
        png=_HEATMAP_OUT["png"],
    wildcard_constraints:
        technique="swapping|retraining",
    params:
        datasets=DATASETS,
    log:
        f"{RESULTS}/logs/figures/heatmap_{{technique}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/heatmap_{{technique}}.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_heatmap.py"


rule figure_layer_weights:
    """Per-layer weight curves per technique, grouped by task family."""
    input:
        table=f"{SUMMARY}/layer_weights.parquet",
        code=figure_code("weights"),
    output:
        pdf=_WEIGHTS_OUT["pdf"],
        png=_WEIGHTS_OUT["png"],
    params:
        datasets=DATASETS,
        families=lambda wc: stats_families(),
    log:
        figure_common("layer_weights")["log"],
    benchmark:
        figure_common("layer_weights")["benchmark"]
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_layer_weights.py"


rule figure_probing:
    """Probe F1 per layer, noisy against frozen model."""
    input:
        table=f"{SUMMARY}/probing.parquet",
        code=figure_code("probing"),
    output:
        pdf=_PROBING_OUT["pdf"],
        png=_PROBING_OUT["png"],
    params:
        datasets=DATASETS,
    log:
        figure_common("probing_f1")["log"],
    benchmark:
        figure_common("probing_f1")["benchmark"]
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_probing.py"


rule figure_centroids:
    """Centroid trajectories of clean and noisy examples per layer."""
    input:
        table=f"{SUMMARY}/centroids.parquet",
        events=f"{SUMMARY}/centroid_events.parquet",
        code=figure_code("centroids"),
    output:
        pdf=_CENTROIDS_OUT["pdf"],
        png=_CENTROIDS_OUT["png"],
    params:
        datasets=DATASETS,
    log:
        figure_common("centroid_trajectories")["log"],
    benchmark:
        figure_common("centroid_trajectories")["benchmark"]
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_centroids.py"


rule figure_mcog:
    """M-CoG per data set and technique with intervals."""
    input:
        table=f"{SUMMARY}/mcog.parquet",
        code=figure_code("mcog"),
    output:
        pdf=_MCOG_OUT["pdf"],
        png=_MCOG_OUT["png"],
    params:
        datasets=DATASETS,
    log:
        figure_common("mcog")["log"],
    benchmark:
        figure_common("mcog")["benchmark"]
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_mcog.py"


rule figure_agreement:
    """Agreement matrices (Pearson) between techniques or between models."""
    input:
        table=f"{SUMMARY}/statistics.parquet",
        code=figure_code("agreement"),
    output:
        pdf=_AGREEMENT_OUT["pdf"],
        png=_AGREEMENT_OUT["png"],
    wildcard_constraints:
        between="technique|model",
    params:
        method="pearson",
    log:
        f"{RESULTS}/logs/figures/agreement_{{between}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/agreement_{{between}}.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_agreement.py"


rule figure_control:
    """Control accuracy (acc@1, acc@2) per technique against chance."""
    input:
        table=f"{SUMMARY}/control_accuracy.parquet",
        code=figure_code("control"),
    output:
        pdf=_CONTROL_OUT["pdf"],
        png=_CONTROL_OUT["png"],
    params:
        datasets=DATASETS,
    log:
        figure_common("control_accuracy")["log"],
    benchmark:
        figure_common("control_accuracy")["benchmark"]
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_control.py"


rule figure_generalisation:
    """M-CoG against the data set's generalisation score."""
    input:
        mcog=f"{SUMMARY}/mcog.parquet",
        counterfactual=f"{SUMMARY}/counterfactual.parquet",
        code=figure_code("generalisation"),
    output:
        pdf=_GENERALISATION_OUT["pdf"],
        png=_GENERALISATION_OUT["png"],
    params:
        datasets=DATASETS,
    log:
        figure_common("mcog_generalisation")["log"],
    benchmark:
        figure_common("mcog_generalisation")["benchmark"]
    conda:
        CONDA_ENV
    resources:
        mem_mb=mem_mb_growing(2000),
        runtime=runtime_growing(10),
    script:
        "../scripts/figure_generalisation.py"


rule figures:
    """Every figure the config asks for."""
    input:
        lambda wc: figure_targets(),
