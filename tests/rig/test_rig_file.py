"""The rig file (limits and geometry of a real rig) and a session that uses it on
a board that is not the simulator as far as the host knows: the simulated rig's
pseudo-terminal opened with pyserial, its camera used as any camera."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge import StimPulse
from firmware_bridge.device import Device
from firmware_bridge.link import SerialLink
from firmware_bridge.sim import SimulatedRig
from firmware_bridge.transport import open_port
from rig.closed_loop.loop import ClosedLoop
from rig.core.session import Session
from rig.protocols import ClosedLoopSpec, ObjectiveSpec
from rig.rig_file import RigDescription, RigFileError, load_rig_file
from rig.safety import SafetyError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "rigs" / "example-rig.toml"


def test_the_example_rig_file_describes_the_standard_raceway():
    rig = load_rig_file(EXAMPLE)
    assert rig.pair_centres_m == pytest.approx((0.0375, 0.0575, 0.0775, 0.0975))
    assert rig.head_on_raceway_m == pytest.approx(0.010)
    assert (rig.raceway_origin_px, rig.px_per_mm) == (40.0, 3.2)
    assert rig.limits.max_amplitude_vpp == 6.0
    geometry = rig.geometry()
    assert geometry["camera"]["origin_px"] == [40.0]
    assert geometry["source"] == str(EXAMPLE)
    # The safety-limits file alone is a rig file with only [limits].
    only_limits = load_rig_file(ROOT / "rigs" / "safety-default.toml")
    assert only_limits.pair_centres_m is None and only_limits.geometry() is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[electrode]\npair_centres_mm = [1]\n",
         r"\[electrode\] is not a rig-file table \(allowed: \[limits\], \[electrodes\]"),
        ("[camera]\norigin_px = 4\n",
         r"camera.origin_px is not a key of \[camera\] \(allowed: led_region_px, "
         r"px_per_mm, raceway_origin_px\)"),
        ("[camera]\nled_region_px = [12, 8, 0, 4]\n",
         r"camera.led_region_px = \[12, 8, 0, 4\]: allowed \[top, bottom, left, right\]"),
        ("[electrodes]\npair_centres_mm = [30, -5]\n",
         r"pair_centres_mm = \[30, -5\]: allowed 1–32 different positions, each "
         r"0–1000 mm"),
        ("[electrodes]\npair_centres_mm = 30\n", "give a list of numbers"),
        ("[camera]\npx_per_mm = 0\n", r"camera.px_per_mm = 0: allowed 0.01–1000"),
        ("[limits]\nmax_amplitude_vpp = -1\n", "limits.max_amplitude_vpp"),
        ("[camera\n", "not valid TOML"),
    ],
)  # fmt: skip
def test_a_bad_rig_file_names_the_key_and_what_is_allowed(tmp_path, text, message):
    path = tmp_path / "rig.toml"
    path.write_text(text)
    with pytest.raises((RigFileError, SafetyError), match=message):
        load_rig_file(path)


def test_command_line_positions_replace_the_files_and_are_checked():
    rig = load_rig_file(EXAMPLE).with_positions_mm("30,52.5,80,101")
    assert rig.pair_centres_m == pytest.approx((0.030, 0.0525, 0.080, 0.101))
    assert rig.raceway_origin_px == 40.0  # the rest of the file stays
    with pytest.raises(RigFileError, match="comma-separated numbers"):
        rig.with_positions_mm("30;40")


def board_session(rig_, **kwargs):
    """A session that knows only the port, as with hardware."""
    return Session(Device.open(rig_.port, timeout_s=2.0), **kwargs)


def test_a_board_described_by_its_rig_file_gets_online_analysis_and_tracking():
    rig_ = SimulatedRig(seed=5)
    rig = load_rig_file(EXAMPLE)
    session = board_session(rig_, camera=rig_.camera(), rig=rig)
    assert not session.rig.simulated  # the host does not know it is simulated
    responses, twitches = [], []
    session.events.response_measured.connect(lambda t, r: responses.append(r))
    session.events.motion_measured.connect(lambda t, r: twitches.append(r))
    try:
        session.start()
        assert session.setup_warnings() == []
        time.sleep(0.5)
        session.arm()
        session.stimulate(StimPulse(5.5, 4e-3))
        time.sleep(0.8)
    finally:
        session.close()
        rig_.close()
    assert np.allclose(session.positions_m, rig_.model.geometry.pair_centres_m())
    assert len(responses) == 1 and responses[0]["responded"]
    assert 20 < responses[0]["conduction_velocity_m_per_s"] < 40  # the MGF
    assert len(twitches) == 1 and twitches[0]["peak_displacement_mm"] > 0.5


def test_a_board_without_electrode_positions_says_so_and_refuses_a_closed_loop():
    rig_ = SimulatedRig(seed=5)
    session = board_session(rig_)
    try:
        session.start()
        assert session.online is None
        assert "no electrode positions" in session.setup_warnings()[0]
        spec = ClosedLoopSpec(objective=ObjectiveSpec(measure="amplitude_uv_mean"))
        with pytest.raises(ValueError, match=r"\[electrodes\] \(--rig FILE\)"):
            ClosedLoop(session, spec)
    finally:
        session.close()
        rig_.close()


def test_a_rig_file_with_too_few_positions_for_the_channels_is_refused():
    rig_ = SimulatedRig(seed=5)
    link = SerialLink(open_port(rig_.port))
    try:
        with pytest.raises(ValueError, match="gives 3 electrode positions for 4"):
            Session(Device(link), rig=RigDescription(pair_centres_m=(0.03, 0.05, 0.07)))
    finally:
        link.close()
        rig_.close()


def test_the_stimulators_electrodes_and_allowed_configurations(tmp_path):
    # issue 18: [stimulator] electrode_positions_mm, limits.allowed_configurations
    path = tmp_path / "rig.toml"
    path.write_text(
        "[stimulator]\nelectrode_positions_mm = [4, 12, 60]\n"
        '[limits]\nallowed_configurations = ["C0-A1", "c2-r"]\n'
    )
    rig = load_rig_file(path)
    assert rig.stim_electrodes_m == pytest.approx((0.004, 0.012, 0.060))
    assert rig.n_stim_electrodes == 3
    assert rig.limits.allowed_configurations == ("C0-A1", "C2-R")
    assert rig.limits.configurations(3) == ["C0-A1", "C2-R"]
    for text, message in (
        ("[stimulator]\nelectrode_positions_mm = [12, 4]\n", "ascending positions"),
        ("[stimulator]\nelectrode_positions_mm = []\n", "allowed 1–16"),
        ("[stimulator]\nwhere = 1\n", "stimulator.where is not a key"),
        ('[limits]\nallowed_configurations = ["C0-A0"]\n', "anode must be another"),
        ('[limits]\nallowed_configurations = "some"\n', '"all" or a non-empty list'),
        (
            "[stimulator]\nelectrode_positions_mm = [4, 12]\n"
            '[limits]\nallowed_configurations = ["C5-R"]\n',
            "names C5-R, but stimulator.electrode_positions_mm places 2 electrodes",
        ),
    ):
        path.write_text(text)
        with pytest.raises(ValueError, match=re.escape(message)):
            load_rig_file(path)
    path.write_text("[limits]\nallowed_pairs = [0, 1]\n")  # the old key
    assert load_rig_file(path).limits.allowed_configurations == ("C0-A1", "C2-A3")
    path.write_text('[limits]\nallowed_configurations = "all"\n')
    assert load_rig_file(path).limits.allowed_configurations is None
