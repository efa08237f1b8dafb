"""Percentiles, record files and the median of repeated runs."""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

Figures = dict[str, float]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linear between closest ranks; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def lateness_ms(late_seconds: Sequence[float]) -> Figures:
    ms = [s * 1000 for s in late_seconds]
    return {
        "late_p50_ms": percentile(ms, 50),
        "late_p99_ms": percentile(ms, 99),
        "late_max_ms": max(ms) if ms else math.nan,
    }


@dataclass
class Records:
    """What the handlers of one or more processes recorded (see bench.recorder)."""

    keys: list[str | int]
    due: list[float]
    start: list[float]

    @classmethod
    def load(cls, paths: Iterable[Path]) -> Records:
        """bench.recorder's files, or bench.peers.peer_recorder's JSON lines (``.jsonl``)."""
        keys: list[str | int] = []
        due: list[float] = []
        start: list[float] = []
        for path in paths:
            if not path.exists():
                continue
            text = path.read_text(encoding="utf-8")
            if path.suffix == ".jsonl":
                lines = [json.loads(line) for line in text.splitlines() if line]
                keys += [line["key"] for line in lines]
                due += [line["due"] for line in lines]
                start += [line["start"] for line in lines]
                continue
            data = json.loads(text)
            keys += data["keys"]
            due += data["due"]
            start += data["start"]
        return cls(keys, due, start)

    def __len__(self) -> int:
        return len(self.keys)

    def doubled(self) -> int:
        """Records beyond the first of each key (a message or fire handled twice)."""
        return sum(n - 1 for n in Counter(self.keys).values() if n > 1)

    def late_seconds(self) -> list[float]:
        return [s - d for s, d in zip(self.start, self.due, strict=True)]


def known(value: object) -> bool:
    """A number, not NaN (a figure read back from JSON may be None: not known)."""
    return isinstance(value, int | float) and not math.isnan(value)


def median_of(runs: Sequence[Figures]) -> Figures:
    """Per figure, the median over the runs that have it (NaN and None values are skipped)."""
    names = dict.fromkeys(name for run in runs for name in run)
    out: Figures = {}
    for name in names:
        values = [run[name] for run in runs if name in run and known(run[name])]
        out[name] = statistics.median(values) if values else math.nan
    return out
