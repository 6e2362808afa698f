"""CLI: export handover, bundle verify/inspect/open, policy list/show/check, keys pseudonym."""

from __future__ import annotations

import json
import os
from datetime import date

import pytest
from pyrage import x25519

from tracekit.errors import ExitCode
from tracekit.records import Casebook, PersonInput
from tracekit.records.sensitive import SensitiveRoles


@pytest.fixture
def setup(store, tmp_path):
    book = Casebook(store, today=date(2020, 11, 1))
    roles = SensitiveRoles(book)
    book.add_case(
        person=PersonInput(name="Olwen Ordinary", phone="07700 900401"), test_date="2020-10-21", asymptomatic=True
    )
    marked = book.add_case(
        person=PersonInput(name="Perpetua Quillfeather", phone="07700 900402"),
        test_date="2020-10-20",
        asymptomatic=True,
    )
    roles.mark(marked.person.ref, "protected-witness", "court order")
    identity = x25519.Identity.generate()
    key_file = tmp_path / "central.key"
    key_file.write_text(str(identity) + "\n")
    os.chmod(key_file, 0o600)
    roles.add_recipient("PHE", str(identity.to_public()), "central-team")
    store.close()
    out = tmp_path / "out"
    out.mkdir()
    return {"key": key_file, "out": out, "tmp": tmp_path}


def test_export_verify_inspect_open(setup, cli_with_store):
    exported = cli_with_store("export", "handover", "--to", "PHE", "--out", str(setup["out"]), "--json")
    assert exported.exit_code == 0, exported.stderr
    result = json.loads(exported.stdout)
    assert result["record_counts"]["cases"] == 2 and result["policy"] == "central-handover"
    path = result["path"]
    signer = json.loads(cli_with_store("keys", "show", "--json").stdout)["public_key"]
    verified = cli_with_store("bundle", "verify", path, "--identity", str(setup["key"]), "--signer", signer)
    assert verified.exit_code == 0, verified.stderr
    assert "Bundle verified" in verified.stdout and "matches --signer" in verified.stdout
    inspected = json.loads(cli_with_store("bundle", "inspect", path, "-i", str(setup["key"]), "--json").stdout)
    assert inspected["manifest"]["recipient"]["name"] == "PHE"
    opened = cli_with_store("bundle", "open", path, "-i", str(setup["key"]), "--out", str(setup["tmp"] / "opened"))
    assert opened.exit_code == 0 and "Verified and opened" in opened.stdout
    for text in (exported.stdout, verified.stdout, opened.stdout):
        assert "Quillfeather" not in text


def test_the_default_central_handover_without_a_team_key_still_exports_and_says_records_will_not_link(
    setup, cli_with_store
):
    """The built-in central policy carries the team pseudonym; a store with no team key
    hands over anyway, every pseudonym empty, and the tracer is told why nothing links."""
    exported = cli_with_store("export", "handover", "--to", "PHE", "--out", str(setup["out"]))
    assert exported.exit_code == 0, exported.stderr
    assert "no team pseudonym key" in exported.stderr and "keys pseudonym import" in exported.stderr
    path = next(setup["out"].glob("*.tar.age"))
    opened = cli_with_store("bundle", "open", str(path), "-i", str(setup["key"]), "--out", str(setup["tmp"] / "opened"))
    assert opened.exit_code == 0, opened.stderr
    (folder,) = (setup["tmp"] / "opened").iterdir()
    records = [json.loads(line) for line in (folder / "records" / "cases-00001.jsonl").read_text().splitlines()]
    assert [r["pseudonym"] for r in records if r["withheld"] is False] == [None]
    assert (
        json.loads((folder / "manifest.json").read_text())["policy"]["definition"]["fields"]["case"].count("pseudonym")
        == 1
    )


