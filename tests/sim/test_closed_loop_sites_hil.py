"""Hardware-in-loop, issue 18: a closed loop over sites on the simulated rig's
pseudo-terminal, opened through ``rig.open_rig`` and run as ``neurorig run``
and the GUI run a protocol (``Experiment``), from a protocol file.

Every proposal stays in the search box and the rig's allowed configurations,
the board accepts every command it is sent (a refusal would end the run), the
search tries more than one configuration, its recommendation names one, and the
recording's stimuli went through the electrodes each decision chose.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import rig.recording
from firmware_bridge.stimulus import format_configuration
from rig import open_rig
from rig.closed_loop.loop import space_of
from rig.core.experiment import Experiment
from rig.protocols import load_protocol
from rig.rig_file import RigDescription
from rig.safety import SafetyLimits

PROTOCOL = Path(__file__).parents[2] / "protocols" / "closed-loop-sites.toml"
# The rig allows one configuration the protocol does not search, and not the
# other way round: a proposal outside the search would still be caught here.
ALLOWED = ("C0-R", "C4-A5", "C7-R", "C1-A0")
N_STIMULI = 12


@pytest.fixture
def short_protocol(tmp_path):
    """The shipped protocol, shortened: 12 stimuli, one every 0.5 s."""
    text = PROTOCOL.read_text()
    for old, new in (
        ("n_stimuli = 40", f"n_stimuli = {N_STIMULI}"),
        ("inter_stimulus_interval_s = 1.0", "inter_stimulus_interval_s = 0.5"),
    ):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "closed-loop-sites.toml"
    path.write_text(text)
    return path


def test_a_closed_loop_over_sites_runs_on_the_pty_rig_within_its_limits(
    short_protocol, tmp_path
):
    protocol = load_protocol(short_protocol)
    limits = SafetyLimits(allowed_configurations=ALLOWED)
    sent, refused = [], []
    with open_rig("sim://?seed=18", rig=RigDescription(limits=limits)) as session:
        session.start()
        device_stimulate = session.device.stimulate

        def stimulate(command):  # every command that reaches the wire
            sent.append(command)
            try:
                return device_stimulate(command)
            except Exception as exc:  # a NAK: the board refused it
                refused.append((command, exc))
                raise

        session.device.stimulate = stimulate
        experiment = Experiment(session, protocol, out_root=tmp_path / "runs")
        experiment.start()
        result = experiment.wait(timeout_s=45)
        space = space_of(protocol.closed_loop, session.stim_electrode_positions_m)
    assert result is not None and result.ok, result
    assert refused == []
    assert len(sent) == N_STIMULI

    rec = rig.recording.open(result.folder)
    decisions = rec.events_of("optimiser")
    assert len(decisions) == N_STIMULI
    points = [space.point(*d["point"]) for d in decisions]
    for point in points:
        assert space.contains(point), point
        assert point.configuration in ALLOWED
    assert len({p.configuration for p in points}) >= 2
    # What was sent is what was decided (no calibration: the same Vpp).
    for point, command in zip(points, sent, strict=True):
        assert command.configuration == point.configuration
        assert command.duration_s == pytest.approx(point.duration_s)
        assert command.n_pulses == point.n_pulses
        assert int(command.polarity) == point.polarity

    # The recording's stimuli carry the decisions' electrodes, in order.
    first_pulses = [e for e in rec.events_of("stim_delivered") if e["pulse_index"] == 0]
    assert len(first_pulses) == N_STIMULI
    for point, stim in zip(points, first_pulses, strict=True):
        assert format_configuration(stim["cathode"], stim["anode"]) == (
            point.configuration
        )
        assert stim["requested_vpp"] == pytest.approx(point.amplitude_vpp, abs=1e-3)
    # Every decision records the map over the sites searched; the Pareto front.
    assert set(decisions[-1]["by_configuration"]) == set(space.configurations)
    assert decisions[-1]["pareto_front"]

    (outcome,) = rec.events_of("optimiser_result")
    assert outcome["n_observations"] >= N_STIMULI - 1
    best = space.point(*outcome["recommended_point"])
    assert best.configuration in space.configurations
    assert outcome["recommended"].startswith(best.configuration + " ")
    assert outcome["pareto_front"]
