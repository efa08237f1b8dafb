"""The figures as a text table (printed) or Markdown (for docs/benchmarks.md), with the verdict."""

from __future__ import annotations

import math

from bench.results import Section
from bench.stats import known
from bench.verdict import MET, NOT_MET, NOT_RUN, UNMEASURABLE, TargetVerdict, Verdict

UNITS = (("_rate", "msg/s"), ("_ms", "ms"), ("_pct", "%"), ("_mib", "MiB"), ("_s", "s"))
STATE = {MET: "met", NOT_MET: "NOT MET", NOT_RUN: "not run", UNMEASURABLE: "UNMEASURABLE"}
STATE_MD = {MET: "yes", NOT_MET: "**no**", NOT_RUN: "not run", UNMEASURABLE: "**unmeasurable**"}


def unit(figure: str) -> str:
    return next((u for suffix, u in UNITS if figure.endswith(suffix)), "")


def number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def rows(sections: list[Section], ceiling: float | None) -> list[list[str]]:
    """One row per figure; "of ceiling" only against a ceiling measured in the same run."""
    out = []
    for section in sections:
        median = section.median
        for figure, value in median.items():
            values = [r[figure] for r in section.runs if figure in r and known(r[figure])]
            spread = f"{number(min(values))}-{number(max(values))}" if len(values) > 1 else ""
            versus = ""
            if figure.endswith("_rate") and ceiling and not math.isnan(value):
                versus = f"{100 * value / ceiling:.0f}%"
            out.append(
                [
                    section.scenario,
                    section.id.removeprefix(f"{section.scenario}/"),
                    section.label,
                    f"{figure}",
                    f"{number(value)} {unit(figure)}".strip(),
                    spread,
                    str(len(values)),
                    versus,
                ]
            )
        for error in section.errors:
            name = section.id.removeprefix(f"{section.scenario}/")
            out.append([section.scenario, name, section.label, "(a run failed)", error, "", "", ""])
    return out


HEADER = ["scenario", "section", "variant", "figure", "median", "range", "runs", "of ceiling"]


def grid(sections: list[Section], ceiling: float | None) -> str:
    table = [HEADER, *rows(sections, ceiling)]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADER))]
    lines = []
    previous = ("", "", "")
    for row in table:
        shown = list(row)
        if (row[0], row[1], row[2]) == previous:
            shown[0] = shown[1] = shown[2] = ""  # one heading per section
        previous = (row[0], row[1], row[2])
        lines.append("  ".join(c.ljust(w) for c, w in zip(shown, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _ceiling_line(verdict: Verdict) -> str:
    if verdict.ceiling is None:
        return f"ceiling (raw aio-pika end to end): none ({verdict.ceiling_note}; no comparison)"
    return f"ceiling (raw aio-pika end to end, this run): {number(verdict.ceiling)} msg/s"


def limit(judged: TargetVerdict) -> str:
    """The target's limit: for one relative to the ceiling, the fraction and its value."""
    t = judged.target
    if not t.of_ceiling:
        return f"{t.op} {number(t.limit)}"
    fraction = f"{t.limit:g} x ceiling"
    judged_limit = judged.limit if judged.status in (MET, NOT_MET) else None
    return f"{t.op} {number(judged_limit)} ({fraction})" if judged_limit else f"{t.op} {fraction}"


def outcome(verdict: Verdict) -> str:
    """The closing lines: every problem, or that there is none."""
    if verdict.ok:
        return "OK: nothing lost, doubled or missed, and every figure was measured (exit 0)"
    lines = [f"FAILED (exit {verdict.exit_code}): {len(verdict.problems)} problem(s):"]
    lines += [f"  {problem}" for problem in verdict.problems]
    return "\n".join(lines)


def text(sections: list[Section], verdict: Verdict) -> str:
    lines = [grid(sections, verdict.ceiling), "", _ceiling_line(verdict), "", "targets:"]
    for judged in verdict.targets:
        t = judged.target
        if judged.status == NOT_RUN:
            detail = f"no section {t.section} in this run"
        else:
            detail = f"{t.figure} = {number(judged.value)}, {limit(judged)}"
            detail += f"; {judged.reason}" if judged.reason else ""
        lines.append(f"  {STATE[judged.status]:12} {t.text}  ({detail})")
    lines += ["", outcome(verdict)]
    return "\n".join(lines)


def markdown(sections: list[Section], verdict: Verdict) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(sections, verdict.ceiling)]
    lines += ["", _ceiling_line(verdict), ""]
    lines += ["| target | section | figure | value | limit | met |", "|---|---|---|---|---|---|"]
    for judged in verdict.targets:
        t = judged.target
        value, state = number(judged.value), STATE_MD[judged.status]
        row = [t.text, t.section, t.figure, value, limit(judged), state]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", outcome(verdict)]
    return "\n".join(lines)
