"""The figures as a text table (printed) or Markdown (for docs/benchmarks.md), with the verdict."""

from __future__ import annotations

import math

from bench.results import Section
from bench.stats import known
from bench.targets import RATIO
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


def ratio(value: float, versus: Section | None, figure: str) -> str:
    """``value`` over the same figure's median in the compared section (bench.scenarios.peers:
    a peer's figure over jararaca's of the same run), e.g. "0.52x"; "" when there is none."""
    base = versus.median.get(figure, math.nan) if versus else math.nan
    if not (known(value) and known(base)) or base == 0:
        return ""
    return f"{value / base:.3g}x"


def rows(sections: list[Section], ceiling: float | None) -> list[list[str]]:
    """One row per figure; "of ceiling" only against a ceiling measured in the same run; the
    "vs jararaca" column only when a section is compared with another (a peer's)."""
    by_id = {s.id: s for s in sections}
    compared = any(s.versus for s in sections)
    out = []
    for section in sections:
        name = section.id.removeprefix(f"{section.scenario}/")
        if section.cannot:
            row = [section.scenario, name, section.label, f"cannot: {section.cannot}"]
            out.append(row + [""] * (len(HEADER) - 4 + compared))
            continue
        median = section.median
        for figure, value in median.items():
            values = [r[figure] for r in section.runs if figure in r and known(r[figure])]
            spread = f"{number(min(values))}-{number(max(values))}" if len(values) > 1 else ""
            versus = ""
            if figure.endswith("_rate") and ceiling and not math.isnan(value):
                versus = f"{100 * value / ceiling:.0f}%"
            row = [
                section.scenario,
                name,
                section.label,
                f"{figure}",
                f"{number(value)} {unit(figure)}".strip(),
                spread,
                str(len(values)),
                versus,
            ]
            out.append(row + ([ratio(value, by_id.get(section.versus), figure)] * compared))
        for error in section.errors:
            row = [section.scenario, name, section.label, "(a run failed)", error, "", "", ""]
            out.append(row + [""] * compared)
    return out


HEADER = ["scenario", "section", "variant", "figure", "median", "range", "runs", "of ceiling"]
VERSUS = "vs jararaca"


def header(sections: list[Section]) -> list[str]:
    return HEADER + [VERSUS] * any(s.versus for s in sections)


def grid(sections: list[Section], ceiling: float | None) -> str:
    table = [header(sections), *rows(sections, ceiling)]
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
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
    """The target's limit: for one relative to the ceiling or to a baseline section, the limit
    computed in this run and how (``>= 2,216 (0.95 x 10k-batch 2,333; measured 0.97 x)``)."""
    t = judged.target
    if t.of_ceiling:
        how = f"{t.limit:g} x ceiling"
    elif t.baseline is not None:
        how = _relative(judged, t.baseline.removeprefix(f"{t.scenario}/"))
    else:
        return f"{t.op} {number(t.limit)}"
    if judged.status not in (MET, NOT_MET):
        return f"{t.op} {how}"
    return f"{t.op} {number(judged.limit)} ({how})"


def _relative(judged: TargetVerdict, baseline: str) -> str:
    """How a baseline target's limit is made, and where the value stands against it."""
    t, value, base = judged.target, judged.value, judged.baseline
    known_both = math.isfinite(value) and math.isfinite(base)
    if t.relation == RATIO:
        how = f"{t.limit:g} x {baseline}" + (f" {number(base)}" if math.isfinite(base) else "")
        return how + (f"; measured {value / base:.3f} x" if known_both and base else "")
    how = f"{baseline}" + (f" {number(base)}" if math.isfinite(base) else "") + f" + {t.limit:g}"
    return how + (f"; measured {value - base:+.3g}" if known_both else "")


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
    lines = ["| " + " | ".join(header(sections)) + " |", "|" + "---|" * len(header(sections))]
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
