"""Collecting what a library call needs from flags and, at a terminal, from prompts.

A :class:`Form` holds the values of one library call keyed by the library's own field
names. At a terminal (``context.interactive()``) it asks for what is missing, checks each
answer with the library's validator for that field and asks again, showing the specific
problem, until the answer is valid. The library call itself runs through
:meth:`Form.run`: a :class:`ValidationError` about a field the form can ask for (a date in
the future, onset too long after the test...) is shown and asked again, and a
:class:`DuplicatePerson` lets the tracer pick the stored person or add a new one.
Without a terminal nothing is asked: the error goes to the error boundary with a hint
naming the option to use.

Prompts and their problems go to stderr, so ``--json`` output on stdout stays one JSON
document. Imported only inside commands.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

import typer

from tracekit.cli import context
from tracekit.cli.options import CALL_OUTCOMES, SETTINGS
from tracekit.cli.safe_text import safe_markup
from tracekit.errors import Interrupted, StoreBusy, ValidationError

T = TypeVar("T")

#: The option that sets each library field, for hints when there is no terminal.
OPTION_FOR_FIELD = {
    "person": "--person P-... or --name",
    "name": "--name",
    "date_of_birth": "--dob",
    "nhs_number": "--nhs-number",
    "phone": "--phone",
    "email": "--email",
    "address": "--address",
    "postcode": "--postcode",
    "occupation": "--occupation",
    "test_date": "--test-date",
    "test_type": "--test-type",
    "test_result": "--result",
    "symptom_onset": "--onset DATE or --asymptomatic",
    "notes": "--notes",
    "last_exposure": "--last-exposure",
    "setting": "--setting",
    "proximity_m": "--proximity",
    "duration_min": "--duration",
    "trace_status": "--status",
    "status": "--status",
    "outcome": "--outcome",
    "date": "--date",
    "since": "--since",
    "until": "--until",
}

#: The flag that gives each value on the command line, to print a command equivalent to
#: what was typed (see :meth:`Form.keep_answers`); a flag without a value is a switch.
FLAG_FOR_FIELD = {
    "person_ref": "--person",
    "link": "--link",
    "new_person": "--new-person",
    "name": "--name",
    "date_of_birth": "--dob",
    "nhs_number": "--nhs-number",
    "phone": "--phone",
    "email": "--email",
    "address": "--address",
    "postcode": "--postcode",
    "occupation": "--occupation",
    "test_date": "--test-date",
    "test_type": "--test-type",
    "test_result": "--result",
    "symptom_onset": "--onset",
    "asymptomatic": "--asymptomatic",
    "last_exposure": "--last-exposure",
    "setting": "--setting",
    "proximity_m": "--proximity",
    "duration_min": "--duration",
    "face_to_face": "--face-to-face",
    "direct_contact": "--direct-contact",
    "notes": "--notes",
}

PERSON_FIELDS = ("name", "date_of_birth", "nhs_number", "phone", "email", "address", "postcode", "occupation")
#: Asked (blank to skip) when a person is entered at a terminal with no details on the command line.
PERSON_PROMPTS = ("date_of_birth", "nhs_number", "phone", "postcode")
#: Fields a record cannot do without (every other one can be left blank).
REQUIRED_FIELDS = ("name", "test_date", "last_exposure", "setting")
NO_SYMPTOMS = ("none", "no", "asymptomatic", "n/a")


@dataclass(frozen=True)
class FieldSpec:
    label: str
    table: str  # which library validators check it: person, case, exposure, outcome


FIELDS: dict[str, FieldSpec] = {
    "name": FieldSpec("Full name", "person"),
    "date_of_birth": FieldSpec("Date of birth", "person"),
    "nhs_number": FieldSpec("NHS number", "person"),
    "phone": FieldSpec("Phone", "person"),
    "email": FieldSpec("Email", "person"),
    "address": FieldSpec("Address", "person"),
    "postcode": FieldSpec("Postcode", "person"),
    "occupation": FieldSpec("Occupation", "person"),
    "test_date": FieldSpec("Test date", "case"),
    "test_type": FieldSpec("Test type (pcr, lfd, lamp, other)", "case"),
    "test_result": FieldSpec("Test result (positive, negative, void)", "case"),
    "symptom_onset": FieldSpec("Date symptoms started ('none' if no symptoms)", "case"),
    "last_exposure": FieldSpec("Date of last contact with the case", "exposure"),
    "setting": FieldSpec(f"Setting ({', '.join(SETTINGS)})", "exposure"),
    "proximity_m": FieldSpec("Closest distance in metres", "exposure"),
    "duration_min": FieldSpec("Time within that distance, added up over the day (e.g. 20, 20 mins, 1h30m)", "exposure"),
    "outcome": FieldSpec(f"Outcome ({', '.join(CALL_OUTCOMES)})", "outcome"),
}


# -- hints and problems ---------------------------------------------------------------------
def with_option_hint(problem: ValidationError) -> ValidationError:
    """The same problem with a hint naming the option that sets the field."""
    option = OPTION_FOR_FIELD.get(problem.field)
    if problem.hint or option is None or option.split()[0] in problem.message:
        return problem
    return ValidationError(
        problem.field,
        problem.problem,
        expected=problem.expected,
        row=problem.row,
        column=problem.column,
        hint=f"set it with {option}",
    )


@contextmanager
def option_hints() -> Iterator[None]:
    """Give validation errors raised inside a hint naming the option to use."""
    try:
        yield
    except ValidationError as problem:
        hinted = with_option_hint(problem)
        if hinted is problem:
            raise
        raise hinted from None


def show_matches(matches: list[Any]) -> None:
    """Without a terminal: list the people a new person's details matched (a note)."""
    from tracekit.cli import render

    context.note("This person may already be in the store:")
    for match in matches:
        context.note(f"  {render.duplicate_line(match)}")


