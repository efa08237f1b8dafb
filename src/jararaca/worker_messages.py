"""How a worker handles a message: read it, run its handler once per (handler, message,
attempt), retry through the delayed queue with backoff, dead-letter when the retries are spent.

Mixed into :class:`jararaca.worker.Worker`, which owns the state used here."""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta
from functools import partial

from pydantic import ValidationError

from jararaca import wire
from jararaca.backends.base import WorkerStore
from jararaca.backends.records import RunRecord
from jararaca.brokers.base import Delivery
from jararaca.clock import Clock
from jararaca.declarations import MessageContext
from jararaca.invoke import call_exception_handler
from jararaca.microservice import Container
from jararaca.observability.telemetry import MessageOutcome, Telemetry
from jararaca.registry import HandlerDef
from jararaca.runs import RunGuard, WorkerStats

log = logging.getLogger("jararaca.worker")


class MessageHandling:
    """The message side of the worker."""

    backend: WorkerStore
    clock: Clock
    owner: str
    stats: WorkerStats
    dedupe: timedelta
    max_message_bytes: int
    _runs: RunGuard
    _container: Container
    telemetry: Telemetry

    async def _dead_letter(self, delivery: Delivery, reason: str, handler: str) -> None:
        raise NotImplementedError

    async def _run_message(self, handler: HandlerDef, delivery: Delivery) -> None:
        envelope = delivery.envelope
        spec = handler.spec
        if len(envelope.body) > self.max_message_bytes:
            await self._dead_letter(
                delivery,
                f"message too large: {len(envelope.body):,} bytes, over the "
                f"{self.max_message_bytes:,}-byte limit (JARARACA_MAX_MESSAGE_BYTES)",
                handler.handler_id,
            )
            return
        try:
            message = spec.message_type.model_validate_json(envelope.body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "body"
            problem = f"{where}: {first.get('msg')}"
            await self._dead_letter(
                delivery,
                f"invalid payload for {spec.message_type.__qualname__}: {problem}",
                handler.handler_id,
            )
            return
        context = MessageContext(
            message_id=envelope.message_id,
            topic=envelope.headers.get(wire.TOPIC, envelope.routing_key),
            published_at=header_instant(envelope.headers.get(wire.PUBLISHED_AT)),
            due_at=header_instant(envelope.headers.get(wire.DUE_AT)),
            attempt=envelope.attempt,
        )
        # One run per (handler, message, attempt): a message published twice (its beat died
        # after publishing, before forgetting it) or redelivered is handled once.
        run_key = f"msg:{handler.handler_id}:{envelope.message_id}:{context.attempt}"
        run_key += replay_suffix(envelope)
        running = self._schedule_record(envelope, context)
        started_at = self.clock.now()
        start = await self._runs.begin(
            delivery,
            run_key,
            None,
            recheck_routing_key=handler.retry_routing_key,
            remember_for=self.dedupe,
            record=running,
            now=started_at,
        )
        if start is None:
            return
        method = getattr(self._container.get(handler.controller), handler.attribute)
        call = partial(method, message, context) if spec.takes_context else partial(method, message)
        error = await self._runs.run_owned(run_key, None, call, spec.timeout, running)
        finished_at = self.clock.now()
        if error is None:
            self.stats.messages_handled += 1
            ended = running and running.ended("succeeded", finished_at=finished_at)
            await self._runs.finish(
                delivery, run_key, None, self.dedupe, record=ended, now=finished_at
            )
            self._report(handler, context, "handled", started_at, finished_at)
            return
        self.stats.messages_failed += 1
        log.error(
            "handler %s failed on message %s (attempt %d): %r",
            handler.handler_id,
            envelope.message_id,
            context.attempt,
            error,
        )
        self._report(handler, context, "failed", started_at, finished_at)
        await call_exception_handler(spec.exception_handler, error, context, handler.handler_id)
        # The retry (or dead letter) first, the record after: should the first fail, the
        # message comes back and this attempt is tried again rather than acked as done.
        if context.attempt <= spec.retries:
            await self._retry(handler, delivery, context.attempt)
        else:
            tries = f"after {context.attempt} attempt(s)"
            await self._dead_letter(
                delivery,
                f"handler {handler.handler_id} failed {tries}: {error!r}",
                handler.handler_id,
            )
        failed = running and running.ended("failed", finished_at=self.clock.now(), error=error)
        await self._runs.record_done(run_key, None, self.dedupe, record=failed)

    def _report(
        self,
        handler: HandlerDef,
        context: MessageContext,
        outcome: MessageOutcome,
        started_at: datetime,
        finished_at: datetime,
    ) -> None:
        self.telemetry.message_ended(
            message_id=context.message_id,
            handler=handler.handler_id,
            topic=context.topic,
            outcome=outcome,
            started_at=started_at,
            finished_at=finished_at,
            expected_at=context.due_at or context.published_at,
            attempt=context.attempt,
        )

    def _schedule_record(
        self, envelope: wire.Envelope, context: MessageContext
    ) -> RunRecord | None:
        """A fire of a dynamic schedule goes into the schedule's run history, as an action's
        fire does (when a topic has several handlers, the last one to finish is recorded)."""
        schedule_id = envelope.headers.get(wire.SCHEDULE)
        scheduled_at = header_instant(envelope.headers.get(wire.SCHEDULED_AT))
        if not schedule_id or scheduled_at is None:
            return None
        return RunRecord(
            envelope.message_id,
            schedule_id,
            scheduled_at,
            "running",
            started_at=self.clock.now(),
            worker=self.owner,
            attempt=context.attempt,
        )

    async def _retry(self, handler: HandlerDef, delivery: Delivery, attempt: int) -> None:
        base = handler.spec.retry_delay * 2 ** (attempt - 1)
        delay = base * random.uniform(0.5, 1.0)  # jitter spreads a burst of failures
        envelope = delivery.envelope
        retry = wire.Envelope(
            envelope.message_id,
            handler.retry_routing_key,
            envelope.body,
            {**envelope.headers, wire.ATTEMPT: str(attempt + 1)},
        )
        await self.backend.enqueue_delayed(
            retry,
            self.clock.now() + timedelta(seconds=delay),
            task_id=f"retry:{handler.handler_id}:{envelope.message_id}:{attempt + 1}",
        )
        self.stats.retried += 1
        self.telemetry.count_message(handler.handler_id, "retried")
        await delivery.ack()


def replay_suffix(envelope: wire.Envelope) -> str:
    """A replayed dead letter is a new run of its message or fire (see ``wire.REPLAY``)."""
    replay = envelope.headers.get(wire.REPLAY)
    return f"#replay-{replay}" if replay else ""


def header_instant(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return wire.parse_instant(text)
    except ValueError:
        return None