def test_bundle_commands_need_no_store_or_passphrase(setup, cli_with_store):
    path = json.loads(cli_with_store("export", "handover", "--to", "PHE", "--out", str(setup["out"]), "--json").stdout)[
        "path"
    ]
    result = cli_with_store(
        "bundle",
        "verify",
        path,
        "-i",
        str(setup["key"]),
        env={"TRACEKIT_PASSPHRASE": None, "TRACEKIT_STORE": str(setup["tmp"] / "no-such.store")},
    )
    assert result.exit_code == 0, result.stderr


def test_tampered_bundle_exit_code(setup, cli_with_store):
    path = json.loads(cli_with_store("export", "handover", "--to", "PHE", "--out", str(setup["out"]), "--json").stdout)[
        "path"
    ]
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 1
    open(path, "wb").write(bytes(data))
    result = cli_with_store("bundle", "verify", path, "-i", str(setup["key"]))
    assert result.exit_code == ExitCode.BUNDLE_INVALID
    assert "altered, truncated or extended" in result.stderr


def test_wrong_signer_exit_code(setup, cli_with_store):
    path = json.loads(cli_with_store("export", "handover", "--to", "PHE", "--out", str(setup["out"]), "--json").stdout)[
        "path"
    ]
    result = cli_with_store("bundle", "verify", path, "-i", str(setup["key"]), "--signer", "ab" * 32)
    assert result.exit_code == ExitCode.BUNDLE_INVALID and "different key" in result.stderr


def test_export_refusals(setup, cli_with_store):
    refused = cli_with_store("export", "handover", "--to", "PHE", "--policy", "vetted-team", "--out", str(setup["out"]))
    assert refused.exit_code == ExitCode.POLICY
    unknown = cli_with_store("export", "handover", "--to", "Nobody", "--out", str(setup["out"]))
    assert unknown.exit_code == ExitCode.NOT_FOUND
    both = cli_with_store("export", "handover", "--to", "PHE", "--all", "--since-last", "--out", str(setup["out"]))
    assert both.exit_code == ExitCode.VALIDATION
    delta = cli_with_store(
        "export", "handover", "--to", "PHE", "--policy", "statistics", "--since-last", "--out", str(setup["out"])
    )
    assert delta.exit_code == ExitCode.VALIDATION
    assert "statistics policy always counts every record" in delta.stderr and "--since" in delta.stderr
    assert list(setup["out"].iterdir()) == []


def test_policy_commands(setup, cli_with_store):
    listed = cli_with_store("policy", "list", "--json")
    assert [p["name"] for p in json.loads(listed.stdout)["items"]] == ["central-handover", "vetted-team", "statistics"]
    shown = cli_with_store("policy", "show", "central-handover")
    assert "contact:" in shown.stdout and "notes" not in shown.stdout.split("contact:")[1].split("\n")[0]
    good = setup["tmp"] / "good.toml"
    good.write_text('name = "small"\n[fields]\ncontact = ["ref", "last_exposure"]\n')
    assert cli_with_store("policy", "check", str(good)).exit_code == 0
    bad = setup["tmp"] / "bad.toml"
    bad.write_text('name = "bad"\n[fields]\ncontact = ["ref", "everything"]\n')
    checked = cli_with_store("policy", "check", str(bad))
    assert checked.exit_code == ExitCode.POLICY and "unknown field(s) everything" in checked.stderr


def test_pseudonym_key_generate_import_and_use(setup, cli_with_store, tmp_path):
    key_file = tmp_path / "team.key"
    generated = cli_with_store("keys", "pseudonym", "generate", "--out", str(key_file))
    assert generated.exit_code == 0 and key_file.stat().st_mode & 0o777 == 0o600
    assert (
        cli_with_store("keys", "pseudonym", "generate", "--out", str(tmp_path / "again.key")).exit_code
        == ExitCode.CONFLICT
    )
    assert cli_with_store("keys", "pseudonym", "import", str(key_file)).exit_code == 0  # same key: fine
    policy = tmp_path / "pseudo.toml"
    policy.write_text('name = "pseudo"\n[fields]\ncase = ["ref", "pseudonym", "test_date"]\n')
    exported = cli_with_store(
        "export", "handover", "--to", "PHE", "--policy", str(policy), "--out", str(setup["out"]), "--json"
    )
    assert exported.exit_code == 0, exported.stderr


