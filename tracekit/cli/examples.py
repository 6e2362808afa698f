"""The "Examples" section of each command's help page, kept together so they read as one set.

Each example is a description and one command line, with made-up people, references and
files (phone numbers from Ofcom's range for drama). :func:`examples_epilog` breaks a long
command line with shell continuations (``\\``) so that it never wraps at 60 columns and
still runs when pasted. tests/cli/test_help.py parses every example against the real command, so an
example cannot name an option that does not exist.
"""

from __future__ import annotations

import shlex

Example = tuple[str, str]

#: Longest line of a command in the Examples section (indent included): fits a 60-column
#: terminal inside the help page's padding.
EXAMPLE_WIDTH = 56
_INDENT = "    "
_CONTINUED = "      "
_SHELL_OPERATORS = {"|", "<", ">"}

EXAMPLES: dict[str, tuple[Example, ...]] = {
    "init": (
        ("Create the store in the default place", "tracekit init"),
        ("Or in a file of your choice", "tracekit --store casebook.store init"),
    ),
    "unlock": (("Type the passphrase once for the next hour", "tracekit unlock --for 1h"),),
    "lock": (("Forget the cached key now (end of shift)", "tracekit lock"),),
    "today": (
        ("Who to call today", "tracekit today"),
        ("Plan for a given day, at most 20 calls", "tracekit today --date 2020-10-05 --limit 20"),
    ),
    "refer": (
        (
            "Seal a marked person's record to the vetted team",
            'tracekit refer P-4D8N2V --reason "vetted team asked for the record"',
        ),
    ),
    "demo": (("Take the tour on a throwaway store", "tracekit demo"),),
    "store info": (("Where the store is and what protects it", "tracekit store info"),),
    "store check": (("Check the whole store and its audit log", "tracekit store check"),),
    "store passwd": (("Change the passphrase (asks for the old and the new)", "tracekit store passwd"),),
    "store backup": (("Back up into a directory, a new file each run", "tracekit store backup /media/usb/"),),
    "case add": (
        ("Answer the questions at a terminal", "tracekit case add"),
        (
            "Or record a case from flags, with no questions asked",
            (
                'tracekit case add --name "Ada Example" --dob 1990-04-03 --phone "07700 900123" '
                "--test-date 2020-10-01 --onset 2020-09-29"
            ),
        ),
        (
            "A new positive test for someone already stored",
            "tracekit case add --person P-4D8N2V --test-date 2020-10-01 --asymptomatic",
        ),
    ),
    "case list": (
        ("Open cases tested in October", "tracekit case list --status open --since 2020-10-01 --until 2020-10-31"),
        ("The next page", "tracekit case list --limit 50 --offset 50"),
    ),
    "case show": (("A case with its dates and rule set", "tracekit case show C-7K2M9Q"),),
    "case update": (("Correct the onset date", "tracekit case update C-7K2M9Q --onset 2020-09-28"),),
    "case close": (
        ("Close a case once tracing is done", 'tracekit case close C-7K2M9Q --reason "all contacts reached"'),
    ),
    "case tree": (("Who infected whom, from this case on", "tracekit case tree C-7K2M9Q"),),
    "contact add": (
        ("Answer the questions at a terminal", "tracekit contact add C-7K2M9Q"),
        (
            "Or from flags: a colleague, 1 m apart for 20 minutes",
            (
                'tracekit contact add C-7K2M9Q --name "Bob Example" --phone "07700 900456" '
                "--last-exposure 2020-09-30 --setting workplace --proximity 1 --duration 20"
            ),
        ),
    ),
    "contact list": (
        ("A case's close contacts", "tracekit contact list --case C-7K2M9Q --close-only"),
        ("Household contacts not yet reached", "tracekit contact list --setting household --status not-yet-reached"),
    ),
    "contact show": (("A contact with the clause that makes them close", "tracekit contact show E-9H3K6T"),),
    "contact update": (
        (
            "Correct the last exposure and the setting",
            "tracekit contact update E-9H3K6T --last-exposure 2020-10-02 --setting social",
        ),
    ),
    "contact call": (
        ("Log a call that reached them", "tracekit contact call E-9H3K6T --outcome reached"),
        ("Log a missed call with a note", 'tracekit contact call E-9H3K6T --outcome no-answer --note "try after 6pm"'),
    ),
    "contact promote": (
        (
            "A contact tested positive: record them as a case",
            "tracekit contact promote E-9H3K6T --test-date 2020-10-04",
        ),
        (
            "A person, naming the exposure that infected them",
            "tracekit contact promote P-4D8N2V --source E-9H3K6T --test-date 2020-10-04",
        ),
    ),
    "person show": (("A person with their cases and contacts", "tracekit person show P-4D8N2V"),),
    "person search": (
        ("Find someone by part of a name or phone number", 'tracekit person search "ada example"'),
        ("Or by the end of a phone number", "tracekit person search 900123"),
    ),
    "person update": (("Correct a phone number", 'tracekit person update P-4D8N2V --phone "07700 900789"'),),
    "person merge": (("Merge a duplicate into the person to keep", "tracekit person merge P-4D8N2V P-6B3X9R"),),
    "rules list": (("The rule sets this version knows", "tracekit rules list"),),
    "rules show": (("The rules that apply today", "tracekit rules show"),),
    "rules pin": (("Use one rule set for everything in this store", "tracekit rules pin england-2020-07-30"),),
    "rules unpin": (("Go back to the rule set in force on each date", "tracekit rules unpin"),),
    "role mark": (
        (
            "Mark a person as in a sensitive role",
            'tracekit role mark P-4D8N2V --role victim --reason "refuge address, per police"',
        ),
    ),
    "role unmark": (("Undo a mark made in error", 'tracekit role unmark P-4D8N2V --reason "marked in error"'),),
    "role list": (("Everyone marked, by reference and role", "tracekit role list"),),
    "role release": (
        ("Release one withheld contact", 'tracekit role release E-9H3K6T --reason "met at work, not at home"'),
    ),
    "recipients add": (
        (
            "Register the vetted team's age public key",
            'tracekit recipients add "Vetted Team North" "$(cat north.pub)" --role vetted-team',
        ),
    ),
    "recipients list": (("The registered recipients", "tracekit recipients list"),),
    "recipients remove": (("Remove a recipient", 'tracekit recipients remove "Vetted Team North"'),),
    "referrals list": (("Sealed referrals waiting to be sent", "tracekit referrals list"),),
    "referrals export": (("Write them out for the vetted team", "tracekit referrals export --out /media/usb/"),),
    "referrals receive": (
        (
            "On the vetted team's store: take a referral in",
            "tracekit referrals receive R-7KQ2MX.age --identity vetted.key --signer tracer.pub",
        ),
        (
            "Or a whole vetted bundle",
            "tracekit referrals receive handover-vetted.tar.age --identity vetted.key --signer tracer.pub",
        ),
    ),
    "referrals received": (("What has been taken in, and from which tracer", "tracekit referrals received"),),
    "central migrate": (
        ("Create or update the central schema", "tracekit central migrate --database postgresql://central@db/tracing"),
    ),
    "central tracers add": (
        (
            "Register a tracer by the fingerprint they gave you",
            "tracekit central tracers add --name 'Tracer North 4' --signer north4.pub",
        ),
    ),
    "central tracers list": (("Every registered tracer", "tracekit central tracers list"),),
    "central tracers remove": (
        ("Take no more bundles from a tracer", "tracekit central tracers remove --name 'Tracer North 4'"),
    ),
    "central ingest": (
        (
            "Load every bundle in the inbox (each verified first)",
            "tracekit central ingest inbox/*.tar.age --identity central.key",
        ),
    ),
    "central summary": (("What arrived per tracer and per day, and the links", "tracekit central summary --days 7"),),
    "audit show": (
        ("Changes since a date", "tracekit audit show --since 2020-10-01"),
        ("Everything that touched one record", "tracekit audit show --ref P-4D8N2V"),
    ),
    "audit verify": (("Check that the audit log is unbroken", "tracekit audit verify"),),
    "keys show": (("This store's public signing key", "tracekit keys show"),),
    "keys pseudonym generate": (("Make the team's pseudonym key", "tracekit keys pseudonym generate --out team.key"),),
    "keys pseudonym import": (("Use the key a colleague shared", "tracekit keys pseudonym import team.key"),),
    "export handover": (
        (
            "What changed since the last handover to a team",
            'tracekit export handover --to "Central Team" --out /media/usb/',
        ),
        ("Statistics only", 'tracekit export handover --to "Central Team" --policy statistics'),
    ),
    "export list": (("Bundles sent to one recipient", 'tracekit export list --to "Central Team"'),),
    "bundle verify": (("Check a bundle you received", "tracekit bundle verify handover.tar.age --identity my.key"),),
    "bundle inspect": (
        ("What a bundle holds, without opening it", "tracekit bundle inspect handover.tar.age -i my.key"),
    ),
    "bundle open": (
        ("Open a bundle into a directory", "tracekit bundle open handover.tar.age --identity my.key --out received/"),
    ),
    "policy list": (("The built-in policies", "tracekit policy list"),),
    "policy show": (("What a policy lets through", "tracekit policy show statistics"),),
    "policy check": (("Check a custom policy before using it", "tracekit policy check north-team.toml"),),
    "import cases": (
        ("Check a lab export first, writing nothing", "tracekit import cases lab-results.csv --dry-run"),
        (
            "Import it, naming a column tracekit does not know",
            'tracekit import cases lab-results.csv --map "Mobile Tel=phone"',
        ),
        (
            "Import the valid rows and keep the others to fix",
            "tracekit import cases lab-results.csv --skip-invalid --rejects rejects.csv",
        ),
    ),
    "import contacts": (
        ("Import contacts (their cases must be stored first)", "tracekit import contacts contacts.xlsx"),
        ("From standard input", "tracekit import contacts - < contacts.csv"),
    ),
    "import template": (
        ("A CSV with the expected columns, to fill in", "tracekit import template cases --output cases.csv"),
    ),
}


