"""Other Python schedulers beside jararaca (``./scripts/bench --only peers``): Celery 5 with
celery-redbeat, taskiq with taskiq-aio-pika and taskiq-redis, and jararaca 0.5.13 from PyPI
(the upstream release this project is measured against).

The peer apps (``celery_app``, ``taskiq_app``) and their recorder run with the python of
``bench/.peers-venv`` (made by ``scripts/bench-peers-venv``), never with the project's: neither
Celery nor taskiq is a dependency of jararaca. ``jararaca0513_app`` runs with the python of
``bench/.v0513-venv`` (made by ``scripts/bench-v0513-venv``): its module is also named
``jararaca``, and its pins (redis<6, fastapi 0.124, uvicorn 0.30) are kept away from the other
peers'. They import nothing of the project's jararaca or of the rest of ``bench``, only
``bench.peers.peer_recorder``; the harness side is ``bench.scenarios.peers``.
"""

from __future__ import annotations

from pathlib import Path

VENV = Path(__file__).resolve().parents[1] / ".peers-venv"
PYTHON = VENV / "bin" / "python"
V0513_VENV = Path(__file__).resolve().parents[1] / ".v0513-venv"
V0513_PYTHON = V0513_VENV / "bin" / "python"
