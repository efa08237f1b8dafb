"""``@ScheduledAction``: declares a controller method as a cron-scheduled action.

Everything is validated when the decorator runs (at import): a bad cron, time zone, option or
method shape raises at once, naming the culprit, instead of surfacing in production later.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Literal, TypeVar, get_args

from jararaca.cron import Cron
from jararaca.declarations._signatures import (
    check_name_and_group,
    positional_params,
    qualified_name,
)
from jararaca.errors import ConfigError, CronError

CatchUp = Literal["none", "latest", "all"]
CATCH_UP_POLICIES: tuple[str, ...] = get_args(CatchUp)
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
    """

    def __init__(
        self,
        cron: str,
        allow_overlap: bool = False,
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
    ) -> None:
        where = f"@ScheduledAction({cron!r})"
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
        self.allow_overlap = allow_overlap
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
