"""How people, cases, contacts, rule sets and lists look on the terminal and in JSON.

This is the one place the CLI turns records into output, so the masking rules live in
one place: a person is always named through ``person.display_name``, and when
``person.masked`` is true nothing but the reference and the withheld marker is shown:
no identity field is read, even if one happened to be set. A contact withheld by
association (``exposure.withheld``: a contact of a person in a sensitive role) shows its
reference, dates, closeness and status, and a marker in place of the person, setting,
measurements, notes and clause (some clauses name the setting); its closeness is never
re-explained (that would need them). Every piece of user text goes through
:func:`tracekit.cli.safe_text.safe_markup` before it goes into markup: names and notes
may contain ``[`` or backslashes, and notes, addresses and settings characters a
terminal would act on (a C1 control, a bidirectional override).

Imported only inside commands (it imports the records and domain modules).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.measure import Measurement
from rich.segment import Segment
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from tracekit.cli.options import DEFAULT_LIMIT
from tracekit.cli.safe_text import safe_markup
from tracekit.domain import rules
from tracekit.records.models import (
    WITHHELD_ASSOCIATION,
    WITHHELD_ASSOCIATION_TEXT,
    WITHHELD_MATCH_TEXT,
    Case,
    Exposure,
    Page,
    Person,
    TreeNode,
    Worklist,
)

NOT_RECORDED = "[dim]not recorded[/dim]"
#: The short marker used in table columns other than the name (never a blank).
WITHHELD_CELL = "[yellow]withheld[/yellow]"


# -- values ------------------------------------------------------------------------------
def day(value: date | None) -> str:
    """A date as people in England read it, unambiguously: ``9 Oct 2020``."""
    return f"{value.day} {value:%b %Y}" if value else "-"


#: What stands for an isolation end when there is none to give.
NO_ISOLATION = {"case": "none (the test was negative)", "contact": "none (not a close contact)"}


def isolation_cell(end: date | None, kind: str, detail: str = "") -> str:
    """'until the end of <day>' (with ``detail`` after it), or that there is no isolation:
    a contact who is not close and a case whose test was negative are not told to isolate."""
    return f"until the end of {day(end)}{detail}" if end else NO_ISOLATION[kind]


def phone_number(e164: str) -> str:
    """A stored E.164 number in the form a tracer dials: national for the UK."""
    from tracekit.domain.identifiers import format_phone

    try:
        return format_phone(e164)
    except Exception:
        return e164


def nhs_number(digits: str) -> str:
    from tracekit.domain.identifiers import format_nhs_number

    try:
        return format_nhs_number(digits)
    except Exception:
        return digits


def measure(value: float | None, unit: str) -> str:
    return f"{value:g} {unit}" if value is not None else NOT_RECORDED


def yes_no(value: bool) -> str:
    return "yes" if value else "no"


def count(number: int, singular: str, plural: str | None = None) -> str:
    """``"1 call"``, ``"3 calls"``, ``"1,204 new people"``: a number with its noun agreeing."""
    noun = singular if number == 1 else (plural or f"{singular}s")
    return f"{number:,} {noun}"


def words(value: str) -> str:
    """A stable id (``not-yet-reached``) as words (``not yet reached``)."""
    return str(value).replace("-", " ")


def footer(page: Page, noun: str) -> str:
    """``showing 1–50 of 1,234; next: --offset 50`` (plain text, no markup)."""
    if page.total == 0:
        return f"no {noun}"
    if not page.items:
        return f"nothing at --offset {page.offset:,}; {page.total:,} {noun} in all"
    first, last = page.offset + 1, page.offset + len(page.items)
    text = f"showing {first:,}–{last:,} of {page.total:,}"
    if page.total is not None and last < page.total:
        text += f"; next: --offset {last}"
        if page.limit != DEFAULT_LIMIT:
            text += f" --limit {page.limit}"
    return text


# -- people ------------------------------------------------------------------------------
def name(person: Person) -> str:
    """The person's display name, escaped for markup (the withheld marker when masked)."""
    return safe_markup(person.display_name)


def person_label(person: Person) -> str:
    """Reference and display name: ``P-7K2M9Q Ada Example``."""
    style = "yellow" if person.masked else ""
    shown = f"[{style}]{name(person)}[/{style}]" if style else name(person)
    return f"[bold]{person.ref}[/bold] {shown}"


def phone_cell(person: Person) -> str:
    if person.masked or "phone" in person.withheld_fields:
        return WITHHELD_CELL
    return safe_markup(phone_number(person.phone)) if person.phone else "[dim]no phone[/dim]"


def identity_cell(person: Person, field: str) -> str:
    """One identity field for a table column: withheld when masked, never blank."""
    if person.masked or field in person.withheld_fields:
        return WITHHELD_CELL
    value = getattr(person, field)
    if value in (None, ""):
        return "[dim]-[/dim]"
    if field == "date_of_birth":
        return day(value)
    if field == "phone":
        return safe_markup(phone_number(value))
    if field == "nhs_number":
        return safe_markup(nhs_number(value))
    return safe_markup(str(value))


