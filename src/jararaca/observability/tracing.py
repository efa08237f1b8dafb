"""OpenTelemetry spans for publish, delay, dispatch, run and handle, when it is installed.

``pip install 'jararaca[otel]'`` brings opentelemetry-api only: the application brings the SDK
and an exporter, and jararaca's spans join its traces. The trace context travels with each
message in the W3C ``traceparent`` / ``tracestate`` headers (through the global propagator),
in AMQP headers and in the delayed queue alike, so a message delayed inside a traced request
is handled, minutes later and in another process, inside that same trace.

Without opentelemetry installed, :data:`AVAILABLE` is False (found without importing it) and
every helper here returns at once: nothing is imported, nothing is slower.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Literal, Protocol

from jararaca.wire import Envelope

SpanKind = Literal["producer", "consumer"]
Attributes = Mapping[str, str | int]


def _installed() -> bool:
    try:
        return importlib.util.find_spec("opentelemetry.trace") is not None
    except ModuleNotFoundError:  # no "opentelemetry" package at all
        return False


AVAILABLE = _installed()


class _Spans(Protocol):
    """What this module asks of :mod:`jararaca.observability.otel`."""

    def producing(
        self, name: str, envelopes: Sequence[Envelope], attributes: Attributes
    ) -> AbstractContextManager[Sequence[Envelope]]: ...

    def dispatching(
        self, envelopes: Sequence[Envelope]
    ) -> AbstractContextManager[Sequence[Envelope]]: ...

    def consuming(
        self, name: str, envelope: Envelope, attributes: Attributes
    ) -> AbstractContextManager[None]: ...

    def note_outcome(self, outcome: str, error: BaseException | None) -> None: ...


_otel: _Spans | None = None


def _spans() -> _Spans:
    """The OpenTelemetry side, imported on first use and kept: an import statement in each
    helper cost about a microsecond per message (its look-up in ``sys.modules``)."""
    global _otel
    if _otel is None:
        from jararaca.observability import otel

        _otel = otel
    return _otel


def prepare() -> None:
    """Import the OpenTelemetry side now, when tracing is possible: at start-up or connect,
    not in the first message's path (the import took about 13 ms here, 2026-11-29)."""
    if AVAILABLE:
        _spans()


# Reused: entering and leaving a nullcontext keeps no state.
_NOTHING: AbstractContextManager[None] = nullcontext()


def producing(
    name: str, envelopes: Sequence[Envelope], attributes: Attributes
) -> AbstractContextManager[Sequence[Envelope]]:
    """One span around sending ``envelopes`` (one message, or a batch); gives them carrying
    the span's trace context."""
    if not AVAILABLE or not envelopes:
        return nullcontext(envelopes)
    return _spans().producing(name, envelopes, attributes)


def dispatching(envelopes: Sequence[Envelope]) -> AbstractContextManager[Sequence[Envelope]]:
    """A ``jararaca.dispatch`` span per envelope the beat publishes, each in its message's
    trace (a fire starts a trace of its own); gives the envelopes carrying them."""
    if not AVAILABLE or not envelopes:
        return nullcontext(envelopes)
    return _spans().dispatching(envelopes)


def consuming(
    name: str, envelope: Envelope, attributes: Attributes
) -> AbstractContextManager[None]:
    """The span of a run or a handled message, in the trace its envelope carries, current
    while user code runs (its own spans and messages join it)."""
    if not AVAILABLE:
        return _NOTHING
    return _spans().consuming(name, envelope, attributes)


def note_outcome(outcome: str, error: BaseException | None = None) -> None:
    """Mark the current run's span with how it ended (an error status when it failed)."""
    if AVAILABLE:
        _spans().note_outcome(outcome, error)
