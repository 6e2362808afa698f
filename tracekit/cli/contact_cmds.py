"""``tracekit contact add|list|show|update|call|promote``: a case's contacts, thin over ``Casebook``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from tracekit.cli import context
from tracekit.cli.completion import complete_from, complete_ref
from tracekit.cli.context import command, emit_json, note, open_current_store, out, settings, warn
from tracekit.cli.options import (
    CALL_OUTCOMES,
    CONTACT_PANEL,
    DEFAULT_LIMIT,
    LIST_PANEL,
    SETTINGS,
    TRACE_STATUSES,
    AddressOption,
    AllOption,
    AsymptomaticOption,
    CaseNotesOption,
    ContactCaseArg,
    ContactNotesOption,
    ContactRefArg,
    DobOption,
    DurationOption,
    EmailOption,
    LastExposureOption,
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
    ProximityOption,
    RevealOption,
    RevealReasonOption,
    SettingOption,
    SinceOption,
    TestDateOption,
    TestTypeOption,
    UntilOption,
)

if TYPE_CHECKING:
    from tracekit.domain.rules import Closeness
    from tracekit.records import Exposure

contact_app = typer.Typer(
    help="Record a case's contacts, log calls to them, and promote one who tests positive.", no_args_is_help=True
)

EXPOSURE_FIELDS = ("last_exposure", "setting", "proximity_m", "duration_min", "face_to_face", "direct_contact")


def _print_warnings(warnings: list[str]) -> None:
    from tracekit.cli.safe_text import safe_markup

    for warning in warnings:
        warn(safe_markup(warning))


def _explain(casebook: Any, exposure: Exposure) -> Closeness | None:
    """Why the contact is (not) close; None when it is withheld by association (the
    inputs of the explanation are withheld too)."""
    return None if exposure.withheld else casebook.explain_contact(exposure)


def _print_result(verb: str, e: Exposure, closeness: Closeness | None) -> None:
    from tracekit.cli import render

    out().print(f"{verb} contact [bold]{e.ref}[/bold] of case {e.case_ref}: {render.contact_label(e)}", highlight=False)
    if e.close_contact:
        verdict = f"[bold]close contact[/bold] ({e.clause}); isolate until the end of {render.day(e.isolation_end)}"
    else:
        verdict = "not a close contact: no isolation"
    out().print(f"  {verdict} [dim](rule set {e.ruleset_id})[/dim]", highlight=False)
    if closeness is not None:
        note(f"  [dim]{render.safe_markup(closeness.explanation)}[/dim]")


@contact_app.command("add")
@command
def contact_add(
    case: ContactCaseArg,
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
    last_exposure: LastExposureOption = None,
    setting: SettingOption = None,
    proximity: ProximityOption = None,
    duration: DurationOption = None,
    face_to_face: Annotated[
        bool,
        typer.Option(
            "--face-to-face", help="They were face to face (a conversation, coughed on).", rich_help_panel=CONTACT_PANEL
        ),
    ] = False,
    direct_contact: Annotated[
        bool, typer.Option("--direct-contact", help="Skin-to-skin physical contact.", rich_help_panel=CONTACT_PANEL)
    ] = False,
    notes: ContactNotesOption = None,
) -> None:
    """Record a contact of a case; says whether it is a close contact, under which clause.

    At a terminal, missing details are asked for; without one, --last-exposure and
    --setting are required. Warnings (for example an exposure outside the case's
    infectious period) go to stderr; the contact is recorded anyway.
    """
    from tracekit.cli import forms
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
                "last_exposure": last_exposure,
                "setting": setting,
                "proximity_m": proximity,
                "duration_min": duration,
                "face_to_face": face_to_face,
                "direct_contact": direct_contact,
                "notes": notes,
            },
            today=casebook.today,
            askable=[*forms.PERSON_FIELDS, "last_exposure", "setting", "proximity_m", "duration_min"],
        )
        form.check_person_options()
        case_ref = casebook.get_case(case).ref  # a wrong reference fails before any question
        form.command = ("contact", "add", case_ref)
        form.check_given("person", "exposure")
        bare = not form.given(*EXPOSURE_FIELDS)
        form.ask_person(casebook)
        form.ask_missing("last_exposure", "setting")
        if bare and context.interactive():
            form.ask("proximity_m", optional=True)
            form.ask("duration_min", optional=True)
            form.ask_flag("face_to_face", "Face to face (a conversation, coughed on)?")
            form.ask_flag("direct_contact", "Skin-to-skin contact?")
        exposure, warnings = form.run(
            lambda: casebook.add_contact(
                case_ref,
                **form.person_kwargs(),
                **{f: form.values[f] for f in EXPOSURE_FIELDS},
                notes=form.values["notes"],
            )
        )
        closeness = _explain(casebook, exposure)
    _print_warnings(warnings)
    if settings().json:
        from tracekit.cli import render

        emit_json(render.contact_json(exposure, closeness))
        return
    _print_result("Added", exposure, closeness)


@contact_app.command("list")
@command
def contact_list(
    case: Annotated[
        str | None,
        typer.Option(
            "--case",
            help="Only contacts of this case (C-...).",
            rich_help_panel=LIST_PANEL,
            show_default=False,
            metavar="REF",
            autocompletion=complete_ref("CASE"),
        ),
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help=f"Only this trace status: {', '.join(TRACE_STATUSES)}.",
            rich_help_panel=LIST_PANEL,
            show_default=False,
            metavar="STATUS",
            autocompletion=complete_from(TRACE_STATUSES),
        ),
    ] = None,
    setting: Annotated[
        str | None,
        typer.Option(
            "--setting",
            help=f"Only this setting: {', '.join(SETTINGS)}.",
            rich_help_panel=LIST_PANEL,
            show_default=False,
            metavar="SETTING",
            autocompletion=complete_from(SETTINGS),
        ),
    ] = None,
    since: SinceOption = None,
    until: UntilOption = None,
    close_only: Annotated[
        bool, typer.Option("--close-only", help="Only close contacts.", rich_help_panel=LIST_PANEL)
    ] = False,
    limit: LimitOption = DEFAULT_LIMIT,
    offset: OffsetOption = 0,
    all_rows: AllOption = False,
) -> None:
    """List contacts, most recent exposure first (dates filter the last exposure)."""
    from tracekit.cli import forms, render
    from tracekit.cli.listing import check_all, write_json_lines
    from tracekit.records import Casebook

    check_all(all_rows)
    filters: dict[str, Any] = {
        "case_ref": case,
        "status": status,
        "setting": setting,
        "since": since,
        "until": until,
        "close_only": close_only,
    }
    with open_current_store() as store, forms.option_hints():
        if all_rows:
            write_json_lines(Casebook(store).iter_contacts(**filters, offset=offset))
            return
        page = Casebook(store).list_contacts(**filters, limit=limit, offset=offset)
    if settings().json:
        emit_json(page.to_json())
        return
    if page.items:
        out().print(render.contacts_table(page.items))
    out().print(render.footer(page, "contacts"), highlight=False, markup=False)


@contact_app.command("show")
@command
def contact_show(ref: ContactRefArg, reveal: RevealOption = False, reason: RevealReasonOption = None) -> None:
    """A contact: close or not and why (the clause and rule set), isolation end, call log."""
    from tracekit.cli import render
    from tracekit.records import Casebook

    with open_current_store() as store:
        casebook = Casebook(store)
        if reveal:
            # This contact only: the marked person whose case it is stays masked.
            casebook.reveal_contact(ref, reason or "")
        exposure = casebook.get_contact(ref)
        closeness = _explain(casebook, exposure)
    if settings().json:
        emit_json(render.contact_json(exposure, closeness))
        return
    out().print(render.contact_detail(exposure, closeness))


@contact_app.command("update")
@command
def contact_update(
    ref: ContactRefArg,
    last_exposure: LastExposureOption = None,
    setting: SettingOption = None,
    proximity: ProximityOption = None,
    duration: DurationOption = None,
    face_to_face: Annotated[
        bool | None,
        typer.Option(
            "--face-to-face/--no-face-to-face",
            help="Whether they were face to face.",
            rich_help_panel=CONTACT_PANEL,
            show_default=False,
        ),
    ] = None,
    direct_contact: Annotated[
        bool | None,
        typer.Option(
            "--direct-contact/--no-direct-contact",
            help="Whether there was skin-to-skin contact.",
            rich_help_panel=CONTACT_PANEL,
            show_default=False,
        ),
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help=f"Set the trace status: {', '.join(TRACE_STATUSES)}.",
            rich_help_panel=CONTACT_PANEL,
            show_default=False,
            metavar="STATUS",
            autocompletion=complete_from(TRACE_STATUSES),
        ),
    ] = None,
    notes: ContactNotesOption = None,
) -> None:
    """Correct a contact's details; closeness and isolation end are worked out again."""
    from tracekit.cli import forms
    from tracekit.records import Casebook

    with open_current_store() as store, forms.option_hints():
        casebook = Casebook(store)
        changes: dict[str, Any] = {
            "last_exposure": last_exposure,
            "setting": setting,
            "proximity_m": proximity,
            "duration_min": duration,
            "face_to_face": face_to_face,
            "direct_contact": direct_contact,
            "trace_status": status,
            "notes": notes,
        }
        forms.check_given(changes, casebook.today, "exposure")
        exposure, warnings = casebook.update_contact(ref, **changes)
        closeness = _explain(casebook, exposure)
    _print_warnings(warnings)
    if settings().json:
        from tracekit.cli import render

        emit_json(render.contact_json(exposure, closeness))
        return
    _print_result("Updated", exposure, closeness)