def person_summary(person: Person) -> str:
    """One line to recognise a person by: reference, name, date of birth, phone, postcode."""
    if person.masked:
        return person_label(person)
    parts = []
    if person.date_of_birth:
        parts.append(f"born {day(person.date_of_birth)}")
    if person.nhs_number:
        parts.append(f"NHS {safe_markup(nhs_number(person.nhs_number))}")
    if person.phone:
        parts.append(safe_markup(phone_number(person.phone)))
    if person.postcode:
        parts.append(safe_markup(person.postcode))
    extra = f" [dim]({', '.join(parts)})[/dim]" if parts else ""
    return person_label(person) + extra


def duplicate_line(match: Any) -> str:
    """A possible duplicate: who (masking applies) and why the details matched; a record
    the tracer may not see as just that (no reference, name, role or reason)."""
    if match.person is None:
        return f"[yellow]{safe_markup(WITHHELD_MATCH_TEXT)}[/yellow]"
    return f"{person_summary(match.person)}: [bold]{safe_markup(', '.join(match.reasons))}[/bold]"


def person_rows(person: Person, *, compact: bool = False) -> list[tuple[str, str]]:
    """Label/value rows for a person's details; only the reference and marker if masked.

    ``compact`` leaves out details that were not recorded, except the phone."""
    if person.masked:
        return [
            ("person", f"[bold]{person.ref}[/bold]"),
            ("identity", f"[yellow]{name(person)}[/yellow] (details are not shown)"),
        ]
    rows = [("person", f"[bold]{person.ref}[/bold]"), ("name", safe_markup(person.name))]
    for label, field in (
        ("date of birth", "date_of_birth"),
        ("NHS number", "nhs_number"),
        ("phone", "phone"),
        ("email", "email"),
        ("address", "address"),
        ("postcode", "postcode"),
        ("occupation", "occupation"),
    ):
        value = getattr(person, field)
        if value not in (None, ""):
            rows.append((label, identity_cell(person, field)))
        elif field == "phone" or not compact:
            rows.append((label, NOT_RECORDED))
    return rows


def people_table(people: Iterable[Person]) -> RenderableType:
    # On a narrow terminal the NHS number goes first, then the date of birth, then the
    # postcode: the reference, the name and the number to ring stay.
    table = _table(
        "ref",
        Column("name", text=True),
        Column("date of birth", 2),
        Column("NHS number", 3),
        "phone",
        Column("postcode", 1),
    )
    for person in people:
        table.add_row(
            f"[bold]{person.ref}[/bold]",
            name(person) if not person.masked else f"[yellow]{name(person)}[/yellow]",
            identity_cell(person, "date_of_birth"),
            identity_cell(person, "nhs_number"),
            identity_cell(person, "phone"),
            identity_cell(person, "postcode"),
        )
    return table


def person_detail(person: Person) -> RenderableType:
    rows = person_rows(person)[1:]  # the reference is in the heading
    rows += [("recorded", safe_markup(person.created_at)), ("updated", safe_markup(person.updated_at))]
    return _lines(f"[bold]Person {person.ref}[/bold]", _grid(rows))


def contact_label(exposure: Exposure) -> str:
    """The person of a contact; the association marker when the contact is withheld."""
    if exposure.withheld:
        return f"[bold]{exposure.contact.ref}[/bold] [yellow]{safe_markup(WITHHELD_ASSOCIATION_TEXT)}[/yellow]"
    return person_label(exposure.contact)


def contact_name(exposure: Exposure) -> str:
    """Just the name (or the marker) of a contact, for narrow tables."""
    if exposure.withheld:
        return f"[yellow]{safe_markup(WITHHELD_ASSOCIATION_TEXT)}[/yellow]"
    person = exposure.contact
    return f"[yellow]{name(person)}[/yellow]" if person.masked else name(person)


# -- cases -------------------------------------------------------------------------------
def _ruleset_title(ruleset_id: str) -> str:
    try:
        return rules.get_ruleset(ruleset_id).title
    except Exception:
        return ""


