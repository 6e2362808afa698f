"""CLI: role mark/unmark/list/release, recipients, refer, referrals, audit, keys."""

from __future__ import annotations

import json
from datetime import date

import pytest
from pyrage import x25519

from tests.conftest import PASSPHRASE
from tracekit.errors import ExitCode
from tracekit.records import Casebook, PersonInput
from tracekit.store import open_store

SECRET_NAME = "Perpetua Quillfeather"
SECRET_PHONE = "+447700900555"


@pytest.fixture
def people(store, store_path):
    book = Casebook(store, today=date(2020, 11, 1))
    case = book.add_case(
        person=PersonInput(name=SECRET_NAME, phone=SECRET_PHONE, nhs_number="9990000026"),
        test_date="2020-10-20",
        asymptomatic=True,
    )
    contact, _ = book.add_contact(
        case.ref, person=PersonInput(name="Ordinary Contact"), last_exposure="2020-10-19", setting="household"
    )
    store.close()
    return case, contact


def _no_secret(result) -> None:
    for text in (result.stdout, result.stderr):
        assert SECRET_NAME not in text and "Quillfeather" not in text
        assert "900555" not in text and "9990000026" not in text


def test_mark_list_unmark(people, cli_with_store):
    case, _ = people
    ref = case.person.ref
    marked = cli_with_store("role", "mark", ref, "--role", "protected-witness", "--reason", "court order")
    assert marked.exit_code == 0, marked.stderr
    _no_secret(marked)
    listed = cli_with_store("role", "list", "--json")
    items = json.loads(listed.stdout)["items"]
    assert items[0]["person"] == ref and items[0]["role"] == "protected-witness"
    _no_secret(listed)
    again = cli_with_store("role", "mark", ref, "--role", "victim", "--reason", "x")
    assert again.exit_code == ExitCode.CONFLICT
    unmarked = cli_with_store("role", "unmark", ref, "--reason", "order lifted")
    assert unmarked.exit_code == 0
    assert json.loads(cli_with_store("role", "list", "--json").stdout)["items"] == []


def test_mark_errors(people, cli_with_store):
    case, _ = people
    bad_role = cli_with_store("role", "mark", case.person.ref, "--role", "spy", "--reason", "x")
    assert bad_role.exit_code == ExitCode.VALIDATION and "role" in bad_role.stderr
    missing = cli_with_store("role", "mark", "P-000000", "--role", "victim", "--reason", "x")
    assert missing.exit_code == ExitCode.NOT_FOUND
    leaky = cli_with_store("role", "mark", case.person.ref, "--role", "victim", "--reason", "Quillfeather asked")
    assert leaky.exit_code == ExitCode.VALIDATION
    assert "contains details" in leaky.stderr
    _no_secret(leaky)  # the refusal itself does not echo the value


def test_release_contact(people, cli_with_store):
    case, contact = people
    cli_with_store("role", "mark", case.person.ref, "--role", "undercover-officer", "--reason", "ops")
    result = cli_with_store("role", "release", contact.ref, "--reason", "household member, unrelated")
    assert result.exit_code == 0, result.stderr
    assert contact.ref in result.stdout


def test_refer_requires_vetted_recipient_then_seals(people, cli_with_store, store_path, tmp_path):
    case, _ = people
    ref = case.person.ref
    cli_with_store("role", "mark", ref, "--role", "undercover-officer", "--reason", "ops")
    refused = cli_with_store("refer", ref)
    assert refused.exit_code == ExitCode.POLICY
    assert "vetted-team" in refused.stderr and "nothing was changed" in refused.stderr
    vetted = x25519.Identity.generate()
    added = cli_with_store("recipients", "add", "Vetted North", str(vetted.to_public()), "--role", "vetted-team")
    assert added.exit_code == 0, added.stderr
    referred = cli_with_store("refer", ref, "--reason", "protocol", "--yes", "--json")
    assert referred.exit_code == 0, referred.stderr
    referral = json.loads(referred.stdout)
    assert referral["recipients"] == ["Vetted North"]
    listed = json.loads(cli_with_store("referrals", "list", "--json").stdout)
    assert [r["ref"] for r in listed["items"]] == [referral["ref"]]
    out_dir = tmp_path / "outbox"
    out_dir.mkdir()
    exported = cli_with_store("referrals", "export", "--out", str(out_dir))
    assert exported.exit_code == 0
    files = list(out_dir.iterdir())
    assert [f.name for f in files] == [f"{referral['ref']}.age"]
    assert files[0].stat().st_mode & 0o777 == 0o600
    with open_store(store_path, bytearray(PASSPHRASE.encode())) as store:
        text = repr(store.conn.execute("SELECT * FROM people").fetchall())
    assert SECRET_NAME not in text