def command_lines(command: str) -> list[str]:
    """``command`` as the lines the Examples section prints: an option stays with its
    value, and every line but the last ends with a shell continuation."""
    chunks: list[str] = []
    for word in shlex.split(command):
        quoted = _quoted(word)
        if chunks and chunks[-1].startswith("-") and " " not in chunks[-1] and not word.startswith("-"):
            chunks[-1] += " " + quoted
        else:
            chunks.append(quoted)
    lines = [_INDENT + chunks[0]]
    for chunk in chunks[1:]:
        if len(lines[-1]) + 1 + len(chunk) + 2 <= EXAMPLE_WIDTH:
            lines[-1] += " " + chunk
        else:
            lines[-1] += " \\"
            lines.append(_CONTINUED + chunk)
    return lines


def _quoted(word: str) -> str:
    """A word as a person would type it: bare, else in double quotes where that is safe
    (a command substitution must stay in double quotes), else in single quotes."""
    if word in _SHELL_OPERATORS or shlex.quote(word) == word:
        return word
    if (word.startswith("$(") and word.endswith(")")) or not any(c in word for c in '"$`\\!'):
        return f'"{word}"'
    return shlex.quote(word)


def examples_markdown(examples: tuple[Example, ...]) -> str:
    """The same section for docs/cli.md: a console block that a reader can copy from."""
    lines = ["**Examples**:", "", "```console"]
    for description, command in examples:
        lines.append(f"# {description}")
        lines += [("$ " if i == 0 else "    ") + line.strip() for i, line in enumerate(command_lines(command))]
    return "\n".join([*lines, "```"])


def examples_epilog(examples: tuple[Example, ...]) -> str:
    """The "Examples" section of a help page (Rich markup; one example per paragraph)."""
    parts = ["Examples:"]
    for description, command in examples:
        lines = [f"  {description}:"] if description else []
        lines += command_lines(command)
        parts.append("\n".join(lines))
    return "\n\n".join(parts).replace("[", "\\[")
