"""Pure planning: which fires are due, catch-up after downtime, and jitter.

Every function takes ``now``; none reads the clock or does I/O, so all of it is unit-tested
with plain datetimes.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from jararaca.cron import Cron
from jararaca.declarations.actions import CatchUp

CATCH_UP_CAP = 100


def missed_fires(
    cron: Cron,
    *,
    after: datetime,
    now: datetime,
    policy: CatchUp,
    window: float | None,
) -> list[datetime]:
    """The slots in ``(after, now]`` to run late under the catch-up ``policy``, ascending.

    ``latest`` gives the most recent slot, ``all`` up to the most recent 100, ``none`` nothing;
    ``window`` (seconds) drops slots older than ``now - window``.
    """
    if policy == "none" or cron.next_after(after) > now:
        # The second test is the usual restart (no slot passed while the beat was down), and
        # a next fire costs far less than the walk backwards below.
        return []
    oldest = None if window is None else now - timedelta(seconds=window)
    limit = 1 if policy == "latest" else CATCH_UP_CAP
    found: list[datetime] = []
    for slot in cron.iter_at_or_before(now):
        if slot <= after or (oldest is not None and slot < oldest) or len(found) == limit:
            break
        found.append(slot)
    found.reverse()
    return found


def keep_late(
    slots: list[datetime], *, now: datetime, policy: CatchUp, window: float | None
) -> list[datetime]:
    """Of the ascending ``slots`` that could not be dispatched in time (the backend was
    unreachable), the ones still to run now: the same catch-up rules as :func:`missed_fires`."""
    if policy == "none":
        return []
    oldest = None if window is None else now - timedelta(seconds=window)
    kept = [at for at in slots if oldest is None or at >= oldest]
    return kept[-1:] if policy == "latest" else kept[-CATCH_UP_CAP:]


def first_fires(
    cron: Cron,
    *,
    last_fire: datetime | None,
    now: datetime,
    policy: CatchUp,
    window: float | None,
) -> tuple[list[datetime], datetime]:
    """At beat start: the missed slots to run now and the next slot to wait for.

    An action that never fired starts at its next slot, never "immediately"."""
    missed = (
        []
        if last_fire is None
        else missed_fires(cron, after=last_fire, now=now, policy=policy, window=window)
    )
    return missed, cron.next_after(now)


def jitter_offset(
    fire_id: str, jitter: float, scheduled_at: datetime, next_slot: datetime
) -> float:
    """Seconds to delay a fire, in ``[0, jitter)`` and short of the next slot.

    Derived from the fire id, so every beat picks the same offset for the same fire."""
    if jitter <= 0:
        return 0.0
    gap = (next_slot - scheduled_at).total_seconds()
    bound = min(jitter, gap * 0.9)
    digest = hashlib.blake2b(fire_id.encode(), digest_size=8).digest()
    return bound * int.from_bytes(digest, "big") / 2**64