@contact_app.command("call")
@command
def contact_call(
    ref: ContactRefArg,
    outcome: Annotated[
        str | None,
        typer.Option(
            "--outcome",
            help=f"What happened: {', '.join(CALL_OUTCOMES)}.",
            show_default=False,
            metavar="OUTCOME",
            autocompletion=complete_from(CALL_OUTCOMES),
        ),
    ] = None,
    call_note: Annotated[
        str | None, typer.Option("--note", help="A short note about the call.", show_default=False)
    ] = None,
) -> None:
    """Log a call attempt; reached, isolating, declined and unreachable update the trace status."""
    from tracekit.cli import forms
    from tracekit.records import Casebook

    with open_current_store() as store:
        casebook = Casebook(store)
        exposure = casebook.get_contact(ref)  # a wrong reference fails before the question
        form = forms.Form({"outcome": outcome}, today=casebook.today, askable=["outcome"])
        form.ask_missing("outcome")
        if form.missing("outcome"):
            from tracekit.errors import ValidationError

            raise forms.with_option_hint(
                ValidationError("outcome", "is required", expected="one of " + ", ".join(CALL_OUTCOMES))
            )
        exposure = form.run(lambda: casebook.log_call(exposure.ref, form.values["outcome"], call_note))
        closeness = _explain(casebook, exposure)
    if settings().json:
        from tracekit.cli import render

        emit_json(render.contact_json(exposure, closeness))
        return
    from tracekit.cli import render

    last = exposure.calls[-1] if exposure.calls else None
    out().print(
        f"Logged call to {exposure.ref} ({render.contact_label(exposure)}): "
        f"{render.words(str(last.outcome)) if last else '-'}; trace status now "
        f"{render.words(str(exposure.trace_status))} ({render.count(len(exposure.calls), 'call')} so far).",
        highlight=False,
    )


