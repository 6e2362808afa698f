"""Statistics against a reader who holds every release: differencing, marking, fixed rows.

The reader modelled here is the strongest one the statistics face (docs/threat-model.md):
they hold two releases of a table and know exactly how many records each row gained or
lost in between, as a central team holding the ordinary records could. ``reader_bounds``
is what they can then work out: the exact range of every count, from each row's band,
the total's band, and the fact that the rows add up to the total.

A release *discloses* a count when the reader's range for it is a single number and that
number (before or after the change) is 1 to 4. Counts of 0 or of 5 and over may be pinned:
those are what the threshold allows.
"""

from __future__ import annotations

import io
import json
import tarfile
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyrage import decrypt, x25519

from tests.conftest import CHEAP_KDF
from tracekit.bundle.writer import export_handover
from tracekit.errors import ValidationError
from tracekit.records import Casebook, PersonInput
from tracekit.records.sensitive import SensitiveRoles
from tracekit.redaction import statistics
from tracekit.redaction.policy import SUPPRESSION_THRESHOLD, get_policy
from tracekit.redaction.statistics import release_table

TOTAL = "(total)"


def small(count: int) -> bool:
    return 0 < count < SUPPRESSION_THRESHOLD


def reader_bounds(
    before: dict, after: dict, change: dict[str, int], *, total: tuple[int, int] | None = None
) -> dict[str, tuple[int, int]]:
    """The exact range of each count in ``before`` (and of its total, under ``TOTAL``) for a
    reader who holds both releases and knows ``change``: how many records each row gained
    (negative: lost). ``total`` is what the reader knows of the total from elsewhere (the
    same records counted in another table)."""
    first = {r["value"]: (r["low"], r["high"]) for r in before["rows"]}
    second = {r["value"]: (r["low"], r["high"]) for r in after["rows"]}
    assert list(first) == list(second), "a row appeared or disappeared"
    boxes = {}
    for value, (low, high) in first.items():
        moved = change.get(value, 0)
        boxes[value] = (max(low, second[value][0] - moved), min(high, second[value][1] - moved))
    net = sum(change.values())
    total_low = max(before["total"]["low"], after["total"]["low"] - net, (total or (0, 0))[0])
    total_high = min(before["total"]["high"], after["total"]["high"] - net, (total or (0, 10**9))[1])
    rows_low, rows_high = sum(b[0] for b in boxes.values()), sum(b[1] for b in boxes.values())
    # One equation over boxes of integers: each row ranges over an interval, found exactly
    # by letting every other row take its extremes.
    bounds = {
        value: (max(low, total_low - (rows_high - high)), min(high, total_high - (rows_low - low)))
        for value, (low, high) in boxes.items()
    }
    bounds[TOTAL] = (max(total_low, rows_low), min(total_high, rows_high))
    return bounds


def disclosed(
    before_counts: dict[str, int], change: dict[str, int], bounds: dict[str, tuple[int, int]], *, strict: bool = False
) -> list[str]:
    """Rows (or the total) whose small count the reader pins down.

    What counts as small is the number of records in the row *other than* the changed
    ones, which the reader knows already: the count before, for a row that gained, or
    after, for a row that lost. ``strict``: the count before or after is small (for one
    record, the stronger reading). Also checks the reader model is sound: the true count
    is always inside the reader's range.
    """
    truths = dict(before_counts)
    truths[TOTAL] = sum(before_counts.values())
    out = []
    for value, (low, high) in bounds.items():
        true_before = truths.get(value, 0)
        moved = sum(change.values()) if value == TOTAL else change.get(value, 0)
        assert low <= true_before <= high, f"reader model unsound for {value}"
        others = true_before if moved >= 0 else true_before + moved
        if low == high and (small(others) or (strict and (small(true_before) or small(true_before + moved)))):
            out.append(value)
    return out


# -- the release rule --------------------------------------------------------------------


def test_every_count_is_a_band_of_five_over_fixed_rows_and_the_total_adds_the_bands():
    table = release_table(
        {"household": 3, "workplace": 10, "social": 7}, ["household", "workplace", "social", "travel"]
    )
    assert [(r["value"], r["count"]) for r in table["rows"]] == [
        ("household", "0-5"),
        ("workplace", "6-10"),
        ("social", "6-10"),
        ("travel", "0-5"),
    ]
    assert table["total"] == {"count": "12-30", "low": 12, "high": 30}
    assert [statistics.band(n) for n in (0, 1, 4, 5, 6, 10, 11)] == [(0, 5)] * 4 + [(6, 10)] * 2 + [(11, 15)]


def test_unlisted_values_fold_into_other_and_never_add_a_row():
    table = release_table({"open": 6, "archived": 2}, ["open", "closed", "other"])
    assert [(r["value"], r["count"]) for r in table["rows"]] == [("open", "6-10"), ("closed", "0-5"), ("other", "0-5")]
    with pytest.raises(ValueError, match="archived"):
        release_table({"archived": 2}, ["open"])


