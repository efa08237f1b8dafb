"""The OpenTelemetry side of :mod:`jararaca.observability.tracing` (imported only when
opentelemetry-api is installed). Spans are named ``jararaca.<step>`` and carry the message or
fire id as attributes; the context goes in and out of message headers through the global
propagator (W3C trace context unless the application set another).

Without an SDK (no tracer provider set, or a no-op one) nothing would record a span, so none is
made: the trace context a message carries is only passed on (current while its handler runs,
written into what it sends), which costs a header lookup per message instead of a span."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import replace

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode

from jararaca import wire
from jararaca.wire import Envelope

_tracer = trace.get_tracer("jararaca")
# As jararaca.observability.tracing.Attributes (not imported: that module imports this one).
Attributes = Mapping[str, str | int]
FAILED_OUTCOMES = frozenset({"failed", "timed_out", "cancelled", "dead_lettered"})


class _SdkWatch:
    """Whether the application installed a tracer provider that records spans (an SDK).

    Asked for every message: a yes is kept (OpenTelemetry sets the global provider once, for
    good); a no is asked again at most every ``RECHECK`` seconds, since an application may
    install its SDK after jararaca started. Asking costs about 2.5 us (OpenTelemetry looks
    in the environment each time), a tenth of what the embedded mode spends on a message."""

    RECHECK = 0.5

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._installed = False
        self._asked_at = -self.RECHECK

    def __call__(self) -> bool:
        if not self._installed:
            now = self._clock()
            if now - self._asked_at >= self.RECHECK:
                self._asked_at = now
                provider = trace.get_tracer_provider()
                self._installed = not isinstance(provider, _NO_SDK)
        return self._installed


_NO_SDK = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
_recording = _SdkWatch()
_NOTHING: AbstractContextManager[None] = nullcontext()


def _current_context_is_valid() -> bool:
    return trace.get_current_span().get_span_context().is_valid


def _attributes(envelope: Envelope, extra: Attributes) -> dict[str, str | int]:
    found: dict[str, str | int] = {
        "messaging.system": "jararaca",
        "messaging.message.id": envelope.message_id,
        "messaging.destination.name": envelope.routing_key,
    }
    found.update(extra)
    return found


@contextmanager
def producing(
    name: str, envelopes: Sequence[Envelope], attributes: Attributes
) -> Iterator[list[Envelope]]:
    if not _recording():
        if not _current_context_is_valid():
            yield list(envelopes)
            return
        carrier: dict[str, str] = {}
        propagate.inject(carrier)  # pass on the trace this code runs in
        yield [replace(e, headers={**e.headers, **carrier}) for e in envelopes]
        return
    first = envelopes[0]
    found = _attributes(first, attributes)
    if len(envelopes) > 1:
        del found["messaging.message.id"]
        found["messaging.batch.message_count"] = len(envelopes)
    with _tracer.start_as_current_span(name, kind=SpanKind.PRODUCER, attributes=found):
        carrier = {}
        propagate.inject(carrier)  # once: every message of a batch is sent by this span
        yield [replace(e, headers={**e.headers, **carrier}) for e in envelopes]


@contextmanager
def dispatching(envelopes: Sequence[Envelope]) -> Iterator[Sequence[Envelope]]:
    if not _recording():  # the envelopes keep the context they carry
        yield envelopes
        return
    # Started, not made current: each belongs to its own message's trace (a fire's is new).
    spans = []
    stamped = []
    for envelope in envelopes:
        attributes = _attributes(envelope, {})
        action = envelope.headers.get(wire.ACTION)
        if action:
            attributes["jararaca.action"] = action
        span = _tracer.start_span(
            "jararaca.dispatch",
            context=propagate.extract(envelope.headers) if _has_context(envelope) else Context(),
            kind=SpanKind.PRODUCER,
            attributes=attributes,
        )
        spans.append(span)
        headers = dict(envelope.headers)
        propagate.inject(headers, context=trace.set_span_in_context(span))
        stamped.append(replace(envelope, headers=headers))
    try:
        yield stamped
    except BaseException as exc:
        for span in spans:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"publish failed: {exc}"))
        raise
    finally:
        for span in spans:
            span.end()


def consuming(
    name: str, envelope: Envelope, attributes: Attributes
) -> AbstractContextManager[None]:
    if _recording():
        return _consuming_span(name, envelope, attributes)
    if not _has_context(envelope):
        return _NOTHING
    return _carrying(envelope)


@contextmanager
def _carrying(envelope: Envelope) -> Iterator[None]:
    """No SDK: the message's trace context is current, for what its handler sends."""
    token = otel_context.attach(propagate.extract(envelope.headers))
    try:
        yield
    finally:
        otel_context.detach(token)


@contextmanager
def _consuming_span(name: str, envelope: Envelope, attributes: Attributes) -> Iterator[None]:
    parent = propagate.extract(envelope.headers) if _has_context(envelope) else None
    with _tracer.start_as_current_span(
        name,
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes=_attributes(envelope, attributes),
    ):
        yield


def note_outcome(outcome: str, error: BaseException | None) -> None:
    if not _recording():  # no SDK, no span to mark
        return
    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.set_attribute("jararaca.outcome", outcome)
    if outcome in FAILED_OUTCOMES:
        description = f"{type(error).__name__}: {error}" if error is not None else outcome
        span.set_status(Status(StatusCode.ERROR, description))


def _has_context(envelope: Envelope) -> bool:
    return "traceparent" in envelope.headers
