"""bench.verdict: what fails a bench run (lost, doubled, missed, unmeasurable) and how the
targets are judged. Pure: no servers, no processes."""

from __future__ import annotations

import math

import pytest
from bench.results import Section, count_id
from bench.stats import Figures
from bench.targets import CEILING_SECTION, TARGETS, Target
from bench.verdict import MET, NOT_MET, NOT_RUN, UNMEASURABLE, judge

BURST = "delayed-burst/10k-batch"
DRAIN = Target("delayed-burst", BURST, "drain_rate", ">=", 0.5, "drain", of_ceiling=True)
LAST = Target("delayed-burst", BURST, "last_after_due_s", "<=", 5, "last delivery")
LOST = Target("delayed-burst", BURST, "lost", "==", 0, "nothing lost")
ONLY = (DRAIN, LAST, LOST)


def burst(**changes: float) -> Figures:
    figures: Figures = {
        "enqueue_rate": 40_000.0,
        "drain_rate": 2_300.0,
        "last_after_due_s": 4.3,
        "lost": 0,
        "doubled": 0,
        "bad_exits": 0,
    }
    return {**figures, **changes}


def ceiling_section(rate: float = 4_000.0) -> Section:
    run: Figures = {"end_to_end_rate": rate, "lost": 0, "bad_exits": 0}
    return Section("ceiling", CEILING_SECTION, "ceiling", [run])


def burst_section(*runs: Figures) -> Section:
    return Section("delayed-burst", BURST, "10,000 messages, batch enqueue", list(runs))


def test_all_good_is_a_success() -> None:
    verdict = judge([ceiling_section(), burst_section(burst(), burst())], targets=ONLY)
    assert verdict.ok
    assert verdict.exit_code == 0
    assert verdict.problems == []
    assert verdict.ceiling == 4_000.0
    assert [t.status for t in verdict.targets] == [MET, MET, MET]
    assert verdict.targets[0].limit == 2_000.0  # half of the ceiling of the same run


def test_one_lost_message_fails_even_without_a_target() -> None:
    sections = [ceiling_section(), burst_section(burst(), burst(lost=1))]
    verdict = judge(sections, targets=())
    assert verdict.exit_code == 1
    [problem] = verdict.problems
    assert (problem.section, problem.figure, problem.kind) == (BURST, "lost", "lost")
    assert "run 2 of 2" in problem.reason
    assert BURST in str(problem)


@pytest.mark.parametrize(("figure", "kind"), [("doubled", "doubled"), ("missed", "missed")])
def test_doubled_and_missed_fail(figure: str, kind: str) -> None:
    verdict = judge([burst_section(burst(**{figure: 2}))], targets=())
    assert not verdict.ok
    assert [(p.figure, p.kind) for p in verdict.problems] == [(figure, kind)]


def test_a_process_that_did_not_exit_cleanly_fails() -> None:
    verdict = judge([burst_section(burst(bad_exits=1))], targets=())
    assert [p.kind for p in verdict.problems] == ["bad exit"]


@pytest.mark.parametrize("bad", [math.nan, math.inf, None])
def test_a_nan_or_none_figure_fails(bad: float) -> None:
    verdict = judge([ceiling_section(), burst_section(burst(drain_rate=bad))], targets=())
    assert verdict.exit_code == 1
    assert [(p.figure, p.kind) for p in verdict.problems] == [("drain_rate", UNMEASURABLE)]


def test_a_nan_figure_named_by_a_target_fails_and_leaves_it_unjudged() -> None:
    sections = [ceiling_section(), burst_section(burst(last_after_due_s=math.nan))]
    verdict = judge(sections, targets=ONLY)
    assert not verdict.ok
    assert verdict.targets[1].status == UNMEASURABLE


def test_a_figure_missing_from_one_run_fails() -> None:
    partial = burst()
    del partial["drain_rate"]
    verdict = judge([burst_section(burst(), partial)], targets=())
    [problem] = verdict.problems
    assert (problem.figure, problem.kind) == ("drain_rate", UNMEASURABLE)
    assert "missing in run 2" in problem.reason


