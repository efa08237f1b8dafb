"""Redis older than 6.2 (no ``ZADD GT/LT``, no ``ZRANGE BYSCORE``) is refused at start-up with a
message naming the version found and the one needed.

No server: ``RedisBackend.connect()`` runs as it does at start-up, on a stand-in client that
answers ``INFO server`` with the version under test and accepts the scripts' ``SCRIPT LOAD``.
"""

from __future__ import annotations

from typing import Any

import pytest

from jararaca.backends import redis as redis_backend
from jararaca.backends.redis import RedisBackend, _version
from jararaca.errors import ConfigError

URL = "redis://:s3cret@127.0.0.1:6379/0"


class InfoOnly:
    """The client calls ``connect()`` makes, and nothing else: INFO and a pipeline of SCRIPT
    LOADs (one round trip on a single server)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.reply = info
        self.asked: list[str] = []
        self.loaded = 0

    async def info(self, section: str) -> dict[str, Any]:
        self.asked.append(section)
        return self.reply

    def pipeline(self, transaction: bool = True) -> InfoOnly:
        return self

    def script_load(self, source: str) -> None:
        self.loaded += 1

    async def execute(self) -> list[str]:
        return []

    async def aclose(self) -> None:
        return None


async def connect_to(info: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> InfoOnly:
    client = InfoOnly(info)

    async def nothing_more() -> None:
        return None

    monkeypatch.setattr(redis_backend, "open_client", lambda url: (client, nothing_more))
    backend = RedisBackend(URL, namespace="version-check")
    try:
        await backend.connect()
    finally:
        await backend.close()
    return client


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("6.2.0", (6, 2, 0)),
        ("6.0.16", (6, 0, 16)),
        ("7.2.4", (7, 2, 4)),
        ("6.2", (6, 2)),
        ("10.0.1", (10, 0, 1)),
        ("255.255.255", (255, 255, 255)),  # what an unstable build of Redis reports
        ("0", (0,)),
    ],
)
def test_version_strings_are_read_part_by_part(text: str, parsed: tuple[int, ...]) -> None:
    assert _version(text) == parsed


@pytest.mark.parametrize("version", ["6.0.16", "6.0.0", "5.0.14", "4.0.9", "2.8.24", "6.1.99"])
async def test_a_redis_older_than_6_2_is_refused_naming_both_versions(
    version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError) as refused:
        await connect_to({"redis_version": version, "redis_mode": "standalone"}, monkeypatch)
    message = str(refused.value)
    assert f"version {version};" in message
    assert "needs Redis 6.2 or newer" in message
    assert "127.0.0.1:6379" in message  # which server
    assert "s3cret" not in message


async def test_a_reply_without_a_version_is_refused_as_version_0(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ConfigError) as refused:
        await connect_to({"redis_mode": "standalone"}, monkeypatch)
    assert "version 0;" in str(refused.value)
    assert "needs Redis 6.2 or newer" in str(refused.value)


@pytest.mark.parametrize("version", ["6.2.0", "6.2.14", "7.0.15", "7.2.4", "255.255.255"])
async def test_redis_6_2_and_newer_are_accepted(
    version: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await connect_to({"redis_version": version}, monkeypatch)
    assert client.asked == ["server"]  # the version was read, and passed
    assert client.loaded > 0  # the scripts were loaded as usual