def case_rows(case: Case) -> list[tuple[str, str]]:
    rs = _safe_ruleset(case.ruleset_id)
    reference = "onset" if case.symptom_onset else "test"
    rows = [("status", _status(str(case.status)))]
    rows += person_rows(case.person, compact=True)
    rows += [
        ("test", f"{day(case.test_date)}, {str(case.test_type).upper()}, {case.test_result}"),
        ("symptom onset", day(case.symptom_onset) if case.symptom_onset else "none (asymptomatic)"),
    ]
    infectious = f"{day(case.infectious_start)} to {day(case.infectious_end)}"
    isolation_detail = ""
    if rs is not None:
        infectious += (
            f" [dim]({rs.infectious_days_before} days before the {reference} to {rs.infectious_days_after} after)[/dim]"
        )
        isolation_detail = f" [dim]({rs.case_isolation_days} days from the day after the {reference})[/dim]"
    isolation = isolation_cell(case.isolation_end, "case", isolation_detail)
    rows += [
        ("infectious period", infectious),
        ("isolation", isolation),
        ("rule set", _ruleset_cell(case.ruleset_id)),
    ]
    if case.source_exposure_ref:
        rows.append(("infected via", f"contact {case.source_exposure_ref} (see 'tracekit case tree {case.ref}')"))
    rows.append(("contacts", str(case.contact_count)))
    if case.notes:
        rows.append(("notes", safe_markup(case.notes, multiline=True)))
    rows.append(("recorded", safe_markup(case.created_at)))
    if case.closed_at:
        rows.append(("closed", safe_markup(case.closed_at)))
    return rows


def case_detail(case: Case, contacts: Page | None = None) -> RenderableType:
    parts: list[RenderableType] = [f"[bold]Case {case.ref}[/bold]", _grid(case_rows(case))]
    if contacts is not None and contacts.total:
        parts += ["", f"[bold]Contacts[/bold] ({contacts.total})", contacts_table(contacts.items, show_case=False)]
        if len(contacts.items) < contacts.total:
            parts.append(f"[dim]{footer(contacts, 'contacts')}; all: tracekit contact list --case {case.ref}[/dim]")
    return _lines(*parts)


def cases_table(cases: Iterable[Case]) -> RenderableType:
    # Narrow: the onset goes first (the test date stays), then the number of contacts,
    # then the isolation date (shown by 'case show').
    table = _table(
        "ref",
        Column("person", text=True),
        "test date",
        Column("onset", 3),
        "status",
        Column("contacts", 2),
        Column("isolation until", 1),
    )
    for case in cases:
        table.add_row(
            f"[bold]{case.ref}[/bold]",
            person_label(case.person),
            day(case.test_date),
            day(case.symptom_onset) if case.symptom_onset else "[dim]none[/dim]",
            _status(str(case.status)),
            str(case.contact_count),
            day(case.isolation_end),
        )
    return table


def case_line(case: Case) -> str:
    return (
        f"[bold]{case.ref}[/bold] for {person_label(case.person)}: tested {day(case.test_date)}, "
        f"infectious {day(case.infectious_start)} to {day(case.infectious_end)}, "
        f"{_isolate_phrase(case.isolation_end, 'case')} [dim](rule set {case.ruleset_id})[/dim]"
    )


def _isolate_phrase(end: date | None, kind: str) -> str:
    """'isolate until the end of <day>', or 'no isolation (...)' (see :func:`isolation_cell`)."""
    return (
        f"isolate until the end of {day(end)}" if end else f"no isolation ({NO_ISOLATION[kind].removeprefix('none (')}"
    )


# -- contacts ----------------------------------------------------------------------------
def closeness_cell(exposure: Exposure) -> str:
    """Close or not, with the clause; for a withheld contact the clause is left out,
    because some clauses name the setting (household, shared vehicle), which is withheld."""
    if exposure.withheld:
        return "[bold red]close[/bold red]" if exposure.close_contact else "[dim]not close[/dim]"
    if exposure.close_contact:
        return f"[bold red]close[/bold red] ({exposure.clause})" if exposure.clause else "[bold red]close[/bold red]"
    return "[dim]not close[/dim]"


def contact_rows(exposure: Exposure, closeness: rules.Closeness | None = None) -> list[tuple[str, str]]:
    rs = _safe_ruleset(exposure.ruleset_id)
    rows = [("case", f"[bold]{exposure.case_ref}[/bold]"), ("trace status", _status(str(exposure.trace_status)))]
    if exposure.withheld:
        marker = f"[yellow]{safe_markup(WITHHELD_ASSOCIATION_TEXT)}[/yellow]"
        rows += [("person", contact_label(exposure)), ("last exposure", day(exposure.last_exposure))]
        rows += [
            (label, WITHHELD_CELL) for label in ("setting", "distance", "duration", "face to face", "direct contact")
        ]
        rows += [
            ("close contact", closeness_cell(exposure) if exposure.close_contact else "no"),
            ("why", f"{marker} (a contact of a person in a sensitive role)"),
            ("isolation", isolation_cell(exposure.isolation_end, "contact")),
            ("rule set", _ruleset_cell(exposure.ruleset_id)),
            ("notes", WITHHELD_CELL),
            ("recorded", safe_markup(exposure.created_at)),
        ]
        return rows
    rows += person_rows(exposure.contact, compact=True)
    rows += [
        ("last exposure", day(exposure.last_exposure)),
        ("setting", safe_markup(exposure.setting)),
        ("distance", measure(exposure.proximity_m, "m")),
        ("duration", measure(exposure.duration_min, "min")),
        ("face to face", yes_no(exposure.face_to_face)),
        ("direct contact", yes_no(exposure.direct_contact)),
        ("close contact", closeness_cell(exposure) if exposure.close_contact else "no"),
    ]
    if closeness is not None:
        rows.append(("why", safe_markup(closeness.explanation)))
        if closeness.missing:
            missing = ", ".join("--proximity" if m == "proximity_m" else "--duration" for m in closeness.missing)
            rows.append(("missing", f"[yellow]{missing}[/yellow]: recording it could make this a close contact"))
    detail = f" [dim]({rs.contact_isolation_days} days from the day after the last exposure)[/dim]" if rs else ""
    isolation = isolation_cell(exposure.isolation_end, "contact", detail)
    rows += [("isolation", isolation), ("rule set", _ruleset_cell(exposure.ruleset_id))]
    if exposure.notes:
        rows.append(("notes", safe_markup(exposure.notes, multiline=True)))
    rows.append(("recorded", safe_markup(exposure.created_at)))
    return rows


