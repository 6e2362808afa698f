"""Redaction policies: named allow-lists of fields per record type.

A policy says which fields of each record type leave the machine; anything not listed is
dropped. Three are built in (``central-handover``, ``vetted-team``, ``statistics``);
custom ones are TOML files (docs/policies.md). What a policy can never do is include a
person in a sensitive role, or what is associated with them, in a standard handover:
that is decided before the allow-list is applied (see :mod:`tracekit.redaction.apply`),
so a malicious custom policy cannot ask for it.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracekit.domain.text import has_control_characters
from tracekit.errors import PolicyError
from tracekit.files import read_regular_file

#: A policy file is a page of TOML; anything larger is not one (docs/policies.md).
MAX_POLICY_FILE_BYTES = 1 << 20
IDENTITY_FIELDS = ("name", "date_of_birth", "nhs_number", "phone", "email", "address", "postcode")

CASE_FIELDS = (
    "ref",
    "person",
    "pseudonym",
    *IDENTITY_FIELDS,
    "test_date",
    "test_type",
    "test_result",
    "symptom_onset",
    "asymptomatic",
    "status",
    "infectious_start",
    "infectious_end",
    "isolation_end",
    "ruleset",
    "source_exposure",
    "notes",
    "updated_at",
)
CONTACT_FIELDS = (
    "ref",
    "case",
    "person",
    "pseudonym",
    *IDENTITY_FIELDS,
    "last_exposure",
    "setting",
    "proximity_m",
    "duration_min",
    "face_to_face",
    "direct_contact",
    "close_contact",
    "clause",
    "trace_status",
    "isolation_end",
    "ruleset",
    "notes",
    "updated_at",
)
RECORD_FIELDS = {"case": CASE_FIELDS, "contact": CONTACT_FIELDS}
FREE_TEXT_FIELDS = frozenset({"notes"})

STATISTICS_DIMENSIONS = (
    "cases_by_test_date",
    "cases_by_status",
    "contacts_by_exposure_date",
    "contacts_by_setting",
    "contacts_by_area",
    "contacts_by_trace_status",
)
RECIPIENT_ROLES = ("central-team", "vetted-team")
SUPPRESSION_THRESHOLD = 5


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    kind: str  # "records" | "statistics"
    recipient_roles: tuple[str, ...]
    fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: "standard": ordinary records, sensitive ones as withheld stubs (any custom policy).
    #: "sensitive": only marked people and their associates, in full, plus sealed referrals
    #: (the built-in vetted-team policy only).
    scope: str = "standard"
    role_category: bool = False
    statistics: tuple[str, ...] = ()
    source: str = "built-in"
    #: Whether asking for ``pseudonym`` needs the store to have the team key (an export fails
    #: without it). Only the built-in central handover carries it when there is one and
    #: leaves it empty otherwise, so that a tracer without a team key can still hand over.
    pseudonym_needs_key: bool = True

    def canonical(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "kind": self.kind,
            "recipient_roles": list(self.recipient_roles),
            "fields": {k: list(v) for k, v in sorted(self.fields.items())},
            "scope": self.scope,
            "role_category": self.role_category,
            "statistics": list(self.statistics),
        }

    @property
    def sha256(self) -> str:
        body = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(body).hexdigest()

    def allows(self, record_type: str, field_name: str) -> bool:
        return field_name in self.fields.get(record_type, ())


_CENTRAL_CASE = tuple(f for f in CASE_FIELDS if f not in ("notes", "source_exposure"))
_CENTRAL_CONTACT = tuple(f for f in CONTACT_FIELDS if f != "notes")

BUILT_IN: dict[str, Policy] = {
    "central-handover": Policy(
        name="central-handover",
        description=(
            "What a central team needs to follow up ordinary cases and contacts: identity and "
            "contact details, dates, setting, proximity, duration, and the team pseudonym (when "
            "the tracer has the team key) to link people across tracers. No free-text notes. "
            "People in sensitive roles and everything associated with them appear only as "
            "withheld stubs with their referral reference."
        ),
        kind="records",
        recipient_roles=("central-team",),
        fields={"case": _CENTRAL_CASE, "contact": _CENTRAL_CONTACT},
        pseudonym_needs_key=False,
    ),
    "vetted-team": Policy(
        name="vetted-team",
        description=(
            "For the vetted outbreak team only: the full records of people in sensitive roles "
            "not yet referred, their associated contacts, and the sealed referral envelopes."
        ),
        kind="records",
        recipient_roles=("vetted-team",),
        fields={
            "case": tuple(f for f in CASE_FIELDS if f != "pseudonym"),
            "contact": tuple(f for f in CONTACT_FIELDS if f != "pseudonym"),
        },
        scope="sensitive",
        role_category=True,
    ),
    "statistics": Policy(
        name="statistics",
        description=(
            'Counts only (by date, setting, area, status); counts of 1 to 4 are shown as "<5", '
            "with secondary suppression so totals cannot reveal a suppressed cell."
        ),
        kind="statistics",
        recipient_roles=("central-team", "vetted-team"),
        statistics=STATISTICS_DIMENSIONS,
    ),
}


def get_policy(name_or_path: str) -> Policy:
    """A built-in policy by name, or a custom one from a TOML file path."""
    if name_or_path in BUILT_IN:
        return BUILT_IN[name_or_path]
    path = Path(name_or_path).expanduser()
    if path.suffix == ".toml" or path.exists():
        return load_policy_file(path)
    raise PolicyError(
        f"no policy named {name_or_path!r}",
        hint="built-in policies: " + ", ".join(BUILT_IN) + "; or give the path of a .toml policy file",
    )


def load_policy_file(path: Path) -> Policy:
    data = read_regular_file(path, what="policy file", max_bytes=MAX_POLICY_FILE_BYTES, error=PolicyError)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError(f"cannot read policy file {path}: it is not UTF-8 text") from None
    return parse_policy(text, source=str(path))


def _problem(source: str, message: str) -> PolicyError:
    return PolicyError(f"{source}: {message}", hint="see docs/policies.md for the policy file format")


def parse_policy(text: str, *, source: str = "<policy>") -> Policy:
    """Parse and check a custom policy. Every problem names the key and what was expected."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _problem(source, f"not valid TOML ({exc})") from None
    except RecursionError:  # tomllib recurses once per level of nested arrays and tables
        raise _problem(source, "arrays or tables are nested too deeply to be a policy") from None
    allowed_top = {"name", "description", "kind", "recipient_roles", "fields", "statistics", "role_category"}
    unknown = set(data) - allowed_top
    if unknown:
        raise _problem(
            source, f"unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed_top))}"
        )
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise _problem(source, "'name' must be a string of 1 to 64 characters")
    if has_control_characters(name):
        raise _problem(source, "'name' holds control characters (escape sequences, bidirectional overrides)")
    if name in BUILT_IN:
        raise _problem(source, f"'name' {name!r} is the name of a built-in policy; choose another")
    description = data.get("description", "")
    if not isinstance(description, str) or len(description) > 2000:
        raise _problem(source, "'description' must be a string of at most 2,000 characters")
    if has_control_characters(description, multiline=True):
        raise _problem(source, "'description' holds control characters (escape sequences, bidirectional overrides)")
    kind = data.get("kind", "records")
    if kind not in ("records", "statistics"):
        raise _problem(source, '\'kind\' must be "records" or "statistics"')
    roles = data.get("recipient_roles", ["central-team"])
    if not isinstance(roles, list) or not roles or any(r not in RECIPIENT_ROLES for r in roles):
        raise _problem(source, f"'recipient_roles' must be a non-empty list of {', '.join(RECIPIENT_ROLES)}")
    role_category = data.get("role_category", False)
    if not isinstance(role_category, bool):
        raise _problem(source, "'role_category' must be true or false")
    fields: dict[str, tuple[str, ...]] = {}
    statistics: tuple[str, ...] = ()
    if kind == "records":
        table = data.get("fields")
        if not isinstance(table, dict) or not table:
            raise _problem(source, "a records policy needs a [fields] table with 'case' and/or 'contact' lists")
        for record_type, names in table.items():
            if record_type not in RECORD_FIELDS:
                raise _problem(source, f"[fields] has unknown record type {record_type!r}; allowed: case, contact")
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise _problem(source, f"[fields].{record_type} must be a list of field names")
            bad = [n for n in names if n not in RECORD_FIELDS[record_type]]
            if bad:
                raise _problem(
                    source,
                    f"[fields].{record_type} has unknown field(s) {', '.join(bad)}; allowed: {', '.join(RECORD_FIELDS[record_type])}",
                )
            if "ref" not in names:
                raise _problem(
                    source, f"[fields].{record_type} must include 'ref' (recipients need it to de-duplicate)"
                )
            fields[record_type] = tuple(dict.fromkeys(names))
        if "statistics" in data:
            raise _problem(source, "'statistics' belongs to a statistics policy (kind = \"statistics\")")
    else:
        dims = data.get("statistics", list(STATISTICS_DIMENSIONS))
        if not isinstance(dims, list) or not dims or any(d not in STATISTICS_DIMENSIONS for d in dims):
            raise _problem(source, f"'statistics' must be a non-empty list of {', '.join(STATISTICS_DIMENSIONS)}")
        if "fields" in data:
            raise _problem(source, "a statistics policy has no [fields]: it carries counts only")
        statistics = tuple(dict.fromkeys(dims))
    return Policy(
        name=name.strip(),
        description=description.strip(),
        kind=kind,
        recipient_roles=tuple(roles),
        fields=fields,
        scope="standard",
        role_category=role_category,
        statistics=statistics,
        source=source,
    )


def default_policy_for(recipient_role: str) -> Policy:
    return BUILT_IN["vetted-team" if recipient_role == "vetted-team" else "central-handover"]


def check_policy_for_recipient(policy: Policy, recipient_name: str, recipient_role: str) -> None:
    if recipient_role not in policy.recipient_roles:
        raise PolicyError(
            f"policy {policy.name!r} may not be sent to {recipient_name} ({recipient_role}); "
            f"it is for: {', '.join(policy.recipient_roles)}"
        )
