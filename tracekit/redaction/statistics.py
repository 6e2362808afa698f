"""Aggregate counts released in bands of five: pure functions over counts.

Every count is released as the band of five it falls in: ``0-5``, ``6-10``, ``11-15``
and so on; a table's total is the sum of its rows' bands. Zero shares the lowest band
with 1 to 5, so an empty row looks like a small one and rows never need to disappear:
each table lists a fixed set of values (see docs/policies.md).

Why bands and not "<5" plus exact counts: a reader who holds two releases and knows how
many records each row gained or lost can pin any count that sits on a boundary between
two released forms (a "<5" that becomes 5 was 4). With these bands the only boundaries
are between 5k and 5k + 1 (k >= 1), so what a pair of releases can pin is a count of 0
or of 5 and over, never one of 1 to 4. docs/threat-model.md has the reasoning and the
residual risk.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from tracekit.redaction.policy import SUPPRESSION_THRESHOLD

BAND = SUPPRESSION_THRESHOLD
OTHER = "other"
UNKNOWN = "unknown"

#: UK postcode areas (the letters that start a postcode) plus the Crown dependencies.
#: Fixed, so a row never appears or disappears with the people in it.
POSTCODE_AREAS = [
    "AB",
    "AL",
    "B",
    "BA",
    "BB",
    "BD",
    "BH",
    "BL",
    "BN",
    "BR",
    "BS",
    "BT",
    "CA",
    "CB",
    "CF",
    "CH",
    "CM",
    "CO",
    "CR",
    "CT",
    "CV",
    "CW",
    "DA",
    "DD",
    "DE",
    "DG",
    "DH",
    "DL",
    "DN",
    "DT",
    "DY",
    "E",
    "EC",
    "EH",
    "EN",
    "EX",
    "FK",
    "FY",
    "G",
    "GL",
    "GU",
    "GY",
    "HA",
    "HD",
    "HG",
    "HP",
    "HR",
    "HS",
    "HU",
    "HX",
    "IG",
    "IM",
    "IP",
    "IV",
    "JE",
    "KA",
    "KT",
    "KW",
    "KY",
    "L",
    "LA",
    "LD",
    "LE",
    "LL",
    "LN",
    "LS",
    "LU",
    "M",
    "ME",
    "MK",
    "ML",
    "N",
    "NE",
    "NG",
    "NN",
    "NP",
    "NR",
    "NW",
    "OL",
    "OX",
    "PA",
    "PE",
    "PH",
    "PL",
    "PO",
    "PR",
    "RG",
    "RH",
    "RM",
    "S",
    "SA",
    "SE",
    "SG",
    "SK",
    "SL",
    "SM",
    "SN",
    "SO",
    "SP",
    "SR",
    "SS",
    "ST",
    "SW",
    "SY",
    "TA",
    "TD",
    "TF",
    "TN",
    "TQ",
    "TR",
    "TS",
    "TW",
    "UB",
    "W",
    "WA",
    "WC",
    "WD",
    "WF",
    "WN",
    "WR",
    "WS",
    "WV",
    "YO",
    "ZE",
]
AREA_VALUES = (*POSTCODE_AREAS, OTHER, UNKNOWN)
_AREA = re.compile(r"[A-Z]{1,2}(?=[0-9])")


def postcode_area(postcode: str | None) -> str:
    """``"SW1A 2AB"`` -> ``"SW"``; ``"unknown"`` without a postcode, ``"other"`` outside the list."""
    if not postcode:
        return UNKNOWN
    match = _AREA.match(postcode.strip().upper())
    return match.group(0) if match and match.group(0) in POSTCODE_AREAS else OTHER


def band(count: int) -> tuple[int, int]:
    """The band of five ``count`` is released as: (0, 5), (6, 10), (11, 15), ..."""
    if count < 0:
        raise ValueError(f"a count cannot be negative: {count}")
    if count <= BAND:
        return 0, BAND
    high = -(-count // BAND) * BAND
    return high - BAND + 1, high


def _range(low: int, high: int) -> dict[str, Any]:
    return {"count": f"{low}-{high}", "low": low, "high": high}


def released(count: int) -> dict[str, Any]:
    """``{"count": "6-10", "low": 6, "high": 10}``: the text form and its bounds."""
    return _range(*band(count))


def release_table(counts: Mapping[str, int], values: Iterable[str]) -> dict[str, Any]:
    """``{"rows": [{"value", "count", "low", "high"}], "total": {"count", "low", "high"}}``.

    One row for every value in ``values``, in that order, whether or not anything was
    counted under it; a counted value that is not among them is counted under
    ``"other"``, which must then be one of the values. The total is the sum of the rows'
    bands, so it tells a reader nothing the rows do not: a total banded on its own would
    be one more equation, and with it a reader who knows that two records joined a row
    that went from "0-5" to "6-10" could tell the row had held exactly 4.
    """
    values = list(dict.fromkeys(values))
    folded = dict.fromkeys(values, 0)
    for value, count in counts.items():
        key = value if value in folded else OTHER
        if key not in folded:
            raise ValueError(f"{value!r} is not one of the table's values and the table has no {OTHER!r} row")
        folded[key] += count
    rows = [{"value": value, **released(count)} for value, count in folded.items()]
    return {"rows": rows, "total": _range(sum(r["low"] for r in rows), sum(r["high"] for r in rows))}