def contact_detail(exposure: Exposure, closeness: rules.Closeness | None = None) -> RenderableType:
    parts: list[RenderableType] = [f"[bold]Contact {exposure.ref}[/bold]", _grid(contact_rows(exposure, closeness))]
    parts += ["", f"[bold]Calls[/bold] ({len(exposure.calls)})"]
    if exposure.calls:
        table = _table("at", "outcome", Column("note", text=True))
        for call in exposure.calls:
            if exposure.withheld:
                call_note = WITHHELD_CELL
            else:
                call_note = safe_markup(call.note, multiline=True) if call.note else ""
            table.add_row(safe_markup(call.at), words(str(call.outcome)), call_note)
        parts.append(table)
    else:
        parts.append("[dim]no calls logged yet[/dim]")
    return _lines(*parts)


def contacts_table(exposures: Iterable[Exposure], *, show_case: bool = True) -> RenderableType:
    """Contacts, one a line. With ``show_case`` (contact list) the case column replaces the
    phone column, to fit a terminal; the worklist and 'contact show' give the phone."""
    # Narrow: the isolation date goes first (the contact's own view gives it), then the
    # exposure date, then the case, then the status; the contact, the person, the phone
    # and the risk stay.
    table = _table(
        "ref",
        Column("case", 2) if show_case else "phone",
        Column("person", text=True),
        Column("exposed", 3),
        "risk",
        Column("status", 1),
        Column("isolate until", 4),
    )
    for e in exposures:
        table.add_row(
            f"[bold]{e.ref}[/bold]",
            e.case_ref if show_case else (phone_cell(e.contact) if not e.withheld else WITHHELD_CELL),
            contact_label(e),
            day(e.last_exposure),
            risk_cell(e),
            words(str(e.trace_status)),
            day(e.isolation_end),
        )
    return table


def risk_cell(exposure: Exposure) -> str:
    """The worklist's reason for the risk: the clause that made the contact close."""
    if not exposure.close_contact:
        return "[dim]not close[/dim]"
    if exposure.withheld or not exposure.clause:
        return "[bold red]close[/bold red]"
    return f"[bold red]{exposure.clause}[/bold red]"


def closeness_json(closeness: rules.Closeness) -> dict[str, Any]:
    return {
        "is_close": closeness.is_close,
        "clause": closeness.clause,
        "explanation": closeness.explanation,
        "missing": list(closeness.missing),
        "ruleset": closeness.ruleset_id,
    }


def contact_json(exposure: Exposure, closeness: rules.Closeness | None) -> dict[str, Any]:
    """A contact as shown by ``contact add|show|update|call``: the record plus why
    (a withheld marker instead of the why when the contact is withheld by association)."""
    why = {"withheld": WITHHELD_ASSOCIATION} if exposure.withheld or closeness is None else closeness_json(closeness)
    return {**exposure.to_json(), "closeness": why}


# -- the transmission chain ---------------------------------------------------------------
def case_tree(root: TreeNode, highlight_id: int) -> RenderableType:
    """The chain, no line ending in spaces (Rich leaves one where it wraps a label)."""
    tree = Tree(_tree_case_label(root, highlight_id), guide_style="dim")
    _add_tree_children(tree, root, highlight_id)
    return _Trimmed(tree)


def _tree_case_label(node: TreeNode, highlight_id: int) -> str:
    case = node.case
    label = (
        f"[bold]{case.ref}[/bold] {person_label(case.person)} · tested {day(case.test_date)} · "
        f"{_status(str(case.status))}"
    )
    if node.via is not None:
        via = node.via
        how = "withheld" if via.withheld else (via.clause or "not close")
        label += f" [dim](was contact {via.ref}, {how}, {day(via.last_exposure)})[/dim]"
    if case.id == highlight_id:
        label = f"[reverse]{label}[/reverse] [bold]◀ this case[/bold]"
    return label


