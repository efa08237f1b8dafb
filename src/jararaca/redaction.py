"""Hide secrets in URLs before they reach a log line or an error message.

A leaf module: every part that prints a URL (URL parsing, the Redis backend, the RabbitMQ
broker) imports it, and it imports nothing of jararaca.
"""

from __future__ import annotations

import re

# Greedy up to the last "@" before the path: a password may itself hold an "@".
_USERINFO_PASSWORD = re.compile(r"(://[^:/@]*:)[^/]*@")
# Query parameters that carry secrets (e.g. ?password=... for Sentinel, ?token=...).
_QUERY_SECRET = re.compile(
    r"([?&](?:password|passwd|pass|pwd|token|secret|sentinel_password)=)[^&#]*", re.IGNORECASE
)


def redact(url: str) -> str:
    """The URL with its password (in the user part or the query string) replaced by ``***``."""
    return _QUERY_SECRET.sub(r"\1***", _USERINFO_PASSWORD.sub(r"\1***@", url))
