"""``export handover``, ``bundle verify|inspect|open``, ``policy list|show|check``,
``keys pseudonym generate|import``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tracekit.cli.context import command, emit_json, note, open_current_store, out, settings, warn
from tracekit.cli.options import MAX_LIMIT, AllOption, OffsetOption
from tracekit.cli.safe_text import safe_markup

export_app = typer.Typer(
    help="Export what leaves this machine: redacted, signed, encrypted bundles.", no_args_is_help=True
)
bundle_app = typer.Typer(
    help="The receiving side: verify, inspect and open bundles (needs your age identity, not a store).",
    no_args_is_help=True,
)
policy_app = typer.Typer(help="Redaction policies: what each recipient may receive.", no_args_is_help=True)
pseudonym_app = typer.Typer(help="The team-wide key for stable pseudonyms.", no_args_is_help=True)

IdentityOption = Annotated[
    Path, typer.Option("--identity", "-i", help="Your age identity file (AGE-SECRET-KEY-1..., mode 0600).")
]
SignerOption = Annotated[
    list[str] | None,
    typer.Option(
        "--signer",
        help=(
            "The tracer's registered public key (64 hex digits), its fingerprint (xxxx:xxxx:... as bundle verify "
            "and keys show print), or a file holding either; repeat to accept any of several tracers."
        ),
        metavar="KEY",
    ),
]
TrustedSignersOption = Annotated[
    Path | None,
    typer.Option(
        "--trusted-signers",
        envvar="TRACEKIT_TRUSTED_SIGNERS",
        help=(
            "Your team's trusted signers file (one tracer a line: fingerprint or key, then name): a bundle signed "
            "by anyone not in it is refused. Default: $TRACEKIT_TRUSTED_SIGNERS."
        ),
    ),
]


def _signer_check(signer: list[str] | None, trusted: Path | None):
    """What these bundle commands accept: an unpinned signer too, with a loud warning (:func:`_warn_if_unpinned`)."""
    from tracekit.bundle.signers import resolve_signer

    return resolve_signer(signer, trusted=trusted, allow_unpinned=True)


def _warn_if_unpinned(verified) -> None:
    from tracekit.bundle.signers import unpinned_warning

    if not verified.signer_checked:
        warn(safe_markup(unpinned_warning(verified.signer_fingerprint)))


@export_app.command("handover")
@command
def export_handover(
    to: Annotated[
        str, typer.Option("--to", help="The recipient's name (see tracekit recipients list).", metavar="NAME")
    ],
    policy: Annotated[
        str | None,
        typer.Option(
            "--policy",
            help="Built-in policy name or a .toml file. Default: follows the recipient's role.",
            metavar="POLICY",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Records changed on or after this date (records policies only).", metavar="DATE"),
    ] = None,
    since_last: Annotated[
        bool,
        typer.Option(
            "--since-last",
            help="What changed since the last handover of this policy to this recipient (the default; statistics always count every record).",
        ),
    ] = False,
    all_records: Annotated[bool, typer.Option("--all", help="Every record, whatever changed when.")] = False,
    allow_empty: Annotated[
        bool,
        typer.Option(
            "--allow-empty",
            help="Write a bundle even when there is nothing new (no case, contact or referral); by default nothing is written and the exit code is 0.",
        ),
    ] = False,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the bundle into.", metavar="DIR")] = Path(
        "."
    ),
) -> None:
    """Write one redacted, signed, age-encrypted bundle for one recipient (nothing when there is nothing new)."""
    from tracekit.bundle.writer import export_handover as export

    with open_current_store() as store:
        result = export(
            store,
            to,
            policy_name=policy,
            since=since,
            since_last=since_last,
            all_records=all_records,
            allow_empty=allow_empty,
            out_dir=out_dir,
        )
    if settings().json:
        emit_json(result.to_json())
        return
    if not result.written:
        window = f" since {result.changes_since}" if result.changes_since else ""
        out().print(
            f"Nothing new for {safe_markup(result.recipient)}{window} ({safe_markup(result.policy)}): no bundle written."
        )
        note("  --allow-empty writes an empty bundle anyway.")
        return
    counts = result.record_counts
    withheld = sum(v for k, v in counts.items() if k.startswith("withheld_"))
    out().print(f"Wrote {safe_markup(result.path)}")
    out().print(
        f"  {safe_markup(result.policy)} for {safe_markup(result.recipient)}: {counts['cases']} cases, {counts['contacts']} contacts"
        + (f", {counts['referrals']} sealed referrals" if counts.get("referrals") else "")
        + (f"; {withheld} withheld (see redaction-report.json)" if withheld else "")
    )
    note(
        f"  changes {'since ' + result.changes_since if result.changes_since else 'from the beginning'}; {result.size_bytes:,} bytes in {result.seconds:.2f} s"
    )
    if result.without_pseudonyms:
        note(
            "  no team pseudonym key in this store: the records carry no pseudonym, so the central team "
            "cannot link them with other tracers' (tracekit keys pseudonym import FILE)"
        )


@export_app.command("list")
@command
def export_list(
    to: Annotated[str | None, typer.Option("--to", help="Only bundles for this recipient.", metavar="NAME")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=MAX_LIMIT, help="At most this many, newest first.")] = 50,
    offset: OffsetOption = 0,
    all_rows: AllOption = False,
) -> None:
    """Bundles made from this store: when, for whom, under which policy, how many records."""
    from tracekit.bundle.writer import iter_handovers, list_handovers
    from tracekit.cli.listing import check_all, write_json_lines

    check_all(all_rows)
    with open_current_store() as store:
        if all_rows:
            write_json_lines(iter_handovers(store, to, offset))
            return
        page = list_handovers(store, to, limit, offset)
    if settings().json:
        emit_json(page.to_json())
        return
    handovers = page.items
    if not handovers:
        out().print(
            "No bundles yet." if not page.total else f"Nothing at --offset {offset:,}; {page.total:,} bundles in all."
        )
        return
    from tracekit.cli import render

    out().print(render.handovers_table(handovers))
    if page.next_offset is not None:
        note(f"showing {offset + 1:,}–{page.next_offset:,} of {page.total:,}; next: --offset {page.next_offset}")


def _print_verified(verified, title: str) -> None:
    """The manifest's facts as a table. Every value came from the bundle: shown as plain text, never as markup."""
    from rich.table import Table
    from rich.text import Text

    from tracekit.cli.safe_text import visible

    data = verified.to_json()
    table = Table(show_header=False, box=None, title=Text(visible(title)), title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("bundle", data["bundle_id"]),
        ("created", data["created_at"]),
        ("for", f"{data['recipient']['name']} ({data['recipient']['role']})"),
        ("policy", f"{data['policy']} (sha256 {data['policy_sha256'][:16]}...)"),
        ("changes", f"since {data['changes']['since'] or 'the beginning'} until {data['changes']['until']}"),
        *((key.replace("_", " "), str(value)) for key, value in data["record_counts"].items()),
        ("signed by", data["signer_fingerprint"] + _signer_note(verified.signer)),
        ("files", str(len(data["files"]))),
    ]
    for label, value in rows:
        table.add_row(Text(label), Text(visible(value)))
    out().print(table)


