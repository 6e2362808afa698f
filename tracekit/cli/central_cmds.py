"""``central migrate|ingest|summary`` and ``central tracers add|list|remove``: the central
team's PostgreSQL database (no store, no passphrase; docs/central-guide.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from tracekit.cli.bundle_cmds import IdentityOption
from tracekit.cli.context import command, emit_json, note, out, settings

central_app = typer.Typer(
    help="The central team: ingest verified bundles from many tracers into PostgreSQL, and summarise them.",
    no_args_is_help=True,
)
tracers_app = typer.Typer(help="The tracer registry: whose bundles the central database takes.", no_args_is_help=True)

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help=(
            "PostgreSQL connection string (postgresql://USER@HOST/DB or host=... dbname=...); default: "
            "$TRACEKIT_DATABASE_URL. Keep the password in PGPASSWORD or ~/.pgpass, not here."
        ),
        metavar="URL",
    ),
]


@contextmanager
def _database(given: str | None, *, migrated: bool = True) -> Iterator[tuple[Any, str]]:
    from tracekit.central.database import connect, database_url, require_current

    url = database_url(given)
    conn = connect(url)
    try:
        if migrated:
            _checked(url, lambda: require_current(conn, url), "reading the schema version")
        yield conn, url
    finally:
        conn.close()


def _checked(url: str, action: Any, doing: str) -> Any:
    """Run a database action; a psycopg error becomes a DatabaseError without the password."""
    import psycopg

    from tracekit.central.database import failure

    try:
        return action()
    except psycopg.Error as exc:
        raise failure(exc, url, doing) from None


def _text(value: object) -> Any:
    from rich.text import Text

    from tracekit.cli.safe_text import visible

    return Text(visible(str(value)))


@central_app.command("migrate")
@command
def central_migrate(database: DatabaseOption = None) -> None:
    """Create or upgrade the central schema (run as the role that owns it)."""
    from tracekit.central.database import LATEST_VERSION, describe, migrate

    with _database(database, migrated=False) as (conn, url):
        applied = migrate(conn, url)
    if settings().json:
        emit_json({"database": describe(url), "applied": applied, "schema_version": LATEST_VERSION})
        return
    if applied:
        out().print(f"Migrated to schema version {LATEST_VERSION} (applied {', '.join(map(str, applied))}).")
    else:
        out().print(f"The schema is up to date (version {LATEST_VERSION}).")


@central_app.command("ingest")
@command
def central_ingest(
    bundles: Annotated[list[Path], typer.Argument(help="The .tar.age bundles, each loaded in its own transaction.")],
    identity: IdentityOption,
    database: DatabaseOption = None,
) -> None:
    """Verify bundles from registered tracers and load them; a bundle loaded before changes nothing.

    Stops at the first bundle that is refused; the ones before it stay loaded, so running
    the same command again after fixing it is safe."""
    from tracekit.bundle.reader import load_identities
    from tracekit.central.ingest import ingest_bundles

    identities = load_identities(identity)
    results = []
    with _database(database) as (conn, url):
        for result in ingest_bundles(conn, url, bundles, identities):
            results.append(result)
            path = result.file
            if not settings().json:
                counts = f"{result.cases:,} cases, {result.contacts:,} contacts ({result.withheld:,} withheld stubs)"
                if result.already:
                    out().print(
                        _text(
                            f"{path.name}: ingested before (bundle {result.bundle_id} from {result.tracer}); nothing changed"
                        )
                    )
                else:
                    out().print(
                        _text(f"{path.name}: ingested bundle {result.bundle_id} from {result.tracer}: {counts}")
                    )
    if settings().json:
        emit_json({"items": [r.to_json() for r in results], "total": len(results)})
        return
    fresh = [r for r in results if not r.already]
    note(
        f"{len(fresh)} of {len(results)} bundles ingested, {sum(r.cases + r.contacts for r in fresh):,} records in {sum(r.seconds for r in results):.1f} s"
    )


@central_app.command("summary")
@command
def central_summary(
    database: DatabaseOption = None,
    days: Annotated[int, typer.Option("--days", min=1, help="Days shown, back from the newest bundle.")] = 14,
    links: Annotated[int, typer.Option("--links", min=0, help="Linked people listed (all are counted).")] = 20,
) -> None:
    """What arrived per tracer and per day, and the people several tracers have records of."""
    from rich.table import Table

    from tracekit.central.summary import summarise

    with _database(database) as (conn, url):
        summary = _checked(url, lambda: summarise(conn, days=days, links=links), "summarising")
    if settings().json:
        emit_json(summary.to_json())
        return
    if not summary.tracers:
        out().print("No tracers registered yet: tracekit central tracers add --name NAME --signer KEY")
        return
    table = Table(
        "tracer",
        "fingerprint",
        "bundles",
        "cases",
        "contacts",
        "withheld",
        "last bundle (UTC)",
        title="Per tracer",
        title_justify="left",
    )
    for t in summary.tracers:
        table.add_row(
            _text(t["name"] + ("" if t["active"] else " (removed)")),
            t["fingerprint"],
            f"{t['bundles']:,}",
            f"{t['cases']:,}",
            f"{t['contacts']:,}",
            f"{t['withheld']:,}",
            (t["last_bundle_at"] or "-")[:19],
        )
    out().print(table)
    if summary.days:
        table = Table(
            "day (UTC)", "tracer", "bundles", "cases", "contacts", "withheld", title="Per day", title_justify="left"
        )
        for d in summary.days:
            table.add_row(
                d["day"],
                _text(d["tracer"]),
                f"{d['bundles']:,}",
                f"{d['cases']:,}",
                f"{d['contacts']:,}",
                f"{d['withheld']:,}",
            )
        out().print(table)
    out().print(
        f"Cross-tracer links: {summary.linked_people:,} people have records from two or more tracers "
        f"({summary.records_with_pseudonym:,} records carry a pseudonym, {summary.records_without_pseudonym:,} do not and link to nothing)."
    )
    if summary.links:
        table = Table(
            "pseudonym", "tracers", "records", title=f"Linked people (first {len(summary.links)})", title_justify="left"
        )
        for link in summary.links:
            table.add_row(link["pseudonym"], _text(", ".join(link["tracers"])), f"{link['records']:,}")
        out().print(table)


@tracers_app.command("add")
@command
def tracers_add(
    name: Annotated[
        str, typer.Option("--name", help="The tracer's name, as the central team knows them.", metavar="NAME")
    ],
    signer: Annotated[
        str,
        typer.Option(
            "--signer",
            help="Their public key (64 hex digits), its fingerprint (xxxx:xxxx:...), or a file holding either.",
            metavar="KEY",
        ),
    ],
    database: DatabaseOption = None,
) -> None:
    """Register a tracer: bundles signed by this key are ingested. Confirm the key with the tracer first."""
    from tracekit.central import registry

    with _database(database) as (conn, url):
        tracer = _checked(url, lambda: registry.add(conn, name, signer), "registering the tracer")
    if settings().json:
        emit_json(tracer.to_json())
        return
    out().print(_text(f"Registered {tracer.name} ({tracer.fingerprint})."))


@tracers_app.command("list")
@command
def tracers_list(
    database: DatabaseOption = None,
    include_removed: Annotated[bool, typer.Option("--all", help="Removed tracers too.")] = False,
) -> None:
    """The registered tracers and how many bundles each sent."""
    from rich.table import Table

    from tracekit.central import registry

    with _database(database) as (conn, url):
        tracers = _checked(url, lambda: registry.list_tracers(conn, include_removed=include_removed), "listing tracers")
    if settings().json:
        emit_json({"items": [t.to_json() for t in tracers], "total": len(tracers)})
        return
    if not tracers:
        out().print("No tracers registered.")
        return
    table = Table("name", "fingerprint", "added (UTC)", "bundles", *(("removed (UTC)",) if include_removed else ()))
    for t in tracers:
        cells = [_text(t.name), t.fingerprint, t.added_at.isoformat()[:19], f"{t.bundles:,}"]
        if include_removed:
            cells.append(t.removed_at.isoformat()[:19] if t.removed_at else "")
        table.add_row(*cells)
    out().print(table)


@tracers_app.command("remove")
@command
def tracers_remove(
    name: Annotated[str, typer.Option("--name", help="The registered tracer's name.", metavar="NAME")],
    database: DatabaseOption = None,
) -> None:
    """Stop taking a tracer's bundles; what they sent stays."""
    from tracekit.central import registry

    with _database(database) as (conn, url):
        tracer = _checked(url, lambda: registry.remove(conn, name), "removing the tracer")
    if settings().json:
        emit_json(tracer.to_json())
        return
    out().print(_text(f"Removed {tracer.name} ({tracer.fingerprint}); bundles they sent stay, new ones are refused."))


def register(app: typer.Typer) -> None:
    central_app.add_typer(tracers_app, name="tracers")
    app.add_typer(central_app, name="central")
