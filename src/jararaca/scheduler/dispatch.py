"""How a beat hands claimed work to the broker: published with confirms, then forgotten by
the backend, and nothing forgotten before it is safely in the broker.

What an outage interrupts (claimed but not published, published but not yet forgotten) is kept
and tried again at the next tick; should the beat die meanwhile, another beat reclaims the
entries after their lease and publishes them again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from jararaca.backends.base import BeatStore, Claimed
from jararaca.brokers.base import Broker
from jararaca.errors import JararacaError
from jararaca.observability import tracing
from jararaca.observability.telemetry import Telemetry
from jararaca.scheduler.fires import outgoing_envelopes

log = logging.getLogger("jararaca.beat")
DELAYED_BATCH = 1000


@dataclass
class BeatStats:
    fires_dispatched: int = 0
    fires_lost_race: int = 0  # another beat had claimed them: expected with several beats
    fires_paused: int = 0  # recorded skipped_paused instead of dispatched
    delayed_dispatched: int = 0
    reclaimed: int = 0
    publish_failures: int = 0


class Dispatcher:
    def __init__(
        self, backend: BeatStore, broker: Broker, stats: BeatStats, telemetry: Telemetry
    ) -> None:
        self.backend = backend
        self.broker = broker
        self.stats = stats
        self.telemetry = telemetry
        self._unpublished: list[Claimed] = []
        self._unacked: list[str] = []

    async def retry_leftovers(self, now: datetime) -> None:
        """After an outage: publish what was claimed but not published, and forget what was
        published but not yet forgotten."""
        if self._unacked:
            ids, self._unacked = self._unacked, []
            await self._ack(ids)
        if self._unpublished:
            claimed, self._unpublished = self._unpublished, []
            await self.publish(claimed, now)

    async def reclaim(self, now: datetime, lease_until: datetime) -> None:
        """Publish again what a dead beat claimed and never confirmed."""
        reclaimed = await self.backend.reclaim_inflight(
            now=now, lease_until=lease_until, limit=DELAYED_BATCH
        )
        if reclaimed:
            log.warning(
                "republishing %d message(s) whose beat died before confirming", len(reclaimed)
            )
            self.stats.reclaimed += len(reclaimed)
            await self.publish(reclaimed, now)

    async def delayed_batch(self, now: datetime, lease_until: datetime) -> bool:
        """Publish one batch of due delayed messages; True when more may be due."""
        batch = await self.backend.claim_due(now=now, lease_until=lease_until, limit=DELAYED_BATCH)
        if batch:
            await self.publish(batch, now)
            self.stats.delayed_dispatched += len(batch)
            self.telemetry.delayed_published(
                (now - c.due_at).total_seconds() for c in batch if c.due_at is not None
            )
        return len(batch) == DELAYED_BATCH

    async def publish(self, claimed: list[Claimed], now: datetime) -> None:
        """Publish with confirms, then forget the in-flight entries; on failure keep them for
        the next tick. Delayed messages go out stamped with their due instant and ``now``."""
        if not claimed:
            return
        envelopes = outgoing_envelopes(claimed, now)
        try:
            with tracing.dispatching(envelopes) as traced:
                await self.broker.publish(traced)
        except JararacaError:
            self.stats.publish_failures += 1
            self._unpublished.extend(claimed)
            raise
        await self._ack([c.inflight_id for c in claimed])

    async def _ack(self, inflight_ids: list[str]) -> None:
        try:
            await self.backend.ack_inflight(inflight_ids)
        except JararacaError:
            self._unacked.extend(inflight_ids)
            raise
