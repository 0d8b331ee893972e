"""``neurorig reset`` brings a board left streaming and faulted by a killed host
back to a safe, known state, over its real serial port."""

from __future__ import annotations

import time

import serial

from firmware_bridge.protocol import Arm, Hello, StartStream, encode_message
from rig.procedures.latency import external_simulator
from tests._cli import neurorig


def test_a_board_left_streaming_by_a_killed_host_is_reset():
    with external_simulator(seed=9) as port:
        # A host that arms, starts the stream and dies without a word.
        with serial.Serial(port, timeout=1.0) as raw:
            for seq, message in enumerate((Hello(1), Arm(), StartStream())):
                raw.write(encode_message(message, seq))
                time.sleep(0.1)
        time.sleep(0.5)  # no heartbeats: the board's watchdog latches HOST_LOSS
        out = neurorig("reset", "--port", port)
        assert out.returncode == 0, out.stderr
        before, after = out.stdout.splitlines()[-2:]
        assert "streaming" in before and "HOST_LOSS" in before
        assert after.endswith("idle; no fault")
        # and a run can start again (it was refused: 'stop streaming first')
        again = neurorig("reset", "--port", port)
        assert again.stdout.splitlines()[-2].endswith("idle; no fault")


def test_no_board_on_the_port_is_one_line(tmp_path):
    out = neurorig("reset", "--port", str(tmp_path / "ttyNONE"))
    assert out.returncode == 2
    last = out.stderr.strip().splitlines()[-1]  # after the session log's path
    assert last.startswith("neurorig: error: cannot connect to the board")
    assert "Traceback" not in out.stderr
