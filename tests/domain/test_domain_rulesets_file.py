"""The checks made when reading a rule-set file."""

from __future__ import annotations

from datetime import date
from importlib import resources

import pytest

from tracekit.domain.rules import all_rulesets, parse_rulesets
from tracekit.errors import ValidationError

SOURCE = """
[sources.who]
title = "Contact tracing in the context of COVID-19"
publisher = "World Health Organization"
date = 2020-05-10
"""


def ruleset(
    ruleset_id: str = "test-2020-06-01",
    valid_from: str = "2020-06-01",
    *,
    extra: str = "",
    case_days: str = "10",
    clauses: str = '[[rulesets.clauses]]\nid = "2m-15min"\ntext = "within 2 m for over 15 min"\n',
    sources: str = '["who"]',
) -> str:
    return f"""
[[rulesets]]
id = "{ruleset_id}"
title = "Test rules"
valid_from = {valid_from}
description = "Made-up rules for a test."
sources = {sources}
infectious_days_before = 2
infectious_days_after = 10
case_isolation_days = {case_days}
contact_isolation_days = 14
{extra}
{clauses}
"""


def test_a_minimal_file_is_read() -> None:
    (rs,) = parse_rulesets(SOURCE + ruleset())
    assert rs.id == "test-2020-06-01"
    assert rs.valid_from == date(2020, 6, 1)
    assert rs.case_isolation_days == 10
    assert [(c.id, c.text) for c in rs.clauses] == [("2m-15min", "within 2 m for over 15 min")]
    assert rs.sources[0].publisher == "World Health Organization"
    assert rs.sources[0].url is None


def test_rule_sets_come_back_in_date_order() -> None:
    text = SOURCE + ruleset("later", "2020-09-01") + ruleset("earlier", "2020-06-01")
    assert [rs.id for rs in parse_rulesets(text)] == ["earlier", "later"]


def test_the_shipped_file_is_the_one_loaded() -> None:
    shipped = resources.files("tracekit.domain").joinpath("rulesets.toml").read_text(encoding="utf-8")
    assert parse_rulesets(shipped) == all_rulesets()


def test_the_json_twin_is_the_toml_document() -> None:
    """rulesets.json (what is loaded) must be exactly rulesets.toml (what people edit);
    after changing the TOML: python -c "from tracekit.domain.rules import write_json; write_json()"."""
    import tomllib

    from tracekit.domain import rules

    folder = resources.files("tracekit.domain")
    toml_document = tomllib.loads(folder.joinpath("rulesets.toml").read_text(encoding="utf-8"))
    json_text = folder.joinpath("rulesets.json").read_text(encoding="utf-8")
    assert rules.document_from_json(json_text) == toml_document
    assert json_text == rules.document_to_json(toml_document)


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        ("this is not toml = = =", "rulesets", "is not valid TOML"),
        (SOURCE, "rule-set file.rulesets", "is missing"),
        ("rulesets = []\n" + SOURCE, "rulesets", "must hold at least one rule set"),
        ("surprise = 1\n" + SOURCE + ruleset(), "rule-set file", "has unknown keys: surprise"),
        (SOURCE + ruleset(extra="colour = 'red'"), "rulesets[0]", "has unknown keys: colour"),
        (
            SOURCE + ruleset(case_days='"ten"'),
            "rulesets[0].case_isolation_days",
            "must be a whole number",
        ),
        (
            SOURCE + ruleset(case_days="true"),
            "rulesets[0].case_isolation_days",
            "must be a whole number",
        ),
        (
            SOURCE + ruleset(case_days="10.0"),
            "rulesets[0].case_isolation_days",
            "must be a whole number",
        ),
        (SOURCE + ruleset(case_days="0"), "rulesets[0].case_isolation_days", "must be 1 or more"),
        (
            SOURCE + ruleset(valid_from="2020-06-01T00:00:00"),
            "rulesets[0].valid_from",
            "must be a date",
        ),
        (SOURCE + ruleset(valid_from='"2020-06-01"'), "rulesets[0].valid_from", "must be a date"),
        (SOURCE + ruleset(ruleset_id=""), "rulesets[0].id", "must be non-empty text"),
        (SOURCE + ruleset(sources='["nobody"]'), "rulesets[0].sources", "must list one or more"),
        (SOURCE + ruleset(sources="[]"), "rulesets[0].sources", "must list one or more"),
        (SOURCE + ruleset(sources="[1]"), "rulesets[0].sources", "must list one or more"),
        (
            SOURCE + ruleset(clauses="clauses = []"),
            "rulesets[0].clauses",
            "must list at least one clause",
        ),
        (
            SOURCE + ruleset(clauses='[[rulesets.clauses]]\nid = "3m-1h"\ntext = "t"'),
            "rulesets[0].clauses[0].id",
            "is not a known clause",
        ),
        (
            SOURCE
            + ruleset(
                clauses='[[rulesets.clauses]]\nid = "household"\ntext = "a"\n'
                '[[rulesets.clauses]]\nid = "household"\ntext = "b"'
            ),
            "rulesets[0].clauses[1].id",
            "repeats a clause already listed",
        ),
        (
            SOURCE + ruleset(clauses='[[rulesets.clauses]]\nid = "household"'),
            "rulesets[0].clauses[0].text",
            "is missing",
        ),
        (
            SOURCE + ruleset("same", "2020-06-01") + ruleset("same", "2020-07-01"),
            "rulesets.id",
            "must be different",
        ),
        (
            SOURCE + ruleset("a", "2020-06-01") + ruleset("b", "2020-06-01"),
            "rulesets.valid_from",
            "must be different",
        ),
        (SOURCE.replace("title", "name") + ruleset(), "sources.who", "has unknown keys: name"),
        (
            SOURCE + 'url = "http://example.com/"\n' + ruleset(),
            "sources.who.url",
            "must start with https://",
        ),
        ('sources = "none"\n' + ruleset(), "sources", "must be a table"),
    ],
)
def test_faults_are_reported_with_where_they_are(text: str, field: str, problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_rulesets(text)
    assert caught.value.field == field
    assert caught.value.problem.startswith(problem)
