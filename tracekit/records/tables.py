"""The case book's tables, each described once: its columns, and the SQL built from them.

A :class:`Table` names a table's stored columns in the schema's order (tests compare
them with the migrated schema, so the two cannot drift), which of them identify a
person or are worked out by the rules, and gives the INSERT statement and the row
tuple for it from values given by name. The case book, the importer, the export and
the benchmark's store generator all write and read through these specs, so adding a
person field touches the migration, :data:`PEOPLE` and the model.

A :class:`View` is a SELECT list whose values are read by name (``row["test_date"]``),
never by position: each item is a name and the SQL expression that gives it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any


class Table:
    """One stored table: ``columns`` in schema order, and the subsets that mean something."""

    def __init__(
        self,
        name: str,
        columns: Sequence[str],
        *,
        identity: Sequence[str] = (),
        details: Sequence[str] = (),
        derived: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.columns = tuple(columns)
        #: The values that identify a person (matched for duplicates and protection).
        self.identity = tuple(identity)
        #: The values entered about a record (validated input), beyond its links.
        self.details = tuple(details)
        #: The values the rules work out (see :mod:`tracekit.records.derived`).
        self.derived = tuple(derived)
        for subset in (self.identity, self.details, self.derived):
            unknown = set(subset) - set(self.columns)
            if unknown:
                raise ValueError(f"{name}: {sorted(unknown)} are not columns")
        #: The INSERT of a whole row (``row`` gives its values; a missing one is NULL).
        self.insert_sql = f"INSERT INTO {name}({', '.join(self.columns)}) VALUES({', '.join('?' * len(self.columns))})"

    def row(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """The values for :attr:`insert_sql`, by name (NULL for those not given: an id
        is then assigned, and a NOT NULL column left out fails loudly)."""
        return tuple(map(values.get, self.columns))

    def select(self, alias: str, names: Iterable[str] | None = None) -> list[tuple[str, str]]:
        """View items for ``names`` (default: every column) of this table as ``alias``."""
        return [(name, f"{alias}.{name}") for name in (self.columns if names is None else names)]


class View:
    """A SELECT list read by name: ``items`` are (name, SQL expression) in order, then
    optionally ``nested``, (name, view): another view's values, read as one dict under
    that name (a case's person: ``row["person"]["name"]``)."""

    def __init__(self, items: Iterable[tuple[str, str]], *, nested: tuple[str, View] | None = None) -> None:
        items = list(items)
        self.names = tuple(name for name, _ in items)
        if len(set(self.names)) != len(self.names) or (nested is not None and nested[0] in self.names):
            raise ValueError(f"a view names a value twice: {self.names}")
        self.nested = nested
        #: How many values a row of this view has.
        self.width: int = len(items) + (nested[1].width if nested is not None else 0)
        #: The SELECT list.
        self.sql: str = ", ".join(
            [expression for _, expression in items] + ([nested[1].sql] if nested is not None else [])
        )

    def named(self, row: Sequence[Any]) -> dict[str, Any]:
        """One fetched row as name -> value."""
        record = dict(zip(self.names, row))
        if self.nested is not None:
            name, view = self.nested
            record[name] = view.named(row[len(self.names) :])
        return record


PEOPLE = Table(
    "people",
    (
        "id",
        "ref",
        "name",
        "name_key",
        "date_of_birth",
        "nhs_number",
        "phone",
        "email",
        "address",
        "postcode",
        "occupation",
        "search_terms",
        "created_at",
        "updated_at",
        "referral_id",
    ),
    identity=("name", "date_of_birth", "nhs_number", "phone", "email", "address", "postcode"),
    details=("name", "date_of_birth", "nhs_number", "phone", "email", "address", "postcode", "occupation"),
)

CASES = Table(
    "cases",
    (
        "id",
        "ref",
        "person_id",
        "test_date",
        "test_type",
        "test_result",
        "symptom_onset",
        "status",
        "notes",
        "source_exposure_id",
        "ruleset_id",
        "infectious_start",
        "infectious_end",
        "isolation_end",
        "created_at",
        "updated_at",
        "closed_at",
    ),
    details=("test_date", "symptom_onset", "test_type", "test_result", "notes"),
    derived=("ruleset_id", "infectious_start", "infectious_end", "isolation_end"),
)

EXPOSURES = Table(
    "exposures",
    (
        "id",
        "ref",
        "case_id",
        "person_id",
        "last_exposure",
        "setting",
        "proximity_m",
        "duration_min",
        "face_to_face",
        "direct_contact",
        "trace_status",
        "notes",
        "ruleset_id",
        "close_contact",
        "clause",
        "risk_rank",
        "isolation_end",
        "created_at",
        "updated_at",
    ),
    details=("last_exposure", "setting", "proximity_m", "duration_min", "face_to_face", "direct_contact", "notes"),
    derived=("ruleset_id", "close_contact", "clause", "risk_rank", "isolation_end"),
)

#: The tables described here, by name.
TABLES = {table.name: table for table in (PEOPLE, CASES, EXPOSURES)}

#: A person's details beyond the name (filled in by a merge, read by the importer).
PERSON_DETAILS_BESIDES_NAME = tuple(name for name in PEOPLE.details if name != "name")
