"""The SQLite backend's file: checks before it is opened, and the embedded scheduler's lock.

Everything that can be said about a path before SQLite touches it is said here, as one
paragraph naming the path and what to do: a missing folder, a file or folder that cannot be
written, a network file system (SQLite's locks and its WAL index need one host). The lock file
beside the database (``<file>.lock``) keeps a second ``jararaca scheduler`` off a file that a
live one owns; the kernel drops it when its process dies, ``kill -9`` included.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from jararaca.errors import BackendError, ConfigError, JararacaError

log = logging.getLogger("jararaca.backends.sqlite")

MOUNTS = Path("/proc/mounts")
# File systems that share a file between hosts: SQLite's POSIX locks are unreliable there and
# WAL's shared-memory index only works between processes of one host.
NETWORK_FS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "fuse.sshfs",
        "sshfs",
        "9p",
        "afs",
        "ceph",
        "glusterfs",
        "fuse.glusterfs",
        "lustre",
        "gpfs",
        "davfs",
        "fuse.s3fs",
        "fuse.rclone",
    }
)


def check_path(path: str) -> Path:
    """The database's absolute path, once it is known SQLite can create or write it."""
    file = Path(path).expanduser().absolute()
    folder = file.parent
    if not folder.is_dir():
        raise ConfigError(
            f"cannot use the SQLite file {file}: its folder {folder} does not exist. Create it "
            f"(mkdir -p {folder}) or point --backend-url at a file in an existing folder, e.g. "
            "sqlite:///jararaca.db for one in the working directory."
        )
    if file.exists() and not file.is_file():
        raise ConfigError(
            f"cannot use {file} as the SQLite file: it is not a regular file (a folder?). "
            "Point --backend-url at a file, e.g. sqlite:///jararaca.db."
        )
    if file.exists() and not os.access(file, os.R_OK | os.W_OK):
        raise ConfigError(
            f"cannot write the SQLite file {file}: it is read-only for this user. Make it "
            f"writable (chmod u+w {file}), run as its owner, or use another file."
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(
            f"cannot write in the folder {folder} of the SQLite file {file}: SQLite keeps its "
            "write-ahead log (-wal, -shm) beside the file, so the folder must be writable. "
            f"Make it writable (chmod u+w {folder}) or put the file in another folder."
        )
    return file


def read_only_error(file: Path, detail: object) -> ConfigError:
    """SQLite itself found it could not write (a read-only file system, say)."""
    return ConfigError(
        f"cannot write the SQLite file {file} ({detail}): the file, its folder or its file "
        "system is read-only for this user. Make them writable or use another file."
    )


def open_error(file: Path, exc: Exception) -> JararacaError:
    """What an error of SQLite opening (or migrating) the file means for the user."""
    text = str(exc).lower()
    if "readonly" in text or "read-only" in text:
        return read_only_error(file, exc)
    if "unable to open" in text:
        return ConfigError(
            f"cannot open the SQLite file {file} ({exc}): check that the path names a file "
            "in a folder this user can write"
        )
    if "locked" in text or "busy" in text:  # another process migrates it: connect retries
        return BackendError(f"the SQLite file {file} is busy: {exc}")
    return BackendError(f"cannot use the SQLite file {file}: {exc}")


def mount_type(path: Path, mounts: Path = MOUNTS) -> str | None:
    """The file system type of the mount holding ``path`` (Linux /proc/mounts), if known."""
    try:
        lines = mounts.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    target = str(path.resolve())
    best, kind = "", None
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = _unescape(fields[1])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, fields[2]
    return kind


def _unescape(field: str) -> str:
    """/proc/mounts writes spaces, tabs and backslashes in octal (``\\040``)."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def warn_if_network(file: Path, mounts: Path = MOUNTS) -> str | None:
    """Log a warning when the file lives on a network file system; its type, if so."""
    kind = mount_type(file.parent, mounts)
    if kind is None or kind.lower() not in NETWORK_FS:
        return None
    log.warning(
        "DATA AT RISK: the SQLite file %s is on a network file system (%s). SQLite's locks "
        "are not reliable there and its write-ahead log needs every process on one host: "
        "two hosts using it can corrupt it. Put the file on a local disk of the one host "
        "that runs jararaca (and use Redis to share state between hosts).",
        file,
        kind,
    )
    return kind


class SchedulerLock:
    """An exclusive lock on ``<file>.lock``: one ``jararaca scheduler`` per SQLite file."""

    def __init__(self, file: Path) -> None:
        self.path = file.with_name(file.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            import fcntl
        except ImportError:  # Windows: no flock; the file stays unguarded
            log.debug("no fcntl here: %s is not locked", self.path)
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the lock file {self.path} ({exc.strerror}): its folder must "
                "be writable"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            database = self.path.with_name(self.path.name.removesuffix(".lock"))
            raise ConfigError(
                f"another jararaca scheduler{who} is running on the SQLite file {database}: "
                "one scheduler per file, since it owns what is in flight there. Stop that one "
                "first, or give this one another file. To look at or steer the running one, "
                "use `jararaca status`, `jararaca schedules ...` or `jararaca runs` with the "
                "same --backend-url."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            os.close(fd)  # closing the descriptor drops the flock


def _read_pid(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        return str(int(os.pread(fd, 32, 0).decode().strip()))
    return ""
