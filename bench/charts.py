"""The peers chart: lateness of the seconds crons and drain of the delayed burst, per system.

    bench/.peers-venv/bin/python -m bench.charts [bench/results/peers-samples-<stamp>.json [OUT]]

Reads the samples bench.scenarios.peers saved (the newest when none is named) and draws
``docs/bench-peers.png`` (or OUT, a path inside the repository): left, each system's cron
lateness as a cumulative distribution (all fires of all repeats); right, each repeat's drain
curve (messages started against seconds after the due instant). Runs with the peers' python:
matplotlib is in their virtualenv (scripts/bench-peers-venv), not a dependency of jararaca.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: write the file only
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
OUT = ROOT / "docs" / "bench-peers.png"
COLOURS = {
    "jararaca": "#1b7837",
    "celery": "#b2182b",
    "taskiq": "#2166ac",
    "jararaca-0.5.13": "#e08214",
}


def system_of(section_id: str) -> str:
    """The system of a section: peers/cron-celery -> celery, peers/burst-10k-jararaca-0.5.13 ->
    jararaca-0.5.13 (a system's name may have dashes of its own)."""
    variant = section_id.split("/", 1)[1]
    dashes_before = 1 if variant.startswith("cron-") else 2
    return variant.split("-", dashes_before)[-1]


def newest() -> Path:
    found = sorted(RESULTS.glob("peers-samples-*.json"))
    if not found:
        raise SystemExit("no bench/results/peers-samples-*.json: run ./scripts/bench --only peers")
    return found[-1]


def draw(samples: dict[str, list[list[float]]], out: Path, title: str) -> None:
    figure, (cron, drain) = plt.subplots(1, 2, figsize=(12, 4.8))
    for section_id, repeats in samples.items():
        system = system_of(section_id)
        colour = COLOURS.get(system, "grey")
        if "/cron-" in section_id:
            late = sorted(v for repeat in repeats for v in repeat)
            share = [(i + 1) / len(late) for i in range(len(late))]
            cron.step(
                late, share, where="post", color=colour, label=f"{system} ({len(late)} fires)"
            )
        else:
            for number, repeat in enumerate(repeats):
                started = sorted(repeat)
                label = system if number == 0 else None
                drain.plot(
                    started, range(1, len(started) + 1), color=colour, alpha=0.8, label=label
                )
    cron.set_xscale("log")
    cron.set_xlabel("lateness: handler start - intended instant (ms, log scale)")
    cron.set_ylabel("share of fires at most this late")
    cron.set_title("Seconds crons (every 1, 2, 5 s)")
    cron.grid(True, which="both", alpha=0.3)
    cron.legend(loc="lower right")
    drain.set_xlabel("seconds after the due instant")
    drain.set_ylabel("messages started")
    drain.set_title("Delayed burst, all due at one instant (each repeat)")
    drain.grid(True, alpha=0.3)
    drain.legend(loc="lower right")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    print(f"chart: {out.relative_to(ROOT)}")


def main(argv: list[str]) -> None:
    path = Path(argv[0]) if argv else newest()
    out = Path(argv[1]).resolve() if len(argv) > 1 else OUT
    samples = json.loads(path.read_text(encoding="utf-8"))
    systems = "jararaca, Celery, taskiq and jararaca 0.5.13"
    title = f"{systems} on the same servers, same run ({path.name})"
    draw(samples, out, title)


if __name__ == "__main__":
    main(sys.argv[1:])
