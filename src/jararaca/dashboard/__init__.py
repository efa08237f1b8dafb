"""The web dashboard (``jararaca dashboard``, extra ``jararaca[dashboard]``): server-rendered
pages and a JSON API over :class:`jararaca.control.Control`.

Importing this package imports FastAPI and Jinja2; the command imports it only when it runs,
so ``import jararaca`` and the other commands never need the extra.
"""

from __future__ import annotations

from jararaca.dashboard.app import create_app

__all__ = ["create_app"]
