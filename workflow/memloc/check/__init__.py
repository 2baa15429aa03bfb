"""``memloc check [RESULTS]``: validate every known table of a results tree and its provenance.

Each Parquet contract table has a schema in ``workflow/schemas/tables/<name>.yaml``: a JSON Schema
(draft 2020-12) that one row, as a JSON object, must satisfy (required columns, types, enums,
ranges), plus an ``x-memloc`` block with the table-level rules:

``path``, ``wildcards``
    the template in :mod:`memloc.paths` of the files that hold this table, and optional regular
    expressions restricting some of its wildcards (e.g. ``technique: swapping|retraining``); the
    wildcards (``dataset``, ``model``, ``technique``, ...) identify the run (rules use ``dataset``
    to find the data table).
``path_columns``
    path wildcards that are also columns and must equal them (e.g. a weights file's ``technique``).
``unique``
    column sets whose values are unique (e.g. ``[[example_id]]``).
``metadata``
    keys the file's memloc Parquet metadata must carry.
``rules``
    named cross-column and cross-file checks (:data:`RULES`), a name or ``{name: argument}``.

Columns are checked vectorised, which is equivalent to validating every row with ``jsonschema``
for the keywords used here (:data:`COLUMN_KEYWORDS`); a schema using another keyword is refused,
so it never silently checks less than it says. NaN counts as null, infinities are never numbers.

Findings come in three levels: ``error`` (a table violates its schema: corrupt or hand-edited),
``stale`` (it was computed from an input that has changed since: provenance digests, the tokens'
data hash, recorded checkpoint info, example ids the data table no longer has) and ``warning``
(leftovers of interrupted writes, files no schema describes, another memloc version). The exit
status is 1 when there is an error or a stale table, else 0; 2 when there is no results directory.

The package follows those steps: :mod:`.schemas` reads the schema files and maps a file's path to
its schema, :mod:`.columns` checks one table against its schema, :mod:`.rules` holds the
table-level rules, :mod:`.provenance` finds stale tables, :mod:`.tree` walks a results tree into a
:class:`~.report.Report`, and :mod:`.command` is ``memloc check`` itself.
"""

from memloc.check.columns import check_column, check_frame
from memloc.check.command import add_check_arguments, run_check
from memloc.check.report import ERROR, STALE, WARNING, Finding, Report, format_report
from memloc.check.rules import RULES
from memloc.check.schemas import SCHEMA_DIR, SchemaError, TableSchema, load_schema, load_schemas, match
from memloc.check.tree import check_results

__all__ = [
    "ERROR",
    "RULES",
    "SCHEMA_DIR",
    "STALE",
    "WARNING",
    "Finding",
    "Report",
    "SchemaError",
    "TableSchema",
    "add_check_arguments",
    "check_column",
    "check_frame",
    "check_results",
    "format_report",
    "load_schema",
    "load_schemas",
    "match",
    "run_check",
]
