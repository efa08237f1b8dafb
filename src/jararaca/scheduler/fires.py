"""The wire form of what the beat publishes: a cron fire (its id, routing key, headers and
body) and a delayed message stamped with its due and dispatch instants."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from jararaca import stored_json, wire
from jararaca.backends.values import Claimed
from jararaca.clock import epoch_ms
from jararaca.registry import ActionDef


def fire_id(action_id: str, scheduled_at: datetime) -> str:
    """``<action_id>@<epoch_ms>``: the same fire gets the same id in every beat."""
    return f"{action_id}@{epoch_ms(scheduled_at)}"


# fire_envelope's parameter shadows the function inside it.
_slot_fire_id = fire_id


def manual_fire_id(action_id: str, now: datetime) -> str:
    """``<action_id>@manual-<epoch_ms>``: a fire an operator asked for, never a cron slot's."""
    return f"{action_id}@manual-{epoch_ms(now)}"


def fire_envelope(
    action: ActionDef,
    scheduled_at: datetime,
    *,
    now: datetime,
    catch_up: bool = False,
    fire_id: str | None = None,
) -> wire.Envelope:
    """The envelope of one fire; ``fire_id`` overrides the slot's id (manual fires)."""
    identity = fire_id or _slot_fire_id(action.action_id, scheduled_at)
    scheduled = wire.format_instant(scheduled_at)
    dispatched = wire.format_instant(now)
    body = {
        "action_id": action.action_id,
        "fire_id": identity,
        "scheduled_at": scheduled,
        "dispatched_at": dispatched,
    }
    headers = {
        wire.KIND: "action",
        wire.ACTION: action.action_id,
        wire.SCHEDULED_AT: scheduled,
        wire.DISPATCHED_AT: dispatched,
        wire.ATTEMPT: "1",
    }
    if catch_up:
        headers[wire.CATCH_UP] = "1"
    return wire.Envelope(
        message_id=identity,
        routing_key=action.routing_key,
        body=stored_json.dumps_bytes(body),
        headers=headers,
    )


def outgoing_envelopes(claimed: Sequence[Claimed], now: datetime) -> list[wire.Envelope]:
    """The envelopes as the beat publishes them: a delayed message carries the instant it was
    due (a time policy may have moved it after it was built) and when it was dispatched.

    Each instant is written once per batch: the batch shares ``now``, and a burst's
    messages their due instant."""
    dispatched = wire.format_instant(now)
    last_due: datetime | None = None
    due_text = ""
    envelopes: list[wire.Envelope] = []
    for claim in claimed:
        sent = claim.envelope
        if claim.due_at is None:
            envelopes.append(sent)
            continue
        if claim.due_at != last_due:
            last_due, due_text = claim.due_at, wire.format_instant(claim.due_at)
        headers = {**sent.headers, wire.DUE_AT: due_text, wire.DISPATCHED_AT: dispatched}
        envelopes.append(wire.Envelope(sent.message_id, sent.routing_key, sent.body, headers))
    return envelopes
