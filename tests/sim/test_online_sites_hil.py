"""Hardware-in-loop, issue 18: the ONLINE analysis of each stimulus about its
site, on the simulated rig opened by its pseudo-terminal like any board.

From the head end the online result is the first wave's, key for key; from the
middle and the tail the pairs on each side are timed by their distance from
the cathode, the fibres named are the ones the simulator's ground truth says
fired (so the closed loop's ``lgf_responded`` is 1 where the LGF fired), the
named volleys are the offline per-site analysis's of the same recording, and a
closed loop over mid-body configurations learns that the LGF fires there.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from analysis.pipeline import Stimulus, analyse_stimuli
from firmware_bridge import StimPulse
from firmware_bridge.sim import SimulatedRig
from rig.closed_loop.loop import ClosedLoop
from rig.closed_loop.measures import response_value
from rig.core.experiment import new_recording
from rig.core.online_analysis import INT16_RAIL
from rig.offline.load import load_recording
from rig.offline.sites import analyse_sites
from rig.protocols import parse_protocol
from tests._rigs import session_on

# What a result of the first wave holds: the stimulus, the analysis, and what
# the session adds. A head-site result must hold exactly these.
FIRST_WAVE_KEYS = {
    "trial", "stimulus_sample", "amplitude_vpp", "delivered_vpp", "duration_s",
    "configuration", "polarity", "onset_sample", "responded", "latency_s",
    "amplitude_uv", "conduction_velocity_m_per_s", "volleys", "suspect_volleys",
    "quality", "amplitude_uv_mean", "positions_m", "peak_displacement_mm",
    "window_received_s",
}  # fmt: skip
SITE_KEYS = {
    "site_m", "fibres_separable", "anterior_velocity_m_per_s",
    "posterior_velocity_m_per_s", "direction", "bidirectional",
}  # fmt: skip


def collect(session) -> list[dict]:
    results: list[dict] = []
    session.events.response_measured.connect(lambda trial, r: results.append(r))
    return results


def wait_for(predicate, timeout_s=5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


class _Bar:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress(*args, **kwargs):
    return _Bar()


def test_a_head_site_result_is_exactly_the_first_waves():
    # The first wave's rig: four pairs, the classic head pair C0-A1 (4 mm from
    # the head end), the stimulation electrodes' positions known.
    simulator = SimulatedRig(seed=17)
    session = session_on(simulator)
    online = collect(session)
    try:
        assert session.rig.stim_electrodes_m[0] == pytest.approx(0.004)
        session.start()
        session.arm()
        time.sleep(0.3)  # 50 ms of baseline for every epoch
        for amplitude in (2.0, 3.4, 4.2, 5.8):
            session.stimulate(StimPulse(amplitude, 3e-3))  # C0-A1
            time.sleep(0.25)
        assert wait_for(lambda: len(online) == 4)
        ring = session.acquisition.ring
        uv = session.uv_per_count()
        positions = session.positions_m

        def read_uv(first, n):
            if first < ring.oldest or first + n > ring.end:
                return None
            return ring.read(first, n).astype(np.float64) * uv

        stimuli = [
            Stimulus(r["stimulus_sample"], r["amplitude_vpp"], r["duration_s"])
            for r in online
        ]
        # The first wave's analysis, as it was: pair positions from the head
        # end as the distances, the pulse lengths learnt in trial order.
        today = analyse_stimuli(
            read_uv, stimuli, fs_hz=session.sample_rate_hz, positions_m=positions,
            clip_uv=INT16_RAIL * abs(uv),
        )  # fmt: skip
    finally:
        session.close()
    assert sum(r["responded"] for r in online) >= 2
    for result, first_wave in zip(online, today, strict=True):
        assert first_wave is not None
        assert set(result) == FIRST_WAVE_KEYS  # no key of the site analysis
        assert result == {**result, **first_wave.to_dict()}  # every field as today
        assert result["configuration"] == "C0-A1"


# cathode: amplitude (1 ms, against the common return). The head: above both
# fibres' thresholds there; the middle and the tail: the LGF's field, above
# its threshold and below the MGF's (firmware_bridge.sim.worm).
SITES = {0: 5.0, 4: 4.2, 7: 4.2}


@pytest.fixture(scope="module")
def over_sites(tmp_path_factory):
    """Eight pairs (30–140 mm), three stimuli from each of the head, the
    middle (67 mm) and the tail (140 mm), recorded; the online results and
    the simulator's ground truth."""
    simulator = SimulatedRig(seed=18, n_channels=8)
    session = session_on(simulator, channels=8)
    online = collect(session)
    folder = None
    try:
        session.start()
        writer = new_recording(session, tmp_path_factory.mktemp("online-sites"))
        folder = writer.folder
        session.start_recording(writer)
        session.arm()
        time.sleep(0.3)
        for _ in range(3):
            for cathode, amplitude in SITES.items():
                session.stimulate(
                    StimPulse(amplitude, 1e-3, cathode=cathode, anode=None)
                )
                time.sleep(0.35)
        assert wait_for(lambda: len(online) == 3 * len(SITES))
        session.stop_recording()
        truth = [dict(vars(o)) for o in simulator.model.outcomes]
    finally:
        session.close()
    return online, truth, folder