def show_problem(problem: ValidationError | str) -> None:
    text = problem.message if isinstance(problem, ValidationError) else problem
    context.err().print(f"[red]✗[/red] {safe_markup(text)}", highlight=False)


# -- prompting ----------------------------------------------------------------------------
def prompt(label: str) -> str:
    """One line from the tracer (on stderr); end of input or Ctrl-C is Interrupted."""
    try:
        return str(typer.prompt(label, default="", show_default=False, err=True))
    except typer.Abort:
        raise Interrupted("no answer was given; nothing was recorded") from None


def confirm(label: str, *, default: bool = False) -> bool:
    try:
        return bool(typer.confirm(label, default=default, err=True))
    except typer.Abort:
        raise Interrupted("no answer was given; nothing was recorded") from None


def confirm_or_decline(label: str) -> bool:
    """Ask ``label`` (default no); a "no" prints "Nothing changed." and is not an error:
    the command then returns normally (exit 0). End of input or Ctrl-C is Interrupted."""
    if confirm(label):
        return True
    context.err().print("Nothing changed.", highlight=False)
    return False


def validators_of(table: str) -> dict[str, Callable[..., Any]]:
    """The library's validators for one kind of record: person, case or exposure."""
    from tracekit.records.inputs import CASE_VALIDATORS, EXPOSURE_VALIDATORS, PERSON_VALIDATORS

    return {"person": PERSON_VALIDATORS, "case": CASE_VALIDATORS, "exposure": EXPOSURE_VALIDATORS}[table]


def check_field(field: str, text: str, today: date) -> Any:
    """Validate one answer with the library's validator for ``field``; raise its error."""
    from tracekit.records.inputs import validated

    spec = FIELDS[field]
    if spec.table == "outcome":
        value = text.strip().lower().replace(" ", "-").replace("_", "-")
        if value not in CALL_OUTCOMES:
            raise ValidationError(
                "outcome", "is not a known call outcome", expected="one of " + ", ".join(CALL_OUTCOMES)
            )
        return value
    return validated({field: text}, validators_of(spec.table), today)[field]


def problems_in(values: dict[str, Any], today: date, tables: Iterable[str]) -> list[ValidationError]:
    """Every problem of the given values that the library validates, checked field by field
    (values it does not validate, and those not given, are left alone)."""
    from tracekit.records.inputs import validate_fields

    problems: list[ValidationError] = []
    seen: set[str] = set()
    for table in tables:
        validators = validators_of(table)
        raw = {f: v for f, v in values.items() if f in validators and f not in seen}
        seen.update(raw)
        problems += validate_fields(raw, validators, today)[1]
    return problems


def raise_all(problems: list[ValidationError]) -> None:
    """Raise every problem at once, each with a hint naming its option (nothing if none)."""
    from tracekit.errors import ValidationProblems

    hinted = [with_option_hint(problem) for problem in problems]
    if len(hinted) == 1:
        raise hinted[0]
    if hinted:
        raise ValidationProblems(hinted)