def test_export_list_shows_what_was_sent(setup, cli_with_store):
    assert json.loads(cli_with_store("export", "list", "--json").stdout)["items"] == []
    made = json.loads(cli_with_store("export", "handover", "--to", "PHE", "--out", str(setup["out"]), "--json").stdout)
    listed = json.loads(cli_with_store("export", "list", "--to", "PHE", "--json").stdout)["items"]
    assert [h["bundle_id"] for h in listed] == [made["bundle_id"]]
    assert listed[0]["file_name"] == os.path.basename(made["path"]) and listed[0]["record_counts"]["cases"] == 2
    assert json.loads(cli_with_store("export", "list", "--to", "Nobody", "--json").stdout)["items"] == []


# --- nothing new, nothing written (issue 15, item 3) ----------------------------------------------


@pytest.fixture
def handover_clock(monkeypatch):
    """The time an export ends its window at: after every record of the setup (a record
    changed in the same second as a handover is sent again by the next one, by design)."""
    from tracekit.bundle import writer

    clock = {"now": "2099-01-01T09:00:00+00:00"}
    monkeypatch.setattr(writer, "_utcnow", lambda: clock["now"])
    return clock


def _handovers(cli_with_store) -> list[dict]:
    return json.loads(cli_with_store("export", "list", "--json").stdout)["items"]


def test_export_with_nothing_new_writes_nothing_and_says_so(setup, cli_with_store, handover_clock):
    """Before: every run wrote a bundle, '0 cases, 0 contacts'."""
    first = cli_with_store("export", "handover", "--to", "PHE", "--out", str(setup["out"]), "--json")
    assert json.loads(first.stdout)["written"] is True
    before = sorted(setup["out"].iterdir())
    handover_clock["now"] = "2099-01-02T09:00:00+00:00"

    again = cli_with_store("export", "handover", "--to", "PHE", "--out", str(setup["out"]))
    assert again.exit_code == 0, again.stderr
    assert "Nothing new for PHE since 2099-01-01T09:00:00+00:00 (central-handover): no bundle written." in again.stdout
    assert "--allow-empty" in again.stderr
    assert sorted(setup["out"].iterdir()) == before and len(_handovers(cli_with_store)) == 1

    handover_clock["now"] = "2099-01-03T09:00:00+00:00"
    as_json = json.loads(
        cli_with_store("export", "handover", "--to", "PHE", "--out", str(setup["out"]), "--json").stdout
    )
    assert as_json["written"] is False and as_json["path"] is None and as_json["bundle_id"] is None
    assert as_json["record_counts"]["cases"] == 0
    assert as_json["changes_since"] == "2099-01-01T09:00:00+00:00"  # still the last bundle sent: nothing is skipped

    fresh_dir = setup["tmp"] / "not-yet"
    cli_with_store("export", "handover", "--to", "PHE", "--out", str(fresh_dir))
    assert not fresh_dir.exists()  # not even the output directory

    forced = cli_with_store("export", "handover", "--to", "PHE", "--out", str(setup["out"]), "--allow-empty", "--json")
    assert forced.exit_code == 0 and json.loads(forced.stdout)["written"] is True
    assert json.loads(forced.stdout)["record_counts"]["cases"] == 0
    assert len(list(setup["out"].iterdir())) == len(before) + 1 and len(_handovers(cli_with_store)) == 2


def test_statistics_are_written_even_when_nothing_changed(setup, cli_with_store, handover_clock):
    """A statistics bundle counts the whole store every time: it is never 'empty'."""
    for _ in range(2):
        result = cli_with_store(
            "export", "handover", "--to", "PHE", "--policy", "statistics", "--out", str(setup["out"]), "--json"
        )
        assert json.loads(result.stdout)["written"] is True