def _add_tree_children(branch: Tree, node: TreeNode, highlight_id: int) -> None:
    for child in node.children:
        sub = branch.add(_tree_case_label(child, highlight_id))
        _add_tree_children(sub, child, highlight_id)
    for e in node.uncased_contacts:
        branch.add(
            f"{e.ref} {contact_label(e)} · {closeness_cell(e)} · {words(str(e.trace_status))}"
            f" [dim]· last exposure {day(e.last_exposure)}[/dim]"
        )


def tree_json(root: TreeNode, highlight_id: int) -> dict[str, Any]:
    def node(n: TreeNode) -> dict[str, Any]:
        return {
            "case": n.case.to_json(),
            "via": n.via.ref if n.via else None,
            "highlight": n.case.id == highlight_id,
            "children": [node(c) for c in n.children],
            "contacts": [e.to_json() for e in n.uncased_contacts],
        }

    asked = _find_ref(root, highlight_id)
    return {"case": asked, "root": node(root)}


def _find_ref(n: TreeNode, case_id: int) -> str | None:
    if n.case.id == case_id:
        return n.case.ref
    for child in n.children:
        found = _find_ref(child, case_id)
        if found:
            return found
    return None


# -- the worklist ----------------------------------------------------------------------
def worklist(work: Worklist) -> RenderableType:
    total = f"more than {work.to_call_total:,}" if work.to_call_total_capped else f"{work.to_call_total:,}"
    parts: list[RenderableType] = [f"[bold]To call[/bold] ({total} not yet reached)"]
    if work.to_call:
        parts.append(to_call_table(work.to_call, first=work.offset + 1))
        legend = _clause_legend(work.to_call)
        if legend:
            parts += ["", legend]
        end = work.offset + len(work.to_call)
        if work.to_call_total_capped or end < work.to_call_total:
            shown = f"the first {end:,}" if not work.offset else f"{work.offset + 1:,}–{end:,}"
            parts.append(f"[dim]showing {shown} of {total}; more: --limit N or --offset {end}[/dim]")
    else:
        parts.append("[dim]nobody waiting for a call[/dim]")
    parts += ["", f"[bold]Isolation ends today[/bold] ({day(work.day)}: they may stop at the end of the day)"]
    if work.isolation_ends_today:
        # Narrow: the status goes first, then the case.
        table = _table("contact", Column("person", text=True), "phone", Column("case", 1), Column("status", 2))
        for e in work.isolation_ends_today:
            table.add_row(
                f"[bold]{e.ref}[/bold]",
                contact_label(e),
                phone_cell(e.contact) if not e.withheld else WITHHELD_CELL,
                e.case_ref,
                words(str(e.trace_status)),
            )
        parts.append(table)
    else:
        parts.append("[dim]nobody[/dim]")
    return _lines(*parts)


def to_call_table(exposures: list[Exposure], *, first: int = 1) -> RenderableType:
    """The contacts to call, one a row of two lines: the contact over its case, the name
    over the number to ring (never split: the column is at least as wide as the
    number), the risk over the last exposure, and the end of isolation to read out (none
    for a contact who is not close). Narrow: the row numbers go first; everything else
    fits 60 columns."""
    table = _table(
        Column("", 1), "contact\ncase", Column("person\nphone", text=True), "risk\nexposed", "isolate\nuntil"
    )
    for number, e in enumerate(exposures, first):
        phone = phone_cell(e.contact) if not e.withheld else WITHHELD_CELL
        table.add_row(
            f"{number}.",
            f"[bold]{e.ref}[/bold]\n[dim]{e.case_ref}[/dim]",
            (contact_name(e), phone),
            f"{risk_cell(e)}\n{day(e.last_exposure)}",
            day(e.isolation_end) if e.isolation_end else "[dim]-[/dim]",
        )
    return table


def _clause_legend(exposures: Iterable[Exposure]) -> str:
    seen: dict[str, str] = {}
    for e in exposures:
        if e.clause and e.clause not in seen and not e.withheld:
            rs = _safe_ruleset(e.ruleset_id)
            text = next((c.text for c in rs.clauses if c.id == e.clause), "") if rs else ""
            seen[e.clause] = text
    return "\n".join(f"[dim]{clause}: {safe_markup(text)}[/dim]" for clause, text in seen.items())


# -- the audit log -----------------------------------------------------------------------
def audit_table(entries: Iterable[Any]) -> RenderableType:
    """Audit entries, oldest first: the time is never cut short; the references and the
    reason wrap instead (a long word in a reason, such as a bundle id, is folded)."""
    # On a terminal too narrow for all five, the reason goes first, then the references.
    table = _table(
        "#", "when (UTC)", "action", Column("references", 1, text=True), Column("reason", 2, text=True, fold=True)
    )
    for entry in entries:
        table.add_row(
            str(entry.seq),
            safe_markup(entry.at[:19]),
            safe_markup(entry.action),
            safe_markup(", ".join(entry.refs)),
            safe_markup(entry.reason or ""),
        )
    return table


