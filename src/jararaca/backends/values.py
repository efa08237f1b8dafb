"""The values the backend protocols take and return (claims, run starts, backend info).

Kept apart from the protocols in :mod:`jararaca.backends.base`, which re-exports them."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from jararaca.wire import Envelope

# How long a finished run is remembered, so that a late duplicate of it is not run again.
REMEMBER_DONE = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class FireClaim:
    """A beat's wish to dispatch one fire of an action."""

    fire_id: str
    action_id: str
    scheduled_at: datetime
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class Claimed:
    """An envelope a beat now holds in flight: publish it, then ``ack_inflight(inflight_id)``.

    ``due_at`` is the instant a delayed entry was due when claimed (a time policy may have
    moved it after the envelope was built); None for cron fires, whose envelope carries its
    scheduled instant."""

    inflight_id: str
    envelope: Envelope
    due_at: datetime | None = None


class ClaimResult(enum.Enum):
    CLAIMED = "claimed"  # this beat dispatches the fire
    TAKEN = "taken"  # claimed before (another beat, or this one): not again
    PAUSED = "paused"  # the action is paused: the slot is recorded skipped_paused, not run


@dataclass(frozen=True, slots=True)
class DelayedEntry:
    """A message waiting in the delayed queue (what operators list)."""

    task_id: str
    envelope: Envelope
    due_at: datetime


class RunStatus(enum.Enum):
    STARTED = "started"  # the caller owns the run now and must renew, then finish it
    DONE = "done"  # the fire already ran (or was skipped): a duplicate delivery
    BUSY = "busy"  # another worker holds a live lease on this very fire
    OVERLAP = "overlap"  # another fire of the same action is running: this fire is skipped
    WAITING = "waiting"  # another fire of the action runs (or goes first): try again shortly
    # Asked ahead of the fire's instant, and its overlap mark would hold it back (skip, wait
    # or cancel): nothing was changed, ask again at the instant.
    EARLY = "early"


@dataclass(frozen=True, slots=True)
class RunStart:
    status: RunStatus
    attempt: int = 1  # 1 for a first start, 2+ when a dead worker's run is taken over
    busy_until: datetime | None = None  # lease end of the holder, for BUSY and OVERLAP


@dataclass(frozen=True, slots=True)
class BackendInfo:
    """What a backend says about itself, for start-up warnings and ``status``.

    ``in_process`` backends (memory) live and die with the process: there is no server whose
    settings could put data at risk, so the durability warnings do not apply to them."""

    kind: str
    in_process: bool = False
    evicts_keys: bool = False
    persists: bool = True
    detail: str = ""


# What ``begin_run`` does with a fire whose action's previous run is still alive (see there).
OnOverlap = Literal["skip", "wait", "wait_one", "cancel_other"]
