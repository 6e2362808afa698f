"""Shell completion of option values: settings, call outcomes, roles and references.

Completion runs on every Tab press, without the passphrase, so it never opens the store
and never keeps anything from it (no cache of references or names on disk): a list of
real references would be plaintext taken out of the encrypted store. For a reference it
offers the kind prefix the command expects (``C-``, ``P-``, ``E-``, ``R-``) with what it
names; the tracer types the six characters, as read out or seen on the worklist. See
docs/security.md ("Shell completion").

Settings, outcomes, statuses and test types come from ``tracekit.cli.options``, whose
lists a test keeps in step with the library's; roles and reference kinds from the
library, imported only when a completion is asked for, so that start-up stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable

Completion = tuple[str, str]


def complete_from(values: tuple[str, ...]) -> Callable[[str], list[str]]:
    """Completion for one of ``values`` (settings, call outcomes, statuses...)."""

    def complete(incomplete: str) -> list[str]:
        return [value for value in values if value.startswith(incomplete)]

    return complete


def complete_sensitive_role(incomplete: str) -> list[Completion]:
    """A sensitive role, with what it means."""
    from tracekit.records.sensitive import ROLES

    return [(role, meaning) for role, meaning in ROLES.items() if role.startswith(incomplete)]


def complete_recipient_role(incomplete: str) -> list[str]:
    """What a recipient of referrals and bundles is: vetted-team or central-team."""
    from tracekit.records.sensitive import RECIPIENT_ROLES

    return [role for role in RECIPIENT_ROLES if role.startswith(incomplete)]


def complete_ref(*kinds: str) -> Callable[[str], list[Completion]]:
    """Completion for a reference of these kinds (``RefKind`` names: "CASE", "PERSON"...):
    the kind prefix with what it names, never a stored reference (see the module's docstring)."""

    def complete(incomplete: str) -> list[Completion]:
        from tracekit.domain.refs import RefKind

        expected = [RefKind[kind] for kind in kinds]
        return [
            (f"{kind.value}-", f"{kind.a_noun} reference, e.g. {kind.example}")
            for kind in expected
            if f"{kind.value}-".startswith(incomplete)
        ]

    return complete
