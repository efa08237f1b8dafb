"""bench.verdict: what fails a bench run (lost, doubled, missed, unmeasurable) and how the
targets are judged. Pure: no servers, no processes."""

from __future__ import annotations

import math

import pytest
from bench.results import Section, count_id
from bench.stats import Figures
from bench.table import limit
from bench.targets import CEILING_SECTION, PLUS, TARGETS, Target
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
    assert [t.section for t in TARGETS if t.of_ceiling] == [
        "delayed-burst/10k-batch",
        "worker-throughput/1-worker",
    ]
    assert {(t.section, t.baseline) for t in TARGETS if t.baseline} == {
        ("delayed-burst/10k-batch-metrics", "delayed-burst/10k-batch"),
        ("cron-precision/1-beat-1-worker-metrics", "cron-precision/1-beat-1-worker"),
        ("redis-cluster/burst-cluster", "redis-cluster/burst-plain"),
    }
    assert count_id(100_000) == "100k"
    assert count_id(2_500) == "2500"


# The cost of metrics: a section measured with --metrics-port against the same section without,
# both of the same run.
METRICS = f"{BURST}-metrics"
DRAIN_COST = Target(
    "delayed-burst", METRICS, "drain_rate", ">=", 0.95, "drain cost", baseline=BURST
)
CRON = "cron-precision/1-beat-1-worker"
P50_COST = Target(
    "cron-precision",
    f"{CRON}-metrics",
    "late_p50_ms",
    "<=",
    1,
    "p50 cost",
    baseline=CRON,
    relation=PLUS,
)


def metrics_section(*runs: Figures) -> Section:
    return Section("delayed-burst", METRICS, "10,000 messages, batch, metrics", list(runs))


def cron_sections(p50_off: float, p50_on: float) -> list[Section]:
    def run(p50: float) -> Figures:
        return {"late_p50_ms": p50, "missed": 0, "doubled": 0, "bad_exits": 0}

    return [
        Section("cron-precision", CRON, "off", [run(p50_off)]),
        Section("cron-precision", f"{CRON}-metrics", "on", [run(p50_on), run(p50_on)]),
    ]


def test_a_cost_within_the_bound_of_its_baseline_is_met() -> None:
    off = burst_section(burst(drain_rate=2_000.0), burst(drain_rate=2_200.0))
    on = metrics_section(burst(drain_rate=2_050.0, scrapes=40))
    verdict = judge([off, on], targets=[DRAIN_COST])
    assert verdict.ok
    [judged] = verdict.targets
    assert judged.status == MET
    assert judged.baseline == 2_100.0  # the baseline section's median
    assert judged.limit == pytest.approx(1_995.0)
    assert limit(judged) == ">= 1,995 (0.95 x 10k-batch 2,100; measured 0.976 x)"
    assert judged.to_json()["baseline_section"] == BURST


def test_a_cost_beyond_the_bound_is_not_met_and_does_not_fail() -> None:
    on = metrics_section(burst(drain_rate=1_900.0))
    verdict = judge([burst_section(burst()), on], targets=[DRAIN_COST])
    assert verdict.ok
    assert [(t.status, t.limit) for t in verdict.targets] == [(NOT_MET, 0.95 * 2_300.0)]


@pytest.mark.parametrize(("p50_on", "status"), [(6.2, MET), (6.4, NOT_MET)])
def test_a_plus_target_adds_its_limit_to_the_baseline(p50_on: float, status: str) -> None:
    verdict = judge(cron_sections(5.3, p50_on), targets=[P50_COST])
    [judged] = verdict.targets
    assert judged.status == status
    assert judged.limit == pytest.approx(6.3)
    assert limit(judged).startswith("<= 6.3 (1-beat-1-worker 5.3 + 1; measured +")


def test_a_missing_baseline_section_is_unmeasurable() -> None:
    verdict = judge([metrics_section(burst())], targets=[DRAIN_COST])
    assert verdict.exit_code == 1
    [judged] = verdict.targets
    assert judged.status == UNMEASURABLE
    assert f"baseline section {BURST} was not run" in judged.reason
    [problem] = verdict.problems
    assert (problem.section, problem.figure) == (METRICS, "drain_rate")
    assert limit(judged) == ">= 0.95 x 10k-batch"


@pytest.mark.parametrize("broken", ["nan", "failed repeat"])
def test_an_unmeasured_baseline_is_unmeasurable(broken: str) -> None:
    off = burst_section(burst(drain_rate=math.nan) if broken == "nan" else burst())
    if broken == "failed repeat":
        off.errors.append("BenchError: beat-0 exited (1) before readiness line")
    verdict = judge([off, metrics_section(burst())], targets=[DRAIN_COST])
    assert verdict.targets[0].status == UNMEASURABLE
    assert "baseline section" in verdict.targets[0].reason
    assert not verdict.ok


def test_a_section_without_its_baseline_target_section_is_not_run() -> None:
    verdict = judge([burst_section(burst())], targets=[DRAIN_COST])
    assert verdict.ok
    assert verdict.targets[0].status == NOT_RUN


def test_a_baseline_is_of_the_same_scenario_and_not_the_section_itself() -> None:
    with pytest.raises(ValueError, match="is not of"):
        Target("delayed-burst", METRICS, "drain_rate", ">=", 1, "x", baseline=CRON)
    with pytest.raises(ValueError, match="baseline of its own"):
        Target("delayed-burst", METRICS, "drain_rate", ">=", 1, "x", baseline=METRICS)
    with pytest.raises(ValueError, match="relation"):
        Target("delayed-burst", METRICS, "drain_rate", ">=", 1, "x", baseline=BURST, relation="x")
