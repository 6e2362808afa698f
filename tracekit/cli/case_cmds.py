"""``tracekit case add|list|show|update|close|tree``: cases, thin over ``Casebook``."""

from __future__ import annotations

from typing import Annotated

import typer

from tracekit.cli.completion import complete_from
from tracekit.cli.context import command, emit_json, note, open_current_store, out, settings
from tracekit.cli.options import (
    CASE_STATUSES,
    DEFAULT_LIMIT,
    LIST_PANEL,
    AddressOption,
    AllOption,
    AsymptomaticOption,
    CaseNotesOption,
    CaseRefArg,
    DobOption,
    EmailOption,
    LimitOption,
    LinkOption,
    NameOption,
    NewPersonOption,
    NhsOption,
    OccupationOption,
    OffsetOption,
    OnsetOption,
    PersonOption,
    PhoneOption,
    PostcodeOption,
    ResultOption,
    RevealOption,
    RevealReasonOption,
    SinceOption,
    TestDateOption,
    TestTypeOption,
    UntilOption,
)

case_app = typer.Typer(help="Record and follow cases (people with a positive test).", no_args_is_help=True)

CASE_FIELDS = ("test_date", "test_type", "test_result", "symptom_onset")


@case_app.command("add")
@command
def case_add(
    person: PersonOption = None,
    name: NameOption = None,
    dob: DobOption = None,
    nhs_number: NhsOption = None,
    phone: PhoneOption = None,
    email: EmailOption = None,
    address: AddressOption = None,
    postcode: PostcodeOption = None,
    occupation: OccupationOption = None,
    link: LinkOption = None,
    new_person: NewPersonOption = False,
    test_date: TestDateOption = None,
    test_type: TestTypeOption = None,
    result: ResultOption = None,
    onset: OnsetOption = None,
    asymptomatic: AsymptomaticOption = False,
    notes: CaseNotesOption = None,
) -> None:
    """Record a case, fully from flags (scripts) or by answering prompts at a terminal.

    At a terminal, anything required and missing is asked for and checked as it is typed;
    people already stored with the same NHS number, name and date of birth, or phone are
    offered for linking. Without a terminal, a missing field is an error naming it, and a
    possible duplicate needs --link P-... or --new-person.
    """
    from tracekit.cli import forms, render
    from tracekit.records import Casebook

    with open_current_store() as store:
        casebook = Casebook(store)
        form = forms.Form(
            {
                "person_ref": person,
                "link": link,
                "new_person": new_person,
                "name": name,
                "date_of_birth": dob,
                "nhs_number": nhs_number,
                "phone": phone,
                "email": email,
                "address": address,
                "postcode": postcode,
                "occupation": occupation,
                "test_date": test_date,
                "test_type": test_type,
                "test_result": result,
                "symptom_onset": onset,
                "asymptomatic": asymptomatic,
                "notes": notes,
            },
            today=casebook.today,
            askable=[*forms.PERSON_FIELDS, *CASE_FIELDS],
            command=["case", "add"],
        )
        form.check_person_options()
        form.check_given("person", "case")
        form.ask_person(casebook)
        form.ask_missing("test_date")
        if not form.values["asymptomatic"]:
            form.ask_missing("symptom_onset")
        case = form.run(
            lambda: casebook.add_case(
                **form.person_kwargs(),
                test_date=form.values["test_date"],
                test_type=form.values["test_type"],
                test_result=form.values["test_result"],
                symptom_onset=form.values["symptom_onset"],
                asymptomatic=bool(form.values["asymptomatic"]),
                notes=form.values["notes"],
            )
        )
    if settings().json:
        emit_json(case.to_json())
        return
    out().print(f"Recorded case {render.case_line(case)}", highlight=False)
    note(f"Next: add the case's contacts with 'tracekit contact add {case.ref}'.")