def check_given(values: dict[str, Any], today: date, *tables: str) -> None:
    """Check every value given on the command line before anything is changed, and report
    all problems together rather than the first."""
    raise_all(problems_in(values, today, tables))


class Form:
    """The values of one library call, keyed by the library's field names."""

    def __init__(
        self, values: dict[str, Any], *, today: date, askable: Iterable[str], command: Iterable[str] = ()
    ) -> None:
        self.values = dict(values)
        self.today = today
        self.askable = set(askable)
        #: The command and its arguments before the flags, e.g. ("contact", "add", "C-..."):
        #: with it, a write that fails on a busy store prints the command to run again.
        self.command = tuple(command)

    # -- reading --------------------------------------------------------------------------
    def missing(self, field: str) -> bool:
        return self.values.get(field) in (None, "")

    def given(self, *fields: str) -> bool:
        """Whether any of ``fields`` was given (a flag counts when true)."""
        return any(self.values.get(f) not in (None, "", False) for f in fields)

    def pick(self, *fields: str) -> dict[str, Any]:
        return {f: self.values.get(f) for f in fields}

    # -- people ---------------------------------------------------------------------------
    def check_person_options(self) -> None:
        """Refuse combinations that would silently ignore something the tracer typed."""
        if self.values.get("person_ref") and (self.given(*PERSON_FIELDS) or self.values.get("link")):
            raise ValidationError(
                "person",
                "was given both as --person and as details or --link",
                expected="either --person P-... or the person's details",
            )
        if self.values.get("new_person") and (self.values.get("link") or self.values.get("person_ref")):
            raise ValidationError("new_person", "cannot be combined with --link or --person", expected="one of them")

    def names_existing_person(self) -> bool:
        return bool(self.values.get("person_ref") or self.values.get("link"))

    def person_input(self) -> Any:
        from tracekit.records import PersonInput

        return PersonInput(**{f: self.values.get(f) for f in PERSON_FIELDS})

    def person_kwargs(self) -> dict[str, Any]:
        person = self.person_input()
        return {
            "person": None if person.is_empty() else person,
            "person_ref": self.values.get("person_ref"),
            "link": self.values.get("link"),
            "new_person": bool(self.values.get("new_person")),
        }

    def ask_person(self, casebook: Any) -> None:
        """At a terminal: the name if missing (and the usual details if none were given),
        then any people already stored who match, so the tracer can link to one now."""
        if not context.interactive() or self.names_existing_person():
            return
        bare = not self.given(*PERSON_FIELDS)
        if self.missing("name"):
            self.ask("name")
        if bare:
            for field in PERSON_PROMPTS:
                self.ask(field, optional=True)
        if not self.values.get("new_person"):
            matches = self.run(lambda: casebook.find_duplicates(self.person_input()))
            if matches:
                self.choose_duplicate(matches)

    def choose_duplicate(self, matches: list[Any]) -> None:
        """Offer the matching people for linking, or a new person. A match the tracer may
        not see is shown as such, with no reference, and cannot be linked from here."""
        from tracekit.cli import render
        from tracekit.domain.refs import RefKind, parse_ref

        linkable = [m for m in matches if m.person is not None]
        context.err().print("[yellow]This person may already be in the store:[/yellow]")
        for number, match in enumerate(linkable, 1):
            context.err().print(f"  {number}. {render.duplicate_line(match)}", highlight=False)
        for match in matches:
            if match.person is None:
                context.err().print(
                    f"  -  {render.duplicate_line(match)} (it cannot be linked from here)", highlight=False
                )
        refs = [m.person.ref for m in linkable]
        choices = "1" if len(linkable) == 1 else f"1-{len(linkable)}"
        if linkable:
            question = f"Link to which one ({choices}, or its reference), or 'new' to add a new person"
            expected = f"answer with {choices}, one of {', '.join(refs)}, or 'new'"
        else:
            question = "Add a new person anyway ('new'), or 'cancel'"
            expected = "answer 'new' or 'cancel'"
        while True:
            answer = prompt(question).strip()
            if answer.lower() in ("n", "new"):
                self.values["new_person"] = True
                return
            if answer.lower() == "cancel":
                raise Interrupted("cancelled; nothing was recorded")
            chosen: str | None = None
            if answer.isdigit() and 1 <= int(answer) <= len(linkable):
                chosen = refs[int(answer) - 1]
            elif answer:
                try:
                    ref = parse_ref(answer, RefKind.PERSON)
                except ValidationError:
                    ref = None
                chosen = ref if ref in refs else None
            if chosen is not None:
                self.values["link"] = chosen
                if self.given(*PERSON_FIELDS):
                    context.note(
                        f"Using {chosen}; the details typed now were not saved "
                        f"(change them with 'tracekit person update {chosen}')."
                    )
                return
            show_problem(expected)

    # -- checking what was given -----------------------------------------------------------
    def check_given(self, *tables: str) -> None:
        """Check every value given on the command line at once. At a terminal, show every
        problem and ask again for each of those fields; otherwise report them all."""
        problems = problems_in(self.values, self.today, tables)
        if not problems:
            return
        if not context.interactive() or any(p.field not in self.askable or p.field not in FIELDS for p in problems):
            raise_all(problems)
        for problem in problems:
            show_problem(problem)
        for problem in problems:
            self.values[problem.field] = None
            self.ask(problem.field, optional=problem.field not in REQUIRED_FIELDS)

    # -- asking ---------------------------------------------------------------------------
    def ask(self, field: str, *, optional: bool = False) -> None:
        """Ask for one field until the answer passes the library's validation."""
        spec = FIELDS[field]
        label = spec.label + (" (blank to skip)" if optional else "")
        while True:
            text = prompt(label).strip()
            if not text:
                if optional:
                    self.values[field] = None
                    return
                show_problem(f"{field}: is required")
                continue
            if field == "symptom_onset" and text.lower() in NO_SYMPTOMS:
                self.values["symptom_onset"] = None
                self.values["asymptomatic"] = True
                return
            try:
                value = check_field(field, text, self.today)
            except ValidationError as problem:
                show_problem(problem)
                continue
            self.values[field] = value  # the validated form, which the library accepts as given
            if field == "symptom_onset":
                self.values["asymptomatic"] = False
            return

    def ask_missing(self, *fields: str) -> None:
        if context.interactive():
            for field in fields:
                if self.missing(field):
                    self.ask(field)

    def ask_flag(self, field: str, label: str) -> None:
        if context.interactive():
            self.values[field] = confirm(label, default=bool(self.values.get(field)))

    # -- keeping what was typed ------------------------------------------------------------
    def equivalent_command(self) -> str:
        """The command, with flags, that records what the form holds now."""
        import shlex

        words = ["tracekit", *self.command]
        for field, flag in FLAG_FOR_FIELD.items():
            value = self.values.get(field)
            if value is None or value is False or value == "":
                continue
            if value is True:
                words.append(flag)
                continue
            if isinstance(value, date):
                text = value.isoformat()
            elif isinstance(value, float):
                text = f"{value:g}"
            else:
                text = str(value)
            words += [flag, text]
        return " ".join(shlex.quote(word) for word in words)

    def keep_answers(self) -> None:
        """At a terminal, after a failed or abandoned write: print the command that records
        the same values, so nothing typed is lost. Only to a terminal, never to a file or
        a log (stderr redirected), as the values are a person's details."""
        if not self.command or not context.interactive() or not context.stderr_is_terminal():
            return
        from tracekit.cli.safe_text import visible

        console = context.err()
        console.print(
            "Nothing was recorded. Your answers are kept in this command; run it when the store is free:",
            markup=False,
            highlight=False,
        )
        console.print(f"  {visible(self.equivalent_command())}", markup=False, highlight=False, soft_wrap=True)

    # -- running the library call ---------------------------------------------------------
    def run(self, call: Callable[[], T]) -> T:
        """Run ``call``; at a terminal, fix what it reports by asking, and run it again."""
        from tracekit.records import DuplicatePerson

        while True:
            try:
                try:
                    return call()
                except (StoreBusy, Interrupted):
                    self.keep_answers()
                    raise
            except DuplicatePerson as duplicate:
                if not context.interactive() or self.names_existing_person():
                    show_matches(duplicate.matches)
                    raise
                self.choose_duplicate(duplicate.matches)
            except ValidationError as problem:
                field = "name" if problem.field == "person" else problem.field
                if not context.interactive() or field not in self.askable or field not in FIELDS:
                    raise with_option_hint(problem) from None
                show_problem(problem)
                self.ask(field)
