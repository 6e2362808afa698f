"""Made-up data and small runners for the case-book CLI tests.

Every identifier is reserved for tests: NHS numbers from 999 000 0000 upwards (never
issued, valid check digits, checked below), Ofcom's drama mobile range 07700 900000 to
900999, and example postcodes. Dates are in 2020 and always passed explicitly.
"""

from __future__ import annotations

import json
from typing import Any

from tracekit.domain.identifiers import is_valid_nhs_number

NHS = ("9990000018", "9990000026", "9990000034", "9990000042", "9990000050")
assert all(is_valid_nhs_number(n) for n in NHS)


def phone(n: int) -> str:
    return f"07700 900{n:03d}"


def e164(n: int) -> str:
    return f"+447700900{n:03d}"


def ok(cli: Any, *args: str, input: str | None = None) -> Any:
    result = cli(*args, input=input)
    assert result.exit_code == 0, f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result


def as_json(cli: Any, *args: str, input: str | None = None) -> Any:
    return json.loads(ok(cli, "--json", *args, input=input).stdout)


def add_case(
    cli: Any,
    name: str = "Ada Example",
    *extra: str,
    n: int = 1,
    test_date: str = "2020-10-10",
    onset: str | None = "2020-10-08",
) -> dict[str, Any]:
    args = ["case", "add", "--name", name, "--phone", phone(n), "--test-date", test_date]
    args += ["--onset", onset] if onset else ["--asymptomatic"]
    return as_json(cli, *args, *extra)


def add_contact(
    cli: Any,
    case_ref: str,
    name: str,
    *extra: str,
    n: int | None = None,
    last: str = "2020-10-09",
    setting: str = "workplace",
) -> dict[str, Any]:
    args = ["contact", "add", case_ref, "--name", name, "--last-exposure", last, "--setting", setting]
    if n is not None:
        args += ["--phone", phone(n)]
    return as_json(cli, *args, *extra)


def out_json(result: Any) -> Any:
    """The JSON document on stdout after prompts (CliRunner echoes typed answers to stdout;
    a real terminal echoes them itself), so it is the last line."""
    assert result.exit_code == 0, f"exit {result.exit_code}\nstderr: {result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def answers(*lines: str) -> str:
    """Prompt answers for CliRunner ``input=``, one per line."""
    return "\n".join(lines) + "\n"