# -- sensitive roles, recipients, referrals and bundles ----------------------------------
def roles_table(marks: Iterable[Any]) -> RenderableType:
    """Marked people, by reference and role only. Narrow: the time of marking goes, then
    the referral."""
    table = _table("person", "role", Column("marked at", 2), Column("referral", 1))
    for mark in marks:
        table.add_row(
            f"[bold]{safe_markup(mark.person_ref)}[/bold]",
            safe_markup(mark.role),
            safe_markup(mark.marked_at),
            safe_markup(mark.referral_ref or "-"),
        )
    return table


def recipients_table(recipients: Iterable[Any]) -> RenderableType:
    """Registered recipients. The age key (62 characters) is always whole: narrow, the
    date added goes, then the role; narrower than the key, the row overflows."""
    table = _table(Column("name", text=True), Column("role", 2), "public key", Column("added", 1))
    for r in recipients:
        table.add_row(safe_markup(r.name), safe_markup(r.role), safe_markup(r.public_key), safe_markup(r.added_at))
    return table


def referrals_table(referrals: Iterable[Any]) -> RenderableType:
    """The referral outbox. Narrow: the role goes, then when it was made, then when it
    was exported; the reference and whom it is sealed to stay."""
    table = _table(
        "referral", Column("role", 3), Column("created", 2), Column("sealed to", text=True), Column("exported", 1)
    )
    for r in referrals:
        table.add_row(
            f"[bold]{safe_markup(r.ref)}[/bold]",
            safe_markup(r.role),
            safe_markup(r.created_at),
            safe_markup(", ".join(r.recipients)),
            safe_markup(r.exported_at or "-"),
        )
    return table


def handovers_table(handovers: Iterable[Any]) -> RenderableType:
    """Bundles made from this store. Narrow: the counts of cases and of contacts go, then
    the policy; when it was made, for whom and the file stay."""
    table = _table(
        "created (UTC)",
        Column("recipient", text=True),
        Column("policy", 1),
        Column("cases", 3),
        Column("contacts", 2),
        "file",
    )
    for h in handovers:
        table.add_row(
            safe_markup(h.created_at),
            safe_markup(h.recipient),
            safe_markup(h.policy),
            str(h.record_counts.get("cases", 0)),
            str(h.record_counts.get("contacts", 0)),
            safe_markup(h.file_name),
        )
    return table


# -- rule sets -----------------------------------------------------------------------------
def ruleset_json(rs: rules.RuleSet, *, valid_until: date | None = None) -> dict[str, Any]:
    return {
        "id": rs.id,
        "title": rs.title,
        "valid_from": rs.valid_from.isoformat(),
        "valid_until": valid_until.isoformat() if valid_until else None,
        "description": rs.description,
        "infectious_days_before": rs.infectious_days_before,
        "infectious_days_after": rs.infectious_days_after,
        "case_isolation_days": rs.case_isolation_days,
        "contact_isolation_days": rs.contact_isolation_days,
        "clauses": [{"id": c.id, "text": c.text} for c in rs.clauses],
        "sources": [
            {
                "id": s.id,
                "title": s.title,
                "publisher": s.publisher,
                "date": s.date.isoformat() if s.date else None,
                "url": s.url,
            }
            for s in rs.sources
        ],
    }


def rulesets_table(
    rulesets: Iterable[tuple[rules.RuleSet, date | None]], *, pinned: str | None, in_force: str
) -> RenderableType:
    # Narrow: the isolation periods go (shown by 'rules show'), then the end date, then
    # the title; the id, its start and the in-force or pinned mark stay.
    table = _table(
        "id",
        "from",
        Column("until", 3),
        Column("title", 2, text=True),
        Column("case isolates", 4),
        Column("contact isolates", 5),
        "note",
    )
    for rs, until in rulesets:
        marks = []
        if rs.id == in_force:
            marks.append("in force today")
        if rs.id == pinned:
            marks.append("[bold]pinned[/bold]")
        table.add_row(
            f"[bold]{rs.id}[/bold]",
            day(rs.valid_from),
            day(until) if until else "[dim]now[/dim]",
            safe_markup(rs.title),
            f"{rs.case_isolation_days} days",
            f"{rs.contact_isolation_days} days",
            ", ".join(marks),
        )
    return table


