"""``tracekit person show|search|update|merge``: the people behind cases and contacts."""

from __future__ import annotations

from typing import Annotated

import typer

from tracekit.cli import context
from tracekit.cli.completion import complete_ref
from tracekit.cli.context import command, emit_json, note, open_current_store, out, settings
from tracekit.cli.options import (
    MAX_LIMIT,
    AddressOption,
    AllOption,
    DobOption,
    EmailOption,
    NameOption,
    NhsOption,
    OccupationOption,
    OffsetOption,
    PersonRefArg,
    PhoneOption,
    PostcodeOption,
    RevealOption,
    RevealReasonOption,
)

person_app = typer.Typer(help="Find, show, correct and merge people.", no_args_is_help=True)

SEARCH_DEFAULT_LIMIT = 20


@person_app.command("show")
@command
def person_show(ref: PersonRefArg, reveal: RevealOption = False, reason: RevealReasonOption = None) -> None:
    """A person's details (only the reference and a marker for someone in a sensitive role,
    unless revealed with a reason)."""
    from tracekit.cli import render
    from tracekit.records import Casebook

    with open_current_store() as store:
        casebook = Casebook(store)
        if reveal:
            casebook.reveal([ref], reason or "")
        person = casebook.get_person(ref)
    if settings().json:
        emit_json(person.to_json())
        return
    out().print(render.person_detail(person))


@person_app.command("search")
@command
def person_search(
    text: Annotated[
        str, typer.Argument(help="Part of a name, phone number, NHS number or postcode (3 characters or more).")
    ],
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_LIMIT, help="Show at most this many matches, best first.")
    ] = SEARCH_DEFAULT_LIMIT,
    offset: OffsetOption = 0,
    all_rows: AllOption = False,
) -> None:
    """Find people by name, phone, NHS number or postcode (any part, any common form)."""
    from tracekit.cli import render
    from tracekit.cli.listing import check_all, write_json_lines
    from tracekit.records import Casebook

    check_all(all_rows)
    with open_current_store() as store:
        if all_rows:
            write_json_lines(Casebook(store).iter_search_people(text, offset=offset))
            return
        page = Casebook(store).search_page(text, limit=limit, offset=offset)
    if settings().json:
        emit_json(page.to_json())
        return
    people = page.items
    if not people:
        out().print("no matches" if not offset else f"no more matches at --offset {offset:,}", highlight=False)
        return
    out().print(render.people_table(people))
    more = f"; more: --offset {page.next_offset}" if page.next_offset is not None else ""
    out().print(
        f"{len(people):,} match{'es' if len(people) != 1 else ''}, best first{more}", highlight=False, markup=False
    )


@person_app.command("update")
@command
def person_update(
    ref: PersonRefArg,
    name: NameOption = None,
    dob: DobOption = None,
    nhs_number: NhsOption = None,
    phone: PhoneOption = None,
    email: EmailOption = None,
    address: AddressOption = None,
    postcode: PostcodeOption = None,
    occupation: OccupationOption = None,
) -> None:
    """Change a person's details (contact details change); only the options given are changed."""
    from tracekit.cli import forms, render
    from tracekit.records import Casebook, PersonInput

    changes = PersonInput(
        name=name,
        date_of_birth=dob,
        nhs_number=nhs_number,
        phone=phone,
        email=email,
        address=address,
        postcode=postcode,
        occupation=occupation,
    )
    with open_current_store() as store, forms.option_hints():
        casebook = Casebook(store)
        forms.check_given(changes.raw(), casebook.today, "person")
        person = casebook.update_person(ref, changes)
    if settings().json:
        emit_json(person.to_json())
        return
    out().print(f"Updated {render.person_summary(person)}", highlight=False)


@person_app.command("merge")
@command
def person_merge(
    keep: Annotated[
        str,
        typer.Argument(
            help="The person to keep (P-...).",
            show_default=False,
            metavar="KEEP_REF",
            autocompletion=complete_ref("PERSON"),
        ),
    ],
    other: Annotated[
        str,
        typer.Argument(
            help="The duplicate to merge into it (P-...); its reference keeps working.",
            show_default=False,
            metavar="OTHER_REF",
            autocompletion=complete_ref("PERSON"),
        ),
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Merge a duplicate person into another: cases and contacts move, missing details are filled in.

    The duplicate's reference stays valid as an alias of the kept person. At a terminal
    both people are shown and you are asked to confirm; scripts pass --yes.
    """
    from tracekit.cli import forms, render
    from tracekit.errors import ValidationError
    from tracekit.records import Casebook

    with open_current_store() as store:
        casebook = Casebook(store)
        kept, merged_away = casebook.get_person(keep), casebook.get_person(other)
        if not yes:
            if not context.interactive():
                raise ValidationError(
                    "confirmation", "is needed to merge people", expected="--yes when there is no terminal to ask at"
                )
            context.err().print(f"Keep:  {render.person_summary(kept)}", highlight=False)
            context.err().print(f"Merge: {render.person_summary(merged_away)}", highlight=False)
            if not forms.confirm_or_decline(f"Merge {merged_away.ref} into {kept.ref}?"):
                return
        person = casebook.merge_people(kept.ref, merged_away.ref)
    if settings().json:
        emit_json({"person": person.to_json(), "merged": merged_away.ref})
        return
    out().print(f"Merged {merged_away.ref} into {render.person_summary(person)}", highlight=False)
    note(f"{merged_away.ref} still finds this person.")
    if person.role and not kept.role:
        note(f"{person.ref} is now marked: the sensitive-role mark of {merged_away.ref} was carried over (audited).")


def register(app: typer.Typer) -> None:
    app.add_typer(person_app, name="person")
