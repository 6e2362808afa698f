"""Property: no bundle of a standard policy ever carries a protected value.

Hypothesis builds stores with random people (some marked, some referred), random
exposures between them (so some contacts are associated with marked cases) and free text
that mentions the marked people by name, phone and NHS number. Every built-in policy is
exported, decrypted, and every byte searched for every protected value in its written
forms.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from datetime import date, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyrage import decrypt, x25519

from tests.conftest import CHEAP_KDF
from tracekit.bundle.writer import export_handover
from tracekit.domain.identifiers import format_nhs_number
from tracekit.records import Casebook, PersonInput
from tracekit.records.sensitive import ROLES, SensitiveRoles
from tracekit.store import create_store

FIRST = ["Quilla", "Oberon", "Perpetua", "Thaddeus", "Ysolde", "Barnaby", "Ximena", "Lucan"]
LAST = ["Zarkovian", "Vexley", "Quorridge", "Umbergast", "Hollowmere", "Fenwright", "Cattermole", "Dunsby"]


def nhs_number(n: int) -> str:
    """The n-th valid number of the 999 test range."""
    base = 999000000 + n * 7
    while True:
        digits = str(base)
        total = sum(int(d) * w for d, w in zip(digits, range(10, 1, -1)))
        check = 11 - total % 11
        if check == 11:
            check = 0
        if check != 10:
            return digits + str(check)
        base += 1


people_strategy = st.lists(
    st.tuples(
        st.integers(0, len(FIRST) - 1), st.integers(0, len(LAST) - 1), st.sampled_from([None, *ROLES]), st.booleans()
    ),
    min_size=2,
    max_size=7,
    unique_by=lambda t: t[1],  # unique surnames: a surname alone then identifies
)
links_strategy = st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(0, 3)), max_size=10)


def protected_forms(person: dict) -> list[bytes]:
    phone = person["phone"]
    forms = [
        person["name"],
        person["name"].upper(),
        person["name"].split()[1],
        phone,
        phone[1:],
        "0" + phone[3:],
        person["nhs"],
        format_nhs_number(person["nhs"]),
    ]
    return [f.encode() for f in forms]


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(people=people_strategy, links=links_strategy, mention=st.booleans())
def test_standard_bundles_never_carry_protected_values(people, links, mention):
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        store = create_store(tmp_path / "p.store", bytearray(b"property test passphrase"), kdf=CHEAP_KDF)
        try:
            book = Casebook(store, today=date(2020, 12, 31))
            roles = SensitiveRoles(book)
            central, vetted = x25519.Identity.generate(), x25519.Identity.generate()
            roles.add_recipient("Central", str(central.to_public()), "central-team")
            roles.add_recipient("Vetted", str(vetted.to_public()), "vetted-team")
            made = []
            for index, (first, last, role, refer) in enumerate(people):
                person = {
                    "name": f"{FIRST[first]} {LAST[last]}",
                    "phone": f"+4477009{index:05d}",
                    "nhs": nhs_number(index),
                    "role": role,
                    "refer": refer,
                }
                case = book.add_case(
                    person=PersonInput(name=person["name"], phone=person["phone"], nhs_number=person["nhs"]),
                    test_date=date(2020, 10, 1) + timedelta(days=index),
                    asymptomatic=True,
                    new_person=True,
                )
                person["case"] = case
                made.append(person)
            for source, target, day in links:
                if source >= len(made) or target >= len(made) or source == target:
                    continue
                other = made[target]
                note = f"met {other['name']} on {other['phone']}" if mention else "met at work"
                try:
                    book.add_contact(
                        made[source]["case"].ref,
                        person_ref=other["case"].person.ref,
                        last_exposure=made[source]["case"].test_date - timedelta(days=day),
                        setting="workplace",
                        notes=note,
                    )
                except Exception:
                    continue  # duplicate pair: fine
            protected = []
            for person in made:
                if person["role"]:
                    roles.mark(person["case"].person.ref, person["role"], "property test")
                    protected.append(person)
                    if person["refer"]:
                        roles.refer(person["case"].person.ref)
            out = tmp_path / "out"
            out.mkdir()
            for recipient, policy, identity in (
                ("Central", "central-handover", central),
                ("Central", "statistics", central),
                ("Vetted", "statistics", vetted),
            ):
                result = export_handover(store, recipient, policy_name=policy, out_dir=out, all_records=True)
                plain = decrypt(result.path.read_bytes(), [identity])
                with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
                    content = b"".join(tar.extractfile(m).read() for m in tar.getmembers())
                for person in protected:
                    for form in protected_forms(person):
                        assert form not in content, (policy, person["name"], form)
        finally:
            store.close()
