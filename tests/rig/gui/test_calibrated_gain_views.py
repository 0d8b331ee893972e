"""With a gain calibration, the live traces and the sweeps both show its µV.

Real widgets (offscreen) over a real Session on the simulated rig's
pseudo-terminal, with a gain calibration whose µV per count differs from the
board's nominal gain on every channel (by 1.5–3x, so the nominal scale cannot
pass). One stimulus is delivered, the stream is stopped so the ring holds
still, and what each view draws is checked against the ring's counts times the
calibrated µV per count (the sweeps: as the analysis cleaned them).
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.propagation import analyse_stimulus
from calibration import CalibrationSet, GainCalibration
from firmware_bridge import StimPulse
from firmware_bridge.sim import BoardLimits
from rig.core.connect import open_rig
from rig.gui._bridge import QtBridge
from rig.gui.sweeps import SweepsWidget
from rig.gui.traces import LiveTracesWidget

SCALE = np.array([1.5, 2.0, 2.5, 3.0])  # calibrated / nominal, per channel


def gain_calibration(uv_per_count: np.ndarray) -> GainCalibration:
    return GainCalibration(
        uv_per_count=[float(u) for u in uv_per_count],
        offset_counts=[0.0] * 4,
        noise_uv_rms=[2.0] * 4,
        test_amplitude_uvpp=1000.0,
        test_frequency_hz=1000.0,
        fitted_at="2025-01-01T00:00:00+00:00",
        rig_id="test",
        residual_rms=2.0,
        n_measurements=30_000,
    )


@pytest.fixture
def session():
    board = BoardLimits()  # what the simulated board reports; checked below
    nominal_uv = board.adc_range_vpp / 2**board.adc_bits / 1000 * 1e6
    calibrations = CalibrationSet({"gain": gain_calibration(nominal_uv * SCALE)}, [])
    session = open_rig("sim://?seed=5", calibrations=calibrations)
    assert session.device.info.volts_per_count(1000) * 1e6 == pytest.approx(nominal_uv)
    yield session, nominal_uv
    session.close()


def test_traces_and_sweeps_both_show_the_calibrated_uv(qtbot, session):
    session, nominal_uv = session
    uv = np.asarray(session.uv_per_count())
    np.testing.assert_allclose(uv, nominal_uv * SCALE)  # the calibration is in force
    bridge = QtBridge(session.events)
    sweeps = SweepsWidget(session, bridge)
    traces = LiveTracesWidget(session)
    for widget in (sweeps, traces):
        qtbot.addWidget(widget)
    traces.resize(1800, 400)  # wider than the window's samples: each one drawn
    traces.show()
    qtbot.waitExposed(traces)
    traces.window_s.setValue(0.05)

    session.start()
    ring = session.acquisition.ring
    fs = session.sample_rate_hz
    # A stimulus with its pre-stimulus samples in the ring.
    qtbot.waitUntil(
        lambda: ring.end is not None and ring.end - ring.oldest > fs // 10,
        timeout=5000,
    )
    session.arm()
    session.stimulate(StimPulse(5.0, 3e-3))
    qtbot.waitUntil(lambda: len(session.stimuli) == 1, timeout=5000)
    onset = session.stimuli[0]["sample"]
    post = int(12e-3 * fs)
    qtbot.waitUntil(lambda: ring.end >= onset + post + fs // 10, timeout=5000)
    session.stop()  # the ring holds still from here

    qtbot.waitUntil(lambda: onset in session.online.sweeps, timeout=5000)
    sweeps.refresh()
    # The sweep drawn is the online analysis's cleaned epoch, and that is the
    # analysis of the ring's counts at the calibrated µV per count.
    rows_before, cleaned = session.online.sweeps[onset]
    counts = ring.read(onset - rows_before, cleaned.shape[0]).astype(float)

    def analysed(uv_per_count):
        return analyse_stimulus(
            counts * uv_per_count, fs_hz=fs, onset=rows_before, duration_s=3e-3,
            positions_m=session.positions_m, clip_uv=32767 * uv_per_count,
            keep_cleaned=True,
        ).cleaned_uv  # fmt: skip

    np.testing.assert_allclose(cleaned, analysed(uv), rtol=1e-5, atol=1e-3)
    assert not np.allclose(cleaned, analysed(uv / SCALE), rtol=0.1, equal_nan=True)
    t_ms = (np.arange(cleaned.shape[0]) - rows_before) / fs * 1e3
    shown = (t_ms >= -2.0) & (t_ms <= 12.0)
    for ch in range(4):
        np.testing.assert_allclose(sweeps.curves[ch][0].yData, cleaned[shown, ch])

    traces.refresh()
    n = int(0.05 * fs)
    _, block = ring.latest(n)
    expected_uv = block.astype(np.float32) * uv.astype(np.float32)
    expected_uv -= np.median(expected_uv[::50], axis=0)
    spacing = traces.spacing_uv.value()
    for ch, curve in enumerate(traces.curves):
        assert curve.yData.size == n
        np.testing.assert_allclose(
            curve.yData + ch * spacing, expected_uv[:, ch], rtol=0, atol=1e-3
        )