@case_app.command("list")
@command
def case_list(
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help=f"Only cases with this status: {', '.join(CASE_STATUSES)}.",
            rich_help_panel=LIST_PANEL,
            show_default=False,
            metavar="STATUS",
            autocompletion=complete_from(CASE_STATUSES),
        ),
    ] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    limit: LimitOption = DEFAULT_LIMIT,
    offset: OffsetOption = 0,
    all_rows: AllOption = False,
) -> None:
    """List cases, most recent test first (filter by status and test date)."""
    from tracekit.cli import forms, render
    from tracekit.cli.listing import check_all, write_json_lines
    from tracekit.records import Casebook

    check_all(all_rows)
    with open_current_store() as store, forms.option_hints():
        if all_rows:
            write_json_lines(Casebook(store).iter_cases(status=status, since=since, until=until, offset=offset))
            return
        page = Casebook(store).list_cases(status=status, since=since, until=until, limit=limit, offset=offset)
    if settings().json:
        emit_json(page.to_json())
        return
    if page.items:
        out().print(render.cases_table(page.items))
    out().print(render.footer(page, "cases"), highlight=False, markup=False)


@case_app.command("show")
@command
def case_show(ref: CaseRefArg, reveal: RevealOption = False, reason: RevealReasonOption = None) -> None:
    """A case with its rule-derived dates (infectious period, isolation) and the rule set used."""
    from tracekit.cli import render
    from tracekit.records import Casebook

    with open_current_store() as store:
        casebook = Casebook(store)
        case = casebook.get_case(ref)
        if reveal:
            masked = [
                c.contact.ref
                for c in casebook.list_contacts(case_ref=case.ref, limit=DEFAULT_LIMIT).items
                if c.contact.masked
            ]
            casebook.reveal([case.person.ref, *masked], reason or "")
            case = casebook.get_case(ref)
        contacts = casebook.list_contacts(case_ref=case.ref, limit=DEFAULT_LIMIT)
    if settings().json:
        # the contacts the screen shows, masked and withheld as there (the same records)
        emit_json({**case.to_json(), "contacts": contacts.to_json()})
        return
    out().print(render.case_detail(case, contacts))


@case_app.command("update")
@command
def case_update(
    ref: CaseRefArg,
    test_date: TestDateOption = None,
    test_type: TestTypeOption = None,
    result: ResultOption = None,
    onset: OnsetOption = None,
    asymptomatic: Annotated[
        bool,
        typer.Option(
            "--asymptomatic", help="The case had no symptoms after all: clears the onset date.", rich_help_panel="Case"
        ),
    ] = False,
    notes: CaseNotesOption = None,
) -> None:
    """Correct a case's test or onset; the rule-derived dates are recomputed."""
    from tracekit.cli import forms, render
    from tracekit.records import Casebook

    with open_current_store() as store, forms.option_hints():
        casebook = Casebook(store)
        changes = {
            "test_date": test_date,
            "test_type": test_type,
            "test_result": result,
            "symptom_onset": onset,
            "notes": notes,
        }
        forms.check_given(changes, casebook.today, "case")
        case = casebook.update_case(ref, **changes, asymptomatic=asymptomatic)
    if settings().json:
        emit_json(case.to_json())
        return
    out().print(f"Updated case {render.case_line(case)}", highlight=False)


@case_app.command("close")
@command
def case_close(
    ref: CaseRefArg,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why, for the audit log (no personal details).", show_default=False)
    ] = None,
) -> None:
    """Close a case once its tracing is done (its contacts stay on the worklist until reached)."""
    from tracekit.cli import render
    from tracekit.records import Casebook

    with open_current_store() as store:
        case = Casebook(store).close_case(ref, reason=reason)
    if settings().json:
        emit_json(case.to_json())
        return
    out().print(f"Closed case {case.ref} ({render.name(case.person)}).", highlight=False)


@case_app.command("tree")
@command
def case_tree(ref: CaseRefArg) -> None:
    """The transmission chain a case belongs to, from its earliest known case down.

    Each case shows its person, test date and status; under it, the cases it led to
    (contacts who became cases) and its other contacts with their close-contact clause
    and trace status. The case asked about is highlighted.
    """
    from tracekit.cli import render
    from tracekit.records import Casebook

    with open_current_store() as store:
        root, asked = Casebook(store).case_tree(ref)
    if settings().json:
        emit_json(render.tree_json(root, asked))
        return
    out().print(render.case_tree(root, asked))


def register(app: typer.Typer) -> None:
    app.add_typer(case_app, name="case")
