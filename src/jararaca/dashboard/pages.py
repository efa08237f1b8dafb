"""The HTML pages people read: schedules (and one schedule), runs, running now, delayed
messages, dead letters and processes. Read-only; the forms on them post to
:mod:`jararaca.dashboard.forms`.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from jararaca.backends.records import OUTCOMES
from jararaca.control import DeadLetterInfo
from jararaca.dashboard.api import ControlDep
from jararaca.dashboard.auth import require_page_access
from jararaca.dashboard.rendering import base_path, render
from jararaca.errors import ConfigError

router = APIRouter(dependencies=[Depends(require_page_access)], include_in_schema=False)

RUNS_SHOWN = 100
DELAYED_SHOWN = 200
DEAD_LETTERS_SHOWN = 200


@router.get("/")
async def home(request: Request) -> RedirectResponse:
    return RedirectResponse(f"{base_path(request)}/schedules", status_code=303)


@router.get("/schedules", response_class=HTMLResponse)
async def schedules(request: Request, control: ControlDep) -> HTMLResponse:
    found = await control.schedules()
    return render(
        request, "schedules.html", now=control.clock.now(), page="schedules", schedules=found
    )


@router.get("/schedules/{action:path}", response_class=HTMLResponse)
async def schedule(request: Request, control: ControlDep, action: str) -> HTMLResponse:
    info = await control.describe(action, next=10)
    return render(
        request,
        "schedule.html",
        now=control.clock.now(),
        page="schedules",
        refresh=False,  # it holds the backfill and pause forms
        info=info,
    )


@router.get("/runs", response_class=HTMLResponse)
async def runs(
    request: Request,
    control: ControlDep,
    action: str | None = None,
    outcome: str | None = None,
) -> HTMLResponse:
    found = await control.runs(action or None, outcome or None, RUNS_SHOWN)
    names = [s.id for s in await control.schedules()]
    return render(
        request,
        "runs.html",
        now=control.clock.now(),
        page="runs",
        runs=found,
        actions=names,
        outcomes=OUTCOMES,
        action=action or "",
        outcome=outcome or "",
    )


@router.get("/running", response_class=HTMLResponse)
async def running(request: Request, control: ControlDep) -> HTMLResponse:
    found = await control.runs(outcome="running", limit=RUNS_SHOWN)
    return render(request, "running.html", now=control.clock.now(), page="running", runs=found)


@router.get("/delayed", response_class=HTMLResponse)
async def delayed(request: Request, control: ControlDep, q: str = "") -> HTMLResponse:
    wanted = q.strip()
    found = await control.delayed(limit=DELAYED_SHOWN)
    if wanted:
        found = [
            d
            for d in found
            if wanted in d.topic or (d.idempotency_key is not None and wanted in d.idempotency_key)
        ]
    return render(
        request, "delayed.html", now=control.clock.now(), page="delayed", messages=found, q=wanted
    )


async def _dead_letters(control: ControlDep) -> tuple[list[DeadLetterInfo], str | None]:
    """The dead letters, or why they cannot be read (no --broker-url): shown on the page."""
    try:
        return await control.dead_letters(limit=DEAD_LETTERS_SHOWN), None
    except ConfigError as exc:
        return [], str(exc)


@router.get("/dead-letters", response_class=HTMLResponse)
async def dead_letters(request: Request, control: ControlDep) -> HTMLResponse:
    found, problem = await _dead_letters(control)
    return render(
        request,
        "dead_letters.html",
        now=control.clock.now(),
        page="dead_letters",
        letters=found,
        problem=problem,
    )


@router.get("/dead-letters/purge", response_class=HTMLResponse)
async def confirm_purge(request: Request, control: ControlDep) -> HTMLResponse:
    """The confirmation step: purging cannot be undone, so it says how many would go."""
    found, problem = await _dead_letters(control)
    return render(
        request,
        "purge.html",
        now=control.clock.now(),
        page="dead_letters",
        refresh=False,
        count=len(found),
        more=len(found) >= DEAD_LETTERS_SHOWN,
        problem=problem,
    )


@router.get("/processes", response_class=HTMLResponse)
async def processes(request: Request, control: ControlDep) -> HTMLResponse:
    found = await control.processes()
    return render(
        request, "processes.html", now=control.clock.now(), page="processes", processes=found
    )
