"""Hardware-in-loop, issue 18: the simulated rig's eight stimulation electrodes
over its pseudo-terminal, opened through ``rig.open_rig`` like any board.

Every configuration is refused or accepted exactly as the limits say: by the
host (``rig.safety``, in the Stimulator, nothing sent) and, with the host's
checks bypassed (``session.device.stimulate``), by the board's own NAK. And the
spikes a site starts travel both ways: stimulated at the head, the middle and
the tail, recording pairs on either side give the model's velocity within 3 %.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from analysis.propagation import PRE_S, analyse_stimulus, search_window_s
from firmware_bridge import StimPulse
from firmware_bridge.errors import CommandRefused
from firmware_bridge.protocol import Field, NakCode
from firmware_bridge.sim import WormParams
from firmware_bridge.stimulus import format_configuration
from rig import open_rig
from rig.rig_file import RigDescription
from rig.safety import SafetyError, SafetyLimits

N = 8  # the simulated board's electrodes
ALLOWED = ("C0-A1", "C1-A0", "C3-R", "C4-A5", "C7-R", "C7-A6")
# Every configuration the wire can carry near the array: in range and out, the
# anode the cathode, the common return.
CANDIDATES = [(c, a) for c in range(N + 2) for a in [*range(N + 2), None]]


def possible(cathode, anode) -> bool:
    return 0 <= cathode < N and (anode is None or (0 <= anode < N and anode != cathode))


@pytest.fixture
def session():
    limits = SafetyLimits(allowed_configurations=ALLOWED)
    s = open_rig("sim://?seed=18", rig=RigDescription(limits=limits))
    s.start()
    s.arm()
    yield s
    s.close()


def wait_idle():
    time.sleep(0.006)  # a 1 ms pulse ends well within it (else the board says BUSY)


def test_every_configuration_is_refused_or_accepted_by_the_host_as_the_limits_say(
    session,
):
    assert session.device.info.n_stim_electrodes == N
    accepted = []
    for cathode, anode in CANDIDATES:
        pulse = StimPulse(1.0, 1e-3, cathode=cathode, anode=anode)
        text = format_configuration(cathode, anode)
        if possible(cathode, anode) and text in ALLOWED:
            session.stimulate(pulse)
            accepted.append(text)
            wait_idle()
            continue
        before = len(session.stimuli)
        with pytest.raises(SafetyError) as refused:
            session.stimulate(pulse)
        field = refused.value.field
        if not possible(cathode, anode):
            assert field in ("cathode", "anode"), str(refused.value)
        else:
            assert field == "configuration" and text in str(refused.value)
        assert len(session.stimuli) == before  # nothing reached the board
    assert sorted(accepted) == sorted(ALLOWED)
    deadline = time.monotonic() + 3
    while len(session.stimuli) < len(ALLOWED) and time.monotonic() < deadline:
        time.sleep(0.01)
    delivered = [
        format_configuration(e["cathode"], e["anode"]) for e in session.stimuli
    ]
    assert delivered == accepted  # each through its own configuration, in order


def test_with_the_host_bypassed_the_board_refuses_exactly_the_impossible_ones(session):
    device = session.device  # no rig.safety on this path
    for cathode, anode in CANDIDATES:
        pulse = StimPulse(1.0, 1e-3, cathode=cathode, anode=anode)
        if possible(cathode, anode):  # the rig's list is the host's, not the board's
            device.stimulate(pulse)
            wait_idle()
            continue
        with pytest.raises(CommandRefused) as refused:
            device.stimulate(pulse)
        nak = refused.value.nak
        if not 0 <= cathode < N:
            assert (nak.error, nak.field) == (NakCode.OUT_OF_RANGE, Field.CATHODE)
            assert (nak.value, nak.allowed_min, nak.allowed_max) == (cathode, 0, N - 1)
        elif anode == cathode:
            assert (nak.error, nak.field) == (NakCode.BAD_CONFIGURATION, Field.ANODE)
        else:
            assert (nak.error, nak.field, nak.value) == (
                NakCode.OUT_OF_RANGE, Field.ANODE, anode,
            )  # fmt: skip
            assert "common return" in str(refused.value)


def test_charge_per_electrode_is_refused_by_the_host_before_the_board():
    # The host's 2 µC per phase per electrode; the board's own 10 µC.
    limits = SafetyLimits(max_charge_per_phase_c=2e-6)
    with open_rig("sim://?seed=19", rig=RigDescription(limits=limits)) as s:
        s.start()
        s.arm()
        pulse = StimPulse(6.0, 3e-3, cathode=5, anode=None)  # 2.9 µC
        with pytest.raises(SafetyError, match="charge_per_phase_uc .*per electrode"):
            s.stimulate(pulse)
        assert s.device.stimulate(pulse) >= 0  # within the board's own limit


# ---------------------------------------------------------- both ways from the site

PARAMS = WormParams()
# electrode: (anode, amplitude_vpp, the fibre it recruits alone, its velocity).
# In the middle a bipolar configuration (C4-A5) keeps the artifact off the
# anterior pairs, which the spike reaches during the pulse.
SITES = {
    0: (None, 3.6, "mgf", PARAMS.mgf_velocity_m_per_s),  # head: the MGF's field
    4: (5, 4.2, "lgf", PARAMS.lgf_velocity_m_per_s),  # middle: the LGFs'
    7: (None, 4.2, "lgf", PARAMS.lgf_velocity_m_per_s),  # tail
}
# 1 ms pulses: on the middle site's anterior side the LGF spike reaches the
# pairs 1.3–3 ms after the onset, after the pulse rather than inside it.
PULSE_S = 1e-3
CLEAR_OF_SITE_M = 0.012  # pairs nearer the site sit in the pulse's artifact


@pytest.mark.parametrize("electrode", sorted(SITES))
def test_spikes_travel_both_ways_at_the_models_velocity(electrode):
    anode, amplitude, fibre, truth = SITES[electrode]
    with open_rig("sim://?seed=5&channels=16") as s:
        s.start()
        site = s.rig.stim_electrodes_m[electrode]
        centres = np.asarray(s.rig.pair_centres_m)
        fs = float(s.sample_rate_hz)
        s.arm()
        time.sleep(0.3)  # a baseline before the first stimulus
        onsets = []
        for _ in range(6):
            onsets.append(
                s.stimulate(
                    StimPulse(amplitude, PULSE_S, cathode=electrode, anode=anode)
                )
            )
            time.sleep(0.35)
        ring = s.acquisition.ring
        uv = np.broadcast_to(np.asarray(s.uv_per_count(), dtype=float), centres.shape)
        sides = {
            "posterior": centres > site + CLEAR_OF_SITE_M,
            "anterior": centres < site - CLEAR_OF_SITE_M,
        }
        signed = {name: [] for name in sides}
        for onset in onsets:
            for name, keep in sides.items():
                if keep.sum() < 3:
                    continue  # this site has no pairs that side
                # The side's pairs, nearest the site first: distance from the
                # site is what the propagation analysis takes as position.
                chans = np.flatnonzero(keep)
                chans = chans[np.argsort(np.abs(centres[chans] - site))]
                distance = np.abs(centres[chans] - site)
                pre, post = round(PRE_S * fs), round(search_window_s(distance) * fs)
                assert ring.wait_for_end(onset + post, timeout_s=3.0)
                epoch = ring.read(onset - pre, pre + post)[:, chans] * uv[chans]
                r = analyse_stimulus(
                    epoch, fs_hz=fs, onset=pre, duration_s=PULSE_S, positions_m=distance
                )
                volleys = [v for v in r.volleys if v.fibre == fibre and v.clean]
                if volleys:
                    v = volleys[0].conduction_velocity_m_per_s
                    signed[name].append(v if name == "posterior" else -v)
    expected_sides = {0: {"posterior"}, 4: {"posterior", "anterior"}, 7: {"anterior"}}
    for name in expected_sides[electrode]:
        assert len(signed[name]) >= 4, (name, signed)
        median = float(np.median(signed[name]))
        sign = 1.0 if name == "posterior" else -1.0
        assert median == pytest.approx(sign * truth, rel=0.03), (name, signed[name])
    for name in {"posterior", "anterior"} - expected_sides[electrode]:
        assert signed[name] == []