def test_recipients_add_list_remove(cli_with_store):
    key = str(x25519.Identity.generate().to_public())
    assert cli_with_store("recipients", "add", "PHE East", key).exit_code == 0
    listed = json.loads(cli_with_store("recipients", "list", "--json").stdout)["items"]
    assert listed == [
        {"name": "PHE East", "role": "central-team", "public_key": key, "added_at": listed[0]["added_at"]}
    ]
    assert cli_with_store("recipients", "add", "PHE East", key).exit_code == ExitCode.CONFLICT
    assert cli_with_store("recipients", "add", "Bad", "age1nope").exit_code == ExitCode.VALIDATION
    assert cli_with_store("recipients", "remove", "PHE East").exit_code == 0
    assert cli_with_store("recipients", "remove", "PHE East").exit_code == ExitCode.NOT_FOUND


def test_audit_show_pages_a_long_log(people, cli_with_store):
    """audit show never reads the whole log: the last --limit entries by default, the first
    --limit from --since on, and it says when there are more."""
    every = json.loads(cli_with_store("audit", "show", "--limit", "1000", "--json").stdout)
    assert every["next_offset"] is None and every["total"] == len(every["items"]) >= 4
    seqs = [e["seq"] for e in every["items"]]
    assert seqs == list(range(1, len(seqs) + 1))
    last = json.loads(cli_with_store("audit", "show", "--limit", "2", "--json").stdout)
    assert [e["seq"] for e in last["items"]] == seqs[-2:] and last["next_offset"] == 2
    first = json.loads(cli_with_store("audit", "show", "--since", "2000-01-01", "--limit", "2", "--json").stdout)
    assert [e["seq"] for e in first["items"]] == seqs[:2] and first["next_offset"] == 2
    assert first["total"] is None  # a filter: not counted (that would read the whole log)
    before = json.loads(cli_with_store("audit", "show", "--limit", "2", "--offset", "2", "--json").stdout)
    assert [e["seq"] for e in before["items"]] == seqs[-4:-2]
    human = cli_with_store("audit", "show", "--limit", "2")
    assert human.exit_code == 0
    assert f"showing the last 2 matching entries of the {len(seqs)} in the log" in " ".join(human.stderr.split())
    assert cli_with_store("audit", "show", "--limit", "0").exit_code == ExitCode.USAGE


def test_audit_show_and_verify(people, cli_with_store, store_path):
    case, _ = people
    cli_with_store("role", "mark", case.person.ref, "--role", "victim", "--reason", "refuge")
    shown = cli_with_store("audit", "show", "--json")
    entries = json.loads(shown.stdout)["items"]
    assert [e["action"] for e in entries][:2] == ["person.add", "case.add"]
    assert entries[-1]["action"] == "role.mark" and entries[-1]["refs"] == [case.person.ref]
    _no_secret(shown)
    only = json.loads(cli_with_store("audit", "show", "--action", "role", "--json").stdout)["items"]
    assert [e["action"] for e in only] == ["role.mark"]
    ok = cli_with_store("audit", "verify")
    assert ok.exit_code == 0 and "intact" in ok.stdout
    with open_store(store_path, bytearray(PASSPHRASE.encode())) as store, store.transaction() as conn:
        conn.execute("UPDATE audit_log SET reason = 'edited' WHERE seq = 2")
    broken = cli_with_store("audit", "verify")
    assert broken.exit_code == ExitCode.INTEGRITY
    assert "audit entry 2" in broken.stderr and "edited" in broken.stderr
    check = cli_with_store("store", "check")
    assert check.exit_code == ExitCode.INTEGRITY and "audit entry 2" in check.stderr


def test_keys_show(cli_with_store):
    shown = json.loads(cli_with_store("keys", "show", "--json").stdout)
    assert shown["algorithm"] == "ed25519" and len(shown["public_key"]) == 64
    assert len(shown["fingerprint"].split(":")) == 8
    assert cli_with_store("keys", "show", "--json").stdout == cli_with_store("keys", "show", "--json").stdout