def ruleset_detail(rs: rules.RuleSet, *, valid_until: date | None, marks: list[str]) -> RenderableType:
    header = f"[bold]{rs.id}[/bold]: {safe_markup(rs.title)}"
    if marks:
        header += f" [dim]({', '.join(marks)})[/dim]"
    grid = _grid(
        [
            (
                "in force",
                f"from {day(rs.valid_from)}" + (f" to {day(valid_until)}" if valid_until else " (the latest)"),
            ),
            (
                "infectious period",
                f"{rs.infectious_days_before} days before symptom onset (or the test) to {rs.infectious_days_after} days after",
            ),
            ("case isolation", f"{rs.case_isolation_days} days from the day after onset (or the test)"),
            ("contact isolation", f"{rs.contact_isolation_days} days from the day after the last exposure"),
        ]
    )
    clauses = _table("clause", Column("close contact when", text=True))
    for clause in sorted(rs.clauses, key=lambda c: rules.CLAUSE_PRIORITY.index(c.id)):
        clauses.add_row(f"[bold]{clause.id}[/bold]", safe_markup(clause.text))
    sources: list[RenderableType] = []
    for s in rs.sources:
        line = f"- {safe_markup(s.title)}, {safe_markup(s.publisher)}"
        if s.date:
            line += f", {day(s.date)}"
        sources.append(line)
        if s.url:
            sources.append(Text(f"  {s.url}", overflow="fold"))  # whole, even if folded
    return _lines(
        header,
        safe_markup(rs.description),
        "",
        grid,
        "",
        "[bold]Close contact[/bold] (clauses tried in this order; the first that holds is reported)",
        clauses,
        "",
        "[bold]Sources[/bold]",
        *sources,
    )


# -- helpers -------------------------------------------------------------------------------
def _safe_ruleset(ruleset_id: str) -> rules.RuleSet | None:
    try:
        return rules.get_ruleset(ruleset_id)
    except Exception:
        return None


def _ruleset_cell(ruleset_id: str) -> str:
    title = _ruleset_title(ruleset_id)
    return f"{safe_markup(ruleset_id)}" + (f" [dim]({safe_markup(title)})[/dim]" if title else "")


_STATUS_STYLE = {
    "open": "bold",
    "referred": "yellow",
    "not-yet-reached": "bold",
    "unreachable": "red",
    "declined": "red",
}


def _status(value: str) -> str:
    style = _STATUS_STYLE.get(value)
    return f"[{style}]{words(value)}[/{style}]" if style else words(value)


# -- layout --------------------------------------------------------------------------------
# Tables, record details and the worklist are drawn by Rich's Table. What Rich lacks is
# added here and nothing else: a table leaves out its least important columns when the
# terminal is too narrow for them (Rich would squeeze every column instead, splitting a
# reference two letters a line), works out the widths of those it keeps and hands them
# to Rich; and no line ends in the spaces Rich pads cells with.
#
# Piped into a file or another program, stdout has no width (see context.out): a table
# is then written whole, every column at its natural width, nothing wrapped or dropped.


@dataclass(frozen=True)
class Column:
    """A table column.

    ``drop``: 0, the column is always shown; otherwise it is left out when the terminal
    is too narrow for all the columns, the highest number first (each table says why its
    order is what it is). ``text``: its values are free text (a name, a title, a note)
    and may wrap at spaces, each word kept whole; every other column holds values that
    are never cut, wrapped or split (references, dates, times, phone numbers, keys): it is
    as wide as its longest value. ``fold``: free text whose long words (a bundle id in an
    audit reason) may be folded across lines rather than the column dropped."""

    header: str
    drop: int = 0
    text: bool = False
    fold: bool = False


#: A table cell: markup, or markup lines of which only the first may wrap (a name over
#: the phone number under it, in a ``text`` column made wide enough for the number).
Cell = str | tuple[str, ...]

#: Between two columns: a space of padding either side and the box's (blank) divider.
_COLUMN_GAP = 3
#: A ``text`` column is narrowed to no less than this (or its longest word, if longer);
#: a ``fold`` column to no less than this, whatever its words.
_TEXT_WIDTH = 12


