"""``./scripts/bench``: run every scenario (or ``--only`` some), print a table, save JSON.

    ./scripts/bench                       # the full run (about 20 minutes)
    ./scripts/bench --quick               # short durations, small counts (under 2 minutes)
    ./scripts/bench --only cron-precision --only ceiling
    ./scripts/bench --markdown bench/results/<file>.json   # a saved run as Markdown

Figures go to bench/results/<UTC timestamp>.json. A scenario that fails is reported and the
others still run; the exit code is non-zero only then (timing never fails a run).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import sysinfo, table, targets
from bench.config import FULL, QUICK, RESULTS_DIR, Profile
from bench.procstat import load_average
from bench.results import Section, save
from bench.scenarios import (
    ceiling,
    cron_precision,
    delayed_burst,
    embedded,
    many_schedules,
    worker_throughput,
)

SCENARIOS: dict[str, Callable[[Profile], list[Section]]] = {
    "ceiling": ceiling.run,
    "cron-precision": cron_precision.run,
    "delayed-burst": delayed_burst.run,
    "many-schedules": many_schedules.run,
    "worker-throughput": worker_throughput.run,
    "embedded": embedded.run,
}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run (< 2 minutes)")
    parser.add_argument(
        "--only", action="append", choices=sorted(SCENARIOS), help="run this scenario (repeatable)"
    )
    parser.add_argument("--repeats", type=int, help="override the number of repeats")
    parser.add_argument("--markdown", type=Path, help="print a saved results file as Markdown")
    return parser.parse_args(argv)


def ceiling_rate(sections: list[Section]) -> tuple[float | None, str]:
    """The ceiling measured now, else the one of the latest saved run that has one."""
    for section in sections:
        if section.scenario == "ceiling":
            return section.median.get("end_to_end_rate"), "this run"
    for path in sorted(RESULTS_DIR.glob("*.json"), reverse=True):
        for saved in json.loads(path.read_text(encoding="utf-8")).get("sections", []):
            if saved["scenario"] == "ceiling" and saved["median"].get("end_to_end_rate"):
                return float(saved["median"]["end_to_end_rate"]), path.name
    return None, "not measured"


def load_sections(path: Path) -> list[Section]:
    data = json.loads(path.read_text(encoding="utf-8"))
    sections = []
    for saved in data["sections"]:
        runs = [{k: math.nan if v is None else v for k, v in run.items()} for run in saved["runs"]]
        sections.append(Section(saved["scenario"], saved["label"], runs, saved.get("notes", [])))
    return sections


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.markdown:
        saved = load_sections(args.markdown)
        rate, _ = ceiling_rate(saved)
        print(table.markdown(saved, targets.judge(saved, rate), rate))
        return 0
    profile = QUICK if args.quick else FULL
    if args.repeats:
        profile = replace(profile, repeats=args.repeats, slow_repeats=args.repeats)
    chosen = args.only or list(SCENARIOS)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    meta: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["./scripts/bench", *argv]),
        "profile": profile.__dict__,
        "machine": sysinfo.describe(),
        "seconds": {},
        "failures": {},
    }
    sections: list[Section] = []
    for name in [n for n in SCENARIOS if n in chosen]:
        print(f"==> {name}", flush=True)
        began = time.monotonic()
        try:
            found = SCENARIOS[name](profile)
        except Exception as exc:  # one broken scenario must not lose the others' figures
            traceback.print_exc()
            meta["failures"][name] = repr(exc)
            found = []
        meta["seconds"][name] = round(time.monotonic() - began, 1)
        sections += found
        for section in found:
            print(table.grid([section], None), flush=True)
    meta["load_average_1m_end"] = load_average()
    rate, source = ceiling_rate(sections)
    meta["ceiling"] = {"end_to_end_rate": rate, "from": source}
    verdicts = targets.judge(sections, rate)
    path = RESULTS_DIR / f"{stamp}.json"
    save(path, meta, sections, verdicts)
    print()
    print(table.text(sections, verdicts, rate))
    print(f"\nceiling from: {source}; results: {path.relative_to(RESULTS_DIR.parents[1])}")
    return 1 if meta["failures"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
