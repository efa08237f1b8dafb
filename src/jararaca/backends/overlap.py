"""The overlap policies' rules, shared by the in-process backends (memory, SQLite): an overlap
mark per action and what a fire may do given it. The Redis backend keeps the same mark in a
HASH and the same rules in ``lua/begin_run.lua``; the contract tests hold all three to them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jararaca import stored_json
from jararaca.backends.values import OnOverlap, RunStatus


@dataclass(slots=True)
class Mark:
    """An overlap mark: the fire holding it, a cancel request, and the fires waiting for it."""

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

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "f": self.fire,
            "o": self.owner,
            "l": self.lease_ms,
            "a": self.at_ms,
            "c": self.cancel,
            "ca": self.cancel_at_ms,
            "cu": self.cancel_until_ms,
            "w": {fire: list(v) for fire, v in self.waiting.items()},
        }
        return stored_json.dumps(data)

    @classmethod
    def from_json(cls, raw: str) -> Mark:
        d = stored_json.loads(raw)
        waiting = {fire: (int(v[0]), int(v[1])) for fire, v in d["w"].items()}
        return cls(d["f"], d["o"], d["l"], d["a"], d["c"], d["ca"], d["cu"], waiting)


def overlap_decision(
    mark: Mark,
    fire: str,
    order: int,
    on_overlap: OnOverlap,
    now_ms: int,
    lease_ms: int,
    *,
    ahead: bool = False,
) -> tuple[RunStatus, int | None] | None:
    """What ``on_overlap`` makes of ``fire`` given the mark: None when it may start, else
    OVERLAP (skip it) or WAITING with the instant that blocks it. ``ahead`` (asked before
    the fire's instant): what would skip or wait changes nothing and is EARLY instead."""
    if mark.fire == fire:  # taken over after its worker died: it resumes at once
        return None
    holding = mark.fire is not None and mark.lease_ms > now_ms
    head = mark.head(now_ms)
    registered = fire in mark.waiting
    my_turn = head is None or head[1] == fire or (order, fire) < head[:2]
    blocked_until = mark.lease_ms if holding else None if head is None else head[2]

    def wait() -> tuple[RunStatus, int | None]:
        if ahead:
            return RunStatus.EARLY, blocked_until
        mark.waiting[fire] = (order, lease_ms)
        return RunStatus.WAITING, blocked_until

    def skip(until_ms: int | None) -> tuple[RunStatus, int | None]:
        return (RunStatus.EARLY if ahead else RunStatus.OVERLAP), until_ms

    if on_overlap == "skip":
        if holding:
            return skip(mark.lease_ms)
        # A missed slot waits to run (catch-up): it goes first, or fires arriving whenever the
        # mark is free could keep it waiting for ever (it looks again only every second).
        return None if my_turn else skip(blocked_until)
    if on_overlap == "wait":
        return wait() if holding or not my_turn else None
    if on_overlap == "wait_one":
        if not registered and head is not None:
            return skip(blocked_until)  # another fire already waits
        return wait() if holding or not my_turn else None
    # cancel_other: the latest fire wins; an earlier one, running or waiting, gives way.
    asking = mark.cancel is not None and mark.cancel_until_ms > now_ms
    if (holding and (order, fire) < (mark.at_ms, mark.fire or "")) or (
        asking and (order, fire) < (mark.cancel_at_ms, mark.cancel or "")
    ):
        return skip(blocked_until)
    if holding:
        if ahead:
            return RunStatus.EARLY, mark.lease_ms
        mark.cancel, mark.cancel_at_ms, mark.cancel_until_ms = fire, order, lease_ms
        return RunStatus.WAITING, mark.lease_ms
    return None
