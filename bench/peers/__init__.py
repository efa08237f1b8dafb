"""Other Python schedulers beside jararaca (``./scripts/bench --only peers``): Celery 5 with
celery-redbeat, taskiq with taskiq-aio-pika and taskiq-redis.

The peer apps (``celery_app``, ``taskiq_app``) and their recorder run with the python of
``bench/.peers-venv`` (made by ``scripts/bench-peers-venv``), never with the project's: neither
Celery nor taskiq is a dependency of jararaca. They import nothing of jararaca or of the rest of
``bench``, only ``bench.peers.peer_recorder``; the harness side is
``bench.scenarios.peers``.
"""

from __future__ import annotations

from pathlib import Path

VENV = Path(__file__).resolve().parents[1] / ".peers-venv"
PYTHON = VENV / "bin" / "python"
