"""The memory backend's state: one store per name and namespace in this process, shared by
every backend object built for it (the embedded scheduler, ``connect("memory://")``, tests),
and the small expiry helpers its parts use."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from jararaca.backends.base import Claimed
from jararaca.backends.memory_control import ControlState
from jararaca.backends.overlap import Mark
from jararaca.settings import run_history
from jararaca.wire import Envelope

FIRE_CLAIM_TTL_MS = 3_600_000


@dataclass(slots=True)
class Pending:
    due_ms: int
    seq: int
    envelope: Envelope


class DueQueue:
    """The delayed queue's order: task ids by due instant, in arrival order within an
    instant (entries are pushed with increasing sequence numbers). A heap of the distinct
    instants, each with a deque of its ``(seq, task_id)``: a burst's messages share their
    instant, so taking one costs a deque pop instead of a heap pop among all the others.
    Entries replaced or cancelled since are left in place; the reader skips them."""

    __slots__ = ("_at", "_instants")

    def __init__(self) -> None:
        self._instants: list[int] = []
        self._at: dict[int, deque[tuple[int, str]]] = {}

    def push(self, due_ms: int, seq: int, task_id: str) -> None:
        ids = self._at.get(due_ms)
        if ids is None:
            ids = self._at[due_ms] = deque()
            heapq.heappush(self._instants, due_ms)
        ids.append((seq, task_id))

    def head(self) -> tuple[int, int, str] | None:
        """The first entry ``(due_ms, seq, task_id)``, or None when empty."""
        instants = self._instants
        while instants:
            ids = self._at[instants[0]]
            if ids:
                seq, task_id = ids[0]
                return instants[0], seq, task_id
            del self._at[heapq.heappop(instants)]
        return None

    def drop_head(self) -> None:
        """Remove the entry :meth:`head` returned."""
        self._at[self._instants[0]].popleft()


@dataclass(slots=True)
class Run:
    owner: str
    lease_ms: int
    attempt: int
    done_until_ms: int | None = None


@dataclass
class Store:
    last_fires: dict[str, int] = field(default_factory=dict)
    fire_claims: dict[str, int] = field(default_factory=dict)  # fire id -> expiry ms
    inflight: dict[str, tuple[int, Claimed]] = field(default_factory=dict)
    inflight_heap: list[tuple[int, str]] = field(default_factory=list)
    pending: dict[str, Pending] = field(default_factory=dict)
    due: DueQueue = field(default_factory=DueQueue)
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
