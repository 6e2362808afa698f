"""Option types shared by the case-book commands, defined once (as in sqlite-utils).

Only Typer is imported here: command modules import these at start-up, and
``tracekit --version`` must stay cheap. Choice-like values (test type, setting, trace
status, call outcome) are plain text validated by the library, which names the allowed
values in its error; the help texts below list them too, and a test keeps the two lists
in step with the library's enums. Each option names its value with a metavar (``REF``,
``DATE``...; see ``tracekit.cli.help``); settings, outcomes, roles and references complete
in the shell (``tracekit.cli.completion``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from tracekit.cli.completion import complete_from, complete_ref

PERSON_PANEL = "Person"
CASE_PANEL = "Case"
CONTACT_PANEL = "Contact"
LIST_PANEL = "Listing"

#: The allowed values of choice-like options, as the library spells them.
TEST_TYPES = ("pcr", "lfd", "lamp", "other")
TEST_RESULTS = ("positive", "negative", "void")
CASE_STATUSES = ("open", "closed", "referred")
SETTINGS = ("household", "workplace", "education", "healthcare", "social", "travel", "other")
TRACE_STATUSES = ("not-yet-reached", "reached", "isolating", "declined", "unreachable")
CALL_OUTCOMES = ("reached", "isolating", "no-answer", "voicemail", "wrong-number", "declined", "unreachable")

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


def _opt(*names: str, help: str, panel: str | None = None, **kw: object) -> object:
    return typer.Option(*names, help=help, rich_help_panel=panel, show_default=False, **kw)  # type: ignore[arg-type]


# -- references --------------------------------------------------------------------------
def _ref_arg(help: str, *kinds: str, metavar: str = "REF") -> object:
    return typer.Argument(help=help, metavar=metavar, autocompletion=complete_ref(*kinds), show_default=False)


CaseRefArg = Annotated[str, _ref_arg("The case reference, e.g. C-7K2M9Q.", "CASE")]
ContactRefArg = Annotated[str, _ref_arg("The contact reference, e.g. E-7K2M9Q.", "EXPOSURE")]
PersonRefArg = Annotated[str, _ref_arg("The person reference, e.g. P-7K2M9Q.", "PERSON")]
ContactCaseArg = Annotated[str, _ref_arg("The case whose contact this is, e.g. C-7K2M9Q.", "CASE", metavar="CASE_REF")]

# -- a person: an existing one, or details ----------------------------------------------
PersonOption = Annotated[
    str | None,
    _opt(
        "--person",
        help="An existing person (P-...) instead of details.",
        panel=PERSON_PANEL,
        metavar="REF",
        autocompletion=complete_ref("PERSON"),
    ),
]
NameOption = Annotated[str | None, _opt("--name", help="Full name.", panel=PERSON_PANEL)]
DobOption = Annotated[
    str | None,
    _opt("--dob", help="Date of birth (2020-04-03 or 3/4/2020, day first).", panel=PERSON_PANEL, metavar="DATE"),
]
NhsOption = Annotated[
    str | None,
    _opt("--nhs-number", help="NHS number (10 digits, spaces allowed).", panel=PERSON_PANEL, metavar="NUMBER"),
]
PhoneOption = Annotated[
    str | None, _opt("--phone", help="Phone number, e.g. 07700 900123.", panel=PERSON_PANEL, metavar="PHONE")
]
EmailOption = Annotated[str | None, _opt("--email", help="Email address.", panel=PERSON_PANEL, metavar="EMAIL")]
AddressOption = Annotated[
    str | None, _opt("--address", help="Postal address (without the postcode).", panel=PERSON_PANEL)
]
PostcodeOption = Annotated[
    str | None, _opt("--postcode", help="UK postcode, e.g. SW1A 1AA.", panel=PERSON_PANEL, metavar="POSTCODE")
]
OccupationOption = Annotated[str | None, _opt("--occupation", help="Occupation.", panel=PERSON_PANEL)]
LinkOption = Annotated[
    str | None,
    _opt(
        "--link",
        help="When the details match someone already stored: use that person (P-...).",
        panel=PERSON_PANEL,
        metavar="REF",
        autocompletion=complete_ref("PERSON"),
    ),
]
NewPersonOption = Annotated[
    bool,
    typer.Option(
        "--new-person",
        help="When the details match someone already stored: add a new person anyway.",
        rich_help_panel=PERSON_PANEL,
    ),
]

# -- a case ------------------------------------------------------------------------------
TestDateOption = Annotated[
    str | None, _opt("--test-date", help="Date of the test (ISO, or day first).", panel=CASE_PANEL, metavar="DATE")
]
TestTypeOption = Annotated[
    str | None,
    _opt(
        "--test-type",
        help=f"Test type: {', '.join(TEST_TYPES)} (pcr when adding).",
        panel=CASE_PANEL,
        metavar="TYPE",
        autocompletion=complete_from(TEST_TYPES),
    ),
]
ResultOption = Annotated[
    str | None,
    _opt(
        "--result",
        help=f"Test result: {', '.join(TEST_RESULTS)} (positive when adding).",
        panel=CASE_PANEL,
        metavar="RESULT",
        autocompletion=complete_from(TEST_RESULTS),
    ),
]
OnsetOption = Annotated[str | None, _opt("--onset", help="Date symptoms started.", panel=CASE_PANEL, metavar="DATE")]
AsymptomaticOption = Annotated[
    bool,
    typer.Option("--asymptomatic", help="No symptoms: periods count from the test date.", rich_help_panel=CASE_PANEL),
]
CaseNotesOption = Annotated[str | None, _opt("--notes", help="Free-text notes.", panel=CASE_PANEL)]

# -- a contact (exposure) ------------------------------------------------------------------
LastExposureOption = Annotated[
    str | None,
    _opt("--last-exposure", help="Date of the last contact with the case.", panel=CONTACT_PANEL, metavar="DATE"),
]
SettingOption = Annotated[
    str | None,
    _opt(
        "--setting",
        help=f"Where it happened: {', '.join(SETTINGS)}.",
        panel=CONTACT_PANEL,
        metavar="SETTING",
        autocompletion=complete_from(SETTINGS),
    ),
]
ProximityOption = Annotated[
    str | None, _opt("--proximity", help="Closest distance in metres, e.g. 1.5.", panel=CONTACT_PANEL, metavar="METRES")
]
DurationOption = Annotated[
    str | None,
    _opt(
        "--duration",
        help="Time spent within that distance, added up over the day: minutes (20) or with units (20 mins, 1 hour, 1h30m).",
        panel=CONTACT_PANEL,
        metavar="DURATION",
    ),
]
ContactNotesOption = Annotated[str | None, _opt("--notes", help="Free-text notes.", panel=CONTACT_PANEL)]

# -- lists -----------------------------------------------------------------------------------
LimitOption = Annotated[
    int,
    typer.Option("--limit", min=1, max=MAX_LIMIT, help="Show at most this many.", rich_help_panel=LIST_PANEL),
]
OffsetOption = Annotated[
    int, typer.Option("--offset", min=0, help="Skip this many first (for the next page).", rich_help_panel=LIST_PANEL)
]
AllOption = Annotated[
    bool,
    typer.Option(
        "--all",
        help="Every match from --offset on, one JSON object a line (needs --json; for scripts).",
        rich_help_panel=LIST_PANEL,
    ),
]
SinceOption = Annotated[
    str | None, _opt("--since", help="From this date on (inclusive).", panel=LIST_PANEL, metavar="DATE")
]
UntilOption = Annotated[
    str | None, _opt("--until", help="Up to this date (inclusive).", panel=LIST_PANEL, metavar="DATE")
]

RevealOption = Annotated[
    bool,
    typer.Option("--reveal", help="Show the identity of a person in a sensitive role (needs --reason; audited)."),
]
RevealReasonOption = Annotated[
    str | None,
    typer.Option("--reason", help="Why you need to see it (stored in the audit log; no names or numbers)."),
]
