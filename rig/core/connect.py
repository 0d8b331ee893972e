"""The one front door: ``open_rig`` turns a URL into a Session.

This is the only runtime module that knows the simulator (import-linter holds
it to that, docs/architecture.md): for ``sim://?seed=N&channels=C&rate=R`` it
starts a simulated rig on a pseudo-terminal, opens that port exactly as it would
open a board, and takes the simulated rig's geometry and camera; for anything
else (``/dev/ttyACM0``, ``COM3``) it opens the board and takes the geometry from
the rig file. Either way the rest of neurorig sees one ``Device`` on one serial
port, one ``RigDescription`` and one camera.

Where the simulator runs:

- ``sim://?seed=N`` (``process=host``, the default): inside this process, so
  that tests and scripts can reach its faults, camera and ground truth;
- ``sim://?seed=N&process=own``: ``neurorig sim`` in a process of its own
  (``SimulatorProcess``), as a board is: the host knows it only by its
  pseudo-terminal and, with ``camera="sim"``, by its camera's live video on a
  Unix socket, and shares no interpreter (no GIL, no garbage collector) with
  it. The ``--sim`` options of ``neurorig run``, ``gui``, ``calibrate`` and
  ``selftest`` open this. The child stops when the session closes, and by
  itself when this process dies, even by SIGKILL (its standard input, a pipe
  from here, then closes). Other options are ``neurorig sim``'s own, by
  name (``camera-drop-rate=0.01``, ``target=checkerboard``).

Example (the simulated rig: a real serial port, a simulated worm; run by
tests/test_doctests.py):

>>> from firmware_bridge.stimulus import StimPulse
>>> from rig import open_rig
>>> with open_rig("sim://?seed=3", camera="sim") as session:
...     session.start()
...     session.arm()
...     onset = session.stimulate(StimPulse(amplitude_vpp=4.0, duration_s=3e-3))
>>> [stimulus["sample"] for stimulus in session.stimuli] == [onset]
True
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from firmware_bridge.device import Device
from firmware_bridge.transport import parse_sim_url
from rig.core.camera import open_camera
from rig.core.session import Session
from rig.rig_file import DEFAULT_CHANNELS, RigDescription

log = logging.getLogger(__name__)

SIM_SCHEME = "sim://"
PROCESS_OPTION = "process"  # sim://?process=host (default) or own
# A child that has not printed its port by then is not coming (a loaded
# machine takes ~1 s to start Python with numpy).
SIM_START_TIMEOUT_S = 30.0
# Time to write the ground truth (~10 MB a minute of run) and exit; without
# it, to exit.
SIM_EXIT_TIMEOUT_S = 300.0
SIM_QUIT_TIMEOUT_S = 10.0


def open_rig(
    url: str,
    *,
    camera: str | None = None,
    rig: RigDescription | None = None,
    calibrations: Any = None,
    channels: int | None = None,
    ground_truth_to: Callable[[], str | Path | None] | None = None,
    timeout_s: float = 1.0,
    heartbeat: bool = True,
    **session_options: Any,
) -> Session:
    """Open the rig at ``url`` and wrap it in a (not yet started) Session.

    ``url``: a serial port (``/dev/ttyACM0``) or ``sim://?seed=N&channels=C``
    (the simulator in this process; with ``&process=own`` in its own, as the
    command line's ``--sim`` opens it: the module docstring).
    ``camera``: ``"sim"`` (the simulated rig's camera), an index (``"0"``), a
    video file, a named pipe or Unix socket carrying YUV4MPEG2, or None.
    ``rig``: limits and geometry (``rig.rig_file.load_rig_file``); on the
    simulated rig its geometry fills in what the description leaves out.
    ``channels``: recording channels (default: the simulated rig's, else 4).
    ``ground_truth_to``: called when the session closes, gives where the
    simulated rig writes its ground truth (None: nowhere).
    Other keywords go to ``Session`` (``sample_rate_hz``, ``gain``, ...).
    """
    rig = rig or RigDescription()
    closers: list[Callable[[], None]] = []
    simulator = None
    port = url
    if url.startswith(SIM_SCHEME):
        options = parse_sim_url(url)
        if _in_own_process(options):
            child = SimulatorProcess(
                options,
                camera=camera == "sim",
                keep_ground_truth=ground_truth_to is not None,
            )
            port = child.port
            closers.append(lambda: child.close(_ground_truth_path(ground_truth_to)))
            if camera == "sim":  # its live video, read as any y4m stream
                camera = str(child.camera_socket)
            if channels is None:
                channels = int(options.get("channels", DEFAULT_CHANNELS))
            rig = simulated_rig_description(channels, rig)
        else:
            simulator = _start_simulator(options)
            port = simulator.port
            closers.append(_simulator_closer(simulator, ground_truth_to))
            if channels is None:
                channels = simulator.model.geometry.n_channels
            rig = simulated_rig_description(channels, rig, simulator=simulator)
    channels = DEFAULT_CHANNELS if channels is None else channels
    try:
        device = Device.open(port, timeout_s=timeout_s, heartbeat=heartbeat)
    except BaseException:
        _close_all(closers)
        raise
    try:
        if camera == "sim" and simulator is not None:
            cam = simulator.camera()
        else:  # open_camera refuses "sim" without the simulated rig
            cam = open_camera(camera) if camera else None
        return Session(
            device,
            rig=rig,
            camera=cam,
            calibrations=calibrations,
            channels=channels,
            resources=closers,
            **session_options,
        )
    except BaseException:
        device.close()  # a camera or rig-file error must not leave the port open
        _close_all(closers)
        raise


def simulated_rig_description(
    n_channels: int = DEFAULT_CHANNELS,
    rig: RigDescription | None = None,
    *,
    simulator: Any = None,
) -> RigDescription:
    """What a rig file would say of the simulated rig (``neurorig sim`` in its
    own process, or ``simulator``, a SimulatedRig, opened by its port like a
    board): its electrodes and camera, filling in what ``rig`` leaves out."""
    from firmware_bridge.sim import CameraOptics, RacewayGeometry

    if simulator is not None:
        raceway, optics = simulator.model.geometry, simulator.optics
    else:
        raceway, optics = RacewayGeometry.for_channels(n_channels), CameraOptics()
    return _describe(rig or RigDescription(), raceway, optics, n_channels)


def _in_own_process(options: dict[str, str]) -> bool:
    """Whether ``sim://`` options ask for the simulator in its own process
    (and take ``process`` out of them)."""
    where = options.pop(PROCESS_OPTION, "host")
    if where not in ("host", "own"):
        raise ValueError(
            f"sim:// option {PROCESS_OPTION}={where!r}: allowed host (in this "
            "process, the default) or own (a process of its own, as a board)"
        )
    return where == "own"


def _start_simulator(options: dict[str, str]) -> Any:
    from firmware_bridge.sim import SimulatedRig  # the only runtime import of it

    return SimulatedRig.from_options(options)


def _ground_truth_path(
    ground_truth_to: Callable[[], str | Path | None] | None,
) -> Path | None:
    """Where the ground truth goes, if anywhere (its folder must exist)."""
    path = ground_truth_to() if ground_truth_to is not None else None
    if path is None or not Path(path).parent.is_dir():
        return None
    return Path(path).resolve()


class SimulatorProcess:
    """``neurorig sim`` in a process of its own: a board on a pseudo-terminal
    (``port``) and, with ``camera``, its camera's live video on a Unix socket
    (``camera_socket``), as hardware would be.

    ``options``: ``neurorig sim`` options by name, without dashes (``seed``,
    ``channels``, ``camera_drop_rate`` or ``camera-drop-rate``); its own parser
    checks them, and a refusal is a ``ValueError`` carrying its message.
    ``keep_ground_truth``: keep what the rig did, for ``close(path)``.

    The child runs with ``--stdin-control``: its standard input is a pipe from
    here, and it stops when that closes, whoever closes it: ``close()``, or
    the kernel when this process ends, even by SIGKILL. It is in a session of
    its own, so a Ctrl-C at the terminal reaches the host, which then closes
    the rig in order (disarm, stop), not the board underneath it.
    """

    def __init__(
        self,
        options: dict[str, str] | None = None,
        *,
        camera: bool = False,
        keep_ground_truth: bool = False,
        start_timeout_s: float = SIM_START_TIMEOUT_S,
    ) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="neurorig-sim-"))
        self.camera_socket = self._folder / "camera.sock" if camera else None
        argv = [sys.executable, "-m", "rig.cli", "sim", "--stdin-control"]
        for key, value in (options or {}).items():
            argv += [f"--{key.replace('_', '-')}", value]
        if self.camera_socket is not None:
            argv += ["--camera-socket", str(self.camera_socket)]
        if keep_ground_truth:
            argv.append("--keep-ground-truth")
        # The child imports the same neurorig as this process, wherever it runs.
        here = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (here, env.get("PYTHONPATH")) if p
        )
        self._stderr: deque[str] = deque(maxlen=20)
        self._started = self._closed = False
        try:
            self._child = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
                start_new_session=True,
            )
        except BaseException:
            shutil.rmtree(self._folder, ignore_errors=True)
            raise
        self.pid = self._child.pid
        self._stderr_reader = threading.Thread(
            target=self._read_stderr, name="sim-stderr", daemon=True
        )
        self._stderr_reader.start()
        try:
            self.port = self._read_port(start_timeout_s)
        except BaseException:
            self.close()
            raise
        self._started = True

    def _read_port(self, timeout_s: float) -> str:
        """The first line the child prints: its port, or why it did not start."""
        stdout = self._child.stdout
        assert stdout is not None
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"the simulated rig (pid {self.pid}) did not start within "
                    f"{timeout_s:g} s"
                )
            if select.select([stdout], [], [], min(left, 0.5))[0]:
                line = stdout.readline().strip()
                if line.startswith("/"):
                    return line
                self._child.wait(10.0)  # it printed no port: it is ending
                self._stderr_reader.join(2.0)
                why = self._stderr[-1] if self._stderr else f"it printed {line!r}"
                raise ValueError(f"the simulated rig did not start: {why}")

    def _read_stderr(self) -> None:
        stderr = self._child.stderr
        assert stderr is not None
        for line in stderr:
            line = line.rstrip()
            self._stderr.append(line)
            if self._started:  # a start-up error is raised, not logged twice
                log.warning("simulated rig: %s", line)

    def close(self, ground_truth_to: str | Path | None = None) -> None:
        """Stop the child (idempotent); it first writes its ground truth to
        ``ground_truth_to`` if given (and it was started to keep it)."""
        if self._closed:
            return
        self._closed = True
        child = self._child
        if child.poll() is None:
            try:
                assert child.stdin is not None
                if ground_truth_to is not None:
                    request = {"write_ground_truth": str(ground_truth_to)}
                    child.stdin.write(json.dumps(request) + "\n")
                child.stdin.close()  # its cue to stop
            except OSError:  # it has just gone
                pass
            try:
                child.wait(
                    SIM_EXIT_TIMEOUT_S if ground_truth_to else SIM_QUIT_TIMEOUT_S
                )
            except subprocess.TimeoutExpired:
                log.warning("the simulated rig (pid %d) did not stop: killed", self.pid)
                child.kill()
                child.wait()
        elif child.stdin is not None and not child.stdin.closed:
            try:
                child.stdin.close()
            except OSError:
                pass
        self._stderr_reader.join(2.0)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
        if child.returncode not in (0, None) and self._started:
            log.warning(
                "the simulated rig (pid %d) ended with status %s: %s",
                self.pid,
                child.returncode,
                self._stderr[-1] if self._stderr else "no message",
            )
        shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> SimulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _describe(
    rig: RigDescription, raceway: Any, optics: Any, n_channels: int
) -> RigDescription:
    """``rig`` with the simulated raceway's geometry where it has none."""
    changes: dict[str, Any] = {"simulated": True}
    if rig.pair_centres_m is None:
        centres = tuple(float(c) for c in raceway.pair_centres_m()[:n_channels])
        changes["pair_centres_m"] = centres
        changes["head_on_raceway_m"] = float(raceway.head_on_raceway_m)
    if rig.stim_electrodes_m is None:
        changes["stim_electrodes_m"] = tuple(
            float(x) for x in raceway.stim_electrodes_m
        )
    if rig.raceway_origin_px is None:
        changes["raceway_origin_px"] = float(optics.origin_px[0])
        changes["px_per_mm"] = float(optics.px_per_mm)
    if rig.led_region_px is None:  # where the simulated camera draws its LED
        changes["led_region_px"] = optics.led_region_px
    if rig.source == RigDescription().source:
        changes["source"] = "the simulated rig's geometry"
    return dataclasses.replace(rig, **changes)


def _simulator_closer(
    simulator: Any, ground_truth_to: Callable[[], str | Path | None] | None
) -> Callable[[], None]:
    def close() -> None:
        try:
            path = _ground_truth_path(ground_truth_to)
            if path is not None:
                simulator.write_ground_truth(path)
        finally:
            simulator.close()

    return close


def _close_all(closers: list[Callable[[], None]]) -> None:
    for close in closers:
        close()
