"""Load the app named by an ``APP_PATH`` (``app_module:app``), with errors a user can act on."""

from __future__ import annotations

import importlib
import os
import sys
import traceback

from jararaca.errors import ConfigError, JararacaError
from jararaca.microservice import Microservice


def load_app(app_path: str) -> Microservice:
    module_name, sep, attribute = (app_path or "").partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(
            f"bad app path {app_path!r}: use 'module:attribute', e.g. 'app_module:app' "
            "(the module must be importable from the current directory)"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigError(
                f"cannot import {module_name!r} (from app path {app_path!r}): no such module. "
                f"Run from the directory that contains it, or add its folder to PYTHONPATH."
            ) from None
        raise ConfigError(_import_failure(module_name, exc)) from None
    except JararacaError as exc:
        raise ConfigError(f"importing {module_name!r} failed: {exc}") from None
    except Exception as exc:
        raise ConfigError(_import_failure(module_name, exc)) from None
    try:
        app = getattr(module, attribute)
    except AttributeError:
        raise ConfigError(
            f"module {module_name!r} has no attribute {attribute!r} (from app path {app_path!r})"
        ) from None
    if not isinstance(app, Microservice) and callable(app):
        app = app()
    if not isinstance(app, Microservice):
        raise ConfigError(
            f"{app_path!r} is a {type(app).__qualname__}, not a jararaca Microservice"
        )
    return app


def _import_failure(module_name: str, exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    user = [f for f in frames if "importlib" not in f.filename]
    where = f" at {user[-1].filename}:{user[-1].lineno}" if user else ""
    return f"importing {module_name!r} raised {type(exc).__name__}{where}: {exc}"
