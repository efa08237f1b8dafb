"""Whether an address is reachable from this machine only: what may be served without a token
(the metrics endpoint, the dashboard)."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 (bracketed or not) and ``localhost``; a host name that could resolve
    to anything is not."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
