"""The JSON API under ``/api/``: the pages' powers for scripts, described at ``/openapi.json``.

GETs list, POSTs act; every answer is one of the control plane's models (or a small result
model here), and every call goes through :class:`jararaca.control.Control`. A bad input (an
unknown action, a bad backfill window) is a 400 or 404 with the Control's message as
``detail``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict

from jararaca.control import (
    Control,
    DeadLetterInfo,
    DelayedInfo,
    ProcessInfo,
    RunInfo,
    ScheduleInfo,
)
from jararaca.dashboard.auth import guard_of, require_api_access
from jararaca.errors import ConfigError


class Problem(BaseModel):
    """Why a call was refused: one paragraph naming the bad value and what to do."""

    detail: str


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PauseRequest(_Body):
    reason: str | None = None


class BackfillRequest(_Body):
    start: datetime
    end: datetime


class CancelRequest(_Body):
    """Exactly one of the two."""

    idempotency_key: str | None = None
    message_id: str | None = None


class ReplayRequest(_Body):
    ids: list[str] | None = None  # None: every dead letter


class Resumed(BaseModel):
    action: str
    was_paused: bool


class Triggered(BaseModel):
    fire_id: str


class Backfilled(BaseModel):
    fire_ids: list[str]


class Cancelled(BaseModel):
    cancelled: bool


class Replayed(BaseModel):
    replayed: int


class Purged(BaseModel):
    purged: int


class CsrfToken(BaseModel):
    csrf_token: str


PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "Bad input, e.g. an unknown action"},
    401: {"model": Problem, "description": "The dashboard's token is missing or wrong"},
    403: {"model": Problem, "description": "A POST without Bearer lacks the X-CSRF-Token header"},
    503: {"model": Problem, "description": "The backend or broker cannot be reached"},
}

router = APIRouter(prefix="/api", dependencies=[Depends(require_api_access)], responses=PROBLEMS)

Limit = Annotated[int, Query(ge=1, le=1000)]


def control_of(request: Request) -> Control:
    control: Control = request.app.state.control
    return control


ControlDep = Annotated[Control, Depends(control_of)]


@router.get("/csrf", response_model=CsrfToken)
async def csrf(request: Request) -> CsrfToken:
    """The value of the X-CSRF-Token header for POSTs not authenticated by Bearer."""
    return CsrfToken(csrf_token=guard_of(request).csrf_token)


@router.get("/schedules", response_model=list[ScheduleInfo])
async def list_schedules(control: ControlDep) -> list[ScheduleInfo]:
    """Every action and dynamic schedule, with its next 5 fires, pause and last run."""
    return await control.schedules()


@router.get(
    "/schedules/{action}",
    response_model=ScheduleInfo,
    responses={404: {"model": Problem, "description": "No such action or schedule"}},
)
async def describe_schedule(
    control: ControlDep, action: str, next: Annotated[int, Query(ge=0, le=100)] = 10
) -> ScheduleInfo:
    """One action (by id or name) with its next fires and its last 20 runs."""
    try:
        return await control.describe(action, next=next)
    except ConfigError as unknown:
        raise HTTPException(status_code=404, detail=str(unknown)) from None


@router.post("/schedules/{action}/pause", response_model=ScheduleInfo)
async def pause(control: ControlDep, action: str, body: PauseRequest | None = None) -> ScheduleInfo:
    """Stop firing from the next slot on, in every beat (skipped slots are not replayed)."""
    await control.pause(action, body.reason if body else None)
    return await control.describe(action, next=1)


@router.post("/schedules/{action}/resume", response_model=Resumed)
async def resume(control: ControlDep, action: str) -> Resumed:
    """Fire again from the next slot on."""
    was_paused = await control.resume(action)
    info = await control.describe(action, next=0)
    return Resumed(action=info.id, was_paused=was_paused)


@router.post("/schedules/{action}/trigger", response_model=Triggered)
async def trigger(control: ControlDep, action: str) -> Triggered:
    """Run the action once now (its overlap rules apply)."""
    return Triggered(fire_id=await control.trigger(action))


@router.post("/schedules/{action}/backfill", response_model=Backfilled)
async def backfill(control: ControlDep, action: str, body: BackfillRequest) -> Backfilled:
    """Queue every slot in [start, end) that has not run (aware instants, in the past)."""
    return Backfilled(fire_ids=await control.backfill(action, body.start, body.end))


@router.get("/runs", response_model=list[RunInfo])
async def list_runs(
    control: ControlDep,
    action: str | None = None,
    outcome: str | None = None,
    limit: Limit = 50,
) -> list[RunInfo]:
    """The latest runs, newest scheduled first."""
    return await control.runs(action or None, outcome or None, limit)


@router.get("/running", response_model=list[RunInfo])
async def list_running(control: ControlDep, limit: Limit = 100) -> list[RunInfo]:
    """Runs started and not finished."""
    return await control.runs(outcome="running", limit=limit)


@router.get("/delayed", response_model=list[DelayedInfo])
async def list_delayed(
    control: ControlDep, topic: str | None = None, key: str | None = None, limit: Limit = 100
) -> list[DelayedInfo]:
    """Pending delayed messages, soonest first (of one topic; whose key contains ``key``)."""
    found = await control.delayed(topic=topic or None, limit=limit)
    return [d for d in found if not key or (d.idempotency_key and key in d.idempotency_key)]


@router.post("/delayed/cancel", response_model=Cancelled)
async def cancel_delayed(control: ControlDep, body: CancelRequest) -> Cancelled:
    removed = await control.cancel_delayed(
        idempotency_key=body.idempotency_key, message_id=body.message_id
    )
    return Cancelled(cancelled=removed)


@router.get("/dead-letters", response_model=list[DeadLetterInfo])
async def list_dead_letters(control: ControlDep, limit: Limit = 100) -> list[DeadLetterInfo]:
    return await control.dead_letters(limit=limit)


@router.post("/dead-letters/replay", response_model=Replayed)
async def replay_dead_letters(control: ControlDep, body: ReplayRequest | None = None) -> Replayed:
    """Publish dead letters (these ids, or all) back where they came from."""
    return Replayed(replayed=await control.replay_dead_letters(body.ids if body else None))


@router.post("/dead-letters/purge", response_model=Purged)
async def purge_dead_letters(control: ControlDep) -> Purged:
    """Drop every dead letter."""
    return Purged(purged=await control.purge_dead_letters())


@router.get("/processes", response_model=list[ProcessInfo])
async def list_processes(control: ControlDep) -> list[ProcessInfo]:
    """Beats and workers by their heartbeats (alive, or gone after 3 silent periods)."""
    return await control.processes()
