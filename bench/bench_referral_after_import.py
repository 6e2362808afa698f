"""The first referral after an import that marked people already in the search index.

    python bench/bench_referral_after_import.py [--people 1000000] [--rows 30000] [--repeat 2]

Such an import leaves its removals from the search index as delete markers, and the store
records that the index holds residue; the next referral merges the index before it commits
(docs/threat-model.md, "Search index residue"). This measures what that costs the
referral. A store of ``--people`` existing people (bench/generate_store.py, kept as
bench/out/existing-N.store) gets the generated cases file once (untimed); then, in turn,
``--repeat`` times, each on a fresh copy, in process:

1. **with residue**: import the generated contacts (which mark people already indexed),
   then time a referral of one of them (the merge included);
2. **merged beforehand**: the same import, then the merge on its own (timed apart), then
   the referral.

Prints each run and the medians. The made-up identifiers are those of bench_import.py.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import bench_import  # noqa: E402
from common import machine  # noqa: E402


def one_run(base: Path, contacts: Path, passphrase: str, merged_beforehand: bool) -> tuple[float, float, int]:
    """Seconds of the referral, seconds of the merge beforehand (0 if none), people marked."""
    from pyrage import x25519

    from tracekit.importers import ImportOptions, import_file
    from tracekit.records import Casebook
    from tracekit.records.sensitive import SensitiveRoles
    from tracekit.store import open_store, search_index, settings

    run = bench_import.copy_store(base, base.with_name("run.store"))
    try:
        with open_store(run, bytearray(passphrase.encode())) as store:
            options = ImportOptions(today=bench_import.TODAY, skip_invalid=True)
            summary = import_file(store, "contacts", contacts, options)
            assert settings.get(store.conn, search_index.RESIDUE_SETTING), "the import left no residue"
            merge_seconds = 0.0
            if merged_beforehand:
                started = time.perf_counter()
                with store.transaction() as conn:
                    search_index.clear_residue(conn)
                merge_seconds = time.perf_counter() - started
            roles = SensitiveRoles(Casebook(store, today=bench_import.TODAY))
            roles.add_recipient("Vetted", str(x25519.Identity.generate().to_public()), "vetted-team")
            # One the import marked who was in the index before it: search_terms NULL, an old id.
            ref = store.conn.execute(
                "SELECT p.ref FROM person_roles r JOIN people p ON p.id = r.person_id "
                "WHERE r.referral_id IS NULL AND p.search_terms IS NULL ORDER BY p.id LIMIT 1"
            ).fetchone()[0]
            started = time.perf_counter()
            roles.refer(ref)
            referral_seconds = time.perf_counter() - started
            assert settings.get(store.conn, search_index.RESIDUE_SETTING) is None, "the referral left the residue"
        return referral_seconds, merge_seconds, len(summary.marked)
    finally:
        run.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=1_000_000, help="people already in the store")
    parser.add_argument("--rows", type=int, default=30_000, help="contacts imported before the referral")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each, alternated (median)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tracekit-bench-referral-"))
    try:
        cases, contacts = bench_import.generate(work, args.rows, max(1, args.rows // 3))
        template, passphrase = bench_import.existing_store(args.people, work)
        base = bench_import.copy_store(template, work / "base.store")
        bench_import.run_tracekit(base, ["import", "cases", str(cases), "--skip-invalid"], passphrase=passphrase)
        times: dict[str, list[float]] = {"with residue": [], "merged beforehand": []}
        for _ in range(args.repeat):
            for label in times:
                referral, merge, marked = one_run(base, contacts, passphrase, label == "merged beforehand")
                times[label].append(referral)
                print(
                    f"{label}: the import marked {marked:,}; merge beforehand {merge:.2f} s, referral {referral:.2f} s",
                    flush=True,
                )
        print(f"\nMachine: {machine()}; {args.people:,} people, {args.rows:,} contacts imported first")
        for label, values in times.items():
            print(f"referral, {label}: median {statistics.median(values):.2f} s of {len(values)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
