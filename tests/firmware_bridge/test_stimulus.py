import math

import pytest
from scipy.integrate import quad

from firmware_bridge import StimPulse


def test_charge_per_phase_matches_numerical_integral_of_half_sine():
    pulse = StimPulse(amplitude_vpp=6.0, duration_s=6.7e-3)
    load_ohm = 1500.0

    def current(t):
        return 3.0 / load_ohm * math.sin(2 * math.pi * t / 6.7e-3)

    numeric, _ = quad(current, 0, 6.7e-3 / 2)
    assert pulse.charge_per_phase_c(load_ohm) == pytest.approx(numeric, rel=1e-9)


def test_train_length_and_on_time():
    train = StimPulse(amplitude_vpp=2.0, duration_s=2e-3, n_pulses=5, rate_hz=10.0)
    assert train.train_length_s() == pytest.approx(0.4 + 2e-3)
    assert train.on_time_s() == pytest.approx(10e-3)
    assert StimPulse(2.0, 3e-3).train_length_s() == pytest.approx(3e-3)
