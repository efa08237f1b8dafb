"""Several RabbitMQ hosts behind one broker URL (``amqp://u:p@h1:5672,h2:5672/``).

aio-pika's robust connection takes one URL and, once connected, retries that one host for
ever. :class:`HostRotatingConnection` keeps everything the robust connection does (restoring
channels, the topology and consumers) and only changes where each attempt goes: every
reconnection attempt goes to the next host of the list, in turn. The first connection is
:func:`connect_first`'s job: each host in turn, once, the first that answers wins.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from aio_pika import RobustConnection
from aiormq.exceptions import ProbableAuthenticationError
from yarl import URL

from jararaca.redaction import redact
from jararaca.url_hosts import amqp_options

log = logging.getLogger("jararaca.brokers.rabbitmq")

# The robust connection's coroutine that makes one connection attempt (with the private name
# Python gives ``__connect_transport`` inside RobustConnection). Our override of it chooses the
# host first; tests/unit/test_rabbitmq_hosts.py fails if an aio-pika upgrade renames it.
ATTEMPT_HOOK = "_RobustConnection__connect_transport"


def host_urls(url: str) -> list[str]:
    """One URL per host of ``url``, in the order given, each with the user, password,
    virtual host and query of ``url``; ``[url]`` when it names a single host."""
    hosts = amqp_options(url).hosts
    if not hosts:
        return [url]
    scheme, rest = url.strip().split("://", 1)
    authority_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    userinfo, at, _ = rest[:authority_end].rpartition("@")
    return [f"{scheme}://{userinfo}{at}{host}{rest[authority_end:]}" for host in hosts]


class HostRotatingConnection(RobustConnection):
    """A robust connection whose reconnection attempts go round the hosts of ``urls``.

    ``start`` is the index of the host the first attempt goes to; each later attempt (after
    the connection was lost, or an attempt failed) goes to the next host."""

    def __init__(self, urls: Sequence[str], *, start: int = 0, **kwargs: Any) -> None:
        super().__init__(URL(urls[start]), **kwargs)
        self._host_urls = [URL(u) for u in urls]
        self._host_index = start
        self._attempts = 0

    async def _RobustConnection__connect_transport(self) -> None:  # see ATTEMPT_HOOK
        if self._attempts and len(self._host_urls) > 1:
            self._host_index = (self._host_index + 1) % len(self._host_urls)
            # The connection options (timeouts, heartbeat) were parsed once from the first URL
            # and stay; only the address changes.
            self.url = self._host_urls[self._host_index]
            log.info("reconnecting to RabbitMQ at the next host: %s", redact(str(self.url)))
        self._attempts += 1
        attempt = getattr(super(), ATTEMPT_HOOK)
        await attempt()

    @property
    def host_index(self) -> int:
        """The index (in the broker URL) of the host this connection talks to, or tries."""
        return self._host_index


async def connect_first(
    urls: Sequence[str], *, timeout: float, client_properties: dict[str, Any]
) -> HostRotatingConnection:
    """Connect to the first host of ``urls`` that answers (each tried once, in turn).

    Raises the last host's error when none answers, and at once when a host refuses the
    login; the other failures are logged at debug level (the caller reports the outage)."""
    last: BaseException | None = None
    for index, url in enumerate(urls):
        connection = HostRotatingConnection(urls, start=index, client_properties=client_properties)
        try:
            await connection.connect(timeout=timeout)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await connection.close()
            # Refused credentials are the same on every host of one cluster: say so at once.
            retry = isinstance(exc, Exception) and not isinstance(exc, ProbableAuthenticationError)
            if retry and index + 1 < len(urls):
                log.debug("RabbitMQ at %s did not answer: %r", redact(url), exc)
                last = exc
                continue
            raise
        if last is not None:
            log.info(
                "connected to RabbitMQ at %s (the hosts before it did not answer)", redact(url)
            )
        return connection
    raise AssertionError("connect_first needs at least one URL")  # pragma: no cover
