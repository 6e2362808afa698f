"""Scripted bulk import of cases and contacts: fast, strict, atomic, safe for sensitive rows.

``import_file(store, "cases" | "contacts", path_or_dash, ImportOptions(...))`` is the
library entry point (the CLI is ``tracekit import``); see :mod:`tracekit.importers.engine`
for how the single pass works and docs/import-guide.md for the file formats, columns and
guarantees.
"""

from tracekit.importers.engine import ImportInvalid, ImportOptions, ImportSummary, Problem, import_file

__all__ = ["ImportInvalid", "ImportOptions", "ImportSummary", "Problem", "import_file"]
