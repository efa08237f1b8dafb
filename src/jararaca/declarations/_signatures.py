"""Checks shared by the decorators: the decorated thing must be an async method of this shape."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from jararaca.errors import ConfigError


def positional_params(func: Callable[..., Any], decorator: str) -> list[inspect.Parameter]:
    """The parameters after ``self`` of an ``async def`` method; a clear error otherwise."""
    where = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"
    if not callable(func):
        raise ConfigError(f"@{decorator} must decorate an async method, got {func!r}")
    if not inspect.iscoroutinefunction(func):
        raise ConfigError(
            f"@{decorator} on {where}: the function must be 'async def' (it is synchronous)"
        )
    params = list(inspect.signature(func).parameters.values())
    if not params or params[0].name != "self":
        raise ConfigError(
            f"@{decorator} on {where}: decorate a method of a controller class "
            "(first parameter 'self')"
        )
    rest = params[1:]
    for param in rest:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.KEYWORD_ONLY):
            raise ConfigError(
                f"@{decorator} on {where}: parameter {param.name!r} must be a plain positional "
                "parameter"
            )
    return rest


def qualified_name(func: Callable[..., Any]) -> str:
    return f"{func.__module__}.{func.__qualname__}"


_GROUP = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def check_name_and_group(where: str, name: object, group: object) -> None:
    """``name`` is any non-empty string; ``group`` becomes a routing-key word and a queue
    name, so it is limited to letters, digits, '_' and '-'."""
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ConfigError(f"{where}: name must be a non-empty string, got {name!r}")
    if group is not None and (not isinstance(group, str) or not _GROUP.match(group)):
        raise ConfigError(
            f"{where}: group must be 1-100 letters, digits, '_' or '-', got {group!r}"
        )
