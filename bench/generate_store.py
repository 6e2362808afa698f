"""Generate a large, realistic and entirely made-up case book for the benchmarks.

    python bench/generate_store.py [--people N] [--exposures N] [--path PATH] [--force] [--seed S] [--no-audit]
                                   [--kdf floor]

Default: 1,000,000 people at bench/out/casebook-1m.store (bench/out/ is gitignored), about
N/5 cases and N exposures, about 0.8 N call attempts, the search index and the audit
chain (about 3.7 N entries: one per person, case, contact, call, status update and
closure; --no-audit leaves it empty, halving the size). 1M people take 7-8 minutes here
(two cores shared with other work; about 250 s of CPU in this process, 180 s in the
helper) and 2.0 GB. An existing store at the path is reused unless --force is given; the
store is written under a temporary name and renamed only when complete, so an
interrupted run never leaves a half-made store to be reused.

What is in it. A day-by-day simulation of 1 September to 31 December 2020 (England's
second wave: rising to a peak in November, a dip, then the December surge). Each day's
cases are created from a positive test; each case names about five contacts (household
members sharing the case's address and often surname, plus workplace, education, social,
healthcare, travel and other contacts with recorded distance and duration, some left
unrecorded). Some contacts are contacts of more than one case, and some test positive a
few days later and become cases themselves (``promote_contact``: the new case records the
exposure it came from), so transmission chains exist. Contacts are reached online or by
phone over the following hours and days (call attempts are recorded for the phoned ones);
what had not happened by the end of 31 December has not happened, so recent contacts are
still "not yet reached", with a tail of hard-to-reach older ones (about 10% overall).
Cases close 7-12 days after they were opened.

More exposures per person (``--exposures N``). By default the store has about one exposure
per person. ``--exposures N`` aims at about N exposures in all (for example 5,000,000 with
1,000,000 people) while keeping exactly --people people and as many cases (about
--people/5, on the same days): the extra exposures are repeat contacts in settings where
people meet the same group again and again. Every case still names its household and other
contacts as above; on top of that, about three cases in four also name members of their
group: a workplace team, a school or college bubble, or a social group (a sports club, a
faith group), mostly close and long contacts on the last days before the case isolated,
entered quickly from a register or rota. Groups are made of people already in the store
(the recent ones, as for other repeat contacts) and persist, so when another member of a
group becomes a case later they name much the same people again: a person is then a contact
of several cases, as in a school or workplace outbreak. The number a case names is drawn
around whatever mean still reaches N, re-estimated at each case (so the total lands close
to N, short by what the end of 31 December cuts off), and a group is topped up from recent
people when it is smaller than that. Group contacts are phoned and recorded like every
other contact (calls, audit entries, statuses); they are less likely than other contacts to
test positive (1% if close, 0.3% if not), so the number of cases and their daily shape stay
as in the default. A large N costs time and disk roughly in proportion: every exposure
brings its calls and audit entries. Without --exposures the generator does exactly what it
did before (the same draws from the same seed).

Made-up identifiers. NHS numbers are in the 999 range with valid modulus-11 check
digits (the range used for test data; only about 909,000 valid numbers exist there, so
about 85% of people have one, each different). Phone numbers are synthetic and unique
(93% of people have one): mobiles in 07700 9xxxxx, 100,000 numbers whose 07700 900xxx part
is Ofcom's drama range, mixed evenly with numbers in the 01632 area code, which Ofcom has
never allocated (its 01632 960xxx part is the drama range). Neither reaches anyone. Note
that tracekit's own phone check accepts only the drama parts: libphonenumber calls the
rest unallocated, so a tracer could not type them in, and a search for one runs without
its +44 variant (the benchmark searches for a drama-range number for that reason). Emails
use the reserved example.com/.org/.net domains. Postcodes are real outward codes with
made-up inward parts; surnames follow England's distribution roughly (Smith about 1.5%,
a long tail of place-name surnames).

How rows are written. Directly, with executemany in a few large transactions on the
connection of a store made by ``tracekit.store.create_store``, with foreign keys checked
at each commit (``PRAGMA defer_foreign_keys``). Every stored derived value is computed by
tracekit's own code, never re-implemented here: ``name_key`` and ``search_terms`` for the
people columns and the ``people_fts`` index, ``tracekit.records.derived`` (rule set in
force, infectious period, isolation ends, close-contact clause, ``risk_rank``), the
column lists of ``tracekit.records.tables`` (rows are built by column name), ``new_ref`` for references (kept unique with a set),
``audit.entry_hash`` for the audit chain and ``OUTCOME_STATUS`` for what a call outcome
does to a contact's status. Two things are done differently from a tracer's session, for
speed only, and neither changes the file: the generating connection is opened without
SQLCipher's memory security (see :func:`_without_memory_security`), and a helper process
makes the people, draws the references and computes the audit chain while this one
simulates and writes (the machine has two cores).

Key derivation. The store is created with this machine's calibrated Argon2id parameters
(``tracekit.crypto.kdf.calibrate()``, what ``tracekit init`` uses), so unlocking it in the
benchmark costs what it costs a real user: the "fixed cost of unlocking" is real. The
passphrase is :data:`BENCH_PASSPHRASE` (made-up data, not a secret), also written to the
sidecar file ``<store>.json`` with the counts and the generation time.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import multiprocessing
import os
import random
import sys
import time
import types
import unicodedata
from bisect import bisect
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
DEFAULT_PEOPLE = 1_000_000
BENCH_PASSPHRASE = "tracekit benchmark store: made-up data, not a secret"

START = date(2020, 9, 1)
END = date(2020, 12, 31)
MEAN_CONTACTS = 5.0

US = 1_000_000
HOUR = 3600 * US
DAY = 24 * HOUR


def default_path(people: int, exposures: int | None = None) -> Path:
    if exposures is not None:
        return OUT / f"casebook-{people}-{exposures}.store"
    return OUT / ("casebook-1m.store" if people == DEFAULT_PEOPLE else f"casebook-{people}.store")


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def read_sidecar(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(sidecar_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------------ made-up data

# Roughly in order of frequency in England and Wales; weights fall off with rank.
SURNAMES = [
    "Smith",
    "Jones",
    "Williams",
    "Taylor",
    "Brown",
    "Davies",
    "Evans",
    "Wilson",
    "Thomas",
    "Johnson",
    "Roberts",
    "Robinson",
    "Thompson",
    "Wright",
    "Walker",
    "White",
    "Edwards",
    "Hughes",
    "Green",
    "Hall",
    "Lewis",
    "Harris",
    "Clarke",
    "Patel",
    "Jackson",
    "Wood",
    "Turner",
    "Martin",
    "Cooper",
    "Hill",
    "Ward",
    "Morris",
    "Moore",
    "Clark",
    "Lee",
    "King",
    "Baker",
    "Harrison",
    "Morgan",
    "Allen",
    "James",
    "Scott",
    "Phillips",
    "Watson",
    "Davis",
    "Parker",
    "Price",
    "Bennett",
    "Young",
    "Griffiths",
    "Mitchell",
    "Kelly",
    "Cook",
    "Carter",
    "Richardson",
    "Bailey",
    "Collins",
    "Bell",
    "Shaw",
    "Murphy",
    "Miller",
    "Cox",
    "Richards",
    "Khan",
    "Marshall",
    "Anderson",
    "Simpson",
    "Ellis",
    "Adams",
    "Singh",
    "Begum",
    "Wilkinson",
    "Foster",
    "Chapman",
    "Powell",
    "Webb",
    "Rogers",
    "Gray",
    "Mason",
    "Ali",
    "Hunt",
    "Hussain",
    "Campbell",
    "Matthews",
    "Owen",
    "Palmer",
    "Holmes",
    "Mills",
    "Barnes",
    "Knight",
    "Lloyd",
    "Butler",
    "Russell",
    "Barker",
    "Fisher",
    "Stevens",
    "Jenkins",
    "Murray",
    "Dixon",
    "Harvey",
    "Graham",
    "Pearson",
    "Ahmed",
    "Fletcher",
    "Walsh",
    "Kaur",
    "Gibson",
    "Howard",
    "Andrews",
    "Stewart",
    "Elliott",
    "Reynolds",
    "Saunders",
    "Payne",
    "Fox",
    "Ford",
    "Pearce",
    "Day",
    "Brooks",
    "West",
    "Lawrence",
    "Cole",
    "Atkinson",
    "Bradley",
    "Spencer",
    "Gill",
    "Dawson",
    "Ball",
    "Burton",
    "O'Brien",
    "Watts",
    "Rose",
    "Booth",
    "Perry",
    "Ryan",
    "Grant",
    "Wells",
    "Armstrong",
    "Francis",
    "Rees",
    "Hayes",
    "Hart",
    "Hudson",
    "Newman",
    "Barrett",
    "Webster",
    "Hunter",
    "Gregory",
    "Carr",
    "Lowe",
    "Page",
    "Marsh",
    "Riley",
    "Dunn",
    "Woods",
    "Parsons",
    "Berry",
    "Stone",
    "Reid",
    "Holland",
    "Hawkins",
    "Harding",
    "Porter",
    "Robertson",
    "Newton",
    "Oliver",
    "Reed",
    "Kennedy",
    "Williamson",
    "Bird",
    "Gardner",
    "Shah",
    "Dean",
    "Lane",
    "Cooke",
    "Bates",
    "Henderson",
    "Parry",
    "Burgess",
    "Bishop",
    "Walton",
    "Burns",
    "Nicholson",
    "Shepherd",
    "Ross",
    "Cross",
    "Long",
    "Freeman",
    "Warren",
    "Nicholls",
    "Hamilton",
    "Byrne",
    "Sutton",
    "McDonald",
    "Yates",
    "Hodgson",
    "Robson",
    "Curtis",
    "Hopkins",
    "O'Connor",
    "Harper",
    "Coleman",
    "Watkins",
    "Moss",
    "McCarthy",
    "Chambers",
    "O'Neill",
    "Griffin",
    "Sharp",
    "Hardy",
    "Wheeler",
    "Potter",
    "Osborne",
    "Johnston",
    "Gordon",
    "Doyle",
    "Wallace",
    "George",
    "Jordan",
    "Hutchinson",
    "Rowe",
    "Burke",
    "May",
    "Pritchard",
    "Gilbert",
    "Willis",
    "Higgins",
    "Read",
    "Miah",
    "Rahman",
    "Islam",
    "Akhtar",
    "Iqbal",
    "Mahmood",
    "Chowdhury",
    "Mistry",
    "Sharma",
    "Kumar",
    "Nowak",
    "Kowalski",
    "Wiśniewski",
    "Wójcik",
    "Kowalczyk",
    "Lewandowski",
    "Zieliński",
    "Szymański",
    "Dąbrowski",
    "Kozłowski",
    "Mazur",
    "Popescu",
    "Ionescu",
    "Santos",
    "Silva",
    "Pereira",
    "Ferreira",
    "Costa",
    "Oliveira",
    "Rodrigues",
    "García",
    "Fernández",
    "López",
    "Martínez",
    "González",
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Rossi",
    "Russo",
    "Ferrari",
    "Esposito",
    "Bianchi",
    "Romano",
    "Okafor",
    "Okonkwo",
    "Adeyemi",
    "Mensah",
    "Boateng",
    "Asante",
    "Osei",
    "Nguyen",
    "Tran",
    "Wang",
    "Chen",
    "Zhang",
    "Liu",
    "Yilmaz",
    "Kaya",
    "Demir",
    "Çelik",
    "Papadopoulos",
    "Jovanović",
    "Horvat",
    "Novák",
    "Dvořák",
    "Nagy",
    "Kovács",
    "Eriksson",
    "Andersson",
    "Nielsen",
    "Hansen",
    "Brontë",
    "Ó",
    "Súilleabháin",
    "MacGregor",
    "MacLeod",
    "Llewellyn",
    "Pryce",
    "Ní",
    "Bhriain",
    "Le",
    "Roux",
    "D'Souza",
    "Fernandes",
    "Rodrigues-Smith",
    "Jones-Evans",
    "Bowes-Lyon",
]
# Two-word surnames above were split; stitch the known ones back together.
_MULTI = {("Ó", "Súilleabháin"): "Ó Súilleabháin", ("Ní", "Bhriain"): "Ní Bhriain", ("Le", "Roux"): "Le Roux"}


def _stitch(words: list[str]) -> list[str]:
    result: list[str] = []
    skip = False
    for first, second in zip(words, [*words[1:], ""]):
        if skip:
            skip = False
            continue
        if (first, second) in _MULTI:
            result.append(_MULTI[(first, second)])
            skip = True
        else:
            result.append(first)
    return result


SURNAMES = _stitch(SURNAMES)

# The names above are common ones: in England the most common, Smith, is about 1.3% of
# people, and the 300 or so most common cover about a third. The rest is a long tail,
# made here from the parts of English place-name surnames (Ashworth, Blackwood, ...).
SURNAME_PREFIXES = [
    "Ash",
    "Black",
    "Brad",
    "Brook",
    "Bram",
    "Carr",
    "Clay",
    "Cold",
    "Crane",
    "Dal",
    "Down",
    "East",
    "Fair",
    "Farn",
    "Ford",
    "Green",
    "Hal",
    "Hart",
    "Hay",
    "Heath",
    "Hol",
    "Kirk",
    "Lang",
    "Lind",
    "Mar",
    "Mid",
    "Mill",
    "Moor",
    "New",
    "North",
    "Oak",
    "Pen",
    "Red",
    "Ridge",
    "Rock",
    "Rom",
    "Roth",
    "Sand",
    "Shel",
    "Shep",
    "South",
    "Stan",
    "Stock",
    "Stone",
    "Sum",
    "Thorn",
    "Wal",
    "Ward",
    "Wes",
    "West",
    "Whit",
    "Wick",
    "Wil",
    "Win",
    "Wood",
    "Wor",
    "Hather",
    "Brom",
    "Ather",
    "Bar",
]
SURNAME_SUFFIXES = [
    "ton",
    "ley",
    "field",
    "worth",
    "wood",
    "ford",
    "ham",
    "by",
    "well",
    "stone",
    "bridge",
    "dale",
    "more",
    "hurst",
    "cliffe",
    "combe",
    "bury",
    "thorpe",
    "brook",
    "shaw",
    "croft",
    "gate",
    "land",
    "hill",
    "low",
    "stead",
    "wick",
    "don",
    "den",
    "ridge",
    "er",
    "man",
    "ock",
    "ington",
    "ingham",
    "son",
    "wright",
]
COMMON_SURNAME_SHARE = 0.35

FEMALE_NAMES = [
    "Olivia",
    "Amelia",
    "Isla",
    "Ava",
    "Mia",
    "Ivy",
    "Lily",
    "Isabella",
    "Rosie",
    "Sophia",
    "Grace",
    "Willow",
    "Freya",
    "Florence",
    "Emily",
    "Ella",
    "Poppy",
    "Evie",
    "Elsie",
    "Charlotte",
    "Evelyn",
    "Sienna",
    "Sofia",
    "Daisy",
    "Phoebe",
    "Sophie",
    "Alice",
    "Harper",
    "Matilda",
    "Ruby",
    "Emilia",
    "Maya",
    "Millie",
    "Isabelle",
    "Chloe",
    "Zoë",
    "Jessica",
    "Sarah",
    "Emma",
    "Hannah",
    "Laura",
    "Rebecca",
    "Rachel",
    "Claire",
    "Helen",
    "Karen",
    "Susan",
    "Margaret",
    "Patricia",
    "Elizabeth",
    "Mary",
    "Jennifer",
    "Linda",
    "Barbara",
    "Joanne",
    "Nicola",
    "Michelle",
    "Amanda",
    "Louise",
    "Victoria",
    "Kirsty",
    "Gemma",
    "Lauren",
    "Siân",
    "Niamh",
    "Aoife",
    "Ciara",
    "Saoirse",
    "Fatima",
    "Aisha",
    "Amira",
    "Zainab",
    "Maryam",
    "Priya",
    "Ananya",
    "Aaliyah",
    "Noor",
    "Hafsa",
    "Agnieszka",
    "Katarzyna",
    "Małgorzata",
    "Zofia",
    "Ana",
    "María",
    "Lucía",
    "Renée",
    "Chloë",
    "Anaïs",
    "Inês",
    "João",
    "Ngozi",
    "Chidinma",
    "Abena",
    "Yaa",
    "Mei",
    "Xin",
    "Thu",
    "Elif",
    "Zeynep",
    "Eleni",
    "Dorothy",
    "Joan",
    "Pauline",
    "Janet",
    "Jean",
]
MALE_NAMES = [
    "Oliver",
    "George",
    "Noah",
    "Arthur",
    "Harry",
    "Leo",
    "Muhammad",
    "Jack",
    "Charlie",
    "Oscar",
    "Jacob",
    "Henry",
    "Thomas",
    "Freddie",
    "Alfie",
    "Theo",
    "William",
    "Theodore",
    "Archie",
    "Joshua",
    "Alexander",
    "James",
    "Isaac",
    "Edward",
    "Lucas",
    "Tommy",
    "Finley",
    "Max",
    "Logan",
    "Ethan",
    "Mohammed",
    "Teddy",
    "Benjamin",
    "Arlo",
    "Joseph",
    "Sebastian",
    "Daniel",
    "David",
    "John",
    "Michael",
    "Paul",
    "Mark",
    "Andrew",
    "Richard",
    "Christopher",
    "Stephen",
    "Peter",
    "Robert",
    "Anthony",
    "Kevin",
    "Gary",
    "Ian",
    "Simon",
    "Stuart",
    "Craig",
    "Darren",
    "Lee",
    "Dean",
    "Wayne",
    "Gareth",
    "Rhys",
    "Dylan",
    "Owain",
    "Seán",
    "Ciarán",
    "Conor",
    "Liam",
    "Ahmed",
    "Ali",
    "Omar",
    "Hassan",
    "Bilal",
    "Arjun",
    "Rohan",
    "Krishna",
    "Ravi",
    "Łukasz",
    "Piotr",
    "Krzysztof",
    "Tomasz",
    "Zbigniew",
    "Jakub",
    "José",
    "Luis",
    "Javier",
    "André",
    "João",
    "Chinedu",
    "Emeka",
    "Kwame",
    "Kofi",
    "Wei",
    "Jun",
    "Minh",
    "Mehmet",
    "Emre",
    "Nikos",
    "Dimitri",
    "Jürgen",
    "Stefan",
    "Kenneth",
    "Brian",
    "Derek",
    "Trevor",
    "Colin",
    "Roy",
]

STREETS = [
    "Church",
    "Station",
    "Victoria",
    "Park",
    "Albert",
    "Manor",
    "Mill",
    "Queens",
    "Kings",
    "Grange",
    "Green",
    "Chapel",
    "Springfield",
    "School",
    "Windsor",
    "Highfield",
    "Orchard",
    "Meadow",
    "Alexandra",
    "Beech",
    "Cedar",
    "Elm",
    "Oak",
    "Willow",
    "Ash",
    "Birch",
    "Hawthorn",
    "Holly",
    "Richmond",
    "York",
    "Lancaster",
    "Clarence",
    "Stanley",
    "Nelson",
    "Wellington",
    "Cromwell",
    "Princess",
    "Jubilee",
    "Coronation",
    "Mount",
    "Hillside",
    "Brook",
    "Riverside",
    "Canal",
    "Bridge",
    "Castle",
    "Abbey",
    "Priory",
    "Market",
    "North",
    "South",
    "West",
    "East",
    "Westfield",
    "Fairfield",
    "Moorland",
    "Heath",
    "Common",
    "Newlands",
    "Rectory",
    "Vicarage",
    "Somerset",
    "Devonshire",
]
STREET_KINDS = [
    "Road",
    "Street",
    "Avenue",
    "Lane",
    "Close",
    "Drive",
    "Grove",
    "Terrace",
    "Way",
    "Crescent",
    "Gardens",
    "Place",
    "Court",
    "Rise",
    "View",
]

# Real outward codes of English towns and cities (weight: rough share of cases).
OUTWARDS = [
    ("E17", "London", 3),
    ("N16", "London", 3),
    ("SE15", "London", 3),
    ("SW2", "London", 3),
    ("E14", "London", 3),
    ("NW10", "London", 3),
    ("W3", "London", 2),
    ("CR0", "Croydon", 2),
    ("IG1", "Ilford", 2),
    ("HA0", "Wembley", 2),
    ("UB3", "Hayes", 2),
    ("M14", "Manchester", 3),
    ("M8", "Manchester", 2),
    ("OL1", "Oldham", 2),
    ("BL1", "Bolton", 2),
    ("WN1", "Wigan", 1),
    ("B29", "Birmingham", 3),
    ("B10", "Birmingham", 3),
    ("WV1", "Wolverhampton", 2),
    ("CV4", "Coventry", 2),
    ("LS6", "Leeds", 3),
    ("LS9", "Leeds", 2),
    ("BD8", "Bradford", 3),
    ("HD1", "Huddersfield", 1),
    ("S10", "Sheffield", 2),
    ("S2", "Sheffield", 2),
    ("L15", "Liverpool", 3),
    ("L4", "Liverpool", 2),
    ("NE6", "Newcastle upon Tyne", 2),
    ("SR2", "Sunderland", 1),
    ("TS1", "Middlesbrough", 1),
    ("DH1", "Durham", 1),
    ("HU5", "Hull", 2),
    ("YO10", "York", 1),
    ("NG7", "Nottingham", 3),
    ("DE22", "Derby", 2),
    ("LE2", "Leicester", 3),
    ("LN2", "Lincoln", 1),
    ("ST4", "Stoke-on-Trent", 2),
    ("BB2", "Blackburn", 2),
    ("PR1", "Preston", 1),
    ("CA1", "Carlisle", 1),
    ("BS7", "Bristol", 2),
    ("EX4", "Exeter", 1),
    ("PL4", "Plymouth", 1),
    ("SO17", "Southampton", 1),
    ("PO4", "Portsmouth", 1),
    ("BN2", "Brighton", 1),
    ("RG1", "Reading", 1),
    ("OX4", "Oxford", 1),
    ("MK9", "Milton Keynes", 1),
    ("CB1", "Cambridge", 1),
    ("NR2", "Norwich", 1),
    ("LU1", "Luton", 2),
    ("SL1", "Slough", 2),
    ("ME7", "Gillingham", 1),
    ("CT1", "Canterbury", 1),
    ("GL1", "Gloucester", 1),
    ("TR1", "Truro", 1),
    ("BA1", "Bath", 1),
]
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"

OCCUPATIONS = [
    ("care worker", 6),
    ("nurse", 5),
    ("healthcare assistant", 3),
    ("doctor", 1),
    ("pharmacist", 1),
    ("teacher", 5),
    ("teaching assistant", 3),
    ("nursery worker", 2),
    ("shop assistant", 6),
    ("supermarket worker", 5),
    ("warehouse operative", 5),
    ("delivery driver", 4),
    ("bus driver", 2),
    ("taxi driver", 2),
    ("factory worker", 4),
    ("food processing operative", 3),
    ("chef", 2),
    ("cleaner", 3),
    ("security officer", 2),
    ("builder", 3),
    ("electrician", 2),
    ("plumber", 1),
    ("office worker", 6),
    ("software developer", 2),
    ("accountant", 2),
    ("civil servant", 2),
    ("police officer", 1),
    ("prison officer", 1),
    ("firefighter", 1),
    ("hairdresser", 1),
    ("call centre agent", 3),
    ("self-employed", 3),
    ("unemployed", 3),
    ("homemaker", 2),
]

CASE_NOTES = [
    "Works night shifts; call after 2pm.",
    "Prefers a text before a call.",
    "Interpreter needed (Polish).",
    "Interpreter needed (Urdu).",
    "Interpreter needed (Romanian).",
    "Hard of hearing: speak slowly or use text.",
    "Lives with elderly parent.",
    "Symptoms mild; isolating at home.",
    "Attended a wedding the weekend before symptoms.",
    "Works at a food processing site; employer informed.",
    "Student in halls; accommodation office informed.",
]
CONTACT_NOTES = [
    "Shares a car to work.",
    "Same classroom bubble.",
    "Prefers text first.",
    "Left voicemail with callback number.",
    "Works at the same site, different shift some days.",
    "Met at a family gathering.",
    "Interpreter needed (Bengali).",
    "Caring responsibilities; asked about support.",
]
CALL_NOTES = ["Left voicemail.", "Rang out.", "Asked to call back later.", "Spoke to a relative.", None, None, None]

EXPOSURE_SETTINGS = [
    ("workplace", 30),
    ("social", 24),
    ("education", 18),
    ("other", 14),
    ("healthcare", 6),
    ("travel", 8),
]
PROXIMITIES = [(None, 12), (0.5, 10), (1.0, 22), (1.5, 16), (2.0, 20), (3.0, 12), (5.0, 8)]
# Group contacts (--exposures): a workplace team, a school bubble, a social group.
GROUP_SETTINGS = [("workplace", 50), ("education", 35), ("social", 15)]
GROUP_PROXIMITIES = [(None, 10), (1.0, 30), (1.5, 20), (2.0, 25), (3.0, 15)]
GROUP_DURATIONS = [(None, 10), (15.0, 10), (30.0, 10), (60.0, 15), (120.0, 15), (240.0, 15), (480.0, 25)]
GROUP_NAMING_SHARE = 0.75  # cases that name members of their group
GROUP_MAX_NAMED = 60  # at most this many group contacts per case
GROUP_RECENT = 150_000  # groups are drawn from the most recent people, as reuse_person does

DURATIONS = [
    (None, 12),
    (1.0, 4),
    (5.0, 10),
    (10.0, 12),
    (15.0, 12),
    (20.0, 12),
    (30.0, 12),
    (45.0, 6),
    (60.0, 8),
    (90.0, 4),
    (120.0, 4),
    (240.0, 3),
    (480.0, 3),
]

# Cases a day (relative): England, autumn 2020.
WAVE = [
    (date(2020, 9, 1), 3.0),
    (date(2020, 10, 1), 8.0),
    (date(2020, 10, 20), 19.0),
    (date(2020, 11, 10), 24.0),
    (date(2020, 12, 1), 14.0),
    (date(2020, 12, 15), 22.0),
    (date(2020, 12, 31), 36.0),
]
WEEKDAY = [1.08, 1.04, 1.02, 1.0, 0.98, 0.92, 0.86]


def _weighted(pairs: list[tuple[Any, float]]) -> tuple[list[Any], list[float]]:
    values = [v for v, _ in pairs]
    cum, total = [], 0.0
    for _, w in pairs:
        total += w
        cum.append(total)
    return values, cum


def _zipf(values: list[str], exponent: float) -> tuple[list[str], list[float]]:
    return _weighted([(v, 1 / (rank + 1) ** exponent) for rank, v in enumerate(values)])


def _surname_weights() -> tuple[list[str], list[float]]:
    """Common surnames (Zipf-like, Smith about 1.3%) then the long tail."""
    common = [1 / (rank + 1) ** 0.6 for rank in range(len(SURNAMES))]
    scale = COMMON_SURNAME_SHARE / sum(common)
    pairs = [(name, w * scale) for name, w in zip(SURNAMES, common)]
    tail = sorted({p + s for p in SURNAME_PREFIXES for s in SURNAME_SUFFIXES} - set(SURNAMES))
    random.Random(7).shuffle(tail)
    tail_weights = [1 / (rank + 1) ** 0.3 for rank in range(len(tail))]
    tail_scale = (1 - COMMON_SURNAME_SHARE) / sum(tail_weights)
    pairs += [(name, w * tail_scale) for name, w in zip(tail, tail_weights)]
    return _weighted(pairs)


def daily_targets(total_cases: int) -> list[tuple[date, int]]:
    days = [START + timedelta(days=i) for i in range((END - START).days + 1)]
    weights = []
    for day in days:
        for (d0, w0), (d1, w1) in zip(WAVE, WAVE[1:]):
            if d0 <= day <= d1:
                share = (day - d0).days / max(1, (d1 - d0).days)
                weights.append((w0 + (w1 - w0) * share) * WEEKDAY[day.weekday()])
                break
    scale = total_cases / sum(weights)
    targets, carried = [], 0.0
    for day, w in zip(days, weights):
        carried += w * scale
        n = int(carried)
        carried -= n
        targets.append((day, n))
    return targets


def _day_start_us(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * US


END_US = _day_start_us(END) + DAY - 1
_DAY_PREFIX: dict[int, str] = {}


def _iso_seconds(us: int) -> str:
    """``datetime.fromtimestamp(us, timezone.utc).isoformat(timespec="seconds")``, cheaper."""
    day, rem = divmod(us // US, 86400)
    prefix = _DAY_PREFIX.get(day)
    if prefix is None:
        prefix = _DAY_PREFIX[day] = datetime.fromtimestamp(day * 86400, UTC).date().isoformat()
    hours, rem = divmod(rem, 3600)
    minutes, seconds = divmod(rem, 60)
    return f"{prefix}T{hours:02d}:{minutes:02d}:{seconds:02d}+00:00"


def _iso_micro(us: int) -> str:
    """The same with microseconds, as ``tracekit.audit.append`` writes ``at``."""
    return f"{_iso_seconds(us)[:-6]}.{us % US:06d}+00:00"


def _ascii(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if ch.isascii() and ch.isalnum())


def nhs_numbers(rng: random.Random) -> Iterator[str]:
    """Every valid NHS number in the 999 range, in random order (validity: tracekit's own check)."""
    from tracekit.domain import identifiers as ids

    prefixes = list(range(1_000_000))
    rng.shuffle(prefixes)
    for p in prefixes:
        first_nine = f"999{p:06d}"
        check = ids._nhs_check_digit(first_nine)
        if check is not None:
            yield first_nine + str(check)


def phone_numbers(rng: random.Random, people: int) -> Iterator[str]:
    """Unique synthetic numbers: 07700 9xxxxx (mobiles) mixed evenly through the store with
    01632 xxxxxx, once there are more people than the 100,000 mobiles."""
    mobiles = [f"+4477009{n:05d}" for n in range(100_000)]
    rng.shuffle(mobiles)
    landlines = [f"+441632{n:06d}" for n in range(1_000_000)]
    rng.shuffle(landlines)
    share = min(1.0, len(mobiles) / max(1, people))
    while mobiles or landlines:
        if mobiles and (rng.random() < share or not landlines):
            yield mobiles.pop()
        else:
            yield landlines.pop()


# ------------------------------------------------------------------ the helper process
# The work is shared (this machine has two cores): the generating process runs the
# simulation and writes every row; a helper process makes the people (with their
# references, identifiers and search terms) and computes the audit chain; a second, light
# one draws the case and contact references. Each helper is one process that runs its
# tasks in the order they were sent, so its state (the people made so far, the chain head,
# the references drawn) is consistent.

_HELPER: dict[str, Any] = {}


def _helper_cpu_seconds() -> float:
    return time.process_time()


def _helper_refs(count: int, kind: str) -> list[str]:
    """``count`` new references of ``kind`` from ``tracekit.domain.refs.new_ref``, never repeated."""
    from tracekit.domain.refs import RefKind, new_ref

    seen = _HELPER.setdefault("refs", set())
    ref_kind = RefKind(kind)
    out: list[str] = []
    while len(out) < count:
        ref = new_ref(ref_kind)
        if ref not in seen:
            seen.add(ref)
            out.append(ref)
    return out


def _helper_people(
    specs: list[tuple[int, int, int | None, bool]], seed: int, target: int
) -> tuple[list[tuple[Any, ...]], list[tuple[int, str]]]:
    """People rows and their ``people_fts`` rows for (id, created, household of, adult) specs."""
    maker = _HELPER.get("people")
    if maker is None:
        maker = _HELPER["people"] = PersonMaker(seed, target)
    people, fts = [], []
    for pid, created_us, household_of, adult in specs:
        row, terms = maker.make(pid, created_us, household_of, adult)
        people.append(row)
        fts.append((pid, terms))
    return people, fts


def _helper_audit(
    events: list[tuple[int, str, list[Any], str | None]], start: tuple[int, str] | None
) -> tuple[list[tuple[Any, ...]], int, str]:
    """Audit rows for events in time order, chained as ``tracekit.audit.append`` chains them.

    A person in ``refs`` is given by id (the helper made the person and knows the
    reference). The chain continues from the previous batch, or from ``start`` (the
    store's head) for the first one.
    """
    from tracekit.audit import entry_hash

    person_ref = _HELPER["people"].person_ref
    seq, prev = start if start is not None else _HELPER["head"]
    rows = []
    for us, action, refs, reason in events:
        seq += 1
        at = _iso_micro(us)
        refs = sorted({person_ref[r] if isinstance(r, int) else r for r in refs})
        digest = entry_hash(prev, seq, at, action, refs, reason)
        rows.append((seq, at, action, json.dumps(refs), reason, prev, digest))
        prev = digest
    _HELPER["head"] = (seq, prev)
    return rows, seq, prev


class Stream:
    """Values made ahead in the helper process, a chunk at a time (``fn(chunk, *args)``)."""

    CHUNK = 40_000

    def __init__(self, pool: Any, fn: Any, *args: Any) -> None:
        self.pool, self.fn, self.args = pool, fn, args
        self.ahead = [pool.apply_async(fn, (self.CHUNK, *args)) for _ in range(2)]
        self.current: list[Any] = []

    def take(self) -> Any:
        if not self.current:
            self.current = self.ahead.pop(0).get()
            self.current.reverse()
            self.ahead.append(self.pool.apply_async(self.fn, (self.CHUNK, *self.args)))
        return self.current.pop()


class Dice:
    """Cheap random draws (random.Random's own helpers cost several times more)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.random = self.rng.random

    def below(self, n: int) -> int:
        return int(self.random() * n)

    def between(self, low: int, high: int) -> int:
        return low + int(self.random() * (high - low))

    def one(self, seq: Any) -> Any:
        return seq[int(self.random() * len(seq))]

    def pick(self, weighted: tuple[Any, Any]) -> Any:
        values, cum = weighted
        return values[bisect(cum, self.random() * cum[-1])]


class PersonMaker(Dice):
    """Made-up people; household members share an address and often a surname."""

    def __init__(self, seed: int, people: int) -> None:
        from tracekit.domain import identifiers as ids
        from tracekit.records.casebook import search_terms
        from tracekit.records.tables import PEOPLE

        super().__init__(seed + 1)
        self.search_terms = search_terms
        self.people_table = PEOPLE
        self.name_key = functools.lru_cache(maxsize=None)(ids.name_key)
        self.ascii = functools.lru_cache(maxsize=None)(_ascii)
        self.surnames = _surname_weights()
        self.female = _zipf(FEMALE_NAMES, 0.6)
        self.male = _zipf(MALE_NAMES, 0.6)
        self.outwards = _weighted([((o, town), w) for o, town, w in OUTWARDS])
        for outward, _, _ in OUTWARDS:
            ids.normalise_postcode(f"{outward} 1AA")  # every outward code is one tracekit accepts
        self.occupations = _weighted(OCCUPATIONS)
        self.nhs = nhs_numbers(self.rng)
        self.phones = phone_numbers(self.rng, people)
        self.person_ref: dict[int, str] = {}
        self.home: dict[int, tuple[str, str, str]] = {}
        self.ref_buffer: list[str] = []

    def make(self, pid: int, created_us: int, household_of: int | None, adult: bool) -> tuple[tuple[Any, ...], str]:
        r = self.random
        first = self.pick(self.female if r() < 0.5 else self.male)
        if household_of is not None:
            home_surname, address, postcode = self.home[household_of]
            surname = home_surname if r() < 0.7 else self.pick(self.surnames)
        else:
            surname = self.pick(self.surnames)
            outward, town = self.pick(self.outwards)
            postcode = f"{outward} {self.below(10)}{self.one(INWARD_LETTERS)}{self.one(INWARD_LETTERS)}"
            flat = f"Flat {self.between(1, 40)}, " if r() < 0.18 else ""
            address = f"{flat}{self.between(1, 240)} {self.one(STREETS)} {self.one(STREET_KINDS)}, {town}"
        name = f"{first} {surname}"
        # Age: contacts include children and older people; cases are mostly adults.
        age = int(self.rng.triangular(18, 92, 38)) if adult or r() > 0.22 else self.below(18)
        dob = (date(2020 - age, 1, 1) + timedelta(days=self.below(365))).isoformat() if r() < 0.95 else None
        nhs = next(self.nhs, None) if r() < 0.85 else None
        phone = next(self.phones, None) if r() < 0.93 else None
        email = None
        if age >= 16 and r() < 0.4:
            number = self.below(100) if r() < 0.6 else ""
            email = f"{self.ascii(first).lower()}.{self.ascii(surname).lower()}{number}@example.{self.one(('com', 'org', 'net'))}"
        if age < 5:
            occupation = None
        elif age < 17:
            occupation = "school pupil" if r() < 0.6 else None
        elif age < 23 and r() < 0.5:
            occupation = "student"
        elif age >= 67:
            occupation = "retired" if r() < 0.6 else None
        else:
            occupation = self.pick(self.occupations) if r() < 0.6 else None
        if not self.ref_buffer:
            self.ref_buffer = _helper_refs(40_000, "P")
        ref = self.ref_buffer.pop()
        self.person_ref[pid] = ref
        self.home[pid] = (surname, address, postcode)
        stamp = _iso_seconds(created_us)
        terms = self.search_terms({"name": name, "phone": phone, "nhs_number": nhs, "postcode": postcode})
        row = self.people_table.row(
            {
                "id": pid,
                "ref": ref,
                "name": name,
                "name_key": self.name_key(name),
                "date_of_birth": dob,
                "nhs_number": nhs,
                "phone": phone,
                "email": email,
                "address": address,
                "postcode": postcode,
                "occupation": occupation,
                "search_terms": terms,
                "created_at": stamp,
                "updated_at": stamp,
            }
        )
        return row, terms


# --------------------------------------------------------------------------- generation


class Generator(Dice):
    """A day-by-day simulation that buffers rows and writes them in large transactions."""

    def __init__(
        self,
        store: Any,
        people: int,
        seed: int,
        audit: bool,
        pool: Any,
        refs_pool: Any,
        flush_rows: int = 200_000,
        exposures: int | None = None,
    ) -> None:
        from tracekit import audit as audit_module
        from tracekit.records import casebook as casebook_module
        from tracekit.records.derived import RuleValues
        from tracekit.records.models import OUTCOME_STATUS
        from tracekit.records.tables import CASES, EXPOSURES, PEOPLE

        super().__init__(seed)
        self.store = store
        self.conn = store.conn
        self.seed = seed
        self.people_target = people
        self.total_cases = max(1, people // 5)
        self.with_audit = audit
        self.pool = pool
        self.flush_rows = flush_rows
        # --exposures: the target, and the groups whose members cases name again and again.
        self.exposures_target = exposures
        self.group_of: dict[int, int] = {}
        self.group_members: list[list[int]] = []
        self.group_setting: list[str] = []
        self.group_settings_w = _weighted(GROUP_SETTINGS)
        self.group_proximities = _weighted(GROUP_PROXIMITIES)
        self.group_durations = _weighted(GROUP_DURATIONS)

        self.refs = {kind: Stream(refs_pool, _helper_refs, kind) for kind in ("C", "E")}
        self.audit_head_setting = audit_module.HEAD_SETTING
        self.outcome_status = {o.value: (s.value if s is not None else None) for o, s in OUTCOME_STATUS.items()}

        # Rule values as the case book and the importer work them out; the pinned rule
        # set is read once here (a new store pins none).
        self.rules = RuleValues(store.get_setting(casebook_module.PINNED_RULESET_SETTING))
        self.case_rule_values = self.rules.case
        self.people_table, self.cases_table, self.exposures_table = PEOPLE, CASES, EXPOSURES
        self.settings_w = _weighted(EXPOSURE_SETTINGS)
        self.proximities = _weighted(PROXIMITIES)
        self.durations = _weighted(DURATIONS)

        self.next_person = (self.conn.execute("SELECT max(id) FROM people").fetchone()[0] or 0) + 1
        self.next_case = (self.conn.execute("SELECT max(id) FROM cases").fetchone()[0] or 0) + 1
        self.next_exposure = (self.conn.execute("SELECT max(id) FROM exposures").fetchone()[0] or 0) + 1
        self.first_exposure = self.next_exposure
        self.audit_seq, self.audit_prev = audit_module._head(self.conn)
        self.audit_started = False

        self.used_people: list[int] = []
        self.has_case: set[int] = set()
        self.promoting: set[int] = set()
        self.person_specs: list[tuple[int, int, int | None, bool]] = []
        self.results: list[tuple[str, Any]] = []  # helper answers, in the order asked

        self.pending_events: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        self.pending_promotions: dict[date, list[tuple[int, int, date]]] = defaultdict(list)

        self.buf: dict[str, list[tuple[Any, ...]]] = {
            k: [] for k in ("people", "fts", "cases", "exposures", "calls", "audit")
        }
        self.counts: dict[str, int] = {k: 0 for k in self.buf}
        self.started = time.perf_counter()

    def event(
        self, us: int, action: str, refs: list[Any], reason: str | None = None, call: tuple[Any, ...] | None = None
    ) -> None:
        """Something that happens at ``us``: an audit entry (and a call row), emitted in time order."""
        if us <= END_US:
            self.pending_events[us // DAY].append((us, action, refs, reason, call))

    def exposure_rule_values(
        self,
        last_exposure: date,
        setting: str,
        proximity: float | None,
        duration: float | None,
        face_to_face: bool,
        direct: bool,
    ) -> dict[str, Any]:
        return self.rules.exposure(
            {
                "last_exposure": last_exposure,
                "setting": setting,
                "proximity_m": proximity,
                "duration_min": duration,
                "face_to_face": face_to_face,
                "direct_contact": direct,
            }
        )

    # -- people ----------------------------------------------------------------------------
    def new_person(self, created_us: int, *, household_of: int | None = None, adult: bool = False) -> int:
        """A new person, made in the helper; audit entries name people by id until then."""
        pid = self.next_person
        self.next_person += 1
        self.person_specs.append((pid, created_us, household_of, adult))
        self.used_people.append(pid)
        self.event(created_us, "person.add", [pid])
        return pid

    def p_new_contact(self, cases_made: int, index_made: int) -> float:
        remaining_people = self.people_target - (self.next_person - 1)
        if remaining_people <= 0:
            return 0.0
        index_share = index_made / cases_made if cases_made else 0.7
        demand = (self.total_cases - cases_made) * (index_share + MEAN_CONTACTS) + 1
        return min(1.0, remaining_people / demand)

    def reuse_person(self, exclude: set[int]) -> int | None:
        used = self.used_people
        for _ in range(8):
            pid = used[self.between(max(0, len(used) - 150_000), len(used))]
            if pid not in exclude:
                return pid
        return None

    # -- cases -----------------------------------------------------------------------------
    def new_case(
        self, day: date, person_id: int | None, source: tuple[int, date] | None, cases_made: int, index_made: int
    ) -> None:
        r = self.random
        created_us = _day_start_us(day) + self.between(8 * HOUR, 21 * HOUR)
        if person_id is None:
            person_id = self.new_person(created_us - self.between(US, 60 * US), adult=r() < 0.9)
        self.has_case.add(person_id)
        lag = self.pick(((0, 1, 2, 3), (15, 75, 95, 100)))
        test_date = max(START, day - timedelta(days=lag))
        if source is not None:
            test_date = max(test_date, source[1] + timedelta(days=1))
        onset = None
        if r() < 0.76:
            onset = test_date - timedelta(days=self.pick((range(6), (10, 35, 60, 80, 92, 100))))
        if day.month == 12 and r() < 0.14:
            test_type = "lfd"
        else:
            test_type = self.pick((("pcr", "lfd", "lamp", "other"), (95, 97, 99, 100)))
        rule = self.case_rule_values(test_date, onset)
        cid = self.next_case
        self.next_case += 1
        ref = self.refs["C"].take()
        close_us = created_us + self.between(7 * DAY, 12 * DAY)
        closed = close_us <= END_US
        notes = self.one(CASE_NOTES) if r() < 0.08 else None
        created = _iso_seconds(created_us)
        self.buf["cases"].append(
            self.cases_table.row(
                {
                    **rule,
                    "id": cid,
                    "ref": ref,
                    "person_id": person_id,
                    "test_date": test_date.isoformat(),
                    "test_type": test_type,
                    "test_result": "positive",
                    "symptom_onset": onset.isoformat() if onset else None,
                    "status": "closed" if closed else "open",
                    "notes": notes,
                    "source_exposure_id": source[0] if source else None,
                    "created_at": created,
                    "updated_at": _iso_seconds(close_us) if closed else created,
                    "closed_at": _iso_seconds(close_us) if closed else None,
                }
            )
        )
        self.event(created_us, "case.add", [ref, person_id])
        if closed:
            self.event(close_us, "case.close", [ref])
        named = self.add_contacts(
            day,
            cid,
            ref,
            person_id,
            created_us,
            test_date,
            date.fromisoformat(rule["infectious_start"]),
            date.fromisoformat(rule["infectious_end"]),
            cases_made,
            index_made,
        )
        if self.exposures_target is not None and named is not None:
            t, seen, first_possible, last_possible = named
            self.add_group_contacts(day, cid, ref, person_id, t, seen, first_possible, last_possible, cases_made)

    def add_contacts(
        self,
        day: date,
        case_id: int,
        case_ref: str,
        case_person: int,
        created_us: int,
        test_date: date,
        infectious_start: date,
        infectious_end: date,
        cases_made: int,
        index_made: int,
    ) -> tuple[int, set[int], date, date] | None:
        """The case's household and other contacts. Returns where the interview got to (time,
        the people named, the exposure window), or None if it had not finished by the end."""
        r = self.random
        household = self.pick((range(6), (30, 60, 80, 93, 98, 100)))
        others = _poisson(r, MEAN_CONTACTS - 1.35)
        seen = {case_person}
        t = created_us + self.between(5 * 60 * US, 30 * 60 * US)
        last_possible = min(test_date, infectious_end)
        first_possible = min(infectious_start, last_possible)
        span = (last_possible - first_possible).days
        p_new = self.p_new_contact(cases_made, index_made)
        for i in range(household + others):
            t += self.between(2 * 60 * US, 25 * 60 * US)
            if t > END_US:
                return None  # the interview had not finished by the end of the period
            at_home = i < household
            person = None
            if r() >= p_new:
                person = self.reuse_person(seen)
            if person is None:
                if self.next_person - 1 >= self.people_target:
                    person = self.reuse_person(seen)
                    if person is None:
                        continue
                else:
                    person = self.new_person(
                        t - self.between(US, 30 * US), household_of=case_person if at_home else None
                    )
            seen.add(person)
            if at_home:
                setting = "household"
                last_exposure = last_possible
                proximity = None if r() < 0.6 else self.one((0.5, 1.0))
                duration = None
                face_to_face = r() < 0.5
                direct = r() < 0.3
            else:
                setting = self.pick(self.settings_w)
                last_exposure = first_possible + timedelta(days=self.below(span + 1))
                proximity = self.pick(self.proximities)
                duration = self.pick(self.durations)
                face_to_face = r() < 0.25
                direct = r() < 0.04
            rule, eid = self.add_exposure(
                t,
                case_id,
                case_ref,
                person,
                last_exposure,
                setting,
                proximity,
                duration,
                face_to_face,
                direct,
                note_chance=0.05,
            )
            # Some contacts test positive a few days later and become cases.
            if person not in self.has_case and person not in self.promoting:
                chance = 0.12 if at_home else (0.05 if rule["close_contact"] else 0.015)
                if r() < chance:
                    when = max(last_exposure + timedelta(days=self.between(3, 10)), day + timedelta(days=1))
                    if when <= END:
                        self.pending_promotions[when].append((person, eid, last_exposure))
                        self.promoting.add(person)
        return t, seen, first_possible, last_possible

    # -- group contacts (--exposures) ---------------------------------------------------------
    def group_extra_mean(self, cases_made: int) -> float:
        """Group contacts a case should name, on average, so the total still reaches the target:
        what is left to make over the cases left, less what their other contacts bring."""
        assert self.exposures_target is not None
        made = self.next_exposure - self.first_exposure
        cases_left = max(1, self.total_cases - cases_made)
        return max(0.0, (self.exposures_target - made) / cases_left - MEAN_CONTACTS)

    def group_for(self, person: int, wanted: int, seen: set[int]) -> list[int]:
        """The person's group (made from recent people the first time), topped up from recent
        people if it has fewer than ``wanted`` members not in ``seen``."""
        gid = self.group_of.get(person)
        if gid is None:
            gid = len(self.group_members)
            self.group_members.append([person])
            self.group_setting.append(self.pick(self.group_settings_w))
            self.group_of[person] = gid
            size = max(wanted + self.between(0, 10), self.between(15, 46))
        else:
            size = 0
        members = self.group_members[gid]
        available = [m for m in members if m not in seen]
        size = max(size, len(members) + wanted - len(available))
        used = self.used_people
        low = max(0, len(used) - GROUP_RECENT)
        inside = set(members)
        tries = 0
        while len(members) < size and tries < 4 * size:
            tries += 1
            pid = used[self.between(low, len(used))]
            if pid in inside:
                continue
            inside.add(pid)
            members.append(pid)
            self.group_of.setdefault(pid, gid)
            if pid not in seen:
                available.append(pid)
        return available

    def add_group_contacts(
        self,
        day: date,
        case_id: int,
        case_ref: str,
        case_person: int,
        t: int,
        seen: set[int],
        first_possible: date,
        last_possible: date,
        cases_made: int,
    ) -> None:
        """Members of the case's group (--exposures), named after its other contacts."""
        r = self.random
        if r() >= GROUP_NAMING_SHARE:
            return
        mean = self.group_extra_mean(cases_made) / GROUP_NAMING_SHARE
        wanted = min(GROUP_MAX_NAMED, int(mean * (0.5 + r()) + 0.5))
        if wanted <= 0:
            return
        available = self.group_for(case_person, wanted, seen)
        if len(available) > wanted:
            # A partial shuffle: the first ``wanted`` are a random choice.
            for i in range(wanted):
                j = self.between(i, len(available))
                available[i], available[j] = available[j], available[i]
            available = available[:wanted]
        setting = self.group_setting[self.group_of[case_person]]
        span = (last_possible - first_possible).days
        for person in available:
            t += self.between(30 * US, 3 * 60 * US)  # read from a register or rota: quick
            if t > END_US:
                return
            seen.add(person)
            last_exposure = last_possible - timedelta(days=self.below(min(span, 2) + 1))
            proximity = self.pick(self.group_proximities)
            duration = self.pick(self.group_durations)
            face_to_face = r() < 0.15
            direct = r() < 0.02
            rule, eid = self.add_exposure(
                t,
                case_id,
                case_ref,
                person,
                last_exposure,
                setting,
                proximity,
                duration,
                face_to_face,
                direct,
                note_chance=0.02,
            )
            if person not in self.has_case and person not in self.promoting:
                if r() < (0.01 if rule["close_contact"] else 0.003):
                    when = max(last_exposure + timedelta(days=self.between(3, 10)), day + timedelta(days=1))
                    if when <= END:
                        self.pending_promotions[when].append((person, eid, last_exposure))
                        self.promoting.add(person)

    def add_exposure(
        self,
        t: int,
        case_id: int,
        case_ref: str,
        person: Any,
        last_exposure: date,
        setting: str,
        proximity: float,
        duration: float,
        face_to_face: bool,
        direct: bool,
        note_chance: float,
    ) -> tuple[dict[str, Any], int]:
        """Record one exposure row (with its rule values, tracing plan, maybe a note) and its
        audit event; returns (its rule values, its id)."""
        rule = self.exposure_rule_values(last_exposure, setting, proximity, duration, face_to_face, direct)
        eid = self.next_exposure
        self.next_exposure += 1
        ref = self.refs["E"].take()
        status, updated_us = self.plan_tracing(eid, ref, t)
        self.buf["exposures"].append(
            self.exposures_table.row(
                {
                    **rule,
                    "id": eid,
                    "ref": ref,
                    "case_id": case_id,
                    "person_id": person,
                    "last_exposure": last_exposure.isoformat(),
                    "setting": setting,
                    "proximity_m": proximity,
                    "duration_min": duration,
                    "face_to_face": int(face_to_face),
                    "direct_contact": int(direct),
                    "trace_status": status,
                    "notes": self.one(CONTACT_NOTES) if self.random() < note_chance else None,
                    "created_at": _iso_seconds(t),
                    "updated_at": _iso_seconds(updated_us),
                }
            )
        )
        self.event(t, "contact.add", [ref, case_ref, person])
        return rule, eid

    def plan_tracing(self, exposure_id: int, ref: str, created_us: int) -> tuple[str, int]:
        """What happens to a contact after it is recorded; returns (status now, last change)."""
        r = self.random
        status, last = "not-yet-reached", created_us
        mode = r()
        if mode < 0.57:  # completed online or by text: a status update, no call
            done = created_us + self.between(HOUR // 3, 40 * HOUR)
            if done <= END_US:
                status, last = ("reached" if r() < 0.78 else "isolating"), done
                self.event(done, "contact.update", [ref])
            return status, last
        if mode < 0.92:  # phoned until an answer
            failures = self.pick((range(4), (50, 75, 90, 100)))
            final = self.pick(
                (("reached", "isolating", "wrong-number", "unreachable", "declined"), (60, 80, 86, 94, 100))
            )
        else:  # hard to reach: only unanswered calls so far
            failures = self.pick((range(5), (20, 45, 70, 90, 100)))
            final = None
        outcomes = [("no-answer" if r() < 0.5 else "voicemail") for _ in range(failures)]
        if final:
            outcomes.append(final)
        t = created_us + self.between(HOUR // 2, 24 * HOUR)
        for outcome in outcomes:
            if t > END_US:
                break
            note = self.one(CALL_NOTES) if outcome in ("no-answer", "voicemail") else None
            self.event(t, "contact.call", [ref], outcome, (exposure_id, _iso_seconds(t), outcome, note))
            new_status = self.outcome_status[outcome]
            if new_status is not None:
                status = new_status
            last = t
            t += self.between(2 * HOUR, 26 * HOUR)
        return status, last

    # -- time order and writing --------------------------------------------------------------
    def emit_day(self, day_index: int) -> None:
        events = self.pending_events.pop(day_index, [])
        events.sort(key=lambda e: e[0])
        self.buf["calls"].extend(e[4] for e in events if e[4] is not None)
        if self.person_specs:
            self.results.append(
                ("people", self.pool.apply_async(_helper_people, (self.person_specs, self.seed, self.people_target)))
            )
            self.person_specs = []
        if self.with_audit and events:
            start = None if self.audit_started else (self.audit_seq, self.audit_prev)
            self.audit_started = True
            self.results.append(("audit", self.pool.apply_async(_helper_audit, ([e[:4] for e in events], start))))

    def flush(self, label: str) -> None:
        conn = self.conn
        b = self.buf
        head = None
        for kind, result in self.results:
            if kind == "people":
                people, fts = result.get()
                b["people"].extend(people)
                b["fts"].extend(fts)
            else:
                rows, seq, prev = result.get()
                b["audit"].extend(rows)
                head = (seq, prev)
        self.results.clear()
        from tracekit.store import search_index

        with self.store.transaction():
            conn.execute("PRAGMA defer_foreign_keys = ON")
            # People carry the exact indexed text (search_terms), as search_index.set_entry keeps it.
            conn.executemany(self.people_table.insert_sql, b["people"])
            conn.executemany(search_index.INSERT_SQL, [search_index.row(pid, terms) for pid, terms in b["fts"]])
            conn.executemany(self.cases_table.insert_sql, b["cases"])
            conn.executemany(self.exposures_table.insert_sql, b["exposures"])
            conn.executemany("INSERT INTO call_attempts(exposure_id, at, outcome, note) VALUES(?, ?, ?, ?)", b["calls"])
            conn.executemany(
                "INSERT INTO audit_log(seq, at, action, refs, reason, prev_hash, hash) VALUES(?, ?, ?, ?, ?, ?, ?)",
                b["audit"],
            )
            if head:
                conn.execute(
                    "INSERT INTO settings(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (self.audit_head_setting, f"{head[0]}:{head[1]}"),
                )
        for key, rows in b.items():
            self.counts[key] += len(rows)
            rows.clear()
        elapsed = time.perf_counter() - self.started
        total = sum(self.counts.values())
        c = self.counts
        print(
            f"  {label}: {c['people']:,} people, {c['cases']:,} cases, {c['exposures']:,} exposures, "
            f"{c['calls']:,} calls, {c['audit']:,} audit entries; {total:,} rows in {elapsed:.0f} s "
            f"({total / elapsed:,.0f} rows/s)",
            flush=True,
        )

    def run(self) -> None:
        cases_made = index_made = 0
        for day, target in daily_targets(self.total_cases):
            promotions = self.pending_promotions.pop(day, [])
            self.rng.shuffle(promotions)
            for person, exposure_id, last_exposure in promotions:
                self.promoting.discard(person)
                if person in self.has_case:
                    continue
                self.new_case(day, person, (exposure_id, last_exposure), cases_made, index_made)
                cases_made += 1
            for _ in range(max(0, target - len(promotions))):
                if self.next_person - 1 >= self.people_target:
                    break
                self.new_case(day, None, None, cases_made, index_made)
                cases_made += 1
                index_made += 1
            self.emit_day(_day_start_us(day) // DAY)
            if len(self.buf["exposures"]) >= self.flush_rows:
                self.flush(f"to {day.isoformat()}")
        # People not needed by any case or contact (few, if any): added on their own, as
        # tracers sometimes do before linking them.
        end_day = _day_start_us(END)
        for _ in range(self.people_target - (self.next_person - 1)):
            self.new_person(end_day + self.between(8 * HOUR, 20 * HOUR))
        self.emit_day(end_day // DAY)
        self.flush(f"to {END.isoformat()}")


def _poisson(random_: Any, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= random_()
        if p <= limit:
            return k
        k += 1


# ------------------------------------------------------------------------------- driver


@contextmanager
def _without_memory_security() -> Iterator[None]:
    """Open the generating connection without ``PRAGMA cipher_memory_security = ON``.

    tracekit turns SQLCipher's memory security on for every connection: each SQLite
    allocation is then wiped on free and mlock()ed, two system calls per allocation.
    That is the right trade for a tracer's session, but it makes bulk inserts about
    8 times slower (measured: 154,000 rows in 10.7 s with it, 1.3 s without), and once
    on it stays on for the whole process. Only this pragma is skipped, only while the
    generating connection is opened; everything else (key, header, schema, migrations,
    pragmas) is tracekit's own code, and the file written is the same either way.
    """
    import sqlcipher3

    from tracekit.store import core

    class _Connection(sqlcipher3.Connection):
        def execute(self, sql: str, *args: Any) -> Any:
            if "cipher_memory_security" in sql.lower():
                sql = "PRAGMA cipher_memory_security"  # reads the setting; touches no page
            return super().execute(sql, *args)

    class _Module(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            return getattr(sqlcipher3, name)

    shim = _Module("sqlcipher3_bulk")
    shim.connect = functools.partial(sqlcipher3.connect, factory=_Connection)  # type: ignore[attr-defined]
    real = core._sqlcipher
    core._sqlcipher = lambda: shim  # type: ignore[assignment]
    try:
        yield
    finally:
        core._sqlcipher = real  # type: ignore[assignment]


def generate(
    path: Path,
    people: int,
    *,
    seed: int = 2020,
    audit: bool = True,
    kdf: str = "calibrated",
    exposures: int | None = None,
) -> dict[str, Any]:
    """Create the store at ``path`` (it must not exist) and return its sidecar facts."""
    from tracekit.crypto.kdf import FLOOR_PARAMS, calibrate
    from tracekit.store import create_store

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    for leftover in (partial, Path(f"{partial}-journal")):
        if leftover.exists():
            leftover.unlink()
    # The helpers are forked before any SQLCipher connection exists. References of
    # cases and contacts come from a process of their own, so that drawing them never
    # waits behind the people and audit work.
    fork = multiprocessing.get_context("fork")
    pool, refs_pool = fork.Pool(1), fork.Pool(1)
    params = calibrate() if kdf == "calibrated" else FLOOR_PARAMS
    target = f" and about {exposures:,} exposures" if exposures is not None else ""
    print(f"Creating {path} with {people:,} people{target}; key derivation {params.describe()} ({kdf})", flush=True)
    started = time.perf_counter()
    with _without_memory_security():
        store = create_store(partial, bytearray(BENCH_PASSPHRASE.encode()), kdf=params)
    try:
        # Generation only: a big page cache so the random-order index inserts stay in
        # memory, and no fsync between the big transactions (the file is renamed into
        # place only when complete). Neither setting is stored in the file.
        store.conn.execute("PRAGMA cache_size = -3000000")
        store.conn.execute("PRAGMA synchronous = OFF")
        generator = Generator(store, people, seed, audit, pool, refs_pool, exposures=exposures)
        generator.run()
        counts = {
            table: store.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("people", "cases", "exposures", "call_attempts", "audit_log")
        }
        chained = store.conn.execute("SELECT count(*) FROM cases WHERE source_exposure_id IS NOT NULL").fetchone()[0]
        statuses = dict(
            store.conn.execute("SELECT trace_status, count(*) FROM exposures GROUP BY trace_status").fetchall()
        )
        header = store.header
        cpu = f"CPU: {time.process_time():.0f} s here, {pool.apply(_helper_cpu_seconds):.0f} s in the helper"
    finally:
        store.close()
        pool.terminate()
        refs_pool.terminate()
    os.replace(partial, path)
    seconds = time.perf_counter() - started
    facts = {
        "path": str(path),
        "people_requested": people,
        **({"exposures_requested": exposures} if exposures is not None else {}),
        "seed": seed,
        "passphrase": BENCH_PASSPHRASE,
        "kdf": header.kdf.describe(),
        "kdf_choice": kdf,
        "audit": audit,
        "counts": counts,
        "chained_cases": chained,
        "trace_status": statuses,
        "generation_seconds": round(seconds, 1),
        "size_bytes": path.stat().st_size,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **({"command": " ".join(sys.argv)} if exposures is not None else {}),
    }
    sidecar_path(path).write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    print(
        f"Done in {seconds:.0f} s: {path} is {facts['size_bytes'] / 2**20:,.0f} MiB; "
        + ", ".join(f"{n:,} {t}" for t, n in counts.items())
        + f"; {chained:,} cases came from a contact. {cpu}",
        flush=True,
    )
    return facts


def ensure_store(
    path: Path,
    people: int,
    *,
    force: bool = False,
    seed: int = 2020,
    audit: bool = True,
    kdf: str = "calibrated",
    exposures: int | None = None,
) -> dict[str, Any]:
    """The sidecar facts of the store at ``path``, generating it first if needed."""
    facts = read_sidecar(path)
    if path.exists() and not force:
        if facts is None:
            raise SystemExit(f"{path} exists but has no {sidecar_path(path).name}; use --force to regenerate it")
        if facts.get("people_requested") != people:
            raise SystemExit(
                f"{path} holds {facts.get('people_requested'):,} people, not {people:,}; use --force or another --path"
            )
        if facts.get("exposures_requested") != exposures:
            raise SystemExit(
                f"{path} was made with --exposures {facts.get('exposures_requested')}, not {exposures}; "
                "use --force or another --path"
            )
        print(
            f"Reusing {path} ({facts['counts']['people']:,} people, made in {facts['generation_seconds']} s; "
            "--force regenerates it)",
            flush=True,
        )
        return facts
    if path.exists():
        path.unlink()
        sidecar_path(path).unlink(missing_ok=True)
    return generate(path, people, seed=seed, audit=audit, kdf=kdf, exposures=exposures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=DEFAULT_PEOPLE, help="number of people (default 1,000,000)")
    parser.add_argument(
        "--exposures",
        type=int,
        metavar="N",
        help="aim at about N exposures in all, with the same people and cases: the extra ones are "
        "repeat contacts within workplace, school and social groups (default: about one per "
        "person, as before)",
    )
    parser.add_argument(
        "--path",
        type=Path,
        help="store path (default bench/out/casebook-1m.store, or casebook-N.store; "
        "with --exposures, casebook-N-E.store)",
    )
    parser.add_argument("--force", action="store_true", help="regenerate even if the store exists")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--no-audit", action="store_true", help="leave the audit log empty (faster, smaller)")
    parser.add_argument(
        "--kdf",
        choices=("calibrated", "floor"),
        default="calibrated",
        help="Argon2id parameters: this machine's calibrated defaults (default) or RFC 9106's floor",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent))
    if args.exposures is not None and args.exposures <= 0:
        parser.error("--exposures must be positive")
    path = args.path or default_path(args.people, args.exposures)
    ensure_store(
        path,
        args.people,
        force=args.force,
        seed=args.seed,
        audit=not args.no_audit,
        kdf=args.kdf,
        exposures=args.exposures,
    )


if __name__ == "__main__":
    main()