def test_online_results_name_the_fibres_the_simulator_fired(over_sites):
    online, truth, _ = over_sites
    by_onset = {r["stimulus_sample"]: r for r in online}
    assert len(truth) == len(online) == 9
    misnamed = []
    velocities: dict[tuple[int, str], list] = {}
    for fired in truth:
        result = by_onset[fired["onset_sample"]]
        named = {v["fibre"] for v in result["volleys"]}
        expected = {f for f in ("mgf", "lgf") if fired[f"{f}_fired"]}
        where = (fired["cathode"], result["configuration"])
        assert expected, where  # every stimulus was above a threshold
        assert response_value(result, "lgf_responded") == float(fired["lgf_fired"])
        if named != expected:
            misnamed.append((where, result["volleys"]))
            continue
        if fired["cathode"] == 0:  # the head: the first wave's result
            assert set(result) == FIRST_WAVE_KEYS, where
            continue
        assert set(result) == FIRST_WAVE_KEYS | SITE_KEYS, where
        assert result["site_m"] == pytest.approx(fired["site_m"])
        # the LGF's 15 m/s away from the site, both ways from the middle and
        # head-ward from the tail, signed by direction; a side with too few
        # pairs clear of the artifact (the middle's anterior side keeps two:
        # 30 and 46 mm) may be not determined, never a wrong number
        assert result["conduction_velocity_m_per_s"] == pytest.approx(15.0, rel=0.03)
        assert response_value(result, "responded_cv") == 1.0
        assert result["direction"] == ("both" if fired["cathode"] == 4 else "anterior")
        for side, sign in (("anterior", -1.0), ("posterior", 1.0)):
            v = result[f"{side}_velocity_m_per_s"]
            if v is not None:
                assert v == pytest.approx(sign * 15.0, rel=0.03), (where, side)
            velocities.setdefault((fired["cathode"], side), []).append(v)
    # Measured: 3 of 105 such stimuli misnamed (an LGF not found at all, as
    # from 87 mm with too few pairs clear of the pulse). Before, every
    # mid-body and tail stimulus (6 of 9) was: its volleys were looked for as
    # lines from the head end.
    assert len(misnamed) <= 2, misnamed
    # Each side the spike went, determined in most stimuli: both sides from
    # the middle; from the tail only head-ward (its electrode sits on the
    # last pair: nothing beyond it).
    for key in [(4, "anterior"), (4, "posterior"), (7, "anterior")]:
        got = velocities.get(key, [])
        assert sum(v is not None for v in got) >= len(got) - 1 >= 1, (key, got)
    assert all(v is None for v in velocities.get((7, "posterior"), []))


