"""The figures of a bench run: sections of repeated runs, their medians, saved as JSON."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.stats import Figures, median_of

# Counts of failures: reported as the worst run (max), not the median, so none hides.
WORST_OF = ("lost", "doubled", "missed", "bad_exits")


@dataclass
class Section:
    """One variant of a scenario (e.g. delayed-burst, 10,000 messages, batch form)."""

    scenario: str
    label: str
    runs: list[Figures] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def median(self) -> Figures:
        out = median_of(self.runs)
        for name in out:
            if name.startswith(WORST_OF):
                values = [r[name] for r in self.runs if name in r and not math.isnan(r[name])]
                out[name] = max(values) if values else math.nan
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "label": self.label,
            "median": self.median,
            "runs": self.runs,
            "notes": self.notes,
        }


def save(path: Path, meta: dict[str, Any], sections: list[Section], verdicts: list[Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {**meta, "sections": [s.to_json() for s in sections], "targets": verdicts}
    text = json.dumps(_no_nan(data), indent=2, default=str, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")


def _no_nan(value: Any) -> Any:
    """NaN (a missing figure) is not JSON: write it as null."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(v) for v in value]
    return value
