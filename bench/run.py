"""``./scripts/bench``: run every scenario (or ``--only`` some), print a table, save JSON.

    ./scripts/bench                       # the full run (about 20 minutes)
    ./scripts/bench --quick               # short durations, small counts (under 2 minutes)
    ./scripts/bench --only cron-precision --only ceiling
    ./scripts/bench --only delayed-burst --burst-sizes 10000   # without the 100k bursts
    ./scripts/bench --markdown bench/results/<file>.json   # a saved run as Markdown
    ./scripts/bench --only peers          # beside Celery, taskiq, jararaca 0.5.13 (opt-in)

Figures go to bench/results/<UTC timestamp>.json. The exit code is 1 when anything was lost,
doubled or missed, a benchmark process failed, or a figure could not be measured (see
bench.verdict); each such problem is printed with its scenario, section and figure. Timing
targets that are not met are shown in the table and do not change the exit code. The ceiling
scenario runs whenever a scenario with a target relative to it does.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import table
from bench.config import FULL, QUICK, RESULTS_DIR, Profile
from bench.results import Section, from_json, save
from bench.targets import CEILING_SCENARIO, TARGETS
from bench.verdict import judge, section_problems

Scenario = Callable[[Profile], list[Section]]


def scenarios() -> dict[str, Scenario]:
    """The scenarios in the order they run (the ceiling first: others are compared with it).
    Imported here so that ``--markdown`` needs neither the servers' clients nor jararaca."""
    from bench.scenarios import (
        ceiling,
        cron_precision,
        delayed_burst,
        embedded,
        embedded_sqlite,
        many_schedules,
        million_pending,
        peers,
        redis_cluster,
        worker_throughput,
    )

    return {
        CEILING_SCENARIO: ceiling.run,
        "cron-precision": cron_precision.run,
        "delayed-burst": delayed_burst.run,
        "many-schedules": many_schedules.run,
        "worker-throughput": worker_throughput.run,
        "embedded": embedded.run,
        embedded_sqlite.SCENARIO: embedded_sqlite.run,
        million_pending.SCENARIO: million_pending.run,
        redis_cluster.SCENARIO: redis_cluster.run,
        peers.SCENARIO: peers.run,
    }


NAMES = (
    CEILING_SCENARIO,
    "cron-precision",
    "delayed-burst",
    "many-schedules",
    "worker-throughput",
    "embedded",
    "embedded-sqlite",
    "million-pending",
    "redis-cluster",
    "peers",
)
# Run only when asked (--only): about 20 minutes, and virtualenvs of their own
# (./scripts/bench-peers-venv: Celery and taskiq, which jararaca does not depend on;
# ./scripts/bench-v0513-venv: jararaca 0.5.13, whose module has this project's name).
OPT_IN = frozenset({"peers"})
NEEDS_CEILING = frozenset(t.scenario for t in TARGETS if t.of_ceiling)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run (< 2 minutes)")
    parser.add_argument(
        "--only", action="append", choices=NAMES, help="run this scenario (repeatable)"
    )
    parser.add_argument("--repeats", type=int, help="override the number of repeats")
    parser.add_argument(
        "--burst-sizes",
        type=int,
        nargs="+",
        metavar="N",
        help="delayed-burst sizes instead of the profile's (e.g. 10000: no 100k burst, whose "
        "single form can take minutes or fail on a loaded machine)",
    )
    parser.add_argument("--markdown", type=Path, help="print a saved results file as Markdown")
    return parser.parse_args(argv)


def chosen(only: list[str] | None) -> list[str]:
    """The scenarios to run, in order; the ceiling joins any scenario compared with it."""
    names = set(only or (n for n in NAMES if n not in OPT_IN))
    if names & NEEDS_CEILING:
        names.add(CEILING_SCENARIO)
    return [n for n in NAMES if n in names]


def show_saved(path: Path) -> int:
    """Print a saved run as Markdown, judged again on its own figures; exit as it would."""
    data = json.loads(path.read_text(encoding="utf-8"))
    sections = [from_json(saved) for saved in data["sections"]]
    verdict = judge(sections, data.get("failures", {}))
    print(table.markdown(sections, verdict))
    return verdict.exit_code


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.markdown:
        return show_saved(args.markdown)
    from bench import sysinfo
    from bench.procstat import load_average

    profile = QUICK if args.quick else FULL
    if args.repeats:
        profile = replace(profile, repeats=args.repeats, slow_repeats=args.repeats)
    if args.burst_sizes:
        profile = replace(profile, burst_sizes=tuple(args.burst_sizes))
    names = chosen(args.only)
    if args.only and CEILING_SCENARIO in names and CEILING_SCENARIO not in args.only:
        print("note: the ceiling runs too: a figure of this run is compared with it", flush=True)
    runners = scenarios()
    if tuple(runners) != NAMES:
        raise RuntimeError(f"bench.run.NAMES {NAMES} differs from the scenarios {tuple(runners)}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    meta: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["./scripts/bench", *argv]),
        "scenarios": names,
        "profile": profile.__dict__,
        "machine": sysinfo.describe(),
        "seconds": {},
        "failures": {},
    }
    sections: list[Section] = []
    for name in names:
        print(f"==> {name}", flush=True)
        began = time.monotonic()
        try:
            found = runners[name](profile)
        except Exception as exc:  # one broken scenario must not lose the others' figures
            traceback.print_exc()
            meta["failures"][name] = f"the scenario raised {type(exc).__name__}: {exc}"
            print(f"FAILED: {name}: {meta['failures'][name]}", file=sys.stderr, flush=True)
            found = []
        meta["seconds"][name] = round(time.monotonic() - began, 1)
        sections += found
        for section in found:
            print(table.grid([section], None), flush=True)
            for problem in section_problems(section):
                print(f"FAILED: {problem}", file=sys.stderr, flush=True)
    meta["load_average_1m_end"] = load_average()
    verdict = judge(sections, meta["failures"])
    path = RESULTS_DIR / f"{stamp}.json"
    save(path, meta, sections, verdict.to_json())
    print()
    print(table.text(sections, verdict))
    print(f"results: {path.relative_to(RESULTS_DIR.parents[1])}")
    if not verdict.ok:
        print(f"bench FAILED: {len(verdict.problems)} problem(s), see above", file=sys.stderr)
    return verdict.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
