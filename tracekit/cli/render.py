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

import re
from collections.abc import Iterable
from datetime import date
from operator import attrgetter
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.cells import cell_len
from rich.table import Table
from rich.style import Style
from rich.text import Span, Text
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
    except Exception:  # noqa: BLE001 - a stored value we cannot reformat is shown as stored
        return e164


def nhs_number(digits: str) -> str:
    from tracekit.domain.identifiers import format_nhs_number

    try:
        return format_nhs_number(digits)
    except Exception:  # noqa: BLE001
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
    if last < page.total:
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
    table = _table("ref", "name", ("date of birth", 2), ("NHS number", 3), "phone", ("postcode", 1))
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
    return Group(f"[bold]Person {person.ref}[/bold]", _grid(rows))


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
    except Exception:  # noqa: BLE001 - an unknown id is shown as stored
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
        infectious += f" [dim]({rs.infectious_days_before} days before the {reference} to {rs.infectious_days_after} after)[/dim]"
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
    return Group(*parts)


def cases_table(cases: Iterable[Case]) -> RenderableType:
    table = _table("ref", "person", "test date", ("onset", 3), "status", ("contacts", 2), ("isolation until", 1))
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
    return f"isolate until the end of {day(end)}" if end else f"no isolation ({NO_ISOLATION[kind].removeprefix('none (')}"


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
        rows += [(label, WITHHELD_CELL) for label in ("setting", "distance", "duration", "face to face", "direct contact")]
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
        table = _table("at", "outcome", "note")
        for call in exposure.calls:
            if exposure.withheld:
                call_note = WITHHELD_CELL
            else:
                call_note = safe_markup(call.note, multiline=True) if call.note else ""
            table.add_row(safe_markup(call.at), words(str(call.outcome)), call_note)
        parts.append(table)
    else:
        parts.append("[dim]no calls logged yet[/dim]")
    return Group(*parts)


