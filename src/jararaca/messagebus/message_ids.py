"""Message ids: time-ordered UUIDs (version 7, RFC 9562), as 32 hex digits.

Why not ``uuid4``: a message id is part of the keys its delayed entry, in-flight entry and
run record are stored under. Random keys land on random pages of a B-tree, so each SQLite
transaction of handled messages rewrote about a page per message (measured here: 30-48 µs per
insert or update with uuid4 keys, 4-5 µs with ordered ones). Ids made in order land beside
each other. Python has ``uuid.uuid7`` only from 3.14, hence these few lines.

Layout: 48 bits of Unix milliseconds, the version, 12 bits counting ids made in the same
millisecond (RFC 9562's "fixed bit-length dedicated counter", so ids of one process keep their
order), the variant and 62 random bits (ids of different processes never meet).
"""

from __future__ import annotations

import os
import threading
import time

_COUNTER_MAX = 0xFFF
_lock = threading.Lock()
_last_ms = 0
_counter = 0


def _reset_lock() -> None:
    # A fork while another thread held the lock would leave the child's copy held for good.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_lock)


def new_message_id() -> str:
    global _last_ms, _counter
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms > _last_ms:
            _last_ms, _counter = now_ms, 0
        elif _counter < _COUNTER_MAX:
            _counter += 1
        else:  # 4,096 ids in one millisecond, or the clock stepped back: borrow the next one
            _last_ms, _counter = _last_ms + 1, 0
        ms, counter = _last_ms, _counter
    tail = int.from_bytes(os.urandom(8), "big") & 0x3FFF_FFFF_FFFF_FFFF
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | tail
    return f"{value:032x}"
