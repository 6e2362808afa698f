"""Sensitive roles: ``role mark|unmark|list|release``, ``recipients``, ``refer``, ``referrals``
(``referrals receive`` is the vetted team's side)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tracekit.cli.completion import complete_recipient_role, complete_ref, complete_sensitive_role
from tracekit.cli.context import command, emit_json, note, open_current_store, out, settings, warn
from tracekit.cli.options import ContactRefArg, PersonRefArg
from tracekit.cli.safe_text import safe_markup

if TYPE_CHECKING:
    from tracekit.records.sensitive import ReferralPreview

role_app = typer.Typer(
    help="Mark people in sensitive roles; their identity is then masked everywhere.", no_args_is_help=True
)
recipients_app = typer.Typer(help="The age public keys that sealed referrals and bundles go to.", no_args_is_help=True)
referrals_app = typer.Typer(
    help="Sealed referrals to the vetted outbreak team; the vetted team receives them into its own store.",
    no_args_is_help=True,
)

ReasonOption = Annotated[
    str,
    typer.Option("--reason", help="Why (stored and audited; must not contain the person's details)."),
]


def _roles(store):
    from tracekit.records import Casebook
    from tracekit.records.sensitive import SensitiveRoles

    return SensitiveRoles(Casebook(store))


def _role_help() -> str:
    from tracekit.records.sensitive import ROLES

    return "; ".join(f"{key}: {meaning}" for key, meaning in ROLES.items())


@role_app.command("mark")
@command
def role_mark(
    person: PersonRefArg,
    role: Annotated[
        str,
        typer.Option(
            "--role",
            help="undercover-officer, counter-terrorism, protected-witness, victim, or other.",
            metavar="ROLE",
            autocompletion=complete_sensitive_role,
        ),
    ],
    reason: ReasonOption,
) -> None:
    """Mark a person as in a sensitive role: masked everywhere, contacts withheld, not searchable."""
    with open_current_store() as store:
        mark = _roles(store).mark(person, role, reason)
    if settings().json:
        emit_json(mark.to_json())
        return
    out().print(f"{mark.person_ref} marked as {mark.role}. Their identity is now masked in every output.")
    if mark.handed_over_in_clear:
        _report_earlier_handovers(mark)
    note(f"Refer them to the vetted team when ready: tracekit refer {mark.person_ref}")


def _report_earlier_handovers(mark) -> None:
    """Which bundles already carried the newly marked person's records in clear."""
    bundles = mark.handed_over_in_clear
    warn(
        f"{mark.person_ref}'s records, or their contacts', went in clear in {len(bundles)} earlier "
        "bundle(s); a bundle cannot be taken back, and later bundles do not tell the central team:"
    )
    for handover in bundles:
        out().print(
            f"  {handover.created_at}  to {handover.recipient}  {handover.file_name}  "
            f"({len(handover.refs)} record(s): {', '.join(handover.refs)})",
            markup=False,
        )
    out().print(
        f"Recall request {mark.recall} written: it goes only to the vetted team, in the next "
        "vetted-team handover (tracekit export handover --to THE-VETTED-TEAM), for them to take up "
        "with the central team.",
        markup=False,
    )


@role_app.command("unmark")
@command
def role_unmark(
    person: PersonRefArg,
    reason: ReasonOption,
) -> None:
    """Remove a sensitive-role mark (not possible once the person has been referred)."""
    from tracekit.domain.refs import RefKind, parse_ref

    with open_current_store() as store:
        _roles(store).unmark(person, reason)
    ref = parse_ref(person, RefKind.PERSON)
    if settings().json:
        emit_json({"person": ref, "unmarked": True})
        return
    out().print(f"{ref} is no longer marked; their details are shown and searchable again.")