def contacts_table(exposures: Iterable[Exposure], *, show_case: bool = True) -> RenderableType:
    """Contacts, one a line. With ``show_case`` (contact list) the case column replaces the
    phone column, to fit a terminal; the worklist and 'contact show' give the phone."""
    table = _table(
        "ref", ("case", 2) if show_case else "phone", "person", "exposed", "risk (clause)", ("status", 1), ("isolate until", 3)
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
def case_tree(root: TreeNode, highlight_id: int) -> Tree:
    tree = Tree(_tree_case_label(root, highlight_id), guide_style="dim")
    _add_tree_children(tree, root, highlight_id)
    return tree


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
        # one entry on two lines, not a table: the number to ring is never cut short
        # (on a narrow terminal each line breaks between its fields, under the reference)
        lines: list[str | Fields] = []
        for number, e in enumerate(work.to_call, work.offset + 1):
            phone = phone_cell(e.contact) if not e.withheld else WITHHELD_CELL
            lines.append((
                f"{number:>3}. [bold]{e.ref}[/bold]  {contact_name(e)}  {phone}  [dim](case {e.case_ref})[/dim]", "  ", 5,
            ))
            # A contact who is not close is given no isolation date to read out.
            isolation = f" · isolate until the end of {day(e.isolation_end)}" if e.isolation_end else ""
            lines.append((f"     {closeness_cell(e)} · last exposure {day(e.last_exposure)}{isolation}", " · ", 5))
        parts.append(_Block(lines))
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
        table = _table("contact", "person", "phone", ("case", 1), ("status", 2))
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
    return Group(*parts)


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
    table = _table("#", "when (UTC)", "action", ("references", 1), ("reason", 2))
    for entry in entries:
        table.add_row(
            str(entry.seq), safe_markup(entry.at[:19]), safe_markup(entry.action), safe_markup(", ".join(entry.refs)),
            safe_markup(entry.reason or ""),
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
    table = _table("id", "from", ("until", 3), ("title", 2), "case isolates", "contact isolates", "note")
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
            ("in force", f"from {day(rs.valid_from)}" + (f" to {day(valid_until)}" if valid_until else " (the latest)")),
            (
                "infectious period",
                f"{rs.infectious_days_before} days before symptom onset (or the test) to {rs.infectious_days_after} days after",
            ),
            ("case isolation", f"{rs.case_isolation_days} days from the day after onset (or the test)"),
            ("contact isolation", f"{rs.contact_isolation_days} days from the day after the last exposure"),
        ]
    )
    clauses = _table("clause", "close contact when")
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
    return Group(
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
    except Exception:  # noqa: BLE001
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


#: Columns whose text may wrap (at spaces); every other column stays on one line.
_WRAPPING = {"person", "name", "title", "note", "close contact when", "references", "reason"}
#: Wrapping columns whose long words may be folded (an audit reason's bundle id) rather
#: than the column dropped.
_FOLDING = {"reason"}

Header = str | tuple[str, int]
#: Characters between two columns of a table: padding either side and the box's divider.
_COLUMN_GAP = 3


class _FitTable:
    """A table that leaves out its least important columns when the terminal is too
    narrow, instead of cutting values short: a phone number or a reference with an
    ellipsis in it is worse than no column at all. Each column has a drop priority
    (0: always shown; the highest number goes first)."""

    #: Lay out one-line rows directly (see __rich_console__); False: always Rich's Table.
    simple_layout = True

    def __init__(self, headers: tuple[Header, ...]) -> None:
        self.columns = [(h, 0) if isinstance(h, str) else h for h in headers]
        self.rows: list[tuple[str, ...]] = []

    def add_row(self, *cells: str) -> None:
        self.rows.append(cells)

    def __rich_console__(self, console: Any, options: Any) -> Any:
        # Each cell's markup is parsed once, here, and the column widths are worked out
        # here and given to Rich, so Rich neither parses nor measures the cells again
        # (it would otherwise do both: the dearest part of printing a 50-row list).
        rows = [[markup_text(cell) for cell in row] for row in self.rows]
        headers = [header for header, _ in self.columns]
        natural: list[int] = []  # no wrapping
        least: list[int] = []  # what a column needs to be worth keeping
        for i, header in enumerate(headers):
            lengths = [cell_len(header), *(row[i].cell_len for row in rows)]
            natural.append(max(lengths))
            if header in _FOLDING:
                least.append(min(12, natural[i]))
            elif header in _WRAPPING:
                words = (w for text in [header, *(row[i].plain for row in rows)] for w in text.split())
                longest_word = max((cell_len(w) for w in words), default=0)
                least.append(max(longest_word, min(12, max(lengths[1:], default=0))))
            else:
                least.append(natural[i])
        keep = list(range(len(self.columns)))
        # between two columns: a space of padding on each side and the box's divider
        while sum(least[i] for i in keep) + _COLUMN_GAP * (len(keep) - 1) > options.max_width:
            droppable = [i for i in keep if self.columns[i][1] > 0]
            if not droppable or len(keep) == 1:  # the last column stays, even squeezed
                break
            keep.remove(max(droppable, key=lambda i: (self.columns[i][1], i)))
        widths = {i: natural[i] for i in keep}
        excess = sum(widths.values()) + _COLUMN_GAP * (len(keep) - 1) - options.max_width
        fits = excess <= sum(widths[i] - least[i] for i in keep)
        # Too wide: narrow the wrapping columns, widest first, down to what makes them
        # worth keeping. If even that cannot fit (a very narrow terminal and nothing
        # left to drop), Rich measures and squeezes the columns itself.
        while fits and excess > 0:
            widest = max((i for i in keep if widths[i] > least[i]), key=lambda i: (widths[i], -i))
            widths[widest] -= 1
            excess -= 1
        if self.simple_layout and fits:
            # Lay the lines out directly, as Rich's Table would, without its cell-by-cell
            # machinery: a 50-row table prints in about a tenth of the time.
            # tests/cli/test_render.py checks the output against Rich's own Table.
            yield from _fitted(self._simple(console, rows, [(i, headers[i], widths[i]) for i in keep]), console)
            return
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for i in keep:
            # "fold": when even a kept column cannot fit, a value wraps onto the next line
            # rather than being cut off with an ellipsis
            table.add_column(
                headers[i], no_wrap=headers[i] not in _WRAPPING, overflow="fold", width=widths[i] if fits else None
            )
        for row in rows:
            table.add_row(*(row[i] for i in keep))
        yield table


    @staticmethod
    def _simple(console: Any, rows: list[list[Text]], columns: list[tuple[int, str, int]]) -> Text:
        """The table Rich draws with ``box.SIMPLE_HEAD``, no edge and no edge padding: a
        bold header (its padding bold too, the divider between columns not), a rule the
        width of the table, then each row, its cells wrapped (at spaces, or folded) to the
        column's width and padded, a row as tall as its tallest cell."""
        last = len(columns) - 1
        text = Text(end="\n")
        for n, (_, header, width) in enumerate(columns):
            left = " " if n else ""
            right = " " if n < last else ""
            text.append(left + header + " " * (width - cell_len(header)) + right, style="table.header")
            if n < last:
                text.append(" ")
        text.append("\n" + "\u2500" * (sum(width for _, _, width in columns) + _COLUMN_GAP * last))
        gap = " " * _COLUMN_GAP
        for row in rows:
            cells: list[list[Text]] = []
            for i, header, width in columns:
                cell = row[i]
                if cell.cell_len <= width and "\n" not in cell.plain:
                    cells.append([cell])
                else:
                    wrapped = cell.wrap(console, width, justify="left", overflow="fold", no_wrap=header not in _WRAPPING)
                    cells.append(list(wrapped))
            for depth in range(max(len(lines) for lines in cells)):
                text.append("\n")
                for n, ((_, _, width), lines) in enumerate(zip(columns, cells)):
                    if depth < len(lines):
                        text.append_text(lines[depth])
                        padding = width - lines[depth].cell_len
                    else:
                        padding = width
                    text.append(" " * padding + gap if n < last else " " * padding)
        return text


#: An opening or closing style tag of the markup tracekit writes: ``[bold]``, ``[/bold red]``.
_STYLE_TAG = re.compile(r"\[(/?)([a-z][a-z ]*)\]")


def markup_text(markup: str) -> Text:
    """``Text.from_markup(markup, emoji=False)``, about five times faster for the markup
    tables and the worklist are made of: style tags around escaped, printable text.
    Anything else (a backslash escape, a bracket that is not a style tag, a newline or
    control character, a tag that closes nothing) goes to Rich. tests/cli/test_render.py
    checks the two agree."""
    if "[" not in markup:
        return Text(markup)
    if "\\" in markup or not markup.isprintable():
        return Text.from_markup(markup, emoji=False)
    parts: list[str] = []
    spans: list[Span] = []
    open_tags: list[tuple[int, str]] = []
    length = position = 0
    for tag in _STYLE_TAG.finditer(markup):
        chunk = markup[position:tag.start()]
        if "[" in chunk:
            return Text.from_markup(markup, emoji=False)
        parts.append(chunk)
        length += len(chunk)
        position = tag.end()
        closing, name = tag.groups()
        name = Style.normalize(name.strip() if closing else name)
        if not closing:
            open_tags.append((length, name))
            continue
        for index in range(len(open_tags) - 1, -1, -1):
            if open_tags[index][1] == name:
                start, _ = open_tags.pop(index)
                break
        else:
            return Text.from_markup(markup, emoji=False)  # Rich's MarkupError
        spans.append(Span(start, length, name))
    rest = markup[position:]
    if "[" in rest:
        return Text.from_markup(markup, emoji=False)
    parts.append(rest)
    length += len(rest)
    while open_tags:
        start, name = open_tags.pop()
        if name:
            spans.append(Span(start, length, name))
    text = Text("".join(parts))
    # Rich's order: spans closed later first, then a stable sort by start
    text.spans = sorted(spans[::-1], key=attrgetter("start"))
    return text


#: An entry of the worklist: one line of markup whose fields are joined by ``sep``; if
#: it is too long it breaks between fields, continuing ``indent`` columns in.
Fields = tuple[str, str, int]


class _Block:
    """Lines of markup printed as one Text, not a renderable a line: the same output in a
    fraction of the time. Only the lines longer than the terminal are broken: a line of
    fields (:data:`Fields`) between its fields, so that a date or a phone number is never
    split, and any other line (or a field wider than the terminal) by Rich's word
    wrapping."""

    def __init__(self, lines: list[str | Fields]) -> None:
        self.lines: list[tuple[Text, str | None, int]] = [
            (markup_text(line), None, 0) if isinstance(line, str) else (markup_text(line[0]), line[1], line[2])
            for line in lines
        ]

    def __rich_console__(self, console: Any, options: Any) -> Any:
        width = options.max_width
        text = Text(end="\n")
        for n, (line, sep, indent) in enumerate(self.lines):
            if n:
                text.append("\n")
            if line.cell_len <= width:
                text.append_text(line)
                continue
            if sep is None:
                text.append_text(Text("\n").join(line.wrap(console, width)))
                continue
            for m, (piece, lead) in enumerate(_break_between_fields(line, sep, indent, width)):
                if m:
                    text.append("\n")
                if lead + piece.cell_len <= width:
                    text.append(" " * lead)
                    text.append_text(piece)
                    continue
                # wider than a line on its own: word-wrapped, under the same indent
                for k, wrapped in enumerate(piece.wrap(console, width - lead)):
                    if k:
                        text.append("\n")
                    wrapped.rstrip()
                    text.append(" " * lead)
                    text.append_text(wrapped)
        yield from _fitted(text, console)


def _fitted(text: Text, console: Any) -> Any:
    """A Text whose every line already fits the width, as Segments. Yielding the Text
    itself would have Rich split it into lines, justify and truncate each and join them
    again: about half the cost of printing a 50-entry worklist, for the same output."""
    if "\t" in text.plain:  # tabs are expanded by Rich's own path
        text.no_wrap = True
        yield text
        return
    yield from text.render(console, end=text.end)


def _break_between_fields(line: Text, sep: str, indent: int, width: int) -> list[tuple[Text, int]]:
    """``line`` cut at occurrences of ``sep`` (dropped at a break) into pieces that fit
    ``width`` cells, each continuation to be shown ``indent`` spaces in: (piece, indent).
    A field wider than a line on its own is left whole (the caller word-wraps it)."""
    plain = line.plain
    if width < indent + 10:  # too narrow to indent usefully
        return [(line, 0)]
    fields: list[tuple[int, int]] = []  # (start, end) of each field in plain
    start = 0
    while True:
        at = plain.find(sep, start)
        if at < 0:
            fields.append((start, len(plain)))
            break
        fields.append((start, at))
        start = at + len(sep)
    pieces: list[tuple[Text, int]] = []
    first, last = fields[0]
    used, lead = cell_len(plain[first:last]), 0
    for start, end in fields[1:]:
        size = cell_len(plain[start:end])
        if used + len(sep) + size <= width:
            last, used = end, used + len(sep) + size
            continue
        pieces.append((line[first:last], lead))
        first, last, used, lead = start, end, indent + size, indent
    pieces.append((line[first:last], lead))
    return pieces


def _table(*headers: Header) -> _FitTable:
    return _FitTable(headers)


def _grid(rows: list[tuple[str, str]]) -> _Grid:
    return _Grid(rows)


class _Grid:
    """Label and value rows (a record's details): what Rich draws for
    ``Table(show_header=False, box=None, pad_edge=False)`` with a bold, unwrapped label
    column, laid out directly when every value's longest word fits (always, but on a very
    narrow terminal, which goes to Rich). tests/cli/test_render.py compares the two."""

    #: False: always Rich's Table.
    simple_layout = True
    #: Between the label and the value: the label's right padding and the value's left.
    GAP = 2

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        self.rows = rows

    def _rich(self, rows: list[tuple[Text, Text]]) -> Table:
        grid = Table(show_header=False, box=None, pad_edge=False)
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column()
        for label, value in rows:
            grid.add_row(label, value)
        return grid

    def __rich_console__(self, console: Any, options: Any) -> Any:
        rows = [(markup_text(label), markup_text(value)) for label, value in self.rows]
        if not self.simple_layout or not rows:
            yield self._rich(rows)
            return
        label_width = max(label.cell_len for label, _ in rows)
        lines_of = [value.plain.split("\n") for _, value in rows]
        natural = max(cell_len(line) for lines in lines_of for line in lines)
        longest_word = max((cell_len(word) for lines in lines_of for line in lines for word in line.split()), default=0)
        room = options.max_width - label_width - self.GAP
        if longest_word > room or "\t" in "".join(value.plain for _, value in rows) or any(
            "\n" in label.plain for label, _ in rows
        ):
            yield self._rich(rows)
            return
        width = min(natural, room)
        if width == 0:  # nothing but empty values: Rich's zero-width column is its own case
            yield self._rich(rows)
            return
        text = Text(end="\n")
        for n, (label, value) in enumerate(rows):
            if n:
                text.append("\n")
            if value.cell_len <= width and "\n" not in value.plain:
                wrapped = [value]
            else:
                wrapped = list(value.wrap(console, width, justify="left", overflow="ellipsis"))
            for depth, line in enumerate(wrapped):
                if depth:
                    text.append("\n")
                start = len(text)
                if not depth:
                    text.append_text(label)
                text.append(" " * (label_width - (0 if depth else label.cell_len) + 1))
                text.stylize("bold", start, len(text))  # the label column's style, padding too
                text.append(" ")
                text.append_text(line)
                text.append(" " * (width - line.cell_len))
        yield from _fitted(text, console)