def test_postcode_areas_are_a_fixed_list():
    assert statistics.postcode_area("SW1A 2AB") == "SW" and statistics.postcode_area("B1 1AA") == "B"
    assert statistics.postcode_area("GIR 0AA") == "other" and statistics.postcode_area(None) == "unknown"
    assert len(statistics.POSTCODE_AREAS) == 124 and statistics.AREA_VALUES[-2:] == ("other", "unknown")


def test_the_attack_from_the_issue_pins_nothing_small():
    # Before: a "<5" withheld next to 396 open became 5 after one more mark: it had been 4.
    before, after, change = {"open": 396, "withheld": 4}, {"open": 396, "withheld": 5}, {"withheld": 1}
    bounds = reader_bounds(release_table(before, before), release_table(after, after), change)
    assert disclosed(before, change, bounds, strict=True) == []
    assert bounds["withheld"] == (0, 4)  # 4 and 5 share a band: the step shows nothing


def test_a_total_banded_on_its_own_would_give_a_count_away():
    """Why the total is the sum of the bands: two records join a row that held 4; with the
    total banded separately (10 -> 12: "6-10" -> "11-15") the reader pins the 4."""
    before, change = {"a": 0, "b": 4, "c": 6}, {"b": 2}
    after = {"a": 0, "b": 6, "c": 6}
    assert (
        disclosed(before, change, reader_bounds(release_table(before, before), release_table(after, after), change))
        == []
    )
    assert disclosed(
        before,
        change,
        reader_bounds(
            release_table(before, before),
            release_table(after, after),
            change,
            total=(9, 10),  # 6-10, then 11-15 less 2
        ),
    ) == ["b"]


@st.composite
def changed_tables(draw, most: int):
    """A true table and a change of one to ``most`` records, each added to a row, removed
    from one, or moved between two; never below zero."""
    values = [f"v{i}" for i in range(draw(st.integers(1, 4)))]
    before = {v: draw(st.integers(0, 23)) for v in values}
    now, change = dict(before), {}
    for _ in range(draw(st.integers(1, most))):
        kind = draw(st.sampled_from(["add", "remove", "move"]))
        source, target = draw(st.sampled_from(values)), draw(st.sampled_from(values))
        if kind == "add" or now[source] == 0:
            steps = {target: 1}
        else:
            steps = {source: -1} if kind == "remove" else {source: -1, target: 1}
        for value, step in steps.items():
            now[value] += step
            change[value] = change.get(value, 0) + step
    return values, before, {v: d for v, d in change.items() if d}


def _check(values, before, change, *, strict: bool) -> None:
    after = {v: before[v] + change.get(v, 0) for v in values}
    bounds = reader_bounds(release_table(before, values), release_table(after, values), change)
    assert disclosed(before, change, bounds, strict=strict) == []


@settings(max_examples=200, deadline=None)
@given(changed_tables(most=1))
def test_two_releases_one_record_apart_never_pin_a_small_count(case):
    """For any two tables one record apart, a reader who holds both releases and knows
    exactly which rows the record left or joined cannot pin any count (row or total,
    before or after) that is 1 to 4; nor can a reader of one release."""
    values, before, change = case
    _check(values, before, change, strict=True)
    _check(values, before, {}, strict=True)


@settings(max_examples=200, deadline=None)
@given(changed_tables(most=6))
def test_several_records_known_exactly_never_pin_a_small_count_of_the_others(case):
    """Marking a person takes all their records out at once: for changes of up to six
    records, known exactly, no row's count of the *other* records is pinned at 1 to 4."""
    values, before, change = case
    _check(values, before, change, strict=False)


# -- real stores, real exports ------------------------------------------------------------

DATES = ("2020-10-19", "2020-10-20", "2020-10-21")
SETTINGS_USED = ("household", "household", "workplace", "social", "household", "workplace", "household")


