"""The machine and the servers the figures were measured on."""

from __future__ import annotations

import asyncio
import hashlib
import platform
import sys
from importlib import metadata
from typing import Any

import aiormq
import redis.asyncio as aioredis

from bench.config import AMQP_URL, REDIS_URL, ROOT
from bench.procstat import load_average


def cpu() -> dict[str, Any]:
    models: list[str] = []
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                models.append(line.split(":", 1)[1].strip())
    return {"cores": len(models), "model": models[0] if models else platform.processor()}


def memory_gib() -> float:
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    return 0.0


async def server_versions() -> dict[str, str]:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        info = await client.info("server")
        redis_version = str(info.get("redis_version", "?"))
    finally:
        await client.aclose()
    connection = await aiormq.connect(AMQP_URL)
    try:
        version = connection.server_properties.get("version", b"?")
        rabbit = version.decode() if isinstance(version, bytes) else str(version)
    finally:
        await connection.close()
    return {"redis": redis_version, "rabbitmq": rabbit}


def source_digest() -> str:
    """A digest of the library's source files, to tell which code the figures are of."""
    digest = hashlib.sha256()
    package = ROOT / "src" / "jararaca"
    for path in sorted(p for p in package.rglob("*") if p.suffix in (".py", ".lua")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def describe() -> dict[str, Any]:
    return {
        **cpu(),
        "memory_gib": round(memory_gib(), 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "jararaca": metadata.version("jararaca"),
        "source_digest": source_digest(),
        **asyncio.run(server_versions()),
        "load_average_1m": load_average(),
    }
