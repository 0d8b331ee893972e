"""The simulated camera numbers each stream's frames from 0, as a V4L2 camera
numbers its buffers from STREAMON."""

from __future__ import annotations

import time

from firmware_bridge.sim.simulated_rig import SimulatedRig


def _numbers_of_frames(camera, triggers: list[tuple[int, int]]) -> list[int]:
    """Start ``camera``, fire ``triggers`` ((sample, count)), return the
    numbers of the frames it delivered."""
    numbers: list[int] = []
    camera.start(lambda frame, t: numbers.append(camera.frame_number))
    try:
        for sample, count in triggers:
            camera.trigger(sample, count)
        deadline = time.monotonic() + 10
        while len(numbers) < len(triggers) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        camera.stop()
    return numbers


def test_a_new_stream_is_numbered_from_its_own_first_trigger():
    with SimulatedRig(seed=4) as rig:
        camera = rig.camera()
        now = rig.board.sample
        first = _numbers_of_frames(camera, [(now + k, 100 + k) for k in range(3)])
        assert first == [0, 1, 2]
        # Triggers that reached the camera after its reader left (a starved
        # camera thread leaves them queued), then a new reader: the board
        # restarts its trigger count when the host sets the trigger again.
        for k in range(5):
            camera.trigger(rig.board.sample + k, 103 + k)
        now = rig.board.sample
        second = _numbers_of_frames(camera, [(now + k, k) for k in range(3)])
        assert second == [0, 1, 2]