class _FitTable:
    """A Rich Table whose columns fit the terminal by leaving out the least important
    (see :class:`Column`), never by cutting, wrapping or splitting a reference, a date,
    a phone number or a key. When the columns that are never left out cannot fit even
    at their narrowest (a 62-character age key on a 60-column terminal), the rows are
    drawn longer than the terminal, which wraps them on screen: the value is still
    whole when copied (the stdout console does not crop lines, see context.out)."""

    def __init__(self, columns: tuple[str | Column, ...]) -> None:
        self.columns = [c if isinstance(c, Column) else Column(c) for c in columns]
        self.rows: list[tuple[Cell, ...]] = []

    def add_row(self, *cells: Cell) -> None:
        self.rows.append(cells)

    def __rich_console__(self, console: Any, options: Any) -> Any:
        table, width = self.table(options.max_width)
        yield from _trimmed_lines(console, table, options.update_width(width))

    def table(self, max_width: int) -> tuple[Table, int]:
        """The Rich Table for a terminal ``max_width`` cells wide, and the width to draw
        it at (wider than the terminal only when its columns cannot fit, see above)."""
        # Each cell's markup is parsed once, here; Rich then draws the Text as it is.
        rows = [
            [Text.from_markup(cell if isinstance(cell, str) else "\n".join(cell), emoji=False) for cell in row]
            for row in self.rows
        ]
        natural: list[int] = []  # on one line (as many lines as a cell has)
        least: list[int] = []  # the narrowest the column may be
        for i, column in enumerate(self.columns):
            lines = [line for text in [column.header, *(row[i].plain for row in rows)] for line in text.split("\n")]
            natural.append(max(cell_len(line) for line in lines))
            if column.fold:
                least.append(min(_TEXT_WIDTH, natural[i]))
            elif column.text:
                words = [
                    cell_len(word) for text in [column.header, *(row[i].plain for row in rows)] for word in text.split()
                ]
                whole = [
                    cell_len(line)
                    for cells, row in zip(self.rows, rows)
                    if not isinstance(cells[i], str)
                    for line in row[i].plain.split("\n")[1:]
                ]
                least.append(max(max(words, default=0), max(whole, default=0), min(_TEXT_WIDTH, natural[i])))
            else:
                least.append(natural[i])
        keep = list(range(len(self.columns)))
        while sum(least[i] for i in keep) + _COLUMN_GAP * (len(keep) - 1) > max_width:
            droppable = [i for i in keep if self.columns[i].drop > 0]
            if not droppable:
                break
            keep.remove(max(droppable, key=lambda i: (self.columns[i].drop, i)))
        gaps = _COLUMN_GAP * (len(keep) - 1)
        widths = {i: natural[i] for i in keep}
        excess = sum(widths.values()) + gaps - max_width
        if excess > sum(widths[i] - least[i] for i in keep):  # cannot fit: drawn at the least widths
            widths, excess = {i: least[i] for i in keep}, 0
        # Too wide: the text columns give way, widest first, down to their least.
        while excess > 0:
            widest = max((i for i in keep if widths[i] > least[i]), key=lambda i: (widths[i], -i))
            widths[widest] -= 1
            excess -= 1
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for i in keep:
            column = self.columns[i]
            table.add_column(column.header, no_wrap=not column.text, overflow="fold", width=widths[i])
        for row in rows:
            table.add_row(*(_Cell(row[i]) for i in keep))
        return table, max(max_width, sum(widths.values()) + gaps)


class _Cell:
    """A cell's Text as Rich's Table draws it, a little faster: when every line of the
    text already fits its column (almost every cell: the widths come from the cells),
    its segments are handed over as they are, instead of Rich wrapping, justifying and
    re-joining each line to the same result (about half the cost of printing a table).
    Any other cell is Rich's to draw. tests/cli/test_render.py compares the two."""

    __slots__ = ("text",)

    def __init__(self, text: Text) -> None:
        self.text = text

    def __rich_console__(self, console: Any, options: Any) -> Any:
        text = self.text
        lines = text.split("\n", allow_blank=True) if "\n" in text.plain else [text]
        if "\t" in text.plain or any(line.cell_len > options.max_width for line in lines):
            yield text
            return
        newline = Segment.line()
        for n, line in enumerate(lines):
            if n:
                yield newline
            yield from line.render(console, end="")

    def __rich_measure__(self, console: Any, options: Any) -> Measurement:
        return Measurement.get(console, options, self.text)


class _Trimmed:
    """A renderable drawn without the spaces Rich pads its lines with: every cell of a
    table is padded to its column's width, the last one too, and a pipe or a copied
    screen keeps them."""

    def __init__(self, renderable: RenderableType) -> None:
        self.renderable = renderable

    def __rich_console__(self, console: Any, options: Any) -> Any:
        yield from _trimmed_lines(console, self.renderable, options)


def _lines(*parts: RenderableType) -> RenderableType:
    """Parts one under the other (a heading, a table, a line of markup), no line ending
    in spaces (Rich leaves one where it wraps a long line of text)."""
    return Group(*(_Trimmed(part) if isinstance(part, str) else part for part in parts))


def _trimmed_lines(console: Any, renderable: RenderableType, options: Any) -> Any:
    newline = Segment.line()
    for line in console.render_lines(renderable, options, pad=False):
        while line and not line[-1].control and not line[-1].text.rstrip(" "):
            line.pop()
        if line and not line[-1].control:
            text, style, control = line[-1]
            line[-1] = Segment(text.rstrip(" "), style, control)
        yield from line
        yield newline


def _table(*columns: str | Column) -> _FitTable:
    return _FitTable(columns)


def _grid(rows: list[tuple[str, str]]) -> RenderableType:
    """Label and value rows (a record's details): a bold label column that never wraps
    and values that wrap at spaces (the values put their dates and references first, so
    that they stay on the first line)."""
    grid = Table(show_header=False, box=None, pad_edge=False)
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(label, value)
    return _Trimmed(grid)
