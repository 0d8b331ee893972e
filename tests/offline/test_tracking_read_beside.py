"""The saved tracking is read on a thread of its own while the stimuli are
analysed (rig.offline.load._read_beside): what it reads, or the reader's
error, comes out where the pipeline asks for it (``Source.saved``)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from rig.offline.load import Source, _read_beside
from rig.recording import RecordingFormatError


def _source(tracking) -> Source:
    return Source("r", 1000.0, 1, np.zeros(1), [], None, saved_tracking=tracking)


def test_what_is_read_beside_comes_out_when_asked_for():
    go = threading.Event()
    caller = threading.get_ident()
    readers: list[int] = []

    def read():
        readers.append(threading.get_ident())
        go.wait(5)
        return "the tracking"

    source = _source(_read_beside(read))
    go.set()
    assert source.saved() == "the tracking"
    assert readers and readers[0] != caller  # read on another thread
    assert _source(None).saved() is None
    assert _source("as given").saved() == "as given"


def test_the_readers_error_is_raised_where_the_tracking_is_used():
    def read():
        raise RecordingFormatError("tracking.jsonl: line 1 is {}; allowed ...")

    source = _source(_read_beside(read))
    with pytest.raises(RecordingFormatError, match=r"tracking.jsonl: line 1"):
        source.saved()
