"""Files of a recording: append-only with our own buffer, atomic replace, free space.

Every write here is a plain ``os.write`` on a file descriptor we own, so an
``OSError`` (ENOSPC, EDQUOT, EFBIG, EIO) reaches the caller; nothing is
swallowed by a library buffer.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class AppendFile:
    """An unbuffered append-only file with our own buffer.

    ``write`` only buffers; ``flush`` hands the buffer to the OS (a SIGKILL then
    loses none of it); ``fsync`` forces it to the disk (a power cut neither).
    What did not reach the OS on an error stays in ``buffer``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
        )
        self.buffer = bytearray()
        self.written = 0  # bytes handed to the OS

    def write(self, data: bytes) -> None:
        """Buffer ``data`` (nothing reaches the OS before ``flush``)."""
        self.buffer += data

    def flush(self) -> None:
        """Hand the buffer to the OS; on an error keep what did not get there."""
        if not self.buffer or self.fd is None:
            return
        view = memoryview(bytes(self.buffer))
        self.buffer.clear()
        done = 0
        try:
            while done < len(view):
                done += os.write(self.fd, view[done:])
        finally:
            self.written += done
            if done < len(view):
                self.buffer[:0] = view[done:]

    def fsync(self) -> None:
        """Force what the OS holds to the disk."""
        if self.fd is not None:
            os.fsync(self.fd)

    def lock_exclusive(self) -> None:
        """Hold an advisory lock while this file is open: readers tell a live
        recording from one whose process died (the kernel drops the lock then)."""
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def close(self) -> None:
        """Close the descriptor (idempotent); the buffer is not flushed."""
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)


def atomic_write(path: Path, data: str | bytes) -> None:
    """Replace ``path`` with ``data``: write a temporary file, fsync, rename.

    A failed write (disk full) removes its temporary file and leaves the old
    ``path`` as it was.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def is_locked_by_a_writer(path: Path) -> bool:
    """True if a live writer holds ``path``'s lock (see AppendFile.lock_exclusive)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False  # no flock on this filesystem: cannot tell, assume not
    finally:
        os.close(fd)  # also drops our shared lock
    return False


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged process may still write on ``path``'s filesystem
    (root's reserved blocks are not counted: stop before them)."""
    st = os.statvfs(existing_ancestor(path))
    return st.f_bavail * st.f_frsize


def really_free_bytes(path: Path) -> int:
    """Bytes root may still write (reserved blocks included)."""
    st = os.statvfs(existing_ancestor(path))
    return st.f_bfree * st.f_frsize


def existing_ancestor(path: Path) -> Path:
    """``path`` or its nearest existing parent."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def make_reserve(path: Path, size: int) -> None:
    """Set ``size`` bytes of disk aside at ``path`` (really allocated)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError as exc:
            if exc.errno in DISK_FULL_ERRNOS:
                raise
            os.write(fd, bytes(size))  # no fallocate on this filesystem
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
