"""Config validation with messages a user can act on, and the effective per-job settings.

The workflow (workflow/rules/common.smk) calls :func:`validate` before building the DAG, so a
misspelt key, a bad value or a name that refers to nothing fails in about a second with the key's
path, the allowed values and a suggested spelling. The schema holds every default; validation
fills them in, and runs every check that ties one part of the config to another.
"""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any, Iterable

import jsonschema
import yaml

from memloc.control.config import check_control_config
from memloc.errors import ConfigError
from memloc.io import stable_hash

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"


def load_schema() -> dict:
    with open(SCHEMA_PATH) as fh:
        return yaml.safe_load(fh)


def _with_defaults(validator_cls):
    """A validator class that fills ``default`` values while it validates."""
    validate_properties = validator_cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])
                elif isinstance(sub, dict) and "$ref" in sub and key not in instance:
                    target = validator._resolver.lookup(sub["$ref"]).contents
                    if "default" in sub:
                        instance[key] = copy.deepcopy(sub["default"])
                    elif isinstance(target, dict) and "default" in target:
                        instance[key] = copy.deepcopy(target["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_cls, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def _path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "(top level)"


def _allowed_keys(error: jsonschema.ValidationError) -> list[str]:
    schema = error.schema
    keys = set(schema.get("properties", {}))
    return sorted(keys)


def _format_error(error: jsonschema.ValidationError, source: str) -> str:
    where = _path(error)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = _allowed_keys(error)
        unknown = sorted(set(error.instance) - set(allowed))
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"unknown key '{key}' at {where}"
            if close:
                hint += f" (did you mean '{close[0]}'?)"
            hints.append(hint)
        return f"{source}: " + "; ".join(hints) + f". Allowed keys there: {', '.join(allowed)}."
    if error.validator == "enum":
        return (
            f"{source}: {where} = {error.instance!r} is not allowed. "
            f"Allowed values: {', '.join(map(repr, error.validator_value))}."
        )
    if error.validator == "const" and where.endswith("kind"):
        return f"{source}: {where} = {error.instance!r} does not fit the keys given beside it."
    if error.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = {
            "minimum": ">=",
            "maximum": "<=",
            "exclusiveMinimum": ">",
            "exclusiveMaximum": "<",
        }[error.validator]
        return (
            f"{source}: {where} = {error.instance!r} is out of range; "
            f"it must be {bound} {error.validator_value}."
        )
    if error.validator == "required":
        return f"{source}: {where}: {error.message}. Add it."
    if error.validator == "pattern" or error.validator == "propertyNames":
        return f"{source}: {where}: {error.message}. Names may use letters, digits and '_' only."
    return f"{source}: {where}: {error.message}."


def _best_errors(errors: Iterable[jsonschema.ValidationError]) -> list[jsonschema.ValidationError]:
    """Prefer the most specific error inside if/then/allOf combinators."""
    out = []
    for err in errors:
        while err.context:
            err = jsonschema.exceptions.best_match(err.context)
        out.append(err)
    return out


def validate(raw: dict[str, Any] | None, source: str = "config") -> dict[str, Any]:
    """Return a validated copy of ``raw`` with defaults filled; raise ConfigError otherwise."""
    if not raw:
        raise ConfigError(f"{source}: the configuration is empty; start from the project's config.yaml.")
    cfg = copy.deepcopy(dict(raw))
    validator = _Validator(load_schema())
    errors = sorted(_best_errors(validator.iter_errors(cfg)), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        msgs = list(dict.fromkeys(_format_error(e, source) for e in errors))
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(msgs))
    _check_references(cfg, source)
    _check_registry_options(cfg, source)
    _check_retraining_options(cfg, source)
    try:
        check_control_config(cfg, source)
    except ConfigError as err:  # the pair checks do not know the file; every config error names it
        text = str(err)
        raise ConfigError(text if text.startswith(f"{source}:") else f"{source}: {text}") from None
    return cfg


def _check_registry_options(cfg: dict, source: str) -> None:
    """Options the schema cannot tie to each other: a neutral band needs binary movie reviews."""
    for name, spec in cfg["datasets"].items():
        src = spec["source"]
        if src["kind"] != "registry" or not src.get("neutral_band"):
            continue
        if src["corpus"] != "movie_reviews" or src.get("granularity", "binary") != "binary":
            raise ConfigError(
                f"{source}: datasets.{name}.source.neutral_band = {src['neutral_band']} applies to "
                f"corpus movie_reviews with granularity binary only (here corpus {src['corpus']}, "
                f"granularity {src.get('granularity', 'binary')}); remove neutral_band or set it to 0."
            )


def _check_retraining_options(cfg: dict, source: str) -> None:
    """Clipping over every parameter needs their gradients, which a cached prefix does not have."""
    block = cfg["localisation"]["retraining"]
    if block["clip_scope"] == "all" and block["cache_prefix"]:
        raise ConfigError(
            f"{source}: localisation.retraining.clip_scope = all needs the gradients of the frozen blocks below "
            "each window, which the cached prefix does not compute; set localisation.retraining.cache_prefix: false "
            "(or clip_scope: trainable)."
        )


def _check_references(cfg: dict, source: str) -> None:
    run = cfg["run"]
    for kind in ("datasets", "models"):
        names = run.get(kind)
        if names is None:
            continue
        defined = sorted(cfg[kind])
        for name in names:
            if name not in cfg[kind]:
                close = difflib.get_close_matches(name, defined, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ConfigError(
                    f"{source}: run.{kind} names '{name}', which is not defined under {kind}{hint}. "
                    f"Defined: {', '.join(defined)}."
                )


def _merge(base: dict, update: dict) -> dict:
    for key, value in update.items():
        base[key] = _merge(dict(base.get(key) or {}), value) if isinstance(value, dict) else value
    return base


def load_files(files: Iterable[str | Path]) -> dict[str, Any]:
    """The raw configuration of ``files`` merged as Snakemake merges ``--configfile A B`` (a later file's
    keys update an earlier one's, recursively): what :func:`validate` then checks, for commands run
    outside the workflow."""
    cfg: dict[str, Any] = {}
    for path in files:
        try:
            with open(path) as fh:
                loaded = yaml.safe_load(fh) or {}
        except OSError as err:
            raise ConfigError(f"{path}: cannot read the config file ({err.strerror}).") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: a config file must hold a mapping of keys, not {type(loaded).__name__}.")
        _merge(cfg, loaded)
    return cfg


def run_datasets(cfg: dict) -> list[str]:
    names = cfg["run"].get("datasets")
    return list(cfg["datasets"]) if names is None else list(names)


def run_models(cfg: dict) -> list[str]:
    names = cfg["run"].get("models")
    return list(cfg["models"]) if names is None else list(names)


def dataset_spec(cfg: dict, name: str) -> dict[str, Any]:
    """The effective settings of data set ``name``: its own keys plus the merged noise block."""
    spec = copy.deepcopy(cfg["datasets"][name])
    spec["noise"] = {**cfg["noise"], **spec.get("noise", {})}
    spec["name"] = name
    return spec


def model_spec(cfg: dict, name: str, dataset: str | None = None) -> dict[str, Any]:
    """The effective settings of model ``name`` (trained on ``dataset``): its keys plus the global
    training block, overridden by the model's own, then by the data set's (a task's epochs or learning
    rate hold for every model it trains)."""
    spec = copy.deepcopy(cfg["models"][name])
    task = cfg["datasets"][dataset].get("training", {}) if dataset is not None else {}
    spec["training"] = {**cfg["training"], **spec.get("training", {}), **task}
    spec["name"] = name
    return spec


def spec_hash(spec: Any) -> str:
    """Provenance hash of an effective spec (what a job's output depends on)."""
    return stable_hash(spec)


def model_defaults() -> dict[str, Any]:
    """The schema's defaults of a model entry's own keys (``max_length``, ``pair_encoding``, ...), without
    ``source`` and ``training``: for code that tokenises outside a validated config (tests, benchmarks)."""
    schema = load_schema()
    out: dict[str, Any] = {"source": {"kind": "random", "model_type": "bert"}}
    errors = list(_Validator(schema).evolve(schema=schema["$defs"]["model"]).iter_errors(out))
    if errors:
        raise ConfigError(f"schema defaults of a model entry do not validate: {errors[0].message}")
    return {k: v for k, v in out.items() if k not in ("source", "training")}


def block_defaults(block: str) -> dict[str, Any]:
    """The schema's defaults of top-level block ``block``: what a config that omits it gets.

    The one source of defaults for code that builds settings outside a validated config (tests,
    benchmarks); the schema stays their only home.
    """
    schema = load_schema()
    out: dict[str, Any] = {}
    errors = list(_Validator(schema).evolve(schema=schema["properties"][block]).iter_errors(out))
    if errors:
        raise ConfigError(f"schema defaults of {block!r} do not validate: {errors[0].message}")
    return out
