"""The serial reader thread survives its listeners and reports its own failures."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from firmware_bridge.errors import LinkError
from firmware_bridge.link import SerialLink
from firmware_bridge.protocol import Ack, Data, GetStatus, MsgType, encode_message
from firmware_bridge.testing import scripted_board
from firmware_bridge.transport import open_port


def wait_until(predicate, timeout_s=5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_a_listener_that_raises_is_reported_and_the_reader_keeps_going():
    with scripted_board([]) as board:
        link = SerialLink(open_port(board.port), n_channels=1)
        received, errors = [], []

        def broken(decoded):
            raise ValueError("listener bug")

        link.add_listener(broken)
        link.add_listener(lambda d: received.append(len(d.samples)))
        link.add_error_listener(errors.append)
        link.start()
        try:
            board.write(encode_message(Ack(MsgType.START_STREAM, 0, 0), 0))
            for i in range(5):
                block = np.full((10, 1), i, np.int16)
                board.write(encode_message(Data(10 * i, block), 1 + i))
                time.sleep(0.02)
            assert wait_until(lambda: sum(received) == 50)
            assert link.error is None and link._reader.is_alive()
            assert link.listener_errors >= 1 and errors
            assert all(isinstance(e, LinkError) and not e.fatal for e in errors)
            assert "ValueError: listener bug" in str(errors[0])
        finally:
            link.close()


def test_a_failure_of_the_reader_itself_ends_the_link_as_an_error(monkeypatch):
    with scripted_board([]) as board:
        link = SerialLink(open_port(board.port), n_channels=1)
        failed = threading.Event()
        link.add_error_listener(lambda err: failed.set())

        def broken_feed(data):
            raise RuntimeError("decoder bug")

        monkeypatch.setattr(link.decoder, "feed", broken_feed)
        link.start()
        later = threading.Timer(0.2, board.write, args=(b"\x03\x01\x02\x00",))
        later.start()
        try:
            # The bytes arriving while the request waits break the decoder: the
            # request fails at once with the reader's error, not after a timeout.
            t0 = time.monotonic()
            with pytest.raises(LinkError, match="decoder bug"):
                link.request(GetStatus(), timeout_s=5.0)
            assert time.monotonic() - t0 < 2.0
            assert failed.is_set() and isinstance(link.error, LinkError)
            assert link.error.fatal
        finally:
            later.join()
            link.close()
