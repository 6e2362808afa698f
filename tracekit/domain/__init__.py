"""The tracing domain: identifiers, record references and public-health rules.

Pure code with no I/O and no database: everything here can be used and tested on its
own, and every failure a user can cause is a :class:`tracekit.errors.ValidationError`
(or :class:`tracekit.errors.NotFound` for an unknown rule set).
"""

from tracekit.domain.identifiers import (
    DRAMA_PHONE_RANGES,
    NAME_MAX_LENGTH,
    format_nhs_number,
    format_phone,
    is_valid_nhs_number,
    name_key,
    normalise_name,
    normalise_nhs_number,
    normalise_phone,
    normalise_postcode,
    parse_date,
    validate_email,
)
from tracekit.domain.refs import REF_ALPHABET, REF_CODE_LENGTH, RefKind, new_ref, parse_ref
from tracekit.domain.rules import (
    CLAUSE_PRIORITY,
    SETTINGS,
    Clause,
    Closeness,
    RuleSet,
    Source,
    all_rulesets,
    case_isolation_end,
    classify_exposure,
    contact_isolation_end,
    get_ruleset,
    infectious_period,
    parse_rulesets,
    ruleset_for,
)

__all__ = [
    "CLAUSE_PRIORITY",
    "DRAMA_PHONE_RANGES",
    "NAME_MAX_LENGTH",
    "REF_ALPHABET",
    "REF_CODE_LENGTH",
    "SETTINGS",
    "Clause",
    "Closeness",
    "RefKind",
    "RuleSet",
    "Source",
    "all_rulesets",
    "case_isolation_end",
    "classify_exposure",
    "contact_isolation_end",
    "format_nhs_number",
    "format_phone",
    "get_ruleset",
    "infectious_period",
    "is_valid_nhs_number",
    "name_key",
    "new_ref",
    "normalise_name",
    "normalise_nhs_number",
    "normalise_phone",
    "normalise_postcode",
    "parse_date",
    "parse_ref",
    "parse_rulesets",
    "ruleset_for",
    "validate_email",
]
