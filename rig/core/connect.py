"""The one front door: ``open_rig`` turns a URL into a Session.

This is the only runtime module that knows the simulator (import-linter holds
it to that, docs/architecture.md): for ``sim://?seed=N&channels=C&rate=R`` it
starts a simulated rig on a pseudo-terminal, opens that port exactly as it would
open a board, and takes the simulated rig's geometry and camera; for anything
else (``/dev/ttyACM0``, ``COM3``) it opens the board and takes the geometry from
the rig file. Either way the rest of neurorig sees one ``Device`` on one serial
port, one ``RigDescription`` and one camera.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from firmware_bridge.device import Device
from firmware_bridge.transport import parse_sim_url
from rig.core.camera import open_camera
from rig.core.session import Session
from rig.rig_file import DEFAULT_CHANNELS, RigDescription

SIM_SCHEME = "sim://"


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

    ``url``: a serial port (``/dev/ttyACM0``) or ``sim://?seed=N&channels=C``.
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
        simulator = _start_simulator(url)
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


def _start_simulator(url: str) -> Any:
    from firmware_bridge.sim import SimulatedRig  # the only runtime import of it

    return SimulatedRig.from_options(parse_sim_url(url))


def _describe(
    rig: RigDescription, raceway: Any, optics: Any, n_channels: int
) -> RigDescription:
    """``rig`` with the simulated raceway's geometry where it has none."""
    changes: dict[str, Any] = {"simulated": True}
    if rig.pair_centres_m is None:
        centres = tuple(float(c) for c in raceway.pair_centres_m()[:n_channels])
        changes["pair_centres_m"] = centres
        changes["head_on_raceway_m"] = float(raceway.head_on_raceway_m)
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
            path = ground_truth_to() if ground_truth_to is not None else None
            if path is not None and Path(path).parent.is_dir():
                simulator.write_ground_truth(path)
        finally:
            simulator.close()

    return close


def _close_all(closers: list[Callable[[], None]]) -> None:
    for close in closers:
        close()
