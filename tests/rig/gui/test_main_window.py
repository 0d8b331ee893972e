"""The lab app's real widgets, offscreen, over the simulated rig's pseudo-terminal.

Each test connects the window to a fresh simulated rig (sim:// opens a real pty
that the Session reads with pyserial), then drives buttons, fields and keys the
way a scientist would, and checks what reached the board and the recording.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from pyqtgraph.Qt import QtCore

import rig.recording
from firmware_bridge.protocol import StatusFlag
from firmware_bridge.sim import SimulatedRig
from rig.gui.app import default_session_factory
from rig.gui.connection import SIM_CHOICE
from rig.gui.main_window import MainWindow
from tests._rigs import session_on
from tests.rig.gui.conftest import LEFT, settings_in

SHORT = """format_version = 1
[protocol]
name = "gui-short"
seed = 2
[[block]]
amplitude_vpp = [3.0, 5.0]
duration_ms = 4.0
inter_stimulus_interval_s = 0.3
"""


def board_armed(session) -> bool:
    return bool(session.device.status().flags & StatusFlag.ARMED)


def arm(qtbot, win):
    qtbot.mouseClick(win.stimulation.arm_button, LEFT)
    qtbot.waitUntil(lambda: board_armed(win.session), timeout=5000)
    qtbot.waitUntil(lambda: win.stimulation.arm_button.text() == "Disarm", timeout=2000)


def test_connect_shows_identity_and_streams_into_traces_camera_and_status(
    qtbot, window
):
    assert "firmware 0.1.0" in window.connection.identity.text()
    assert window.connection.connect_button.text() == "Disconnect"
    qtbot.waitUntil(
        lambda: window.session.acquisition.counters.samples_received > 75_000,
        timeout=10_000,
    )
    qtbot.waitUntil(lambda: "received" in window.link_label.full_text(), timeout=3000)
    assert " 0 lost" in window.link_label.full_text()
    # Four stacked traces, each the newest 2 s (60 000 samples) of its channel.
    assert len(window.traces.curves) == 4
    window.traces.refresh()
    t = window.traces.curves[0].xData  # min/max per screen column of 2 s of data
    assert 400 <= t.size <= 4000  # two points per screen column, not 60 000
    assert 1.95 < t[-1] - t[0] <= 2.0
    x_range = window.traces.plot.viewRange()[0]
    assert x_range[1] - x_range[0] == pytest.approx(2.0, abs=1e-3)
    assert window.frames_drawn > 10
    # Video with tracked segments and per-region displacement.
    qtbot.waitUntil(lambda: window.session.tracking.frames_tracked > 30, timeout=5000)
    window.camera.refresh()
    assert window.camera.image.image.shape == (640, 480)
    assert len(window.camera.bands.data) > 20  # segment bands found
    assert len(window.camera.region_labels) == 4
    # The view says how far its frame times can be trusted.
    assert "LED code on" in window.camera.status.text()
    times, disp = window.session.tracking.displacement_series()
    assert disp.shape[1] == 4 and np.nanmax(np.abs(disp)) < 1e-3  # at rest: < 1 mm


def test_single_pulse_reaches_the_board_and_fills_sweeps_and_map(qtbot, window):
    stim = window.stimulation
    stim.amplitude.setValue(5.0)
    stim.duration_ms.setValue(4.0)
    arm(qtbot, window)
    qtbot.mouseClick(stim.fire_button, LEFT)
    qtbot.waitUntil(lambda: len(window.session.stimuli) == 1, timeout=5000)
    delivered = window.session.stimuli[0]
    assert delivered["commanded_vpp"] == 5.0 and delivered["duration_s"] == 0.004
    # The online analysis answers; the parameter map and sweeps fill in.
    qtbot.waitUntil(lambda: len(window.param_map.records) == 1, timeout=5000)
    assert window.param_map.count.text() == "1 trials"
    result = window.param_map.records[0]
    assert result["amplitude_vpp"] == 5.0 and result["responded"]
    qtbot.waitUntil(lambda: "m/s" in window.sweeps.velocity_label.text(), timeout=3000)
    velocity = float(window.sweeps.velocity_label.text().split(": ")[1].split()[0])
    assert 5 < velocity < 40  # an earthworm giant fibre, not noise
    # The twitch, filmed over the next 0.4 s, fills in the displacement map.
    qtbot.waitUntil(
        lambda: result.get("peak_displacement_mm") is not None, timeout=3000
    )
    # A visible twitch, at most what the model can give (both giant fibres:
    # 3.2 % of a 150 mm body = 4.8 mm) plus tracking error; CI measured 5.01.
    assert 0.3 < result["peak_displacement_mm"] < 6.0
    window.param_map.measure.setCurrentText("peak displacement (mm)")
    # One condition so far: a point on a curve (a map needs two axes' worth).
    _, shown = window.param_map.curve.getData()
    assert shown.tolist() == [result["peak_displacement_mm"]]


def test_the_fields_hold_only_what_the_rig_allows(qtbot, window):
    stim, limits = window.stimulation, window.session.limits
    stim.amplitude.setValue(9.0)
    assert stim.amplitude.value() == limits.max_amplitude_vpp  # 6 Vpp, not 9
    stim.duration_ms.setValue(0.1)
    assert stim.duration_ms.value() == limits.min_duration_s * 1e3
    stim.n_pulses.setValue(100_000)
    assert stim.n_pulses.value() == limits.max_n_pulses


def test_a_refused_stimulus_is_shown_and_nothing_is_sent(qtbot, window):
    stim = window.stimulation
    arm(qtbot, window)
    # A configuration the board does not have is refused by the picker.
    assert not stim.choose_configuration("C9-A1")
    assert "C9-A1" in stim.message.text()
    assert stim.choose_configuration("C3-R")
    # A rig with a lower charge limit per electrode: 6 Vpp × 7 ms is 6.7 µC.
    stim.amplitude.setValue(6.0)
    stim.duration_ms.setValue(7.0)
    window.session.stimulator.limits = dataclasses.replace(
        window.session.limits, max_charge_per_phase_c=2e-6
    )
    stim.validate()
    assert not stim.fire_button.isEnabled()
    assert "charge_per_phase_uc" in stim.message.text()
    stim.fire()  # even if called directly, the panel refuses
    qtbot.wait(500)
    assert window.session.stimuli == []
    stim.amplitude.setValue(1.0)
    assert stim.fire_button.isEnabled() and stim.message.text() == ""


def test_escape_key_is_an_emergency_stop_that_disarms_the_board(qtbot, window):
    arm(qtbot, window)
    qtbot.keyClick(window, QtCore.Qt.Key_Escape)
    assert "EMERGENCY STOP" in window.stimulation.message.text()
    qtbot.waitUntil(lambda: not board_armed(window.session), timeout=2000)
    qtbot.waitUntil(lambda: not window.stimulation.arm_button.isChecked(), timeout=2000)


def test_after_an_emergency_stop_the_board_arms_again_only_after_reset(qtbot, window):
    stim = window.stimulation
    arm(qtbot, window)
    qtbot.keyClick(window, QtCore.Qt.Key_Escape)
    qtbot.waitUntil(lambda: not board_armed(window.session), timeout=2000)
    assert stim.reset_button.isEnabled()
    stim.arm_button.click()  # refused: the stop holds
    qtbot.waitUntil(lambda: "until it is reset" in stim.message.text(), timeout=2000)
    assert not board_armed(window.session) and not stim.arm_button.isChecked()
    qtbot.mouseClick(stim.reset_button, LEFT)
    qtbot.waitUntil(lambda: not stim.reset_button.isEnabled(), timeout=2000)
    arm(qtbot, window)
    assert board_armed(window.session)


def test_protocol_run_is_recorded_and_folders_are_remembered(qtbot, window, tmp_path):
    protocol_file = tmp_path / "short.toml"
    protocol_file.write_text(SHORT)
    window.recording.folder.setText(str(tmp_path / "runs"))
    qtbot.mouseClick(window.recording.button, LEFT)
    qtbot.waitUntil(lambda: window.session.recorder.writer is not None, timeout=5000)
    assert window.protocol.load(str(protocol_file))
    assert "2 stimuli" in window.protocol.summary.text()
    qtbot.mouseClick(window.protocol.run_button, LEFT)
    qtbot.waitUntil(lambda: window.protocol.progress.value() == 2, timeout=15_000)
    qtbot.waitUntil(
        lambda: window.protocol.remaining.text() == "completed after 2 of 2 stimuli",
        timeout=10_000,
    )
    path = window.recording.path_label.full_text()
    qtbot.mouseClick(window.recording.button, LEFT)
    qtbot.waitUntil(lambda: window.session.recorder.writer is None, timeout=5000)
    rec = rig.recording.open(path)
    assert rec.status == "completed"
    amplitudes = [e["requested_vpp"] for e in rec.events_of("stim_delivered")]
    assert amplitudes == [3.0, 5.0]
    # The protocol run during the GUI's recording is kept with it.
    assert rec.metadata["protocol_file"] == "short.toml"
    assert rec.attachments["short.toml"].read_text() == SHORT
    [started] = rec.events_of("protocol_started")
    assert started["name"] == "gui-short"
    assert started["sample"] < rec.events_of("stim_delivered")[0]["sample"]
    # Every 60 fps trigger has its frame, or is reported as dropped.
    recorded_s = rec.samples.shape[0] / rec.sample_rate_hz
    [report] = rec.events_of("frame_report")
    accounted = (
        len(rec.frame_times)
        + len(report["dropped_triggers"])
        + report["n_drops_not_named"]  # among frames the code could not prove
    )
    assert abs(accounted - 60 * recorded_s) <= 4  # frames in flight at start/stop
    assert len(rec.frame_times) > 0.5 * 60 * recorded_s
    # The next window remembers the port and the folders.
    window.close()
    again = MainWindow(
        session_factory=default_session_factory, settings=settings_in(tmp_path)
    )
    qtbot.addWidget(again)
    assert again.connection.ports.currentText() == SIM_CHOICE
    assert again.settings.value("record_folder") == str(tmp_path / "runs")
    assert again.settings.value("protocol_folder") == str(tmp_path)


def test_unplugging_the_board_is_shown_in_the_window(qtbot, tmp_path):
    simulator = SimulatedRig(seed=4)  # held here, to pull its plug

    def factory(url):
        session = session_on(simulator, camera=simulator.camera())
        session.start()
        return session

    window = MainWindow(session_factory=factory, settings=settings_in(tmp_path))
    qtbot.addWidget(window)
    window.show()
    window.connect_to("the simulated board's port")
    qtbot.waitUntil(lambda: window.session is not None, timeout=20_000)
    simulator.unplug()
    qtbot.waitUntil(lambda: "went away" in window.error_label.full_text(), timeout=5000)
    # The window still runs its event loop and redraws.
    drawn = window.frames_drawn
    qtbot.wait(300)
    assert window.isVisible() and window.frames_drawn >= drawn


def test_an_error_in_a_view_is_shown_in_the_window_not_lost(qtbot, window):
    import sys

    from rig.gui.app import install_error_hook

    previous = sys.excepthook
    install_error_hook(window)
    try:
        # What PyQt does with an exception escaping a slot: hand it to excepthook.
        try:
            raise ValueError("bad frame shape (1, 2)")
        except ValueError:
            sys.excepthook(*sys.exc_info())
    finally:
        sys.excepthook = previous
    assert window.error_label.full_text() == (
        "internal error (ValueError): bad frame shape (1, 2)"
    )
    assert window.session.acquisition.counters.samples_received > 0


CLOSED_LOOP = """format_version = 1
[protocol]
name = "gui-closed-loop"
seed = 5
[closed_loop]
n_stimuli = 6
inter_stimulus_interval_s = 0.25
"""


def test_closed_loop_panel_shows_proposals_and_obeys_accept_override_stop(
    qtbot, window, tmp_path
):
    protocol_file = tmp_path / "cl.toml"
    protocol_file.write_text(CLOSED_LOOP)
    panel = window.closed_loop
    panel.approval.setChecked(True)
    assert window.protocol.load(str(protocol_file))
    assert "closed loop (bayesian), up to 6 stimuli" in window.protocol.summary.text()
    qtbot.mouseClick(window.protocol.run_button, LEFT)

    def proposal(k):
        qtbot.waitUntil(
            lambda: panel.reason.text().startswith(f"trial {k}:"), timeout=10_000
        )
        assert "waiting for approval" in panel.reason.text()

    proposal(0)
    qtbot.mouseClick(panel.accept_button, LEFT)
    proposal(1)
    qtbot.mouseClick(panel.accept_button, LEFT)
    proposal(2)
    panel.override_amplitude.setValue(9.0)  # beyond the rig's limits: refused
    qtbot.mouseClick(panel.override_button, LEFT)
    assert panel.message.text() == (
        "override 9 Vpp × 2 ms (pair 0) is outside the search space "
        "2–6 Vpp × 2–6.7 ms, pairs [0]"
    )
    panel.override_amplitude.setValue(3.0)
    panel.override_duration_ms.setValue(2.0)
    qtbot.mouseClick(panel.override_button, LEFT)
    proposal(3)
    assert panel.image.image is not None  # the posterior map is drawn
    assert len(panel.observed.data) == 3
    assert panel.override_points == [[3.0, 0.002, 0]]  # marked on the map
    assert panel.overrides.data["x"].tolist() == [3.0]
    assert "score:" in panel.plot.bar.getAxis("left").labelText  # names its measure
    qtbot.mouseClick(panel.stop_button, LEFT)
    qtbot.waitUntil(
        lambda: window.protocol.remaining.text().startswith("cancelled after 3"),
        timeout=10_000,
    )
    # The end shows the recommendation, not a "next" that will never come.
    assert panel.reason.text().startswith("run ended: recommended ")
    assert len(panel.proposal.data) == 0
    # A new run starts from a clean map.
    assert window.protocol.load(str(protocol_file))
    qtbot.mouseClick(window.protocol.run_button, LEFT)
    qtbot.waitUntil(lambda: panel.loop is not None, timeout=5000)
    assert panel.image.image is None and len(panel.observed.data) == 0
    assert panel.override_points == []
    qtbot.mouseClick(panel.stop_button, LEFT)
    qtbot.waitUntil(lambda: panel.loop is None, timeout=10_000)
    requested = [s["requested_vpp"] for s in window.session.stimuli]
    assert len(requested) == 3 and requested[2] == 3.0
    assert window.session.stimuli[2]["duration_s"] == 0.002
    assert not panel.stop_button.isEnabled()


def test_a_stopped_protocol_is_resumed_from_the_gui(qtbot, window, tmp_path):
    """Issue 21, item 5: the fail-safe issue's resume as a GUI control: the
    trials a stopped recording did not deliver, into the recording in progress,
    linked to the first (metadata resumed_from), as `neurorig run --resume`."""
    protocol_file = tmp_path / "six.toml"
    protocol_file.write_text(
        SHORT.replace("[3.0, 5.0]", "[3.0, 3.5, 4.0, 4.5, 5.0, 5.5]").replace(
            "0.3", "0.5"
        )
    )
    window.recording.folder.setText(str(tmp_path / "runs"))
    assert window.protocol.load(str(protocol_file))
    window.protocol.run(resume_from=str(tmp_path))  # no recording: refused
    assert "start a recording first" in window.protocol.summary.text()
    assert window.session.runner.status.trial == 0
    qtbot.mouseClick(window.recording.button, LEFT)
    qtbot.waitUntil(lambda: window.session.recorder.writer is not None, timeout=5000)
    qtbot.mouseClick(window.protocol.run_button, LEFT)
    qtbot.waitUntil(lambda: window.protocol.progress.value() >= 2, timeout=15_000)
    qtbot.mouseClick(window.protocol.stop_button, LEFT)  # stopped early
    qtbot.waitUntil(
        lambda: "cancelled" in window.protocol.remaining.text(), timeout=10_000
    )
    first = window.recording.path_label.full_text()
    qtbot.mouseClick(window.recording.button, LEFT)
    qtbot.waitUntil(lambda: window.session.recorder.writer is None, timeout=5000)
    done = [e["index"] for e in rig.recording.open(first).events_of("trial")]
    assert 2 <= len(done) < 6
    qtbot.wait(1100)  # a new recording folder (named by the second)
    qtbot.mouseClick(window.recording.button, LEFT)
    qtbot.waitUntil(lambda: window.session.recorder.writer is not None, timeout=5000)
    window.protocol.run(resume_from=first)  # the Resume… button's dialog, chosen
    assert "resuming gui-short at trial" in window.protocol.summary.text()
    qtbot.waitUntil(
        lambda: "completed" in window.protocol.remaining.text(), timeout=20_000
    )
    second = window.recording.path_label.full_text()
    qtbot.mouseClick(window.recording.button, LEFT)
    qtbot.waitUntil(lambda: window.session.recorder.writer is None, timeout=5000)
    rec = rig.recording.open(second)
    assert second != first
    assert rec.metadata["resumed_from"] == {
        "recording": first,
        "first_trial": len(done),
    }
    resumed = [e["index"] for e in rec.events_of("trial")]
    assert done + resumed == list(range(6))  # every trial once, none twice
