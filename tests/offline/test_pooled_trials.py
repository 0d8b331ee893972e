"""One rule for counting trials: a batch's pooled fits and a parameter map's
probability count a stimulus as one recording's fits do (first pulses of
trains, the delivered amplitude, a fibre that fired under the artifact).

At 2 ms pulses the MGF's spike can lie under the pulse's artifact: the volley
is named but its timing is not clean (``suspect_volleys``); the fibre still
fired. Counting only clean volleys put the pooled threshold above the
recording's own, and the map's probability below the recruitment curve.
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.param_maps import parameter_map
from analysis.summary import fit_rows, recruitment_curves
from rig.offline import batch

MGF = {"fibre": "mgf", "conduction_velocity_m_per_s": 30.0}


def _records(seed: int = 3) -> list[dict]:
    """A recording's records: 2 and 4 ms pulses over 1–7 Vpp, threshold 3.5
    and 2.5 Vpp; at 2 ms most spikes are under the artifact (suspect); every
    third stimulus is a train's second pulse, which never fires (refractory);
    the board measured 5 % more than commanded."""
    rng = np.random.default_rng(seed)
    rows = []
    for duration_s, threshold_vpp in ((2e-3, 3.5), (4e-3, 2.5)):
        for amplitude in np.repeat(np.linspace(1.0, 7.0, 13), 4):
            fired = rng.random() < 1 / (1 + np.exp(-(amplitude - threshold_vpp) / 0.3))
            for pulse_index in (0, 1) if rng.random() < 0.33 else (0,):
                fires = bool(fired and pulse_index == 0)
                hidden = fires and duration_s == 2e-3 and rng.random() < 0.8
                rows.append(
                    {
                        "analysed": True,
                        "amplitude_vpp": float(amplitude),
                        "duration_s": duration_s,
                        "pulse_index": pulse_index,
                        "parameters": {"delivered_vpp": float(amplitude) * 1.05},
                        "responded": fires and not hidden,
                        "ap_evoked": fires,
                        "volleys": [MGF] if fires and not hidden else [],
                        "suspect_volleys": [MGF] if hidden else [],
                    }
                )
    return rows


def _own_fits(records: list[dict]) -> list[dict]:
    """The recording's own recruitment, as ``neurorig analyze`` fits it."""
    rows = fit_rows(
        [r["amplitude_vpp"] for r in records],
        [r["duration_s"] for r in records],
        [r["ap_evoked"] for r in records],
        None,
        [r["pulse_index"] for r in records],
        [r["parameters"]["delivered_vpp"] for r in records],
    )
    curves = recruitment_curves(
        rows["amplitude_vpp"], rows["duration_s"], rows["responded"]
    )
    return [c.to_dict() for c in curves]


def test_a_batch_of_one_recording_fits_what_the_recording_fits():
    records = _records()
    pooled = batch.pool([{"stimuli": records}], ["w"], ["r"])["pooled"]
    own = _own_fits(records)
    assert [c["duration_s"] for c in pooled["recruitment"]] == [2e-3, 4e-3]
    for got, want in zip(pooled["recruitment"], own, strict=True):
        assert got["determined"] and want["determined"]
        assert got["threshold_vpp"] == pytest.approx(want["threshold_vpp"], rel=1e-9)
        assert got["threshold_ci95_vpp"] == pytest.approx(want["threshold_ci95_vpp"])
    # the delivered amplitude (×1.05) is fitted: 3.5 Vpp commanded is 3.7 delivered
    at_2ms = pooled["recruitment"][0]
    lo, hi = at_2ms["threshold_ci95_vpp"]
    assert lo < 3.5 * 1.05 < hi


def test_a_spike_under_the_artifact_counts_in_the_map_as_in_the_fits():
    records = _records()
    cells = {
        (c["amplitude_vpp"], c["duration_s"]): c
        for c in parameter_map([r for r in records if r["pulse_index"] == 0])
    }
    strong = cells[(7.0, 2e-3)]  # far above threshold: every stimulus fired
    assert strong["response_probability"] == 1.0
    assert strong["fibre_probability"]["mgf"] == 1.0
    # most of those volleys were under the artifact: not timed
    assert strong["timed_response_probability"] < 0.5
    weak = cells[(1.0, 4e-3)]  # far below: none fired
    assert weak["response_probability"] == weak["timed_response_probability"] == 0.0


def test_records_without_ap_evoked_count_their_clean_volleys():
    # results written before ap_evoked existed
    records = [
        {"amplitude_vpp": 3.0, "duration_s": 2e-3, "responded": hit, "volleys": []}
        for hit in (True, False, False, False)
    ]
    (cell,) = parameter_map(records)
    assert cell["response_probability"] == cell["timed_response_probability"] == 0.25