def test_a_target_figure_absent_from_its_section_fails() -> None:
    renamed = Target("delayed-burst", BURST, "drain_speed", ">=", 1, "renamed figure")
    verdict = judge([burst_section(burst())], targets=[renamed])
    assert verdict.targets[0].status == UNMEASURABLE
    assert not verdict.ok


def test_a_missing_ceiling_fails_when_a_target_needs_it() -> None:
    verdict = judge([burst_section(burst())], targets=ONLY)
    assert verdict.exit_code == 1
    assert verdict.ceiling is None
    assert verdict.targets[0].status == UNMEASURABLE
    [problem] = verdict.problems
    assert problem.figure == "drain_rate"
    assert "ceiling was not measured in this run" in problem.reason
    assert [t.status for t in verdict.targets[1:]] == [MET, MET]


def test_an_unmeasured_ceiling_fails_when_a_target_needs_it() -> None:
    verdict = judge([ceiling_section(math.nan), burst_section(burst())], targets=[DRAIN])
    assert verdict.targets[0].status == UNMEASURABLE
    assert {p.section for p in verdict.problems} == {CEILING_SECTION, BURST}


def test_no_ceiling_is_fine_when_no_target_needs_it() -> None:
    verdict = judge([burst_section(burst())], targets=[LAST, LOST])
    assert verdict.ok
    assert verdict.ceiling is None


def test_a_timing_target_not_met_is_reported_but_does_not_fail() -> None:
    slow = burst(drain_rate=1_000.0, last_after_due_s=9.0)
    verdict = judge([ceiling_section(), burst_section(slow)], targets=ONLY)
    assert verdict.ok
    assert [t.status for t in verdict.targets] == [NOT_MET, NOT_MET, MET]


def test_targets_match_the_section_id_not_the_label() -> None:
    other = Section("delayed-burst", "delayed-burst/2k-batch", "10,000 messages, batch", [burst()])
    verdict = judge([ceiling_section(), other], targets=ONLY)
    assert verdict.ok
    assert [t.status for t in verdict.targets] == [NOT_RUN, NOT_RUN, NOT_RUN]


def test_a_failed_repeat_or_scenario_is_unmeasurable() -> None:
    broken = burst_section(burst())
    broken.errors.append("BenchError: worker-0 exited (1) before readiness line")
    verdict = judge([ceiling_section(), broken], {"embedded": "the scenario raised OSError"}, ONLY)
    kinds = {(p.scenario, p.section, p.kind) for p in verdict.problems}
    assert ("delayed-burst", BURST, UNMEASURABLE) in kinds
    assert ("embedded", "", UNMEASURABLE) in kinds
    assert all(t.status == UNMEASURABLE for t in verdict.targets)


def test_a_section_without_runs_fails() -> None:
    verdict = judge([burst_section()], targets=())
    assert [p.reason for p in verdict.problems] == ["no run completed (of 0)"]


def test_section_ids_must_be_unique() -> None:
    verdict = judge([burst_section(burst()), burst_section(burst())], targets=())
    assert [p.reason for p in verdict.problems] == ["two sections share this id"]


def test_ids_belong_to_their_scenario() -> None:
    with pytest.raises(ValueError, match="must start with"):
        Section("delayed-burst", "ceiling/aio-pika", "mislabelled")
    with pytest.raises(ValueError, match="is not of"):
        Target("ceiling", BURST, "drain_rate", ">=", 1, "wrong scenario")


def test_the_real_targets_are_well_formed() -> None:
    assert len({(t.section, t.figure) for t in TARGETS}) == len(TARGETS)
    assert [t.section for t in TARGETS if t.of_ceiling] == ["delayed-burst/10k-batch"]
    assert count_id(100_000) == "100k"
    assert count_id(2_500) == "2500"
