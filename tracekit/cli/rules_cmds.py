"""``tracekit rules list|show|pin|unpin``: the dated public-health rule sets.

Every rule-derived value (infectious period, isolation ends, close-contact clause) names
the rule set that produced it. By default the rule set in force on the date concerned is
used; a store can pin one rule set for everything instead.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from tracekit.cli.context import command, emit_json, note, open_current_store, out, settings, store_path

if TYPE_CHECKING:
    from tracekit.domain.rules import RuleSet
    from tracekit.records import RecomputeSummary

rules_app = typer.Typer(
    help="The public-health rule sets: list, show, and pin one for the store.", no_args_is_help=True
)


def _pinned() -> str | None:
    """The store's pinned rule set; no store yet means nothing is pinned."""
    if not store_path().exists():
        return None
    from tracekit.records import Casebook

    with open_current_store() as store:
        return Casebook(store).pinned_ruleset


def _with_ends() -> list[tuple[RuleSet, date | None]]:
    from tracekit.domain.rules import all_rulesets

    rulesets = all_rulesets()
    return [
        (rs, rulesets[i + 1].valid_from - timedelta(days=1) if i + 1 < len(rulesets) else None)
        for i, rs in enumerate(rulesets)
    ]


@rules_app.command("list")
@command
def rules_list() -> None:
    """The rule sets tracekit knows, with their dates, which is in force today and which is pinned."""
    from tracekit.cli import render
    from tracekit.domain.rules import ruleset_for

    pinned = _pinned()
    in_force = ruleset_for(date.today()).id
    rulesets = _with_ends()
    if settings().json:
        from tracekit.records.models import list_json

        items = [render.ruleset_json(rs, valid_until=until) for rs, until in rulesets]
        emit_json({**list_json(items), "in_force_today": in_force, "pinned": pinned})
        return
    out().print(render.rulesets_table(rulesets, pinned=pinned, in_force=in_force))
    if pinned:
        note(f"The store has {pinned} pinned: it is used whatever the date ('tracekit rules unpin' undoes it).")
    else:
        note("Each case and contact uses the rule set in force on its date (onset, test or last exposure).")


@rules_app.command("show")
@command
def rules_show(
    ruleset_id: Annotated[
        str | None,
        typer.Argument(
            help="The rule set id (default: the one that applies today: pinned, else in force).", show_default=False
        ),
    ] = None,
) -> None:
    """A rule set in full: close-contact clauses, infectious period, isolation lengths, sources."""
    from tracekit.cli import render
    from tracekit.domain.rules import get_ruleset, ruleset_for

    pinned = _pinned()
    in_force = ruleset_for(date.today()).id
    rs = get_ruleset(ruleset_id) if ruleset_id else ruleset_for(date.today(), pinned)
    until = dict((r.id, u) for r, u in _with_ends())[rs.id]
    if settings().json:
        emit_json(
            {
                **render.ruleset_json(rs, valid_until=until),
                "in_force_today": rs.id == in_force,
                "pinned": rs.id == pinned,
            }
        )
        return
    marks = [m for m, on in (("in force today", rs.id == in_force), ("pinned in this store", rs.id == pinned)) if on]
    out().print(render.ruleset_detail(rs, valid_until=until, marks=marks))


def _recompute_message(summary: RecomputeSummary) -> str:
    changed = summary.cases_changed + summary.contacts_changed
    if not changed:
        return "no stored values changed"
    return (
        f"stored values changed for {summary.cases_changed:,} of {summary.cases:,} cases and "
        f"{summary.contacts_changed:,} of {summary.contacts:,} contacts"
    )


@rules_app.command("pin")
@command
def rules_pin(
    ruleset_id: Annotated[
        str, typer.Argument(help="The rule set id to use for everything in this store.", show_default=False)
    ],
) -> None:
    """Use one rule set for every case and contact in the store, whatever their dates.

    Stored values (infectious periods, isolation ends, close-contact clauses) are worked
    out again at once, in the same transaction as the setting and its audit entry: if
    the command is stopped, nothing changes. At a terminal a progress bar shows the
    records done.
    """
    from tracekit.cli import progress
    from tracekit.records import Casebook

    with open_current_store() as store, progress.counting("recomputing", "records") as report:
        summary = Casebook(store).pin_ruleset(ruleset_id, progress=report)
    if settings().json:
        emit_json({"pinned": ruleset_id, "recomputed": summary.to_json()})
        return
    out().print(
        f"Pinned {ruleset_id}: every case and contact in this store now uses it; {_recompute_message(summary)}."
    )


@rules_app.command("unpin")
@command
def rules_unpin() -> None:
    """Go back to the rule set in force on each record's date (values are recomputed)."""
    from tracekit.cli import progress
    from tracekit.records import Casebook

    summary = None
    with open_current_store() as store:
        casebook = Casebook(store)
        was = casebook.pinned_ruleset
        if was is not None:
            with progress.counting("recomputing", "records") as report:
                summary = casebook.pin_ruleset(None, progress=report)
    if settings().json:
        emit_json({"pinned": None, "was_pinned": was, "recomputed": summary.to_json() if summary else None})
        return
    if was and summary:
        out().print(
            f"Unpinned {was}: each record uses the rule set in force on its date again; {_recompute_message(summary)}."
        )
    else:
        out().print("No rule set was pinned; each record uses the rule set in force on its date.")


def register(app: typer.Typer) -> None:
    app.add_typer(rules_app, name="rules")
