"""Message ids are UUIDs of version 7: unique, and in the order they were made (so that the
keys stored under them land beside each other in a B-tree); instants in headers are UTC text."""

from __future__ import annotations

import multiprocessing
import time
import uuid
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from zoneinfo import ZoneInfo

import pytest

from jararaca.messagebus import message_ids
from jararaca.messagebus.message_ids import new_message_id
from jararaca.wire import format_instant, parse_instant


def test_ids_are_version_7_uuids_in_hex() -> None:
    made = new_message_id()
    parsed = uuid.UUID(made)
    assert len(made) == 32 and made == parsed.hex
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_ids_made_in_one_process_keep_their_order_and_never_repeat() -> None:
    made = [new_message_id() for _ in range(20_000)]  # many share a millisecond
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_ids_carry_the_millisecond_they_were_made_in() -> None:
    before = time.time_ns() // 1_000_000
    made = int(new_message_id()[:12], 16)
    after = time.time_ns() // 1_000_000
    # The counter may have borrowed a millisecond or two from a burst just before.
    assert before <= made <= after + 2


def test_a_full_millisecond_borrows_the_next_one_instead_of_repeating(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frozen = 1_800_000_000_000
    monkeypatch.setattr(time, "time_ns", lambda: frozen * 1_000_000)
    monkeypatch.setattr(message_ids, "_last_ms", 0)
    made = [new_message_id() for _ in range(message_ids._COUNTER_MAX + 3)]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert int(made[0][:12], 16) == frozen
    assert int(made[-1][:12], 16) == frozen + 1


def test_an_instant_is_written_in_utc_whatever_its_zone_and_whatever_came_first() -> None:
    utc = datetime(2026, 3, 1, 12, 0, 0, 123_000, tzinfo=UTC)
    paris = utc.astimezone(ZoneInfo("Europe/Paris"))
    # Equal instants share one cache entry: each form must give the UTC text.
    assert format_instant(paris) == "2026-03-01T12:00:00.123Z"
    assert format_instant(utc) == "2026-03-01T12:00:00.123Z"
    assert parse_instant(format_instant(paris)) == utc


def _make_one_id(out: Queue[str]) -> None:
    out.put(new_message_id())


def test_a_child_forked_while_the_id_lock_was_held_still_makes_ids() -> None:
    out: Queue[str] = multiprocessing.get_context("fork").Queue()
    with message_ids._lock:  # another thread of the parent is inside new_message_id()
        child = multiprocessing.get_context("fork").Process(target=_make_one_id, args=(out,))
        child.start()
    try:
        made = out.get(timeout=20)  # a child stuck on the inherited lock would never answer
        child.join(20)
    finally:
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0
    assert uuid.UUID(made).version == 7
