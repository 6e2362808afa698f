"""The public face of tracekit.domain."""

from __future__ import annotations

import subprocess
import sys

import tracekit.domain as domain
from tracekit.domain import identifiers, refs, rules


def test_every_public_name_of_the_modules_is_re_exported() -> None:
    for module in (identifiers, refs, rules):
        for name in module.__all__:
            assert getattr(domain, name) is getattr(module, name), name
    assert sorted(domain.__all__) == sorted(identifiers.__all__ + refs.__all__ + rules.__all__)


def test_the_domain_does_not_pull_in_storage_cli_or_crypto() -> None:
    """The domain is pure: importing it loads no database, CLI or key code."""
    code = (
        "import sys, tracekit.domain, tracekit.domain.rules as r; r.all_rulesets(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'sqlcipher3', 'sqlite3', 'typer', 'rich', 'argon2', 'pyrage'} "
        "or m.startswith(('tracekit.store', 'tracekit.cli', 'tracekit.crypto'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
