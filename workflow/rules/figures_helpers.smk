# Settings and helper functions of the figures rules (figures.smk).

# Figures: each rule reads only cached summary tables plus its plotting module
# (and the shared style), so editing a plotting function re-runs only the figure jobs.
# Every figure is written as PDF and PNG; one colour and marker per data set throughout.

from pathlib import Path as _FigPath

from memloc.summary_tables import summary_tables as _summary_tables

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
        out[ext] = report(results_path(paths.FIGURE, stem=stem, ext=ext), **kwargs)
    return out


def figure_stems():
    """Stems (under results/figures) of every figure the config asks for."""
    stems = [f"heatmap_{t}" for t in WINDOW_TECHNIQUES]
    if WEIGHT_TECHNIQUES:
        stems += ["layer_weights", "mcog", "agreement_technique", "agreement_model"]
    if "probing" in LOC["techniques"]:
        stems.append("probing_f1")
    if LABEL_PROBES:
        stems += ["label_probes", "probing_events"]
    if "centroids" in LOC["techniques"]:
        stems += ["centroid_trajectories", "centroid_crossing_initiation"]
    if CONTROL["enabled"]:
        stems.append("control_accuracy")
    if STATS["counterfactual"] and WEIGHT_TECHNIQUES:
        stems.append("mcog_generalisation")
    stems += [f"single_layer_{t}" for t in WINDOW_TECHNIQUES]
    if "swapping" in LOC["techniques"]:
        stems.append("swapping_clean_accuracy")
    if WEIGHT_TECHNIQUES:
        stems += ["mcog_technique_mean", "depth_generalisation"]
    if "probing" in LOC["techniques"] and "centroids" in LOC["techniques"]:
        stems.append("events_probing_centroids")
    return stems


def figure_targets():
    """Every figure file (PDF and PNG) of the run (for `rule all`)."""
    return [results_path(paths.FIGURE, stem=stem, ext=ext) for stem in figure_stems() for ext in FIGURE_EXTS]


_HEATMAP_OUT = figure_outputs(
    "heatmap_{technique}",
    "figure_heatmap",
    "Localisation",
    subcategory="{technique}",
    labels={"figure": "error heatmap", "technique": "{technique}"},
)
_AGREEMENT_OUT = figure_outputs(
    "agreement_{between}",
    "figure_agreement",
    "Agreement",
    labels={"figure": "agreement between {between}s"},
)
_WEIGHTS_OUT = figure_outputs("layer_weights", "figure_layer_weights", "Localisation")
_PROBING_OUT = figure_outputs("probing_f1", "figure_probing", "Localisation")
_LABEL_PROBES_OUT = figure_outputs("label_probes", "figure_label_probes", "Localisation")
_PROBING_EVENTS_OUT = figure_outputs("probing_events", "figure_probing_events", "Localisation")
_CENTROIDS_OUT = figure_outputs("centroid_trajectories", "figure_centroids", "Localisation")
_CENTROID_EVENTS_OUT = figure_outputs("centroid_crossing_initiation", "figure_centroid_events", "Localisation")
_MCOG_OUT = figure_outputs("mcog", "figure_mcog", "M-CoG")
_CONTROL_OUT = figure_outputs("control_accuracy", "figure_control", "Control")
_GENERALISATION_OUT = figure_outputs("mcog_generalisation", "figure_generalisation", "M-CoG")


def memorised_runs_input(wildcards):
    """`summary/memorised_runs.parquet` where the run has noisy models (figures name the runs that did not memorise)."""
    return [figure_table("memorised_runs")] if "noisy" in VARIANTS else []


def figure_depth_optional(wildcards):
    """Named optional inputs of `figure_depth`: the tables of `stats_statistics` it draws from (and the memorised runs)."""
    keep = ("counterfactual", "validation", "centroid_events", "probing_events", "memorised_runs")
    return _figure_optional(wildcards, keep)


def figure_events_optional(wildcards):
    """Named optional inputs of `figure_events`: probing and centroid events and the memorised runs, where the run has them."""
    keep = ("centroid_events", "probing_events", "memorised_runs")
    return _figure_optional(wildcards, keep)


def _figure_optional(wildcards, keep):
    """The tables `keep` of stats_optional (each named as its table) where the run has them, as the figures read them."""
    return {k: [figure_table(k)] if v else [] for k, v in stats_optional(wildcards).items() if k in keep}


_SINGLE_LAYER_OUT = figure_outputs(
    "single_layer_{technique}",
    "figure_single_layer",
    "Localisation",
    subcategory="{technique}",
    labels={"figure": "single-block error", "technique": "{technique}"},
)
_CLEAN_ACCURACY_OUT = figure_outputs("swapping_clean_accuracy", "figure_clean_accuracy", "Localisation")
_MCOG_MEAN_OUT = figure_outputs("mcog_technique_mean", "figure_mcog_mean", "M-CoG")
_DEPTH_OUT = figure_outputs("depth_generalisation", "figure_depth", "M-CoG")
_EVENTS_OUT = figure_outputs("events_probing_centroids", "figure_events", "Localisation")


# Figures from cached results (run.summary_cache, docs/protocol.md §9.1): the figure jobs read the
# cache (figure_source), and figure_tables gives the report the CSV copy of each cached table.


def cached_table_outputs():
    """figure_tables' outputs: the report's CSV copy of every summary table of the run."""
    return {
        t: report(
            results_path(paths.SUMMARY_CACHED_CSV, table=t),
            caption="../report/cached_table.rst",
            category="Tables",
            labels={"table": t},
        )
        for t in _summary_tables(config)
    }


def summary_cache_targets():
    """What `all` builds with run.summary_cache: every figure, memorisation map and report table, from the cache alone."""
    tables = [results_path(paths.SUMMARY_CACHED_CSV, table=t) for t in _summary_tables(config)]
    return figure_targets() + memorisation_map_targets(DATASETS, MODELS) + tables