def test_passphrase_change_is_audited(cli_with_store, tmp_path):
    import os

    new_file = tmp_path / "new.txt"
    new_file.write_text("another long passphrase\n")
    os.chmod(new_file, 0o600)
    assert cli_with_store("store", "passwd", "--new-passphrase-file", str(new_file)).exit_code == 0
    shown = cli_with_store("audit", "show", "--json", env={"TRACEKIT_PASSPHRASE": "another long passphrase"})
    assert json.loads(shown.stdout)["items"][-1]["action"] == "store.passwd"


def test_reveal_on_show_commands_needs_a_reason(people, cli_with_store):
    case, contact = people
    cli_with_store("role", "mark", case.person.ref, "--role", "victim", "--reason", "refuge")
    masked = cli_with_store("case", "show", case.ref)
    assert SECRET_NAME not in masked.stdout
    no_reason = cli_with_store("case", "show", case.ref, "--reveal")
    assert no_reason.exit_code == ExitCode.VALIDATION and "reason" in no_reason.stderr
    shown = cli_with_store("case", "show", case.ref, "--reveal", "--reason", "identity check on call")
    assert shown.exit_code == 0 and SECRET_NAME in shown.stdout
    contact_shown = cli_with_store("contact", "show", contact.ref, "--reveal", "--reason", "household check")
    assert contact_shown.exit_code == 0 and "Ordinary Contact" in contact_shown.stdout
    reveals = json.loads(cli_with_store("audit", "show", "--action", "person.reveal", "--json").stdout)["items"]
    assert len(reveals) == 1
    contact_reveals = json.loads(cli_with_store("audit", "show", "--action", "contact.reveal", "--json").stdout)[
        "items"
    ]
    assert [e["refs"] for e in contact_reveals] == [sorted([contact.ref, contact.contact.ref])]


@pytest.fixture
def referable(people, cli_with_store):
    """A marked case person, and a vetted team to refer them to."""
    case, contact = people
    cli_with_store("role", "mark", case.person.ref, "--role", "undercover-officer", "--reason", "ops")
    vetted = x25519.Identity.generate()
    added = cli_with_store("recipients", "add", "Vetted North", str(vetted.to_public()), "--role", "vetted-team")
    assert added.exit_code == 0, added.stderr
    return case, contact


def _referrals(cli_with_store) -> list:
    return json.loads(cli_with_store("referrals", "list", "--json").stdout)["items"]


def test_refer_at_a_terminal_shows_what_goes_asks_a_reason_and_confirms(referable, cli_with_store, monkeypatch):
    """Issue 14: refer purges for good, so at a terminal it shows what it will seal and
    purge (references and counts only), asks why, and asks to confirm; "no" changes
    nothing and is not an error."""
    monkeypatch.setattr("tracekit.cli.context.interactive", lambda: True)
    case, contact = referable
    ref = case.person.ref
    declined = cli_with_store("refer", ref, input="operational protocol\nn\n")
    assert declined.exit_code == 0, declined.stderr
    assert "Nothing changed." in declined.stderr and "error" not in declined.stderr.lower()
    assert case.ref in declined.stderr and "contacts of those cases: 1" in declined.stderr
    assert "Reason" in declined.stderr and "Seal " + ref in declined.stderr
    _no_secret(declined)
    assert "Ordinary Contact" not in declined.stderr
    assert _referrals(cli_with_store) == []
    assert cli_with_store("person", "show", ref, "--json").exit_code == 0  # still here, unchanged
    no_reason = cli_with_store("refer", ref, input="\n")
    assert no_reason.exit_code == ExitCode.VALIDATION and "reason:" in no_reason.stderr
    assert _referrals(cli_with_store) == []
    accepted = cli_with_store("refer", ref, input="operational protocol\ny\n")
    assert accepted.exit_code == 0, accepted.stderr
    assert "Referred as R-" in accepted.stdout
    assert len(_referrals(cli_with_store)) == 1
    _no_secret(accepted)


def test_refer_without_a_terminal_needs_reason_and_yes(referable, cli_with_store):
    case, _ = referable
    ref = case.person.ref
    for args, missing in (((), "--reason and --yes"), (("--reason", "protocol"), "--yes"), (("--yes",), "--reason")):
        refused = cli_with_store("refer", ref, *args)
        assert refused.exit_code == ExitCode.VALIDATION and missing in refused.stderr, (args, refused.stderr)
    assert _referrals(cli_with_store) == []
    done = cli_with_store("refer", ref, "--reason", "protocol", "--yes")
    assert done.exit_code == 0, done.stderr
    assert len(_referrals(cli_with_store)) == 1
