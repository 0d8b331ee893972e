"""Live y4m camera streams over a real named pipe and a real Unix socket."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import rig.core.stream_camera as stream_camera
from rig.core.camera import CameraError, open_camera
from rig.core.stream_camera import StreamCamera, parse_y4m_header

W, H = 64, 48


def frames(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(H, W), dtype=np.uint8) for _ in range(n)]


def y4m_bytes(images, colour: str = "mono") -> bytes:
    """A y4m stream of ``images``; for 420 the chroma planes are filled with 128."""
    out = f"YUV4MPEG2 W{W} H{H} F60:1 Ip A1:1 C{colour}\n".encode()
    for image in images:
        out += b"FRAME\n" + image.tobytes()
        if colour.startswith("420"):
            out += bytes([128]) * (W * H // 2)
    return out


def collect(camera: StreamCamera, n: int, timeout_s: float = 5.0) -> list[np.ndarray]:
    got: list[np.ndarray] = []
    done = threading.Event()

    def on_frame(frame, _t):
        got.append(frame)
        if len(got) == n:
            done.set()

    camera.start(on_frame)
    done.wait(timeout_s)
    return got


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "camera.y4m"
    os.mkfifo(path)
    return path


def write_in_odd_chunks(path: Path, data: bytes, chunk: int = 1000) -> threading.Thread:
    """A writer that splits frames across writes, as a pipe may deliver them."""

    def write():
        with open(path, "wb", buffering=0) as f:
            for i in range(0, len(data), chunk):
                f.write(data[i : i + chunk])
                time.sleep(0.0005)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def test_y4m_headers_parse_and_bad_ones_are_named():
    assert parse_y4m_header(b"YUV4MPEG2 W640 H480 F60:1 Ip A1:1 Cmono") == (
        640, 480, 60.0, "mono",
    )  # fmt: skip
    assert parse_y4m_header(b"YUV4MPEG2 W32 H16 F30000:1001 C420jpeg")[2:] == (
        pytest.approx(29.97, abs=0.01), "420jpeg",
    )  # fmt: skip
    assert parse_y4m_header(b"YUV4MPEG2 W8 H8")[3] == "420"  # y4m's default
    with pytest.raises(CameraError, match="not a YUV4MPEG2 stream"):
        parse_y4m_header(b"RIFF....AVI ")
    with pytest.raises(CameraError, match="no valid W and H"):
        parse_y4m_header(b"YUV4MPEG2 W640 F60:1")
    with pytest.raises(CameraError, match="no valid W and H"):
        parse_y4m_header(b"YUV4MPEG2 W640 H0 F60:1")
    assert parse_y4m_header(b"YUV4MPEG2 W8 H8 F60:0 Cmono")[2] == 0.0  # nominal
    with pytest.raises(
        CameraError, match=r"C411 is not supported; allowed \(8-bit\): mono"
    ):
        parse_y4m_header(b"YUV4MPEG2 W8 H8 C411")
    with pytest.raises(CameraError, match="C420p10 is not supported"):  # 10-bit
        parse_y4m_header(b"YUV4MPEG2 W8 H8 C420p10")


@pytest.mark.parametrize("colour", ["mono", "420jpeg"])
def test_a_pipe_delivers_every_frame_whole_and_in_order(fifo, colour):
    sent = frames(20)
    writer = write_in_odd_chunks(fifo, y4m_bytes(sent, colour))
    camera = open_camera(str(fifo))
    assert isinstance(camera, StreamCamera)
    got = collect(camera, 20)
    camera.stop()
    writer.join(5)
    assert len(got) == 20 and camera.frames_read == 20
    for a, b in zip(got, sent, strict=True):
        np.testing.assert_array_equal(a, b)  # the luma plane, byte for byte


def test_a_pipe_nobody_writes_to_is_refused_with_what_to_do(fifo, monkeypatch):
    monkeypatch.setattr(stream_camera, "OPEN_TIMEOUT_S", 0.3)
    t0 = time.monotonic()
    with pytest.raises(CameraError, match=r"no video arrives on .* within 0.3 s"):
        open_camera(str(fifo))
    assert time.monotonic() - t0 < 3.0  # refused, not blocked for ever


def test_a_stream_that_ends_is_reported_with_the_frames_it_gave(fifo):
    writer = write_in_odd_chunks(fifo, y4m_bytes(frames(3)))
    camera = StreamCamera(str(fifo))
    got = collect(camera, 3)
    writer.join(5)
    deadline = time.monotonic() + 2.0
    while camera.error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    camera.stop()
    assert len(got) == 3
    assert "ended or broke (after 3 frames)" in str(camera.error)


def test_a_stream_that_is_not_video_is_named(fifo):
    writer = write_in_odd_chunks(fifo, b"hello, this is not a video\n" * 3)
    with pytest.raises(CameraError, match="not a YUV4MPEG2 stream"):
        StreamCamera(str(fifo))
    writer.join(5)


def test_a_unix_socket_stream_is_read_and_a_dead_one_named():
    folder = Path(tempfile.mkdtemp(prefix="nr-"))  # socket paths are short
    path = folder / "cam.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    sent = frames(5, seed=2)

    def serve():
        connection, _ = server.accept()
        with connection:
            connection.sendall(y4m_bytes(sent))
            connection.recv(1)  # until the reader hangs up

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    camera = open_camera(str(path))
    got = collect(camera, 5)
    camera.stop()
    thread.join(5)
    assert [g.tobytes() for g in got] == [s.tobytes() for s in sent]
    server.close()  # the socket file stays, nobody listens: a dead camera
    with pytest.raises(CameraError, match="cannot connect to the camera socket"):
        open_camera(str(path))
    path.unlink()
    folder.rmdir()


def test_a_regular_file_is_not_taken_for_a_stream(tmp_path):
    path = tmp_path / "x.y4m"
    path.write_bytes(y4m_bytes(frames(1)))
    with pytest.raises(CameraError, match="neither a named pipe nor a Unix socket"):
        StreamCamera(str(path))


def test_frame_numbers_ride_on_the_frame_lines(fifo):
    images = frames(3)
    header = f"YUV4MPEG2 W{W} H{H} F60:1 Ip A1:1 Cmono\n".encode()
    lines = [b"FRAME Xsequence=7\n", b"FRAME Ixyz Xsequence=9\n", b"FRAME\n"]
    data = header + b"".join(line + im.tobytes() for line, im in zip(lines, images))
    writer = write_in_odd_chunks(fifo, data)
    camera = StreamCamera(str(fifo))
    numbers = []
    camera.start(lambda frame, _t: numbers.append(camera.frame_number))
    deadline = time.monotonic() + 5
    while len(numbers) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    camera.stop()
    writer.join()
    assert numbers == [7, 9, None]


@pytest.mark.parametrize(
    ("line", "number"),
    [
        (b"FRAME", None),
        (b"FRAME Xsequence=12", 12),
        (b"FRAME Xsequence=-3", None),
        (b"FRAME Xsequence=1e3", None),
        (b"FRAME Xsequence=" + b"9" * 40, None),
        (b"FRAME Xother=4", None),
    ],
)
def test_frame_sequence_accepts_only_a_whole_number(line, number):
    assert stream_camera.frame_sequence(line) == number
