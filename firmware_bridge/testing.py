"""Test helpers: a scripted board on a real pseudo-terminal.

``ScriptedBoard`` plays the board's side of a fixed exchange: for each host frame it
expects (exact bytes), it writes the given reply bytes. The host under test opens
``board.port`` with pyserial like any device, so the host's real serial code path
is exercised, and the bytes are pinned independently of any simulator.
"""

from __future__ import annotations

import os
import select
import threading
import tty
from collections.abc import Iterator
from contextlib import contextmanager


class ScriptedBoard:
    """A pty peer answering host frames from ``script`` [(expected, reply), ...].

    ``expected`` is the complete host frame (delimiter included); a host frame
    that differs is recorded in ``mismatches`` and answered with nothing.
    ``unsolicited`` bytes are written as soon as the board starts; note that
    pyserial flushes the input buffer when it opens a port, so bytes meant for
    an open host should be sent with ``write()`` once it is open.
    """

    def __init__(
        self, script: list[tuple[bytes, bytes]], *, unsolicited: bytes = b""
    ) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        # The host opens the path itself, like a device node. Keep our slave fd
        # open meanwhile: with no slave open, reads on the master fail with EIO.
        self.port = os.ttyname(self._slave)
        self._script = list(script)
        self.received: list[bytes] = []
        self.mismatches: list[tuple[bytes, bytes]] = []
        self._stop = threading.Event()
        self._unplugged = False
        self._thread = threading.Thread(target=self._run, args=(unsolicited,))
        self._thread.daemon = True
        self._thread.start()

    def write(self, data: bytes) -> None:
        """Send bytes to the host now (e.g. an event frame)."""
        os.write(self._master, data)

    def unplug(self) -> None:
        """Close the board's side: the host's next read fails with EIO."""
        self._stop.set()
        self._thread.join(timeout=1.0)
        if not self._unplugged:
            self._unplugged = True
            os.close(self._master)
            os.close(self._slave)

    def close(self) -> None:
        """Stop the peer (same as unplugging)."""
        self.unplug()

    @property
    def done(self) -> bool:
        """True when every scripted exchange has happened."""
        return not self._script

    def _run(self, unsolicited: bytes) -> None:
        if unsolicited:
            os.write(self._master, unsolicited)
        pending = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.02)
            if not ready:
                continue
            try:
                chunk = os.read(self._master, 4096)
            except OSError:  # host closed its side
                return
            pending += chunk
            while b"\x00" in pending:
                frame, pending = pending.split(b"\x00", 1)
                self._answer(frame + b"\x00")

    def _answer(self, frame: bytes) -> None:
        self.received.append(frame)
        if not self._script:
            self.mismatches.append((b"", frame))
            return
        expected, reply = self._script[0]
        if frame != expected:
            self.mismatches.append((expected, frame))
            return
        self._script.pop(0)
        if reply:
            os.write(self._master, reply)


@contextmanager
def scripted_board(
    script: list[tuple[bytes, bytes]], *, unsolicited: bytes = b""
) -> Iterator[ScriptedBoard]:
    """Context manager around ``ScriptedBoard`` that always closes it."""
    board = ScriptedBoard(script, unsolicited=unsolicited)
    try:
        yield board
    finally:
        board.close()
