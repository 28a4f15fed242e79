"""Give every trial record under a results tree the placement fields (ruleset, study, trial) that
records written before them carried only in their `tag`, so no reader parses tags.

    python scripts/migrate_results.py results        # the published board's trials
    python scripts/migrate_results.py runs --check   # report what would change, write nothing

Each record is rewritten atomically; records that already have the fields are left as they are, so a
second run changes nothing. Trial keys and folders do not change (the key hashes the same tag).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from harness.core.results import (PLACEMENT_FIELDS, TrialRecord, legacy_placement, read_result_json, result_files,
                                  write_result)


def migrate(results_dir: Path, check: bool = False) -> tuple[int, int]:
    """(records migrated, records already current) under results_dir."""
    migrated = current = 0
    for file in result_files(results_dir):
        record = read_result_json(file.parent)  # as stored: an unmigrated record is no TrialRecord yet
        if record is None:
            raise SystemExit(f"{file}: unreadable; repair or delete it, then migrate again")
        if all(field in record for field in PLACEMENT_FIELDS):
            current += 1
            continue
        if "tag" not in record:
            raise SystemExit(f"{file}: neither placement fields nor a tag; not a timetrial trial record")
        placement = dataclasses.asdict(legacy_placement(record["tag"]))
        record.update(placement)
        if isinstance(record.get("spec"), dict) and "tag" in record["spec"]:
            spec = {k: v for k, v in record["spec"].items() if k != "tag"}
            record["spec"] = {**spec, **placement}
        if not check:
            write_result(file.parent, TrialRecord.from_json(record))
        migrated += 1
    return migrated, current


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results_dir", type=Path)
    parser.add_argument("--check", action="store_true", help="count what would change; write nothing")
    args = parser.parse_args(argv)
    if not args.results_dir.is_dir():
        print(f"{args.results_dir}: not a folder", file=sys.stderr)
        return 2
    migrated, current = migrate(args.results_dir, args.check)
    verb = "would migrate" if args.check else "migrated"
    print(f"{args.results_dir}: {verb} {migrated} trial records; {current} already had ruleset/study/trial")
    return 0


if __name__ == "__main__":
    sys.exit(main())