@role_app.command("list")
@command
def role_list() -> None:
    """People marked in sensitive roles (references and roles only)."""
    from tracekit.cli import render

    with open_current_store() as store:
        marks = _roles(store).list_marks()
    if settings().json:
        from tracekit.records.models import list_json

        emit_json(list_json([m.to_json() for m in marks]))
        return
    if not marks:
        out().print("No one is marked.")
        return
    out().print(render.roles_table(marks))


@role_app.command("release")
@command
def role_release(
    contact: ContactRefArg,
    reason: ReasonOption,
) -> None:
    """Show one contact of a marked case in standard outputs, when it is plainly unrelated."""
    from tracekit.domain.refs import RefKind, parse_ref

    with open_current_store() as store:
        _roles(store).release_contact(contact, reason)
    ref = parse_ref(contact, RefKind.EXPOSURE)
    if settings().json:
        emit_json({"contact": ref, "released": True})
        return
    out().print(f"{ref} released: it now appears in standard outputs.")


@recipients_app.command("add")
@command
def recipients_add(
    name: Annotated[str, typer.Argument(help="A name for the recipient, e.g. 'Vetted Team North'.", metavar="NAME")],
    public_key: Annotated[str, typer.Argument(help="Their age X25519 public key (age1...).", metavar="PUBLIC_KEY")],
    role: Annotated[
        str,
        typer.Option(
            "--role", help="vetted-team or central-team.", metavar="ROLE", autocompletion=complete_recipient_role
        ),
    ] = "central-team",
) -> None:
    """Register a recipient's age public key."""
    with open_current_store() as store:
        recipient = _roles(store).add_recipient(name, public_key, role)
    if settings().json:
        emit_json(recipient.to_json())
        return
    out().print(f"Added {safe_markup(recipient.name)} ({safe_markup(recipient.role)}).")


@recipients_app.command("list")
@command
def recipients_list() -> None:
    """Registered recipients and their roles."""
    from tracekit.cli import render

    with open_current_store() as store:
        recipients = _roles(store).recipients()
    if settings().json:
        from tracekit.records.models import list_json

        emit_json(list_json([r.to_json() for r in recipients]))
        return
    if not recipients:
        out().print("No recipients. Add one: tracekit recipients add NAME age1... --role vetted-team")
        return
    out().print(render.recipients_table(recipients))


@recipients_app.command("remove")
@command
def recipients_remove(name: Annotated[str, typer.Argument(help="The recipient's name.")]) -> None:
    """Remove a recipient (future referrals and bundles are no longer sealed to them)."""
    with open_current_store() as store:
        _roles(store).remove_recipient(name)
    if settings().json:
        emit_json({"name": name, "removed": True})
        return
    out().print(f"Removed {safe_markup(name)}.")


