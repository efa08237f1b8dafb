"""``@ScheduledAction``: declares a controller method as a cron-scheduled action.

Everything is validated when the decorator runs (at import): a bad cron, time zone, option or
method shape raises at once, naming the culprit, instead of surfacing in production later.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Literal, TypeVar, cast, get_args

from jararaca.cron import Cron
from jararaca.declarations._signatures import (
    check_name_and_group,
    positional_params,
    qualified_name,
)
from jararaca.errors import ConfigError, CronError

CatchUp = Literal["none", "latest", "all"]
CATCH_UP_POLICIES: tuple[str, ...] = get_args(CatchUp)
# What a fire does when the previous run of its action is still running (Temporal's names).
OverlapPolicy = Literal["skip", "allow_all", "buffer_one", "buffer_all", "cancel_other"]
OVERLAP_POLICIES: tuple[str, ...] = get_args(OverlapPolicy)
ACTION_ATTR = "__jararaca_action__"
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class ScheduledRun:
    """What an action (or its exception handler) may receive about the current fire."""

    action_id: str
    scheduled_at: datetime
    fire_id: str
    attempt: int = 1


class ScheduledAction:
    """Run the decorated ``async`` method on a cron schedule.

    ``cron`` has 5 fields, or 6 with seconds first, or a macro such as ``@hourly``; it is read
    in ``tz`` (IANA name or tzinfo; default ``JARARACA_DEFAULT_TIMEZONE`` or UTC).

    ``overlap`` says what a fire does while the previous run of the action is still running,
    anywhere: ``"skip"`` it (the default, ``allow_overlap=False``), ``"allow_all"`` (start it
    anyway, ``allow_overlap=True``), ``"buffer_one"`` (at most one fire waits and starts when
    the run ends; more are skipped), ``"buffer_all"`` (every fire waits its turn) or
    ``"cancel_other"`` (the running one is cancelled, then the new one starts).
    """

    # An app holds one per action: slots keep 100,000 of them about 8 MB smaller.
    __slots__ = (
        "_cron_error",
        "allow_overlap",
        "catch_up",
        "catch_up_window",
        "cron",
        "exception_handler",
        "exclusive",
        "function",
        "group",
        "jitter",
        "name",
        "overlap",
        "takes_run",
        "timeout",
    )

    def __init__(
        self,
        cron: str,
        allow_overlap: bool | None = None,
        exclusive: bool = True,
        timeout: float | None = None,
        exception_handler: Callable[..., Any] | None = None,
        name: str | None = None,
        group: str | None = None,
        *,
        tz: str | tzinfo | None = None,
        catch_up: CatchUp = "latest",
        catch_up_window: float | None = None,
        jitter: float = 0,
        overlap: OverlapPolicy | None = None,
    ) -> None:
        where = f"@ScheduledAction({cron!r})"
        self.overlap: OverlapPolicy = _overlap_policy(where, allow_overlap, overlap)
        try:
            self.cron = Cron(cron, tz)
        except CronError as exc:
            # Raised from __call__, where the error can name the decorated action.
            self._cron_error: CronError | None = exc
        else:
            self._cron_error = None
        if timeout is not None and not _positive(timeout):
            raise ConfigError(
                f"{where}: timeout must be a positive number of seconds, got {timeout!r}"
            )
        if catch_up not in CATCH_UP_POLICIES:
            raise ConfigError(
                f"{where}: catch_up must be one of {', '.join(CATCH_UP_POLICIES)}, got {catch_up!r}"
            )
        if catch_up_window is not None and not _positive(catch_up_window):
            raise ConfigError(
                f"{where}: catch_up_window must be a positive number of seconds or None, "
                f"got {catch_up_window!r}"
            )
        if isinstance(jitter, bool) or not isinstance(jitter, int | float) or jitter < 0:
            raise ConfigError(f"{where}: jitter must be >= 0 seconds, got {jitter!r}")
        if exception_handler is not None and not callable(exception_handler):
            raise ConfigError(
                f"{where}: exception_handler must be callable, got {exception_handler!r}"
            )
        check_name_and_group(where, name, group)
        # No overlap key at all: every fire starts (kept for the code that reads it).
        self.allow_overlap = self.overlap == "allow_all"
        self.exclusive = exclusive
        self.timeout = timeout
        self.exception_handler = exception_handler
        self.name = name
        self.group = group
        self.catch_up: CatchUp = catch_up
        self.catch_up_window = catch_up_window
        self.jitter = float(jitter)
        self.function: Callable[..., Any] | None = None
        self.takes_run = False

    def __call__(self, func: F) -> F:
        if self._cron_error is not None:
            raise CronError(
                f"@ScheduledAction on {qualified_name(func)}: {self._cron_error}"
            ) from None
        params = positional_params(func, "ScheduledAction")
        if len(params) > 1:
            raise ConfigError(
                f"@ScheduledAction on {qualified_name(func)}: an action takes no argument "
                "besides self, or one (it receives a ScheduledRun)"
            )
        self.function = func
        self.takes_run = len(params) == 1
        setattr(func, ACTION_ATTR, self)
        return func

    @property
    def action_id(self) -> str:
        if self.name is not None:
            return self.name
        if self.function is None:
            raise ConfigError("ScheduledAction was created but never applied to a function")
        return qualified_name(self.function)

    def __repr__(self) -> str:
        return f"ScheduledAction({self.cron.expr!r}, id={self.action_id!r})"


def _overlap_policy(where: str, allow_overlap: bool | None, overlap: str | None) -> OverlapPolicy:
    """Resolve ``allow_overlap`` (None when not given: False) and ``overlap`` into one policy;
    contradicting values raise, naming both."""
    if allow_overlap is not None and not isinstance(allow_overlap, bool):
        raise ConfigError(f"{where}: allow_overlap must be True or False, got {allow_overlap!r}")
    if overlap is None:
        return "allow_all" if allow_overlap else "skip"
    if overlap not in OVERLAP_POLICIES:
        raise ConfigError(
            f"{where}: overlap must be one of {', '.join(OVERLAP_POLICIES)}, got {overlap!r}"
        )
    if (allow_overlap is True and overlap != "allow_all") or (
        allow_overlap is False and overlap == "allow_all"
    ):
        raise ConfigError(
            f"{where}: allow_overlap={allow_overlap!r} contradicts overlap={overlap!r}; "
            "give only overlap= (allow_overlap=True is overlap='allow_all', "
            "allow_overlap=False is overlap='skip')"
        )
    return cast(OverlapPolicy, overlap)


def _positive(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def get_scheduled_action(obj: object) -> ScheduledAction | None:
    spec = getattr(obj, ACTION_ATTR, None)
    return spec if isinstance(spec, ScheduledAction) else None
