"""The Lua scripts of the Redis backend: loaded once per server, called by SHA.

Every state change of the Redis backend is one of these scripts (``backends/lua/``), so it is
atomic across any number of beats and workers. A server that lost its script cache (restart,
failover, ``SCRIPT FLUSH``) answers NOSCRIPT, and the script is loaded again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError


class Script:
    """One Lua file, identified on the server by the SHA1 of its source."""

    __slots__ = ("name", "sha", "source")

    def __init__(self, name: str) -> None:
        self.name = name
        lua = resources.files("jararaca.backends").joinpath("lua", f"{name}.lua")
        self.source = lua.read_bytes()
        self.sha = hashlib.sha1(self.source, usedforsecurity=False).hexdigest()


CLAIM_FIRES = Script("claim_fires")
ACK_INFLIGHT = Script("ack_inflight")
RECLAIM_INFLIGHT = Script("reclaim_inflight")
ENQUEUE_DELAYED = Script("enqueue_delayed")
ENQUEUE_DELAYED_MANY = Script("enqueue_delayed_many")
CLAIM_DUE = Script("claim_due")
BEGIN_RUN = Script("begin_run")
RENEW_RUN = Script("renew_run")
FINISH_RUN = Script("finish_run")
ALL: tuple[Script, ...] = (
    CLAIM_FIRES,
    ACK_INFLIGHT,
    RECLAIM_INFLIGHT,
    ENQUEUE_DELAYED,
    ENQUEUE_DELAYED_MANY,
    CLAIM_DUE,
    BEGIN_RUN,
    RENEW_RUN,
    FINISH_RUN,
)


async def load_all(client: aioredis.Redis) -> None:
    """Load every script in one round trip (at connect, so the first calls find them)."""
    pipe = client.pipeline(transaction=False)
    for script in ALL:
        pipe.script_load(script.source)
    await pipe.execute()


async def run(
    client: aioredis.Redis, script: Script, keys: Sequence[str], args: Sequence[Any]
) -> Any:
    try:
        return await client.evalsha(script.sha, len(keys), *keys, *args)
    except NoScriptError:
        await client.script_load(script.source)
        return await client.evalsha(script.sha, len(keys), *keys, *args)
