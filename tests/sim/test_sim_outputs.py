"""The simulator's video file, ground-truth files and command line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import serial

from firmware_bridge.sim import SimulatedRig, WormModel, WormParams, write_sim_video

GOLDEN = (
    Path(__file__).resolve().parents[2] / "firmware_bridge/testdata/golden_frames.json"
)


def test_sim_video_is_a_real_lossless_file_with_ground_truth(tmp_path):
    import cv2

    model = WormModel(WormParams(), seed=2)
    model.stimulate(100, 5.0, 3e-3)
    truth = write_sim_video(str(tmp_path / "w.mkv"), model, fps=30.0, duration_s=0.5)
    capture = cv2.VideoCapture(str(tmp_path / "w.mkv"))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame[..., 0])
    capture.release()
    assert len(frames) == 15 == len(truth)
    assert frames[0].shape == (480, 640)
    # The worm shortens: the tail boundary moves toward the head over 0.5 s.
    assert truth[10, -1] < truth[0, -1] - 0.5e-3


def test_run_writes_json_and_segment_ground_truth(tmp_path):
    with SimulatedRig(seed=4) as rig:
        camera = rig.camera()
        got = []
        camera.start(lambda frame, t: got.append(frame))
        rig.board.camera_period = 500
        rig.board.camera_next = rig.board.sample + 1
        deadline = time.monotonic() + 5
        while len(got) < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        camera.stop()
        rig.write_ground_truth(tmp_path / "gt.json")
    truth = json.loads((tmp_path / "gt.json").read_text())
    assert truth["params"]["mgf_velocity_m_per_s"] == 30.0
    segments = np.load(tmp_path / "gt_segments.npz")
    assert segments["boundaries_m"].shape[1] == 141
    assert len(segments["sample"]) >= 10
    assert np.all(np.diff(segments["sample"]) == 500)


def test_neurorig_sim_prints_a_port_any_program_can_open():
    proc = subprocess.Popen(
        [sys.executable, "-m", "rig.cli", "sim", "--seed", "5", "--channels", "2"],
        stdout=subprocess.PIPE,
        text=True,
    )
    frames = {f["name"]: f for f in json.loads(GOLDEN.read_text())["frames"]}
    try:
        port = proc.stdout.readline().strip()
        assert port.startswith("/dev/pts/")
        # read_until returns at the frame end; the timeout only bounds a busy machine
        with serial.Serial(port, timeout=5.0) as ser:
            ser.write(bytes.fromhex(frames["HELLO"]["frame_hex"]))
            reply = ser.read_until(b"\x00")
        assert reply.endswith(b"\x00") and len(reply) > 40  # HELLO_REPLY
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        proc.stdout.close()
    assert proc.returncode == 0


def test_sim_rejects_bad_fault_options_by_name():
    out = subprocess.run(
        [sys.executable, "-m", "rig.cli", "sim", "--bit-flip-rate", "3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "argument --bit-flip-rate: 3: allowed a probability 0–1" in out.stderr


@pytest.mark.parametrize("option", ["speed", "color"])
def test_unknown_sim_url_options_are_refused(option):
    with pytest.raises(ValueError, match=f"unknown sim:// options \\['{option}'\\]"):
        SimulatedRig.from_options({option: "1"})