def _signer_note(signer) -> str:
    if not signer.pinned:
        return " (NOT CHECKED: pass --signer or --trusted-signers)"
    checks = []
    if "--signer" in signer.pinned_by:
        checks.append("matches --signer")
    if "trusted signers" in signer.pinned_by:
        checks.append(f"in your trusted signers as {signer.name}" if signer.name else "in your trusted signers")
    return f" ({'; '.join(checks)})"


@bundle_app.command("verify")
@command
def bundle_verify(
    file: Annotated[Path, typer.Argument(help="The .tar.age bundle.")],
    identity: IdentityOption,
    signer: SignerOption = None,
    trusted_signers: TrustedSignersOption = None,
) -> None:
    """Decrypt and check the signature, every file's hash and the record counts."""
    from tracekit.bundle.reader import load_identities, read_bundle

    signers = _signer_check(signer, trusted_signers)
    verified = read_bundle(file, load_identities(identity), signer=signers)
    _warn_if_unpinned(verified)
    if settings().json:
        emit_json(verified.to_json())
        return
    _print_verified(verified, "Bundle verified: signature, hashes and counts all match.")


@bundle_app.command("inspect")
@command
def bundle_inspect(
    file: Annotated[Path, typer.Argument(help="The .tar.age bundle.")],
    identity: IdentityOption,
    signer: SignerOption = None,
    trusted_signers: TrustedSignersOption = None,
) -> None:
    """Show the manifest: who made it, for whom, under which policy, how many records."""
    from tracekit.bundle.reader import load_identities, read_bundle

    signers = _signer_check(signer, trusted_signers)
    verified = read_bundle(file, load_identities(identity), signer=signers)
    _warn_if_unpinned(verified)
    if settings().json:
        emit_json({**verified.to_json(), "manifest": verified.manifest})
        return
    _print_verified(verified, f"Bundle {file.name}")
    for name in verified.files:
        out().print(f"  {name}", markup=False, highlight=False)


