"""A rig file's [limits]: every limit finite and in range, or the file refused in
one line naming the file and the field (never a silently disabled check)."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_bridge import StimPulse
from rig.rig_file import RigFileError, load_rig_file
from rig.safety import LIMIT_RANGES, SafetyError, SafetyLimits


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    return repr(value)


def _write(directory: Path, table: dict) -> Path:
    path = directory / "rig.toml"
    lines = ["[limits]"] + [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "field",
    [
        "min_inter_stimulus_interval_s",
        "max_charge_per_phase_c",
        "load_ohm",
        "max_on_time_s_per_min",
    ],
)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1.0"])
def test_a_limit_that_would_switch_a_check_off_is_refused(tmp_path, field, value):
    path = tmp_path / "rig.toml"
    path.write_text(f"[limits]\n{field} = {value}\n")
    if field == "min_inter_stimulus_interval_s" and value == "0":
        # no minimum interval is a valid choice (nothing divides by it)
        assert load_rig_file(path).limits.min_inter_stimulus_interval_s == 0
        return
    with pytest.raises(SafetyError) as info:
        load_rig_file(path)
    message = str(info.value)
    assert str(path) in message and f"limits.{field}" in message
    assert "allowed" in message and "\n" not in message


def test_zero_load_is_refused_not_a_traceback(tmp_path):
    path = tmp_path / "rig.toml"
    path.write_text("[limits]\nload_ohm = 0\n")
    with pytest.raises(SafetyError, match=r"limits.load_ohm = 0: allowed 1–1e\+07 Ω"):
        load_rig_file(path)


def test_a_fractional_pulse_count_and_a_bad_pair_are_refused(tmp_path):
    path = tmp_path / "rig.toml"
    path.write_text("[limits]\nmax_n_pulses = 2.5\n")
    with pytest.raises(SafetyError, match="limits.max_n_pulses = 2.5: allowed a whole"):
        load_rig_file(path)
    path.write_text("[limits]\nallowed_pairs = [true]\n")
    with pytest.raises(SafetyError, match="limits.allowed_pairs"):
        load_rig_file(path)
    path.write_text("[limits]\nmin_duration_s = 0.01\nmax_duration_s = 0.005\n")
    with pytest.raises(SafetyError, match="at most max_duration_s"):
        load_rig_file(path)


NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, -1.0, 1e-9, 1e9, float("nan")]),
    st.integers(min_value=-(10**6), max_value=10**6),
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.dictionaries(st.sampled_from(sorted(LIMIT_RANGES)), NUMBERS, max_size=5))
def test_any_limits_are_accepted_finite_or_refused_naming_the_field(table):
    with tempfile.TemporaryDirectory() as directory:
        path = _write(Path(directory), table)
        try:
            limits = load_rig_file(path).limits
        except (SafetyError, RigFileError) as exc:
            message = str(exc)
            assert str(path) in message
            assert any(f"limits.{key}" in message for key in table)
            assert "allowed" in message
            return
    assert isinstance(limits, SafetyLimits)
    for key, (low, high, _, _) in LIMIT_RANGES.items():
        value = getattr(limits, key)
        assert math.isfinite(value) and low <= value <= high
    # Every check works on these limits: a pulse is accepted or refused, no crash.
    pulse = StimPulse(amplitude_vpp=3.0, duration_s=2e-3)
    try:
        limits.check(pulse)
    except SafetyError:
        pass
