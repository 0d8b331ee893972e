"""One ``neurorig serve --sim`` per module, in its own process; each test gets
it back disarmed, with no emergency stop or fault held."""

from __future__ import annotations

import time

import pytest

from rig.remote import connect
from tests.remote._served import serve_sim


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with serve_sim(tmp_path_factory.mktemp("serve")) as served:
        yield served


@pytest.fixture
def remote(served):
    """A connected client; the rig is reset and disarmed after the test."""
    with connect(served.address, served.token) as rig:
        yield rig
        assert served.process.poll() is None, "the server died during the test"
        status = rig.status()
        if status["phase"] in ("running", "paused", "stopping"):
            rig.cancel()
            deadline = time.monotonic() + 10
            while rig.status()["phase"] in ("running", "paused", "stopping"):
                assert time.monotonic() < deadline, "the run did not end"
                time.sleep(0.05)
        if status["emergency_latched"] or status["phase"] == "fault":
            rig.reset()
        if rig.status()["armed"]:
            rig.disarm()
