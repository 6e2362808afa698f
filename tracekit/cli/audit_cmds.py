"""``audit show|verify`` and ``keys show``."""

from __future__ import annotations

from typing import Annotated

import typer

from tracekit.cli.completion import complete_ref
from tracekit.cli.context import command, emit_json, note, open_current_store, out, settings
from tracekit.cli.options import DEFAULT_LIMIT, AllOption

#: audit show reads at most this many entries into memory (a store's log can hold millions).
AUDIT_MAX_LIMIT = 100_000

audit_app = typer.Typer(help="The tamper-evident audit log of every change.", no_args_is_help=True)
keys_app = typer.Typer(help="This store's signing key (for central teams to register).", no_args_is_help=True)


@audit_app.command("show")
@command
def audit_show(
    since: Annotated[
        str | None, typer.Option("--since", help="Entries from this date (YYYY-MM-DD) on.", metavar="DATE")
    ] = None,
    action: Annotated[
        str | None,
        typer.Option("--action", help="Only this action or family, e.g. role.mark or role.", metavar="ACTION"),
    ] = None,
    ref: Annotated[
        str | None,
        typer.Option(
            "--ref",
            help="Only entries naming this reference.",
            metavar="REF",
            autocompletion=complete_ref("CASE", "PERSON", "EXPOSURE", "REFERRAL"),
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=AUDIT_MAX_LIMIT, help="At most this many entries.")
    ] = DEFAULT_LIMIT,
    offset: Annotated[
        int,
        typer.Option(
            "--offset", min=0, help="Skip this many first: the most recent without --since, the earliest with it."
        ),
    ] = 0,
    all_rows: AllOption = False,
) -> None:
    """List audit entries: when, what, which references, and the stated reason.

    Oldest first. Without --since, the last --limit entries (the most recent); with
    --since, the first --limit entries from that date on.
    """
    from tracekit import audit
    from tracekit.cli.listing import check_all, write_json_lines
    from tracekit.domain.identifiers import parse_date
    from tracekit.records.models import Page

    check_all(all_rows)
    since_iso = parse_date(since, "since").isoformat() if since else None
    filters = {"since": since_iso, "action": action, "ref": ref.upper() if ref else None}
    with open_current_store() as store:
        if all_rows:  # the whole log (or what matches), oldest first
            write_json_lines(audit.iter_entries(store.conn, **filters, offset=offset))
            return
        # One more than asked for says whether there are more, without counting them all
        # (the log of a national store holds millions of entries).
        entries = audit.entries(store.conn, **filters, limit=limit + 1, newest=since_iso is None, offset=offset)
        log_size = audit.entry_count(store.conn)
    more = len(entries) > limit
    if more:
        entries = entries[1:] if since_iso is None else entries[:limit]
    if settings().json:
        # counted only when unfiltered (the last sequence number); a filter would read the log
        total = log_size if not any(filters.values()) else None
        emit_json(Page(entries, total, limit, offset, more=more).to_json())
        return
    from tracekit.cli import render

    out().print(render.audit_table(entries))
    if more:
        which = "last" if since_iso is None else "first"
        note(
            f"showing the {which} {len(entries):,} matching entries of the {log_size:,} in the log; "
            f"more: --offset {offset + len(entries)}, --since DATE, --action, --ref or --limit N"
        )


@audit_app.command("verify")
@command
def audit_verify() -> None:
    """Check the hash chain; name the first entry that was edited, deleted, inserted or reordered."""
    from tracekit import audit
    from tracekit.errors import IntegrityError

    with open_current_store() as store:
        result = audit.verify(store.conn)
    if settings().json:
        emit_json(
            {
                "ok": result.ok,
                "entries": result.entries,
                "head": result.head,
                "problem": result.problem,
                "first_bad_entry": result.first_bad_seq,
            }
        )
    elif result.ok:
        out().print(f"Audit log intact: {result.entries} entries, head {result.head}.")
    if not result.ok:
        raise IntegrityError(result.problem or "the audit log does not verify")


@keys_app.command("show")
@command
def keys_show() -> None:
    """The Ed25519 public key and fingerprint that sign this store's bundles and referrals."""
    from tracekit.crypto import signing

    with open_current_store() as store:
        public = signing.public_key_hex(store.conn)
    fingerprint = signing.fingerprint(public)
    if settings().json:
        emit_json({"algorithm": "ed25519", "public_key": public, "fingerprint": fingerprint})
        return
    # The key on a line of its own, never wrapped by tracekit: on a terminal narrower
    # than its 64 digits the terminal wraps it, and a copied key is still whole.
    out().print(f"Signing key (Ed25519):\n{public}\nFingerprint: {fingerprint}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
    app.add_typer(keys_app, name="keys")
