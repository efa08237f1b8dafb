"""Checks shared by the decorators: the decorated thing must be an async method of this shape."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from types import FunctionType
from typing import Any

from jararaca.errors import ConfigError

# Flags of a code object that take the slow path (a * or ** parameter).
_STAR_ARGS = inspect.CO_VARARGS | inspect.CO_VARKEYWORDS


def positional_params(func: Callable[..., Any], decorator: str) -> tuple[str, ...]:
    """The names of the parameters after ``self`` of an ``async def`` method; a clear error
    otherwise."""
    if not callable(func):
        raise ConfigError(f"@{decorator} must decorate an async method, got {func!r}")
    if not inspect.iscoroutinefunction(func):
        raise ConfigError(
            f"@{decorator} on {_where(func)}: the function must be 'async def' (it is synchronous)"
        )
    # A plain function's code answers for the usual shape, (self, plain positional parameters)
    # (inspect.signature cost 10 us a method, most of a decorator's time at 100,000 actions).
    # Anything else (a wrapper, a set __signature__, keyword-only or star parameters, no self)
    # goes through inspect.signature, which also words the error.
    if type(func) is FunctionType and not (
        hasattr(func, "__wrapped__") or hasattr(func, "__signature__")
    ):
        code = func.__code__
        count = code.co_argcount
        if (
            count
            and code.co_varnames[0] == "self"
            and not code.co_kwonlyargcount
            and not code.co_flags & _STAR_ARGS
        ):
            return code.co_varnames[1:count]
    params = list(inspect.signature(func).parameters.values())
    if not params or params[0].name != "self":
        raise ConfigError(
            f"@{decorator} on {_where(func)}: decorate a method of a controller class "
            "(first parameter 'self')"
        )
    rest = params[1:]
    for param in rest:
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.KEYWORD_ONLY):
            raise ConfigError(
                f"@{decorator} on {_where(func)}: parameter {param.name!r} must be a plain "
                "positional parameter"
            )
    return tuple(param.name for param in rest)


def _where(func: Callable[..., Any]) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


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