@contact_app.command("promote")
@command
def contact_promote(
    ref: Annotated[
        str,
        typer.Argument(
            help="The contact (E-7K2M9Q, as the worklist shows it) or the person (P-7K2M9Q).",
            show_default=False,
            metavar="REF",
            autocompletion=complete_ref("EXPOSURE", "PERSON"),
        ),
    ],
    source: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="With a person (P-): the contact (E-...) through which they were infected. "
            "Without it, their most recent one.",
            rich_help_panel=CONTACT_PANEL,
            show_default=False,
            metavar="REF",
            autocompletion=complete_ref("EXPOSURE"),
        ),
    ] = None,
    test_date: TestDateOption = None,
    test_type: TestTypeOption = None,
    onset: OnsetOption = None,
    asymptomatic: AsymptomaticOption = False,
    notes: CaseNotesOption = None,
) -> None:
    """Turn a contact who tested positive into a case, keeping the chain.

    The new case records the contact (exposure) through which the person was infected,
    so 'tracekit case tree' shows who infected whom: the E- reference given, or with a
    P- reference the one named by --source, else their most recent.
    """
    from tracekit.cli import forms, render
    from tracekit.records import Casebook

    with open_current_store() as store:
        casebook = Casebook(store)
        # Wrong references fail before any question.
        via = casebook.promotion_source(ref, source=source)
        form = forms.Form(
            {
                "test_date": test_date,
                "test_type": test_type,
                "symptom_onset": onset,
                "asymptomatic": asymptomatic,
                "notes": notes,
            },
            today=casebook.today,
            askable=["test_date", "test_type", "symptom_onset"],
        )
        form.check_given("case")
        form.ask_missing("test_date")
        if not form.values["asymptomatic"]:
            form.ask_missing("symptom_onset")
        case = form.run(
            lambda: casebook.promote_contact(
                via.ref,
                test_date=form.values["test_date"],
                test_type=form.values["test_type"] or "pcr",
                symptom_onset=form.values["symptom_onset"],
                asymptomatic=bool(form.values["asymptomatic"]),
                notes=form.values["notes"],
            )
        )
    if settings().json:
        emit_json(case.to_json())
        return
    out().print(f"Promoted to case {render.case_line(case)}", highlight=False)
    if case.source_exposure_ref:
        out().print(
            f"  infected via contact {case.source_exposure_ref}; see 'tracekit case tree {case.ref}'", highlight=False
        )


def register(app: typer.Typer) -> None:
    app.add_typer(contact_app, name="contact")
