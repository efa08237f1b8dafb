"""The verdict of a bench run: what fails it, and how each target fares. Pure: no I/O.

A run **fails** (``Verdict.exit_code`` 1) when any of these holds, each reported as a
:class:`Problem` naming the scenario, the section and the figure:

- *lost*, *doubled*, *missed*, *bad exit*: a failure count (``lost``, ``doubled``,
  ``missed``, ``bad_exits``: a benchmark process that did not exit 0) is above 0 in any run
  of any section, whether or not a target names it (except in the sections of another
  system, bench.scenarios.peers, whose counts are figures to compare: ``counts_fail`` False);
- *unmeasurable*: a scenario raised; a repeat of a section raised (a process died, a wait
  timed out); a section has no run; a figure is NaN, infinite or None in a run, or missing
  from a run that its other runs have; two sections share an id; a target's figure is absent
  from its section; a target relative to the ceiling meets a section but the ceiling was not
  measured in the same run (or is not a positive number); a target relative to a baseline
  section meets its section but the baseline section is not in the same run, had a repeat
  fail, or its median of the figure is not a number.

A section of what another system cannot do (``cannot``) has no figures and is not judged.
Timing targets that are not met are reported (status "not met") and do not fail the run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.results import WORST_OF, Section
from bench.targets import CEILING_FIGURE, CEILING_SCENARIO, CEILING_SECTION, TARGETS, Target

UNMEASURABLE = "unmeasurable"
KINDS = {"lost": "lost", "doubled": "doubled", "missed": "missed", "bad_exits": "bad exit"}

MET, NOT_MET, NOT_RUN = "met", "not met", "not run"


@dataclass(frozen=True)
class Problem:
    """Something that makes the run fail."""

    scenario: str
    section: str  # a section id, or "" when the scenario produced none
    figure: str  # "" when no single figure is concerned
    kind: str  # "lost", "doubled", "missed", "bad exit" or "unmeasurable"
    reason: str

    def __str__(self) -> str:
        """``LOST: delayed-burst/10k-batch lost: 1 in run 2 of 3`` (the section id starts with
        the scenario's; a scenario that raised has no section)."""
        where = self.section or f"{self.scenario} (scenario)"
        if self.figure:
            where += f" {self.figure}"
        return f"{self.kind.upper()}: {where}: {self.reason}"

    def to_json(self) -> dict[str, str]:
        return {
            "scenario": self.scenario,
            "section": self.section,
            "figure": self.figure,
            "kind": self.kind,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class TargetVerdict:
    target: Target
    status: str  # MET, NOT_MET, NOT_RUN or UNMEASURABLE
    value: float  # NaN unless judged
    limit: float  # for a target relative to the ceiling or a baseline: computed in this run
    reason: str = ""
    baseline: float = math.nan  # the baseline section's median of the figure, when it has one

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target.text,
            "scenario": self.target.scenario,
            "section": self.target.section,
            "figure": self.target.figure,
            "op": self.target.op,
            "value": self.value,
            "limit": self.limit,
            "baseline_section": self.target.baseline,
            "baseline": self.baseline,
            "status": self.status,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Verdict:
    problems: list[Problem] = field(default_factory=list)
    targets: list[TargetVerdict] = field(default_factory=list)
    ceiling: float | None = None  # the end-to-end ceiling of this run, when measured
    ceiling_note: str = ""  # why there is no ceiling

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_json(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "ceiling": {"end_to_end_rate": self.ceiling, "note": self.ceiling_note},
            "problems": [p.to_json() for p in self.problems],
            "targets": [t.to_json() for t in self.targets],
        }


def measurable(value: object) -> bool:
    """A figure that was measured: a finite number (not NaN, infinity, None or a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def section_problems(section: Section) -> list[Problem]:
    """What fails the run in one section: its errors, unmeasured figures, failure counts."""

    def problem(figure: str, kind: str, reason: str) -> Problem:
        return Problem(section.scenario, section.id, figure, kind, reason)

    if section.cannot:
        return []  # a peer's missing feature: no figures to judge (bench.scenarios.peers)
    found = [problem("", UNMEASURABLE, error) for error in section.errors]
    total = len(section.runs) + len(section.errors)
    if not section.runs:
        found.append(problem("", UNMEASURABLE, f"no run completed (of {total})"))
    names = list(dict.fromkeys(name for run in section.runs for name in run))
    for number, run in enumerate(section.runs, 1):
        of = f"run {number} of {total}"
        for name in names:
            if name not in run:
                found.append(problem(name, UNMEASURABLE, f"missing in {of}"))
                continue
            value = run[name]
            if not measurable(value):
                found.append(problem(name, UNMEASURABLE, f"{value} in {of}"))
            elif name.startswith(WORST_OF) and value > 0 and section.counts_fail:
                kind = next(KINDS[k] for k in WORST_OF if name.startswith(k))
                found.append(problem(name, kind, f"{value:g} in {of}"))
    return found


def ceiling_of(sections: Sequence[Section]) -> tuple[float | None, str]:
    """The ceiling measured in this run (the median end-to-end rate of its section), or None
    and why not. There is no other source: a ceiling from another run is never used."""
    found = [s for s in sections if s.scenario == CEILING_SCENARIO and s.id == CEILING_SECTION]
    if not found:
        return None, "the ceiling was not measured in this run"
    value = found[0].median.get(CEILING_FIGURE, math.nan)
    if not measurable(value) or value <= 0:
        return None, f"the ceiling of this run could not be measured ({CEILING_FIGURE} = {value})"
    return value, ""


def _holds(value: float, op: str, limit: float) -> bool:
    return {
        "<=": value <= limit,
        ">=": value >= limit,
        "<": value < limit,
        "==": value == limit,
    }[op]


def baseline_of(target: Target, sections: Sequence[Section]) -> tuple[float | None, str]:
    """The median of the target's figure in its baseline section of this run, or None and
    why not. A baseline with a failed repeat is not used: the comparison is only fair between
    sections measured alike (their repeats alternate)."""
    assert target.baseline is not None
    found = [s for s in sections if s.scenario == target.scenario and s.id == target.baseline]
    if not found:
        return None, f"its baseline section {target.baseline} was not run in this run"
    section = found[0]
    if section.errors:
        return None, f"{len(section.errors)} run(s) of its baseline section {section.id} failed"
    value = section.median.get(target.figure, math.nan)
    if not measurable(value):
        return None, f"{target.figure} of its baseline section {section.id} is {value}"
    return value, ""


def judge_target(
    target: Target, sections: Sequence[Section], ceiling: float | None, ceiling_note: str
) -> TargetVerdict:
    """A target on the section of its scenario and id: NOT_RUN when this run has none."""
    matching = [s for s in sections if s.scenario == target.scenario and s.id == target.section]
    if not matching:
        return TargetVerdict(target, NOT_RUN, math.nan, target.limit, "no such section in this run")
    section = matching[0]
    limit, baseline = target.limit, math.nan
    if target.of_ceiling:
        if ceiling is None:
            return TargetVerdict(target, UNMEASURABLE, math.nan, math.nan, ceiling_note)
        limit = target.limit * ceiling
    if target.baseline is not None:
        found, why = baseline_of(target, sections)
        if found is None:
            return TargetVerdict(target, UNMEASURABLE, math.nan, math.nan, why)
        limit, baseline = target.limit_from(found), found
    if not any(target.figure in run for run in section.runs):
        why = "no run completed" if not section.runs else "its section has no such figure"
        return TargetVerdict(target, UNMEASURABLE, math.nan, limit, why, baseline)
    value = section.median.get(target.figure, math.nan)
    if not measurable(value):
        why = f"the figure is {value}"
        return TargetVerdict(target, UNMEASURABLE, math.nan, limit, why, baseline)
    if section.errors:
        # The figure of the runs that completed is shown, but judged it is not.
        why = f"{len(section.errors)} run(s) of its section failed"
        return TargetVerdict(target, UNMEASURABLE, value, limit, why, baseline)
    status = MET if _holds(value, target.op, limit) else NOT_MET
    return TargetVerdict(target, status, value, limit, baseline=baseline)


def judge(
    sections: Sequence[Section],
    failures: Mapping[str, str] | None = None,
    targets: Sequence[Target] = TARGETS,
) -> Verdict:
    """The verdict of a run: its sections, and the scenarios that raised (name -> why)."""
    problems = [Problem(name, "", "", UNMEASURABLE, why) for name, why in (failures or {}).items()]
    seen: set[str] = set()
    for section in sections:
        if section.id in seen:
            reason = "two sections share this id"
            problems.append(Problem(section.scenario, section.id, "", UNMEASURABLE, reason))
        seen.add(section.id)
        problems += section_problems(section)
    ceiling, note = ceiling_of(sections)
    verdicts = [judge_target(t, sections, ceiling, note) for t in targets]
    for verdict in verdicts:
        if verdict.status == UNMEASURABLE:
            t = verdict.target
            reason = f"target {t.text!r} cannot be judged: {verdict.reason}"
            problems.append(Problem(t.scenario, t.section, t.figure, UNMEASURABLE, reason))
    return Verdict(problems, verdicts, ceiling, note)
