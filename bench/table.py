"""The figures as a text table (printed) or Markdown (for docs/benchmarks.md)."""

from __future__ import annotations

import math
from typing import Any

from bench.results import Section

UNITS = (("_rate", "msg/s"), ("_ms", "ms"), ("_pct", "%"), ("_mib", "MiB"), ("_s", "s"))


def unit(figure: str) -> str:
    return next((u for suffix, u in UNITS if figure.endswith(suffix)), "")


def number(value: float) -> str:
    if math.isnan(value):
        return "-"
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def rows(sections: list[Section], ceiling: float | None) -> list[list[str]]:
    out = []
    for section in sections:
        median = section.median
        for figure, value in median.items():
            values = [r[figure] for r in section.runs if figure in r and not math.isnan(r[figure])]
            spread = f"{number(min(values))}-{number(max(values))}" if len(values) > 1 else ""
            versus = ""
            if figure.endswith("_rate") and ceiling and not math.isnan(value):
                versus = f"{100 * value / ceiling:.0f}%"
            out.append(
                [
                    section.scenario,
                    section.label,
                    f"{figure}",
                    f"{number(value)} {unit(figure)}".strip(),
                    spread,
                    str(len(values)),
                    versus,
                ]
            )
    return out


HEADER = ["scenario", "variant", "figure", "median", "range", "runs", "of ceiling"]


def grid(sections: list[Section], ceiling: float | None) -> str:
    table = [HEADER, *rows(sections, ceiling)]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADER))]
    lines = []
    previous = ("", "")
    for row in table:
        shown = list(row)
        if (row[0], row[1]) == previous:
            shown[0] = shown[1] = ""  # one heading per section
        previous = (row[0], row[1])
        lines.append("  ".join(c.ljust(w) for c, w in zip(shown, widths, strict=True)).rstrip())
    return "\n".join(lines)


def text(sections: list[Section], verdicts: list[dict[str, Any]], ceiling: float | None) -> str:
    lines = [grid(sections, ceiling), ""]
    lines.append(f"ceiling (raw aio-pika end to end): {number(ceiling or math.nan)} msg/s")
    lines += ["", "targets:"]
    for verdict in verdicts:
        state = {True: "met", False: "MISSED", None: "not measured"}[verdict["met"]]
        value = f"{verdict['figure']} = {number(verdict['value'])}"
        lines.append(f"  {state:12} {verdict['target']}  ({value})")
    return "\n".join(lines)


def markdown(sections: list[Section], verdicts: list[dict[str, Any]], ceiling: float | None) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(sections, ceiling)]
    lines += ["", "| target | figure | value | met |", "|---|---|---|---|"]
    for verdict in verdicts:
        state = {True: "yes", False: "**no**", None: "not measured"}[verdict["met"]]
        value = number(verdict["value"])
        lines.append(f"| {verdict['target']} | {verdict['figure']} | {value} | {state} |")
    return "\n".join(lines)
