"""Which columns an import reads: the fields of each kind, their aliases, and the mapping.

A source column is matched to a field by its header: first by ``--map`` and the mapping
file (exact header text), then by the field's name or one of its aliases. Headers are
compared in a normal form (case-folded; every run of characters other than letters and
digits is one space), so "Phone Number", "phone_number" and "PHONE-NUMBER" are the same
header. Columns that match nothing are ignored and listed in the summary.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from tracekit.errors import ValidationError
from tracekit.files import format_size, read_regular_file

KINDS = ("cases", "contacts")
#: A mapping file is a few lines; anything larger is not one (docs/import-guide.md).
MAX_MAPPING_FILE_BYTES = 1 << 20
IGNORE = "ignore"
#: The column the rejects file adds; ignored on re-import.
REJECTS_COLUMN = "import_error"

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normal_header(text: str) -> str:
    """The form headers and aliases are compared in: ``"Phone_Number "`` -> ``"phone number"``."""
    return " ".join(_NON_ALNUM.sub(" ", str(text).casefold()).split())


@dataclass(frozen=True)
class FieldSpec:
    name: str
    description: str
    example: str  # made-up data for the template
    aliases: tuple[str, ...] = ()
    #: Only matched by alias in files of these kinds (both when empty).
    kinds: tuple[str, ...] = ()


def _f(name: str, description: str, example: str, *aliases: str, kinds: tuple[str, ...] = ()) -> FieldSpec:
    return FieldSpec(name, description, example, aliases, kinds)


#: Every field an import can fill, in template order. ``given_name`` and ``family_name``
#: are an alternative to ``name`` (joined with a space).
FIELDS: tuple[FieldSpec, ...] = (
    _f(
        "external_id",
        "the record's id in the source system (makes re-import safe)",
        "LAB-2020-000123",
        "external id",
        "id",
        "record id",
        "source id",
        "ext id",
        "reference id",
    ),
    _f(
        "case_external_id",
        "contacts: the external id of their case, from an earlier case import",
        "LAB-2020-000123",
        "case id",
        "case external id",
        "index case id",
        "case source id",
        "case number",
        kinds=("contacts",),
    ),
    _f(
        "case_ref",
        "contacts: the tracekit reference of their case (C-...)",
        "",
        "case",
        "case ref",
        "case reference",
        "tracekit case",
        "tracekit ref",
        kinds=("contacts",),
    ),
    _f(
        "person_external_id",
        "the person's id in the source system (optional)",
        "",
        "person id",
        "person external id",
        "patient id",
        "subject id",
        "person number",
    ),
    _f("name", "full name", "Ada Example", "full name", "person name", "patient name", "contact name", "case name"),
    _f(
        "given_name",
        "first name (with family_name, instead of name)",
        "",
        "first name",
        "first names",
        "forename",
        "forenames",
        "given name",
        "given names",
    ),
    _f("family_name", "family name (with given_name, instead of name)", "", "last name", "surname", "family name"),
    _f(
        "date_of_birth",
        "date of birth",
        "14/03/1985",
        "dob",
        "d o b",
        "date of birth",
        "birth date",
        "birthdate",
        "born",
    ),
    _f("nhs_number", "NHS number (spaces allowed)", "999 000 0018", "nhs number", "nhs no", "nhs", "nhs num", "nhs id"),
    _f(
        "phone",
        "phone number",
        "07700 900123",
        "mobile",
        "phone number",
        "tel",
        "telephone",
        "telephone number",
        "mobile number",
        "mobile phone",
        "contact number",
        "tel no",
        "phone no",
        "mobile no",
        "cell",
        "cell phone",
    ),
    _f("email", "email address", "ada.example@example.com", "e mail", "email address", "e mail address"),
    _f("address", "home address", "1 Example Street, Exampletown", "home address", "street address"),
    _f("postcode", "UK postcode", "SW1A 1AA", "post code", "postal code", "zip", "zip code"),
    _f(
        "occupation",
        "occupation (some occupations mark the person sensitive)",
        "teacher",
        "job",
        "job title",
        "profession",
        "employment",
        "work",
    ),
    _f(
        "role",
        "sensitive role, if any (undercover-officer, counter-terrorism, protected-witness, victim, other)",
        "",
        "sensitive role",
        "sensitive",
        "special category",
        "role category",
    ),
    _f(
        "test_date",
        "cases: date of the positive test",
        "20/10/2020",
        "date of test",
        "specimen date",
        "sample date",
        "date tested",
        "swab date",
        "test taken",
        kinds=("cases",),
    ),
    _f(
        "test_type",
        "cases: pcr, lfd, lamp or other (default pcr)",
        "pcr",
        "test",
        "test kind",
        "test method",
        kinds=("cases",),
    ),
    _f(
        "test_result",
        "cases: positive, negative or void (default positive)",
        "positive",
        "result",
        "outcome",
        kinds=("cases",),
    ),
    _f(
        "symptom_onset",
        "cases: date symptoms started (or asymptomatic = yes)",
        "18/10/2020",
        "onset",
        "onset date",
        "date of onset",
        "symptom onset date",
        "symptoms started",
        "date symptoms started",
        kinds=("cases",),
    ),
    _f("asymptomatic", "cases: yes when there were no symptoms", "no", "no symptoms", kinds=("cases",)),
    _f(
        "last_exposure",
        "contacts: date of last contact with the case",
        "19/10/2020",
        "last exposure date",
        "last contact",
        "last contact date",
        "date of last contact",
        "date of contact",
        "contact date",
        "exposure date",
        "date of exposure",
        kinds=("contacts",),
    ),
    _f(
        "setting",
        "contacts: household, workplace, education, healthcare, social, travel or other",
        "household",
        "contact setting",
        "exposure setting",
        "where",
        "location type",
        "place type",
        kinds=("contacts",),
    ),
    _f(
        "proximity_m",
        "contacts: closest distance in metres",
        "1",
        "proximity",
        "distance",
        "distance m",
        "distance metres",
        "distance meters",
        "proximity metres",
        kinds=("contacts",),
    ),
    _f(
        "duration_min",
        "contacts: minutes within that distance",
        "30",
        "duration",
        "duration mins",
        "duration minutes",
        "minutes",
        "time together",
        kinds=("contacts",),
    ),
    _f("face_to_face", "contacts: yes if face to face", "yes", "f2f", "face to face contact", kinds=("contacts",)),
    _f(
        "direct_contact",
        "contacts: yes if skin-to-skin contact",
        "no",
        "physical contact",
        "skin to skin",
        kinds=("contacts",),
    ),
    _f("notes", "free text", "", "note", "comments", "comment", "remarks"),
)
FIELD_BY_NAME = {spec.name: spec for spec in FIELDS}
#: Aliases that mean different fields in the two kinds of file ("case id" is the record's
#: own id in a case file, and the id of the contact's case in a contact file).
KIND_ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "cases": {"external_id": ("case id", "case number", "result id", "test id", "specimen id", "lab id")},
    "contacts": {"external_id": ("contact id",)},
}

_COMMON = (
    "external_id",
    "person_external_id",
    "name",
    "given_name",
    "family_name",
    "date_of_birth",
    "nhs_number",
    "phone",
    "email",
    "address",
    "postcode",
    "occupation",
    "role",
    "notes",
)
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "cases": (*_COMMON[:-1], "test_date", "test_type", "test_result", "symptom_onset", "asymptomatic", "notes"),
    "contacts": (
        "external_id",
        "case_external_id",
        "case_ref",
        *_COMMON[1:-1],
        "last_exposure",
        "setting",
        "proximity_m",
        "duration_min",
        "face_to_face",
        "direct_contact",
        "notes",
    ),
}
#: Fields left out of the template (alternatives to ``name``).
_NOT_IN_TEMPLATE = {"given_name", "family_name"}
PERSON_FIELDS = ("name", "date_of_birth", "nhs_number", "phone", "email", "address", "postcode", "occupation")


def alias_table(kind: str) -> dict[str, str]:
    """Normal header -> field for ``kind``. Raises if two fields claim one alias (a bug)."""
    table: dict[str, str] = {}
    for name in KIND_FIELDS[kind]:
        spec = FIELD_BY_NAME[name]
        if spec.kinds and kind not in spec.kinds:
            continue
        for alias in (name, *spec.aliases, *KIND_ALIASES[kind].get(name, ())):
            key = normal_header(alias)
            if table.get(key, name) != name:
                raise AssertionError(f"alias {alias!r} of {name} is also an alias of {table[key]}")
            table[key] = name
    return table


@dataclass
class ColumnPlan:
    """How the columns of one file map to fields."""

    kind: str
    headers: list[str]
    #: field -> column index
    index: dict[str, int] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    def mapping(self) -> dict[str, str]:
        """header -> field, for the summary."""
        return {self.headers[i]: name for name, i in sorted(self.index.items(), key=lambda kv: kv[1])}


def _header_error(problem: str, expected: str, field_name: str = "header") -> ValidationError:
    return ValidationError(field_name, problem, expected=expected, row=1)


def plan_columns(
    kind: str, headers: list[str], overrides: dict[str, str] | None = None, *, complete: bool = True
) -> ColumnPlan:
    """Match ``headers`` to the fields of ``kind``.

    ``overrides`` (from ``--map`` and the mapping file) map header text to a field name or
    ``"ignore"``. With ``complete`` (CSV and spreadsheets, whose header is known at once),
    an override naming a column the file lacks and a missing required column are errors;
    JSON Lines objects are checked row by row instead.
    """
    overrides = dict(overrides or {})
    aliases = alias_table(kind)
    allowed = set(KIND_FIELDS[kind])
    normal_overrides: dict[str, str] = {}
    for column, target in overrides.items():
        target_name = target.strip()
        if target_name in ("-", ""):
            target_name = IGNORE
        if target_name != IGNORE and target_name not in allowed:
            raise ValidationError(
                "map",
                f"maps column {column!r} to an unknown field {target!r}",
                expected=f"one of {', '.join(KIND_FIELDS[kind])}, or {IGNORE}",
            )
        normal_overrides[normal_header(column)] = target_name
    plan = ColumnPlan(kind, list(headers))
    used_overrides: set[str] = set()
    for i, header in enumerate(headers):
        text = str(header) if header is not None else ""
        key = normal_header(text)
        if not key:
            continue
        if key in normal_overrides:
            used_overrides.add(key)
            target = normal_overrides[key]
        elif key == normal_header(REJECTS_COLUMN):
            continue
        else:
            target = aliases.get(key, IGNORE)
        if target == IGNORE:
            plan.ignored.append(text)
            continue
        if target in plan.index:
            other = headers[plan.index[target]]
            raise _header_error(
                f"columns {other!r} and {text!r} both map to {target}",
                f'one column per field; choose with --map "{text}=ignore" or --map "{other}=ignore"',
            )
        plan.index[target] = i
    if complete:
        unused = [c for c in overrides if normal_header(c) not in used_overrides]
        if unused:
            raise ValidationError(
                "map",
                f"names a column the file does not have: {unused[0]!r}",
                expected="a column name from the file's header row",
                row=1,
            )
        check_required_columns(plan)
    return plan


def check_required_columns(plan: ColumnPlan) -> None:
    """Every required column the header lacks, named in one error (not one per run)."""
    missing = missing_columns(plan)
    if not missing:
        return
    names = [name for name, _ in missing]
    expected = "; ".join(hint for _, hint in missing)
    if plan.ignored:
        shown = ", ".join(repr(c) for c in plan.ignored[:MAX_IGNORED_SHOWN])
        more = f" and {len(plan.ignored) - MAX_IGNORED_SHOWN} more" if len(plan.ignored) > MAX_IGNORED_SHOWN else ""
        expected += f". Columns not mapped to any field: {shown}{more}"
    if len(missing) == 1:
        raise _header_error(f"has no {names[0]} column", expected, names[0])
    raise _header_error(f"has no column for {len(names)} required fields: {', '.join(names)}", expected)


#: Unmapped columns named in a missing-column error (candidates for --map).
MAX_IGNORED_SHOWN = 10


def missing_columns(plan: ColumnPlan) -> list[tuple[str, str]]:
    """``(field, how to provide it)`` for each required column the header lacks."""
    have = set(plan.index)
    needed = ["external_id"]
    if plan.kind == "cases":
        needed.append("test_date")
    else:
        needed += ["last_exposure", "setting"]
    missing = [(name, _column_hint(name)) for name in needed if name not in have]
    if "name" not in have and not {"given_name", "family_name"} <= have:
        missing.append(("name", _column_hint("name") + ", or given_name and family_name"))
    if plan.kind == "contacts" and not have & {"case_ref", "case_external_id"}:
        missing.append(("case_ref", _column_hint("case_ref") + ", or " + _column_hint("case_external_id")))
    if plan.kind == "cases" and not have & {"symptom_onset", "asymptomatic"}:
        # Every row would need one of them: a blank onset is not taken to mean "no symptoms".
        missing.append(("symptom_onset", _column_hint("symptom_onset") + ", or " + ASYMPTOMATIC_ADVICE))
    return missing


#: How to tell tracekit a case had no symptoms (docs/import-guide.md, "Symptom onset").
ASYMPTOMATIC_ADVICE = (
    "an asymptomatic column saying yes for the cases without symptoms "
    '(--map "Your Column=asymptomatic"); a blank onset is never taken to mean no symptoms, '
    "because it moves the infectious period"
)


def _column_hint(name: str) -> str:
    spec = FIELD_BY_NAME[name]
    shown = ", ".join(repr(a) for a in (name, *spec.aliases[:3]))
    return f'a column {shown} ({spec.description}), or --map "Your Column={name}"'


def parse_map_options(values: list[str]) -> dict[str, str]:
    """``--map "Column Name=field"`` options (the last ``=`` separates)."""
    mapping: dict[str, str] = {}
    for value in values:
        column, sep, target = value.rpartition("=")
        if not sep or not column.strip():
            raise ValidationError("map", "is not of the form COLUMN=FIELD", expected='--map "Mobile Tel=phone"')
        mapping[column.strip()] = target.strip()
    return mapping


def read_mapping_file(path: Path) -> dict[str, str]:
    """A TOML mapping file: a ``[columns]`` table of ``"Column Name" = "field"``."""

    def unreadable(problem: str) -> ValidationError:
        return ValidationError(
            "mapping", problem, expected=f"a readable TOML file of at most {format_size(MAX_MAPPING_FILE_BYTES)}"
        )

    data = read_regular_file(path, what="mapping file", max_bytes=MAX_MAPPING_FILE_BYTES, error=unreadable)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError("mapping", f"{path} is not UTF-8 text", expected="a UTF-8 TOML file") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(
            "mapping", f"is not valid TOML ({exc})", expected='[columns] then lines like "Mobile Tel" = "phone"'
        ) from None
    except RecursionError:  # tomllib recurses once per level of nested arrays and tables
        raise ValidationError(
            "mapping",
            f"{path} nests arrays or tables too deeply to be a mapping",
            expected='[columns] then lines like "Mobile Tel" = "phone"',
        ) from None
    unknown = set(document) - {"columns"}
    columns = document.get("columns")
    if unknown or not isinstance(columns, dict):
        raise ValidationError(
            "mapping", "must hold one [columns] table", expected='[columns] then lines like "Mobile Tel" = "phone"'
        )
    mapping = {}
    for column, target in columns.items():
        if not isinstance(target, str):
            raise ValidationError(
                "mapping", f"maps {column!r} to something that is not text", expected='"Column" = "field"'
            )
        mapping[str(column)] = target
    return mapping


def template_fields(kind: str) -> list[str]:
    return [name for name in KIND_FIELDS[kind] if name not in _NOT_IN_TEMPLATE]


def template_rows(kind: str) -> list[list[str]]:
    """The header row and one example row of made-up data."""
    names = template_fields(kind)
    example = {name: FIELD_BY_NAME[name].example for name in names}
    if kind == "contacts":
        example.update(
            {
                "external_id": "CT-2020-000456",
                "name": "Bob Example",
                "date_of_birth": "02/07/1990",
                "nhs_number": "999 000 0026",
                "phone": "07700 900456",
                "email": "bob.example@example.com",
                "occupation": "nurse",
            }
        )
    return [names, [example[name] for name in names]]
