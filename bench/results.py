"""The figures of a bench run: sections of repeated runs, their medians, saved as JSON."""

from __future__ import annotations

import json
import math
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec

from bench.stats import Figures, known, median_of

# Counts of failures: reported as the worst run (max), not the median, so none hides; any of
# them above 0 in any run fails the bench (bench.verdict).
WORST_OF = ("lost", "doubled", "missed", "bad_exits")

P = ParamSpec("P")


def count_id(count: int) -> str:
    """A count as it appears in a section id: 10000 -> "10k", 2500 -> "2500"."""
    return f"{count // 1000}k" if count >= 1000 and count % 1000 == 0 else str(count)


@dataclass
class Section:
    """One variant of a scenario (e.g. delayed-burst, 10,000 messages, batch form).

    ``id`` is stable and machine-readable, ``<scenario>/<variant>`` (``delayed-burst/10k-batch``):
    targets are matched on it, never on the label, which is for people. ``errors`` holds the
    repeats that could not be measured (a process died, a wait timed out), with why.

    Sections of another system (bench.scenarios.peers) set ``counts_fail`` False: their lost,
    doubled, missed and bad exits are figures to compare, not failures of jararaca's run; and
    ``versus``, the id of the jararaca section of the same run that each figure's ratio is
    taken to. ``cannot`` says what that system cannot do: the section has no runs, is shown as
    "cannot: <reason>" and is not judged.
    """

    scenario: str
    id: str
    label: str
    runs: list[Figures] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    counts_fail: bool = True
    versus: str = ""
    cannot: str = ""

    def __post_init__(self) -> None:
        if not self.id.startswith(f"{self.scenario}/"):
            raise ValueError(f"section id {self.id!r} must start with {self.scenario!r}/")

    @property
    def median(self) -> Figures:
        out = median_of(self.runs)
        for name in out:
            if name.startswith(WORST_OF):
                values = [r[name] for r in self.runs if name in r and known(r[name])]
                out[name] = max(values) if values else math.nan
        return out

    def measure(self, repeat: Callable[P, Figures], *args: P.args, **kwargs: P.kwargs) -> None:
        """Run one repeat, ``repeat(*args, **kwargs)``, and keep its figures; one that raises
        is kept as an error (its figures are unmeasurable, which fails the bench) and the next
        repeats still run."""
        try:
            self.runs.append(repeat(*args, **kwargs))
        except Exception as exc:
            traceback.print_exc()
            print(f"error: {self.id}: {exc}", file=sys.stderr, flush=True)
            first = str(exc).strip().splitlines()
            self.errors.append(f"{type(exc).__name__}: {first[0] if first else ''}".rstrip(": "))

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "id": self.id,
            "label": self.label,
            "median": self.median,
            "runs": self.runs,
            "notes": self.notes,
            "errors": self.errors,
            "counts_fail": self.counts_fail,
            "versus": self.versus,
            "cannot": self.cannot,
        }


def from_json(saved: dict[str, Any]) -> Section:
    """A saved section (null figures become NaN; files from before section ids get one)."""
    runs = [{k: math.nan if v is None else v for k, v in run.items()} for run in saved["runs"]]
    section_id = saved.get("id") or f"{saved['scenario']}/{saved['label']}"
    return Section(
        saved["scenario"],
        section_id,
        saved["label"],
        runs,
        saved.get("notes", []),
        saved.get("errors", []),
        saved.get("counts_fail", True),
        saved.get("versus", ""),
        saved.get("cannot", ""),
    )


def save(path: Path, meta: dict[str, Any], sections: list[Section], verdict: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {**meta, "sections": [s.to_json() for s in sections], "verdict": verdict}
    text = json.dumps(_no_nan(data), indent=2, default=str, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")


def _no_nan(value: Any) -> Any:
    """NaN (a missing figure) and infinities are not JSON: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(v) for v in value]
    return value
