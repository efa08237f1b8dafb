"""The beat: decides what is due and publishes it, exactly once across any number of beats.

A heap holds each action's next fire; the beat sleeps until the earliest of that heap's top,
the delayed queue's head and ``interval`` (its longest blind sleep), and an enqueue of a sooner
delayed message wakes it early. Each due fire is claimed in the backend (so only one beat
dispatches it), published with confirms, then acknowledged; a claim whose beat died is
reclaimed by another beat after its lease and published again.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from jararaca.backends.base import BeatStore, Claimed, ClaimResult, FireClaim
from jararaca.backends.records import ScheduleRecord
from jararaca.brokers.base import Broker
from jararaca.clock import Clock
from jararaca.cron import Cron
from jararaca.errors import CronError, JararacaError
from jararaca.observability.telemetry import Telemetry
from jararaca.outage import Outage
from jararaca.registry import ActionDef
from jararaca.scheduler.dispatch import BeatStats, Dispatcher
from jararaca.scheduler.fires import fire_id
from jararaca.scheduler.planning import first_fires, jitter_offset, keep_late, missed_fires
from jararaca.scheduler.plans import Plan, action_plan, schedule_plan
from jararaca.settings import dispatch_lead_seconds
from jararaca.wire import format_instant

log = logging.getLogger("jararaca.beat")


class Beat:
    def __init__(
        self,
        actions: Sequence[ActionDef],
        backend: BeatStore,
        broker: Broker,
        clock: Clock,
        *,
        interval: float = 1.0,
        lease_seconds: float = 30.0,
        dynamic_schedules: bool = True,
        telemetry: Telemetry | None = None,
        dispatch_lead: float | None = None,
    ) -> None:
        """``dispatch_lead`` (seconds, default ``JARARACA_DISPATCH_LEAD_MS``): how long before
        its instant a cron fire is claimed and published, marked to be run at the instant."""
        self._static = [action_plan(a) for a in actions]
        self.actions: list[Plan] = list(self._static)
        self._by_id = {p.action_id: p for p in self.actions}
        self.backend = backend
        self.broker = broker
        self.clock = clock
        self.interval = interval
        self.lease = timedelta(seconds=lease_seconds)
        self.lead = dispatch_lead_seconds() if dispatch_lead is None else dispatch_lead
        self.telemetry = telemetry or Telemetry()
        self.stats = BeatStats()
        self.dispatcher = Dispatcher(backend, broker, self.stats, self.telemetry)
        self.wakeup = asyncio.Event()
        # (dispatch instant, plan id, scheduled instant, plan generation), instants as epoch
        # seconds (exact for fires, which are whole seconds): a float, often the same one
        # twice, is smaller than a datetime, and the heap holds an entry per action. An entry
        # whose plan is gone (a dynamic schedule deleted) or was replaced since (its
        # generation moved on) is skipped when popped.
        self._heap: list[tuple[float, str, float, int]] = []
        self._generation: dict[str, int] = {}
        self._dynamic_records: dict[str, ScheduleRecord] = {}
        self._started = False
        self._dynamic = dynamic_schedules
        self._schedules_version: int | None = None
        # Fires not yet claimed when an outage began (see tick); the dispatcher keeps what was
        # claimed but not published or not yet forgotten.
        self._unclaimed: list[FireClaim] = []
        self._dropped: dict[str, int] = {}  # per action, missed during an outage

    async def start(self) -> None:
        """Read each action's last fire and plan catch-up and next fires."""
        now = self.clock.now()
        self._heap = []  # a restarted beat plans afresh
        if self._dynamic:
            await self._load_dynamic_plans()
        catch_up = await self._plan(self.actions, now)
        heapq.heapify(self._heap)
        self.backend.add_wakeup_listener(self.wakeup)
        self._started = True
        if catch_up:
            try:
                await self._dispatch_fires(catch_up, now)
            except JararacaError as exc:
                # Kept (unclaimed here, unpublished by the dispatcher): the first ticks try again.
                log.warning("catch-up dispatch failed, retrying with the next tick: %s", exc)

    async def _plan(self, plans: Sequence[Plan], now: datetime) -> list[FireClaim]:
        """Push the next fire of each plan; return the missed fires catch-up still runs."""
        last_fires = await self.backend.get_last_fires([p.action_id for p in plans])
        catch_up: list[FireClaim] = []
        # Many actions share a cron: plan each distinct case once.
        planned: dict[tuple[object, ...], tuple[list[datetime], datetime]] = {}
        never_fired: list[Plan] = []
        for plan in plans:
            last = last_fires.get(plan.action_id)
            if last is None:
                never_fired.append(plan)
                continue
            case = (plan.cron, last, plan.catch_up, plan.catch_up_window)
            if case not in planned:
                planned[case] = first_fires(
                    plan.cron,
                    last_fire=last,
                    now=now,
                    policy=plan.catch_up,
                    window=plan.catch_up_window,
                )
            missed, upcoming = planned[case]
            if missed:
                log.info("%s: catching up %d missed fire(s)", plan.action_id, len(missed))
            catch_up.extend(self._claim(plan, at, now, catch_up=True) for at in missed)
            self._push(plan, upcoming)
        # One that never fired starts at its cron's next fire. Sorted by expression, actions of
        # one cron are neighbours and share it, and no next fire outlives its push: a dict by
        # cron held one per distinct cron, 100,000 at once at the beat's peak memory.
        previous: Cron | None = None
        upcoming = now
        for plan in sorted(never_fired, key=_expression):
            if plan.cron != previous:
                previous = plan.cron
                _, upcoming = first_fires(
                    plan.cron, last_fire=None, now=now, policy=plan.catch_up, window=None
                )
            self._push(plan, upcoming)
        return catch_up

    async def _load_dynamic_plans(self) -> list[Plan]:
        """Read the dynamic schedules when their version changed; return the plans that are
        new or changed (to plan), after dropping those deleted or changed (their heap entries
        are skipped from now on). Nothing is swapped until everything was read."""
        version = await self.backend.schedules_version()
        if version == self._schedules_version:
            return []
        records = {s.schedule_id: s for s in await self.backend.dynamic_schedules()}
        fresh: dict[str, Plan] = {}
        for schedule_id, record in records.items():
            if self._dynamic_records.get(schedule_id) == record:
                continue  # unchanged: keeps its plan and its place in the heap
            try:
                fresh[schedule_id] = schedule_plan(record)
            except CronError as exc:
                log.error("dynamic schedule %s is skipped: %s", schedule_id, exc)
        kept = [p for p in self.actions[len(self._static) :] if p.action_id in records]
        kept = [p for p in kept if p.action_id not in fresh]
        # Deleted and changed schedules: their planned heap entries no longer count.
        for gone in set(self._dynamic_records) - {p.action_id for p in kept}:
            self._generation[gone] = self._generation.get(gone, 0) + 1
        self.actions = self._static + kept + list(fresh.values())
        self._by_id = {p.action_id: p for p in self.actions}
        self._dynamic_records = {i: r for i, r in records.items() if i in self._by_id}
        self._schedules_version = version
        return list(fresh.values())

    async def _refresh_dynamic_plans(self, now: datetime) -> None:
        """Follow schedules created, changed or deleted since the last look (any process may
        change them); the others keep their next fire."""
        if not self._dynamic:
            return
        try:
            fresh = await self._load_dynamic_plans()
        except JararacaError:
            self._schedules_version = None  # read everything again at the next look
            raise
        try:
            catch_up = await self._plan(fresh, now)
        except JararacaError:
            # Not planned: at the next look they count as new again.
            for plan in fresh:
                self._dynamic_records.pop(plan.action_id, None)
            self._schedules_version = None
            raise
        if catch_up:
            await self._dispatch_fires(catch_up, now)

    async def stop(self) -> None:
        self.backend.remove_wakeup_listener(self.wakeup)

    def _push(self, plan: Plan, scheduled_at: datetime) -> None:
        offset = 0.0
        if plan.jitter:
            following = plan.cron.next_after(scheduled_at)
            offset = jitter_offset(
                fire_id(plan.action_id, scheduled_at), plan.jitter, scheduled_at, following
            )
        generation = self._generation.get(plan.action_id, 0)
        scheduled = scheduled_at.timestamp()
        dispatch = scheduled + offset if offset else scheduled
        heapq.heappush(self._heap, (dispatch, plan.action_id, scheduled, generation))

    def _claim(
        self,
        plan: Plan,
        scheduled_at: datetime,
        now: datetime,
        *,
        catch_up: bool = False,
        not_before: datetime | None = None,
    ) -> FireClaim:
        envelope = plan.envelope(scheduled_at, now, catch_up)
        if not_before is not None:
            envelope = envelope.with_headers(not_before=format_instant(not_before))
        return FireClaim(envelope.message_id, plan.action_id, scheduled_at, envelope)

    async def tick(self) -> datetime:
        """Dispatch everything due now; return when to look again."""
        if not self._started:
            await self.start()
        now = self.clock.now()
        await self.dispatcher.retry_leftovers(now)
        claims = self._late_claims(now) + self._due_fires(now)
        if claims:
            await self._dispatch_fires(claims, now)
        await self.dispatcher.reclaim(now, now + self.lease)
        # A large burst of due messages goes by batches; cron fires due meanwhile go out
        # between two batches instead of waiting for the whole burst.
        while await self.dispatcher.delayed_batch(now, now + self.lease):
            now = self.clock.now()
            claims = self._due_fires(now)
            if claims:
                await self._dispatch_fires(claims, now)
        return await self._next_wakeup(self.clock.now())

    def _late_claims(self, now: datetime) -> list[FireClaim]:
        """Fires that could not be claimed during an outage are missed fires now: the
        action's catch-up policy and window decide which of them still run."""
        unclaimed, self._unclaimed = self._unclaimed, []
        by_action: dict[str, list[datetime]] = {}
        for claim in unclaimed:
            by_action.setdefault(claim.action_id, []).append(claim.scheduled_at)
        late: list[FireClaim] = []
        for action_id, slots in by_action.items():
            action = self._by_id.get(action_id)
            if action is None:
                continue  # a dynamic schedule deleted during the outage
            kept = keep_late(slots, now=now, policy=action.catch_up, window=action.catch_up_window)
            if len(kept) < len(slots):
                self._dropped[action_id] = self._dropped.get(action_id, 0) + len(slots) - len(kept)
            late.extend(self._claim(action, at, now, catch_up=True) for at in kept)
        return late

    def _due_fires(self, now: datetime) -> list[FireClaim]:
        claims: list[FireClaim] = []
        # Fires due within the lead go now, marked with their instant: the worker holds them
        # until then, so claim, publish and delivery are done before the slot, not after it.
        # A microsecond of slack: the heap holds float epochs, and turning one back into the
        # datetime the beat sleeps until can round it down by less than a microsecond.
        present = now.timestamp()
        stamp = present + self.lead + 1e-6
        heap = self._heap
        while heap and heap[0][0] <= stamp:
            dispatch_at, action_id, scheduled, generation = heapq.heappop(heap)
            action = self._by_id.get(action_id)
            if action is None or generation != self._generation.get(action_id, 0):
                continue  # a dynamic schedule deleted or replaced since this was planned
            scheduled_at = datetime.fromtimestamp(scheduled, UTC)
            upcoming = action.cron.next_after(scheduled_at)
            if upcoming <= now:
                # The beat fell behind by more than a period (a stalled loop or host): this
                # slot and the ones after it are missed fires, run as the catch-up policy says.
                late = missed_fires(
                    action.cron,
                    after=scheduled_at - timedelta(microseconds=1),
                    now=now,
                    policy=action.catch_up,
                    window=action.catch_up_window,
                )
                claims.extend(self._claim(action, at, now, catch_up=True) for at in late)
                upcoming = action.cron.next_after(now)
                if not self._unclaimed:  # during an outage the recovery summary says it
                    log.warning(
                        "%s: the beat fell %.1f s behind; catch_up=%r runs %d missed fire(s)",
                        action.action_id,
                        (now - scheduled_at).total_seconds(),
                        action.catch_up,
                        len(late),
                    )
            else:
                ahead = dispatch_at > present + 1e-6
                not_before = datetime.fromtimestamp(dispatch_at, UTC) if ahead else None
                claims.append(self._claim(action, scheduled_at, now, not_before=not_before))
            self._push(action, upcoming)
        return claims

    async def _dispatch_fires(self, claims: list[FireClaim], now: datetime) -> None:
        try:
            answers = await self.backend.claim_fires(claims, now=now, lease_until=now + self.lease)
        except JararacaError:
            # The backend is down: keep the fires to claim once it is back, where the
            # catch-up policy decides which still run (late rather than lost).
            self._unclaimed = claims
            raise
        for action_id, dropped in self._dropped.items():
            self.telemetry.fires(action_id, "missed", dropped)
            log.warning(
                "%s: %d fire(s) missed during the outage were dropped by catch_up=%r",
                action_id,
                dropped,
                self._by_id[action_id].catch_up,
            )
        self._dropped.clear()
        won: list[Claimed] = []
        won_by_action: dict[str, int] = {}
        for claim, answer in zip(claims, answers, strict=True):
            if answer is ClaimResult.CLAIMED:
                won.append(Claimed(claim.fire_id, claim.envelope))
                won_by_action[claim.action_id] = won_by_action.get(claim.action_id, 0) + 1
            elif answer is ClaimResult.PAUSED:
                self.stats.fires_paused += 1
                self.telemetry.fires(claim.action_id, "skipped_paused")
                log.info("%s is paused: fire %s skipped", claim.action_id, claim.fire_id)
            else:
                self.stats.fires_lost_race += 1
        await self.dispatcher.publish(won, now)
        self.stats.fires_dispatched += len(won)
        for action_id, count in won_by_action.items():
            self.telemetry.fires(action_id, "dispatched", count)

    async def _next_wakeup(self, now: datetime) -> datetime:
        # Looked at after the due fires went out, so it costs their latency nothing.
        await self._refresh_dynamic_plans(now)
        candidates = [now + timedelta(seconds=self.interval)]
        if self._heap:
            lead_at = self._heap[0][0] - self.lead
            candidates.append(datetime.fromtimestamp(lead_at, tz=now.tzinfo))
        next_due = await self.backend.next_due()
        if next_due is not None:
            candidates.append(next_due)
        return min(candidates)

    async def serve(self, stop: asyncio.Event) -> None:
        """Tick until ``stop`` is set."""
        if not self._started:
            await self.start()
        # A short cap: every second the beat waits is a second of fires late (or, past a
        # period, left to the catch-up policy) once the servers are back.
        outage = Outage("dispatching (Redis or RabbitMQ)", log, cap=2.0)
        while not stop.is_set():
            # Cleared before looking, so an enqueue during the tick still cuts the sleep short.
            self.wakeup.clear()
            try:
                wake_at = await self.tick()
            except JararacaError as exc:
                wake_at = self.clock.now() + timedelta(seconds=outage.failed(exc))
            else:
                outage.recovered()
            sleeper = asyncio.ensure_future(self.clock.sleep_until(wake_at, self.wakeup))
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait([sleeper, stopper], return_when=asyncio.FIRST_COMPLETED)
            for task in (sleeper, stopper):
                task.cancel()


def _expression(plan: Plan) -> str:
    return plan.cron.expr