def _populate(store, identity: x25519.Identity, *, sensitive: bool) -> tuple[Casebook, SensitiveRoles, str | None]:
    """Ordinary cases and contacts; with ``sensitive``, four officers already marked (dated
    like ordinary records) and one more person, not yet marked, whose contacts are the only
    ones in travel and in the ZE area."""
    book = Casebook(store, today=date(2020, 11, 1))
    roles = SensitiveRoles(book)
    for i in range(9):
        person = PersonInput(name=f"Ordinary Case{chr(65 + i)}", postcode="EC1A 1BB")
        case = book.add_case(person=person, test_date=DATES[i % 3], asymptomatic=True)
        for j in range(1 + i % 3):
            book.add_contact(
                case.ref,
                person=PersonInput(name=f"Ordinary Contact{chr(65 + i)}{chr(65 + j)}", postcode="SW1A 2AB"),
                last_exposure=DATES[j],
                setting=SETTINGS_USED[(i + j) % len(SETTINGS_USED)],
            )
    roles.add_recipient("PHE", str(identity.to_public()), "central-team")
    if not sensitive:
        return book, roles, None
    for i in range(4):
        person = PersonInput(name=f"Officer Marked{chr(65 + i)}", postcode="SW1A 1AA")
        officer = book.add_case(person=person, test_date=DATES[0], asymptomatic=True)
        contact = PersonInput(name=f"Officer Contact{chr(65 + i)}")
        book.add_contact(officer.ref, person=contact, last_exposure=DATES[0], setting="workplace")
        roles.mark(officer.person.ref, "undercover-officer", "operational safety")
    newcomer = book.add_case(
        person=PersonInput(name="Later Marked", postcode="ZE1 0AA"), test_date=DATES[1], asymptomatic=True
    )
    for name, postcode, setting in (("Later Travel", "ZE2 9AA", "travel"), ("Later Work", "ZE2 9AB", "workplace")):
        book.add_contact(
            newcomer.ref, person=PersonInput(name=name, postcode=postcode), last_exposure=DATES[1], setting=setting
        )
    return book, roles, newcomer.person.ref


def _export(store, identity, out: Path, monkeypatch) -> tuple[dict, dict[str, dict[str, int]]]:
    """The statistics a recipient gets, and the true counts they were made from."""
    truths: list[dict[str, int]] = []
    real = statistics.release_table

    def recording(counts, values):
        truths.append(dict(counts))
        return real(counts, values)

    monkeypatch.setattr(statistics, "release_table", recording)
    result = export_handover(store, "PHE", policy_name="statistics", out_dir=out)
    monkeypatch.setattr(statistics, "release_table", real)
    plain = decrypt(result.path.read_bytes(), [identity])
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        tables = json.loads(tar.extractfile("statistics.json").read())
    return tables, dict(zip(get_policy("statistics").statistics, truths, strict=True))


@pytest.fixture
def out(tmp_path):
    path = tmp_path / "out"
    path.mkdir()
    return path


def test_marking_one_more_person_between_two_exports_gives_nothing_away(store, out, tmp_path, monkeypatch):
    identity = x25519.Identity.generate()
    book, roles, later = _populate(store, identity, sensitive=True)
    first, first_truth = _export(store, identity, out, monkeypatch)
    roles.mark(later, "undercover-officer", "operational safety")
    second, second_truth = _export(store, identity, out, monkeypatch)

    for name, table in first.items():
        # No row appears or disappears: the travel row and the ZE area stay, as 0-5.
        assert [r["value"] for r in table["rows"]] == [r["value"] for r in second[name]["rows"]], name
        assert "withheld" not in [r["value"] for r in table["rows"]]
    assert {r["value"]: r["count"] for r in second["contacts_by_setting"]["rows"]}["travel"] == "0-5"
    assert {r["value"]: r["count"] for r in second["contacts_by_area"]["rows"]}["ZE"] == "0-5"

    # The strongest reader: knows exactly which rows the newly marked person's records left.
    for name in first:
        before, after = first_truth[name], second_truth[name]
        change = {v: after.get(v, 0) - before.get(v, 0) for v in set(before) | set(after)}
        change = {v: d for v, d in change.items() if d}
        assert sum(change.values()) == (-2 if name.startswith("contacts") else -1), name  # the records left
        bounds = reader_bounds(first[name], second[name], change)
        assert (
            disclosed({v: before.get(v, 0) for v in [r["value"] for r in first[name]["rows"]]}, change, bounds) == []
        ), name


def test_sensitive_people_leave_no_trace_in_the_statistics(store, out, tmp_path, monkeypatch, passphrase):
    """The statistics of a store with five marked people (and their contacts) are byte for
    byte those of the same store without them: no count, total or row depends on them,
    so no pair of releases can give their number away."""
    from tracekit.store import create_store

    identity = x25519.Identity.generate()
    book, roles, later = _populate(store, identity, sensitive=True)
    roles.mark(later, "undercover-officer", "operational safety")
    with_them, _ = _export(store, identity, out, monkeypatch)
    with create_store(tmp_path / "other" / "case.store", passphrase, kdf=CHEAP_KDF) as other:
        _populate(other, identity, sensitive=False)
        without_them, _ = _export(other, identity, out, monkeypatch)
    assert with_them == without_them


def test_statistics_are_always_whole_store_tables(store, out, tmp_path):
    identity = x25519.Identity.generate()
    _populate(store, identity, sensitive=False)
    first = export_handover(store, "PHE", policy_name="statistics", out_dir=out)
    second = export_handover(store, "PHE", policy_name="statistics", out_dir=out)  # no delta since the first
    assert first.changes_since is None and second.changes_since is None
    for kwargs in ({"since": "2020-10-20"}, {"since_last": True}):
        with pytest.raises(ValidationError, match="statistics policy always counts every record"):
            export_handover(store, "PHE", policy_name="statistics", out_dir=out, **kwargs)