def test_online_named_volleys_are_the_offline_per_site_records(over_sites):
    online, _, folder = over_sites
    source = load_recording(folder)
    records = [
        {"analysed": True, "configuration": s.configuration} for s in source.stimuli
    ]
    analyse_sites(source, records, _progress)
    offline = {
        s.onset_sample: r["bidirectional"]
        for s, r in zip(source.stimuli, records, strict=True)
    }
    compared = 0
    for result in online:
        record = offline.get(result["stimulus_sample"])
        if record is None:
            continue  # before the recording began
        kept = [v for v in record["volleys"] if v["counted"]]
        assert [v["fibre"] for v in result["volleys"]] == [v["fibre"] for v in kept], (
            result["configuration"]
        )
        if "bidirectional" in result:  # analysed about its site online too
            pairs = zip(result["bidirectional"]["volleys"], record["volleys"])
            for on, off in pairs:
                assert (on["fibre"], on["counted"]) == (
                    off["fibre"], off["counted"],
                )  # fmt: skip
                if not off["counted"]:
                    continue
                got = np.array([np.nan if t is None else t for t in on["latency_s"]])
                want = np.array([np.nan if t is None else t for t in off["latency_s"]])
                # The same analysis of the same samples and the same epoch
                # (to the last arrival from the rig's farthest site, as offline
                # for a recording over it); the pulse lengths learnt in another
                # order (online from the head stimuli's first-wave analysis
                # too): the pulse's start found to within a sample.
                np.testing.assert_allclose(got, want, atol=SAMPLE_S)
        compared += 1
    assert compared >= 8


SAMPLE_S = 1 / 30_000

LOOP = """format_version = 1
[protocol]
name = "mid-body LGF"
seed = 4
[closed_loop]
n_stimuli = 10
inter_stimulus_interval_s = 0.4
configurations = ["C3-R", "C4-R", "C5-R"]
amplitude_vpp = [3.5, 5.0]
duration_ms = [1.0, 2.0]
[closed_loop.objective]
measure = "lgf_responded"
"""


# channels: the fraction of the LGF's recruitments the loop must observe as 1.
# Four pairs (the simulated rig's standard ones, 9.5–30.5 mm from these
# sites): the two nearest see the spike during or at the end of a 1–2 ms
# pulse, so an LGF volley often has too few arrivals clear of the artifact
# to be counted (measured: 4–5 of 9–10). Eight pairs: 8–9 of 10.
SEEN = {4: 0.2, 8: 0.6}


@pytest.mark.parametrize("channels", sorted(SEEN))
def test_a_closed_loop_over_mid_body_sites_sees_the_lgf(channels):
    simulator = SimulatedRig(seed=23, n_channels=channels)
    session = session_on(simulator, channels=channels)
    online = collect(session)
    try:
        session.start()
        loop = ClosedLoop(session, parse_protocol(LOOP).closed_loop, seed=4)
        final = loop.run(timeout_s=60)
        assert final.trial == 10
        assert wait_for(lambda: len(online) == 10)
        truth = [dict(vars(o)) for o in simulator.model.outcomes]
    finally:
        session.close()
    scores = list(loop.search.observations.scores)  # lgf_responded, as learnt
    recruited = sum(o["lgf_fired"] for o in truth)
    assert recruited >= 5  # the box is near or above the LGF's threshold there
    # Before: every observation 0 (the volleys timed from the head end).
    assert sum(scores) >= max(2, SEEN[channels] * recruited), (
        scores, [o["lgf_fired"] for o in truth],
    )  # fmt: skip
    by_onset = {r["stimulus_sample"]: r for r in online}
    for fired in truth:
        result = by_onset[fired["onset_sample"]]
        assert result["configuration"] in ("C3-R", "C4-R", "C5-R")
        assert "bidirectional" in result  # analysed about its site
        # never an LGF that did not fire
        assert response_value(result, "lgf_responded") <= float(fired["lgf_fired"])
