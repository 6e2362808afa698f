"""What arrived: per tracer, per day, and the people several tracers have records of.

Arrivals are counted from ``bundles`` (one row per bundle, with its record counts), so
the summary reads no record row however many millions there are. Links come from
``pseudonym_tracers`` (one row per pseudonym and tracer): a pseudonym with rows for two
or more tracers is one person whom those tracers each have records of.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Summary:
    tracers: list[dict[str, Any]]
    days: list[dict[str, Any]]
    linked_people: int
    links: list[dict[str, Any]]
    records_with_pseudonym: int
    records_without_pseudonym: int

    def to_json(self) -> dict[str, Any]:
        return {
            "tracers": {"items": self.tracers, "total": len(self.tracers)},
            "days": {"items": self.days, "total": len(self.days)},
            "links": {
                "linked_people": self.linked_people,
                "items": self.links,
                "shown": len(self.links),
                "records_with_pseudonym": self.records_with_pseudonym,
                "records_without_pseudonym": self.records_without_pseudonym,
            },
        }


def summarise(conn: Any, *, days: int = 14, links: int = 20) -> Summary:
    tracers = [
        {
            "name": name,
            "fingerprint": fingerprint,
            "active": removed is None,
            "bundles": bundles,
            "cases": cases,
            "contacts": contacts,
            "withheld": withheld,
            "last_bundle_at": last.isoformat() if last else None,
        }
        for name, fingerprint, removed, bundles, cases, contacts, withheld, last in conn.execute(
            "SELECT t.name, t.fingerprint, t.removed_at, count(b.id), coalesce(sum(b.cases), 0), "
            "coalesce(sum(b.contacts), 0), coalesce(sum(b.withheld), 0), max(b.created_at) "
            "FROM tracers t LEFT JOIN bundles b ON b.tracer_id = t.id "
            "GROUP BY t.id ORDER BY t.name, t.id"
        )
    ]
    by_day = [
        {
            "day": day.isoformat(),
            "tracer": name,
            "bundles": bundles,
            "cases": cases,
            "contacts": contacts,
            "withheld": withheld,
        }
        for day, name, bundles, cases, contacts, withheld in conn.execute(
            "SELECT b.created_at::date AS day, t.name, count(*), sum(b.cases), sum(b.contacts), sum(b.withheld) "
            "FROM bundles b JOIN tracers t ON t.id = b.tracer_id "
            "WHERE b.created_at >= (SELECT max(created_at)::date FROM bundles) - %s::integer "
            "GROUP BY day, t.id, t.name ORDER BY day DESC, t.name",
            (max(days, 1) - 1,),
        )
    ]
    linked = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM pseudonym_tracers GROUP BY pseudonym HAVING count(*) > 1) AS linked"
    ).fetchone()[0]
    shown = [
        {"pseudonym": "PS-" + bytes(pseudonym).hex(), "tracers": list(names), "records": records}
        for pseudonym, names, records in conn.execute(
            "SELECT pt.pseudonym, array_agg(t.name ORDER BY t.name), sum(pt.records) "
            "FROM pseudonym_tracers pt JOIN tracers t ON t.id = pt.tracer_id "
            "GROUP BY pt.pseudonym HAVING count(*) > 1 "
            "ORDER BY count(*) DESC, sum(pt.records) DESC, pt.pseudonym LIMIT %s",
            (max(links, 0),),
        )
    ]
    with_pseudonym = conn.execute("SELECT coalesce(sum(records), 0) FROM pseudonym_tracers").fetchone()[0]
    total = sum(t["cases"] + t["contacts"] for t in tracers)
    return Summary(tracers, by_day, linked, shown, int(with_pseudonym), int(total - with_pseudonym))
