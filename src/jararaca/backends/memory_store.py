"""The memory backend's state: one store per name and namespace in this process, shared by
every backend object built for it (the embedded scheduler, ``connect("memory://")``, tests),
and the small expiry helpers its parts use."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from jararaca.backends.base import Claimed
from jararaca.backends.memory_control import ControlState
from jararaca.settings import run_history
from jararaca.wire import Envelope

FIRE_CLAIM_TTL_MS = 3_600_000


@dataclass(slots=True)
class Pending:
    due_ms: int
    seq: int
    envelope: Envelope


@dataclass(slots=True)
class Run:
    owner: str
    lease_ms: int
    attempt: int
    done_until_ms: int | None = None


@dataclass(slots=True)
class Mark:
    """An overlap mark: the fire holding it, a cancel request, and the fires waiting for it
    (the Redis backend keeps the same in a HASH, see lua/begin_run.lua)."""

    fire: str | None = None
    owner: str = ""
    lease_ms: int = 0
    at_ms: int = 0  # the holder's order (scheduled instant)
    cancel: str | None = None  # the fire asking the holder to stop
    cancel_at_ms: int = 0
    cancel_until_ms: int = 0
    waiting: dict[str, tuple[int, int]] = field(default_factory=dict)  # fire -> (order, kept)

    def head(self, now_ms: int) -> tuple[int, str, int] | None:
        """The earliest live waiting fire: (order, fire id, kept until ms)."""
        for fire, (_, kept) in list(self.waiting.items()):
            if kept <= now_ms:
                del self.waiting[fire]
        return min(((at, fire, kept) for fire, (at, kept) in self.waiting.items()), default=None)

    def empty(self) -> bool:
        return self.fire is None and self.cancel is None and not self.waiting


@dataclass
class Store:
    last_fires: dict[str, int] = field(default_factory=dict)
    fire_claims: dict[str, int] = field(default_factory=dict)  # fire id -> expiry ms
    inflight: dict[str, tuple[int, Claimed]] = field(default_factory=dict)
    inflight_heap: list[tuple[int, str]] = field(default_factory=list)
    pending: dict[str, Pending] = field(default_factory=dict)
    pending_heap: list[tuple[int, int, str]] = field(default_factory=list)
    runs: dict[str, Run] = field(default_factory=dict)
    # Heaps of (expiry ms, key): pruning pops what expired, O(log n) per key, instead of
    # rescanning the whole dict.
    claim_expiries: list[tuple[int, str]] = field(default_factory=list)
    run_expiries: list[tuple[int, str]] = field(default_factory=list)
    overlap: dict[str, Mark] = field(default_factory=dict)
    listeners: set[asyncio.Event] = field(default_factory=set)
    seq: itertools.count[int] = field(default_factory=itertools.count)
    control: ControlState = field(default_factory=lambda: ControlState(run_history()))

    def empty(self) -> None:
        """Forget all state; keep the listeners (they belong to live beats, not to state)."""
        fresh = Store(listeners=self.listeners)
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))


STORES: dict[str, Store] = {}


def store_for(name: str) -> Store:
    return STORES.setdefault(name, Store())


def reset_memory_stores() -> None:
    """Forget every memory store of this process (for test isolation)."""
    STORES.clear()


def remember(expiries: list[tuple[int, str]], at: int, key: str) -> None:
    heapq.heappush(expiries, (at, key))


def prune(
    expiries: list[tuple[int, str]], now_ms: int, forget: Callable[[str, int], object]
) -> None:
    while expiries and expiries[0][0] <= now_ms:
        at, key = heapq.heappop(expiries)
        forget(key, at)


def forget_run(runs: dict[str, Run], key: str, at: int) -> None:
    run = runs.get(key)
    if run is not None and run.done_until_ms == at:
        del runs[key]


def forget_claim(claims: dict[str, int], key: str, at: int) -> None:
    if claims.get(key) == at:
        del claims[key]