@command
def refer(
    person: Annotated[
        str, typer.Argument(help="The marked person's reference.", metavar="REF", autocompletion=complete_ref("PERSON"))
    ],
    reason: Annotated[
        str | None,
        typer.Option(
            "--reason", help="Why now (required: asked at a terminal; stored and audited; no names or numbers)."
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Seal a marked person's record to the vetted team and purge it from this store.

    The purge cannot be undone. At a terminal, what will be sealed and purged is shown (by
    reference and count) and you are asked for a reason if none was given, then to
    confirm; scripts pass --reason and --yes.
    """
    from tracekit.cli import context, forms
    from tracekit.errors import ValidationError

    with open_current_store() as store:
        roles = _roles(store)
        preview = roles.referral_preview(person)  # refused (unmarked, no vetted team) before any question
        has_reason = bool(reason and reason.strip())
        if not context.interactive() and not (yes and has_reason):
            missing = "--reason and --yes" if not (yes or has_reason) else ("--yes" if not yes else "--reason")
            raise ValidationError(
                "confirmation" if not yes else "reason",
                "is needed to refer (the record is purged for good)",
                expected=f"{missing} when there is no terminal to ask at",
            )
        if not has_reason:
            reason = forms.prompt("Reason (stored and audited; no names or numbers)")
            if not reason.strip():
                raise ValidationError("reason", "is required", expected="a short reason, without names or numbers")
        if not yes:
            _print_referral_preview(preview)
            if not forms.confirm_or_decline(
                f"Seal {preview.person_ref} to the vetted team and purge it from this store?"
            ):
                return
        referral = roles.refer(person, reason)
    if settings().json:
        emit_json(referral.to_json())
        return
    out().print(
        f"Referred as {referral.ref}: sealed to {safe_markup(', '.join(referral.recipients))}. "
        "The details are no longer readable in this store, even with your passphrase."
    )
    note("Send it: tracekit referrals export --out DIR")


def _print_referral_preview(preview: ReferralPreview) -> None:
    """What a referral will seal and purge, on stderr: references and counts, no details."""
    from tracekit.cli import context

    cases = ", ".join(preview.case_refs) or "none"
    lines = [
        f"Refer {preview.person_ref} ({safe_markup(preview.role)}): sealed to {safe_markup(', '.join(preview.recipients))}.",
        f"  their cases: {cases}; contacts of those cases: {preview.contacts_of_cases}; "
        f"their own exposures as a contact: {preview.exposures_as_contact}",
        "  The details are then purged from this store for good; only the vetted team can open them.",
    ]
    for line in lines:
        context.err().print(line, highlight=False)


@referrals_app.command("list")
@command
def referrals_list() -> None:
    """Referrals in the outbox (sealed; only the vetted team can open them)."""
    from tracekit.cli import render

    with open_current_store() as store:
        referrals = _roles(store).referrals()
    if settings().json:
        from tracekit.records.models import list_json

        emit_json(list_json([r.to_json() for r in referrals]))
        return
    if not referrals:
        out().print("No referrals.")
        return
    out().print(render.referrals_table(referrals))


@referrals_app.command("export")
@command
def referrals_export(
    out_dir: Annotated[
        Path, typer.Option("--out", help="The directory to write R-XXXXXX.age files into.", metavar="DIR")
    ],
    ref: Annotated[
        list[str] | None,
        typer.Option(
            "--ref", help="Only this referral (repeatable).", metavar="REF", autocompletion=complete_ref("REFERRAL")
        ),
    ] = None,
) -> None:
    """Write sealed envelopes as .age files (mode 0600), decryptable with the age tool."""
    with open_current_store() as store:
        written = _roles(store).export_referrals(out_dir, ref)
    if settings().json:
        emit_json({"written": [str(p) for p in written]})
        return
    if not written:
        out().print("No referrals to export.")
        return
    for path in written:
        out().print(f"Wrote {safe_markup(path)}")


@referrals_app.command("receive")
@command
def referrals_receive(
    files: Annotated[
        list[Path],
        typer.Argument(help="Referral files (R-XXXXXX.age) or vetted-team bundles (.tar.age).", show_default=False),
    ],
    identity: Annotated[
        Path,
        typer.Option("--identity", "-i", help="The vetted team's age identity file (AGE-SECRET-KEY-1..., mode 0600)."),
    ],
    signer: Annotated[
        list[str] | None,
        typer.Option(
            "--signer",
            help="A tracer's registered public key (64 hex digits), its fingerprint (xxxx:xxxx:...), or a file "
            "holding either; repeat for several tracers. A referral signed by any other key is refused.",
            show_default=False,
        ),
    ] = None,
    trusted_signers: Annotated[
        Path | None,
        typer.Option(
            "--trusted-signers",
            envvar="TRACEKIT_TRUSTED_SIGNERS",
            help="Your team's trusted signers file (one tracer a line: fingerprint or key, then name): a referral "
            "signed by anyone not in it is refused. Default: $TRACEKIT_TRUSTED_SIGNERS.",
            show_default=False,
        ),
    ] = None,
    allow_unpinned_signer: Annotated[
        bool,
        typer.Option(
            "--allow-unpinned-signer",
            help="With neither --signer nor a trusted signers file, take referrals whose signer is not checked "
            "(a loud warning; not recommended).",
        ),
    ] = False,
) -> None:
    """On the vetted team's store: take sealed referrals in as records to trace.

    Every file is decrypted in memory, its signature, signer and content checked, before
    anything is written; then each file goes in whole or not at all. The person arrives
    marked with their role (masked: --reveal to see them), with their cases and the cases'
    contacts to trace (today, case show, contact call). Receiving a referral again changes
    nothing. Received people never go back to central: standard handovers leave them out.
    """
    from tracekit.bundle.reader import load_identities
    from tracekit.bundle.signers import resolve_signer
    from tracekit.records import Casebook
    from tracekit.records.receive import ReferralReceiver, read_incoming

    signers = resolve_signer(signer, trusted=trusted_signers, allow_unpinned=allow_unpinned_signer)
    identities = load_identities(identity)
    incoming = read_incoming(files, identities, signers)
    for incoming_file in incoming:
        unchecked = sorted({r.fingerprint for r in incoming_file.referrals if not r.signer_pinned})
        for fingerprint in unchecked:
            warn(
                f"[bold]the signer of {safe_markup(incoming_file.path)} was NOT checked[/bold] (--allow-unpinned-signer): "
                f"tracer key {fingerprint}. Anyone who knows your public key can make a referral; compare this "
                "fingerprint with the one the tracer registered before trusting these records."
            )
    with open_current_store() as store:
        results = ReferralReceiver(Casebook(store)).receive(incoming)
    if settings().json:
        emit_json(
            {
                "items": [r.to_json() for r in results],
                "received": sum(not r.already for r in results),
                "already_received": sum(r.already for r in results),
            }
        )
        return
    for incoming_file in incoming:
        if not incoming_file.referrals:
            out().print(f"{safe_markup(incoming_file.path)} holds no referrals: nothing to receive.")
    for result in results:
        if result.already:
            out().print(
                f"{result.ref} from tracer key {result.fingerprint} was already received ({result.received_at}): nothing changed."
            )
            continue
        cases = ", ".join(f"{new} (the tracer's {old})" for old, new in result.cases.items()) or "no cases"
        out().print(
            f"Received {result.ref} from tracer key {result.fingerprint}: {result.person} ({result.role}), marked; "
            f"case {cases}; {len(result.contacts)} contact(s) to trace."
        )
        if result.exposures_as_contact:
            out().print(
                f"  {result.exposures_as_contact} exposure(s) in which they were a contact of the tracer's other cases "
                "are kept with the referral"
                + (
                    f"; in {result.exposures_as_contact_not_reached} of them the tracer had not yet reached them as a "
                    "close contact: call them."
                    if result.exposures_as_contact_not_reached
                    else "."
                )
            )
    if any(not r.already for r in results):
        note(
            'Their identity is masked as for anyone marked: tracekit case show C-... --reveal --reason "...". Calls: tracekit today.'
        )


@referrals_app.command("received")
@command
def referrals_received() -> None:
    """On the vetted team's store: the referrals received, from which tracer key, and what they became."""
    from rich.table import Table

    from tracekit.records.receive import received_referrals

    with open_current_store() as store:
        received = received_referrals(store)
    if settings().json:
        from tracekit.records.models import list_json

        emit_json(list_json([r.to_json() for r in received]))
        return
    if not received:
        out().print("No referrals received.")
        return
    table = Table("referral", "person", "role", "cases", "contacts", "tracer key", "received")
    for r in received:
        table.add_row(
            r.ref,
            r.person,
            r.role,
            ", ".join(r.cases) or "-",
            str(r.contacts),
            r.fingerprint + ("" if r.signer_pinned else " (NOT checked)"),
            r.received_at,
        )
    out().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(role_app, name="role")
    app.add_typer(recipients_app, name="recipients")
    app.command()(refer)
    app.add_typer(referrals_app, name="referrals")