@bundle_app.command("open")
@command
def bundle_open(
    file: Annotated[Path, typer.Argument(help="The .tar.age bundle.")],
    identity: IdentityOption,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Directory to open into (a subdirectory per bundle).", metavar="DIR")
    ],
    signer: SignerOption = None,
    trusted_signers: TrustedSignersOption = None,
) -> None:
    """Verify and write the contents for loading elsewhere (only if everything verifies)."""
    from tracekit.bundle.reader import load_identities, open_bundle

    signers = _signer_check(signer, trusted_signers)
    verified, final = open_bundle(file, load_identities(identity), out_dir, signer=signers)
    _warn_if_unpinned(verified)
    if settings().json:
        emit_json({**verified.to_json(), "opened_into": str(final)})
        return
    from tracekit.cli.safe_text import visible

    out().print(f"Verified and opened into {visible(final)}", markup=False, highlight=False)


@policy_app.command("list")
@command
def policy_list() -> None:
    """The built-in policies."""
    from tracekit.records.models import list_json
    from tracekit.redaction.policy import BUILT_IN

    if settings().json:
        emit_json(list_json([p.canonical() | {"sha256": p.sha256} for p in BUILT_IN.values()]))
        return
    for policy in BUILT_IN.values():
        out().print(
            f"[bold]{safe_markup(policy.name)}[/bold] (for {', '.join(policy.recipient_roles)}): {safe_markup(policy.description)}"
        )


@policy_app.command("show")
@command
def policy_show(
    name: Annotated[str, typer.Argument(help="A built-in policy name or a .toml file.", metavar="POLICY")],
) -> None:
    """Every field a policy lets through, per record type."""
    from tracekit.redaction.policy import get_policy

    policy = get_policy(name)
    if settings().json:
        emit_json(policy.canonical() | {"sha256": policy.sha256, "source": policy.source})
        return
    out().print(f"[bold]{safe_markup(policy.name)}[/bold] ({policy.kind}; for {', '.join(policy.recipient_roles)})")
    out().print(safe_markup(policy.description, multiline=True))
    for record_type, fields in policy.fields.items():
        out().print(f"  {record_type}: {', '.join(fields)}")
    if policy.statistics:
        out().print(f"  statistics: {', '.join(policy.statistics)}")
    out().print(f"  sha256: {policy.sha256}")


@policy_app.command("check")
@command
def policy_check(file: Annotated[Path, typer.Argument(help="A custom policy TOML file.")]) -> None:
    """Check a custom policy file; every problem names the key and what was expected."""
    from tracekit.redaction.policy import load_policy_file

    policy = load_policy_file(file)
    if settings().json:
        emit_json({"ok": True, **policy.canonical(), "sha256": policy.sha256})
        return
    out().print(f"{safe_markup(file)}: OK, policy '{safe_markup(policy.name)}' (sha256 {policy.sha256[:16]}...)")


@pseudonym_app.command("generate")
@command
def pseudonym_generate(
    out_file: Annotated[Path, typer.Option("--out", help="Write the key here (0600) to share with your team.")],
) -> None:
    """Make a new team key, keep it in this store and write it to a file for the team."""
    from tracekit import audit, files
    from tracekit.errors import Conflict
    from tracekit.redaction.pseudonym import KEY_SETTING, key_file_text, new_key

    with open_current_store() as store:
        if store.get_setting(KEY_SETTING):
            raise Conflict("this store already has a pseudonym key; replacing it would change every pseudonym")
        key = new_key()
        with files.atomic_output(out_file) as handle:
            handle.write(key_file_text(key).encode())
        with store.transaction() as conn:
            conn.execute("INSERT INTO settings(key, value) VALUES(?, ?)", (KEY_SETTING, key.hex()))
            audit.append(conn, "keys.pseudonym.generate", [], str(out_file))
    if settings().json:
        emit_json({"written": str(out_file)})
        return
    out().print(
        f"Pseudonym key made and written to {safe_markup(out_file)} (mode 0600). Share it only with your team's tracers."
    )


@pseudonym_app.command("import")
@command
def pseudonym_import(file: Annotated[Path, typer.Argument(help="The key file from keys pseudonym generate.")]) -> None:
    """Use the team's key (so pseudonyms match across tracers)."""
    from tracekit import audit
    from tracekit.errors import Conflict
    from tracekit.redaction.pseudonym import KEY_SETTING, read_key_file
    from tracekit.store import settings as store_settings

    key = read_key_file(file)
    with open_current_store() as store:
        current = store.get_setting(KEY_SETTING)
        if current and current != key.hex():
            raise Conflict("this store already has a different pseudonym key")
        with store.transaction() as conn:
            store_settings.put(conn, KEY_SETTING, key.hex())
            audit.append(conn, "keys.pseudonym.import", [], str(file))
    if settings().json:
        emit_json({"imported": True})
        return
    out().print("Pseudonym key imported.")


def register(app: typer.Typer) -> None:
    from tracekit.cli.audit_cmds import keys_app

    keys_app.add_typer(pseudonym_app, name="pseudonym")
    app.add_typer(export_app, name="export")
    app.add_typer(bundle_app, name="bundle")
    app.add_typer(policy_app, name="policy")
