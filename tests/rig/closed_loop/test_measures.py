import math

import pytest

from rig.closed_loop.measures import check_measure, needs_motion, response_value

ELECTRICAL = {
    "responded": True,
    "amplitude_uv": [120.0, None, 80.0, 60.0],
    "amplitude_uv_mean": 86.7,
    "conduction_velocity_m_per_s": 24.0,
}
TWITCH = {"peak_displacement_mm": 1.25, "region_peak_displacement_mm": [0.5, None]}


def test_electrical_measures_read_the_online_result_with_no_response_as_zero():
    assert response_value(ELECTRICAL, "amplitude_uv[0]") == 120.0
    assert response_value(ELECTRICAL, "amplitude_uv[1]") == 0.0
    assert response_value(ELECTRICAL, "responded_cv") == 1.0
    assert response_value({**ELECTRICAL, "conduction_velocity_m_per_s": 80.0},
                          "responded_cv") == 0.0  # fmt: skip


def test_twitch_measures_are_nan_where_the_twitch_could_not_be_measured():
    assert response_value(TWITCH, "peak_displacement_mm") == 1.25
    assert response_value(TWITCH, "peak_displacement_mm[0]") == 0.5
    assert math.isnan(response_value(TWITCH, "peak_displacement_mm[1]"))
    assert math.isnan(response_value({"peak_displacement_mm": None},
                                     "peak_displacement_mm"))  # fmt: skip
    with pytest.raises(ValueError, match=r"records 2 pairs \(0–1\)"):
        response_value(TWITCH, "peak_displacement_mm[2]")


def test_only_twitch_measures_wait_for_motion_and_unknown_names_are_refused():
    assert needs_motion("peak_displacement_mm[3]")
    assert not needs_motion("amplitude_uv[3]")
    with pytest.raises(ValueError, match="peak_displacement_mm"):
        check_measure("displacement")
