"""The dry run's per-electrode checks (issue 18): the whole plan's on-time per
electrode against the rig's per-minute budget (as ``OnTimeBudget`` counts it at
run time, over the planned onsets) and the charge per phase per electrode, one
line per electrode naming the limit and the first trial; a closed loop states
its worst case."""

from __future__ import annotations

import re

import pytest

from firmware_bridge import StimPulse
from rig.protocols import format_closed_loop, format_plan, parse_protocol
from rig.safety import (
    OnTimeBudget,
    PlanSafetyError,
    SafetyError,
    SafetyLimits,
    check_plan,
)
from tests._cli import neurorig

# Block 0: 0.2 s of on-time per train through C3-R, one a second: electrode 3
# spends its 3 s per minute at the 15th train (trial 14 has 15 × 0.2 = 3.0 s,
# trial 15 would have 3.2 s). Block 1: single pulses at C5-A6, well within.
BUSY = """format_version = 1
[protocol]
name = "busy"
seed = 1
[[block]]
name = "trains"
configuration = "C3-R"
amplitude_vpp = 3.0
duration_ms = 5.0
n_pulses = 40
train_rate_hz = 50.0
repeats = {repeats}
inter_stimulus_interval_s = 1.0
[[block]]
name = "singles"
configuration = "C5-A6"
amplitude_vpp = [3.0, 4.0]
duration_ms = 2.0
repeats = 10
inter_stimulus_interval_s = 0.5
"""


def plan_of(text: str):
    return parse_protocol(text).expand()


def test_a_plan_within_every_electrodes_budget_passes_and_says_how_close():
    plan = plan_of(BUSY.format(repeats=15))
    check_plan(plan, SafetyLimits())  # 15 × 0.2 s = 3 s: at the budget, not over
    text = format_plan(plan, max_on_time_s_per_min=3.0)
    assert (
        "on-time at most 3 s per electrode in any 60 s (electrode 3, up to trial "
        "14); the rig's budget 3 s per minute"
    ) in text


def test_a_plan_over_one_electrodes_on_time_names_it_and_the_first_trial():
    plan = plan_of(BUSY.format(repeats=20))
    with pytest.raises(PlanSafetyError) as info:
        check_plan(plan, SafetyLimits())
    problems = info.value.problems
    assert len(problems) == 1  # electrode 3 only: not 5, 6 (nor the return)
    assert problems[0] == (
        "electrode 3: on-time 3.2 s in the 60 s up to trial 15 (block[0] (trains), "
        "C3-R 3 Vpp × 5 ms × 40 at 50 Hz, onset 15 s) exceeds the rig's budget of "
        "3 s per minute per electrode (at most 4 s) — trials 15, 16, 17, 18, 19"
    )
    # The same count as the run-time budget's: trial 15 is the first it refuses.
    budget = OnTimeBudget(SafetyLimits().max_on_time_s_per_min)
    for trial in plan.trials[:15]:
        budget.check(trial.pulse, trial.onset_s)
        budget.record(trial.pulse, trial.onset_s)
    with pytest.raises(SafetyError, match=r"electrode 3\) = 3.2"):
        budget.check(plan.trials[15].pulse, plan.trials[15].onset_s)


def test_on_time_outside_the_trailing_minute_is_not_counted():
    # 20 trains, one every 4 s: at most 16 in any 60 s (3.2 s) -> over; one
    # every 5 s: at most 13 (2.6 s) -> within.
    slow = BUSY.format(repeats=20).replace(
        "inter_stimulus_interval_s = 1.0", "inter_stimulus_interval_s = 5.0"
    )
    check_plan(plan_of(slow), SafetyLimits())
    faster = slow.replace(
        "inter_stimulus_interval_s = 5.0", "inter_stimulus_interval_s = 4.0"
    )
    with pytest.raises(PlanSafetyError, match=r"up to trial 15 .*onset 60 s"):
        check_plan(plan_of(faster), SafetyLimits())


def test_charge_per_phase_is_said_per_electrode():
    text = BUSY.format(repeats=2).replace('"C5-A6"', '"C2-A6"')
    text = text.replace("amplitude_vpp = [3.0, 4.0]", "amplitude_vpp = [3.0, 6.0]")
    text = text.replace("duration_ms = 2.0", "duration_ms = 6.0")
    with pytest.raises(PlanSafetyError) as info:
        check_plan(plan_of(text), SafetyLimits(max_charge_per_phase_c=5e-6))
    lines = info.value.problems
    assert [line.split(":")[0] for line in lines] == ["electrode 2", "electrode 6"]
    assert lines[0].startswith(
        "electrode 2: charge per phase 5.73 µC exceeds the rig's limit of 5 µC per "
        "electrode (into 1000 Ω), first at trial 3 (block[1] (singles), C2-A6 6 Vpp"
    )


def test_the_dry_run_names_the_electrode_before_anything_is_sent(tmp_path):
    over = tmp_path / "busy.toml"
    over.write_text(BUSY.format(repeats=20))
    out = neurorig("run", str(over), "--dry-run")
    assert out.returncode == 2
    assert "electrode 3: on-time 3.2 s in the 60 s up to trial 15" in out.stderr
    assert "Nothing was sent to the board." in out.stderr
    within = tmp_path / "fine.toml"
    within.write_text(BUSY.format(repeats=15))
    assert neurorig("run", str(within), "--dry-run").returncode == 0


def test_a_closed_loop_states_its_worst_case_on_time():
    spec = parse_protocol(
        """format_version = 1
[protocol]
name = "cl"
[closed_loop]
n_stimuli = 100
inter_stimulus_interval_s = 0.5
configurations = ["C0-R", "C7-R"]
duration_ms = [1.0, 5.0]
n_pulses = [1, 10]
rate_hz = [50.0]
"""
    ).closed_loop
    text = format_closed_loop("cl", 0, spec, max_on_time_s_per_min=3.0)
    # 121 stimuli fit in 60 s at 0.5 s; 100 are planned; 10 × 5 ms each.
    assert "on-time at most 5 s per electrode in any 60 s (100 stimuli × 50 ms" in text
    assert re.search(r"warning: .*5 s > 3 s per minute", text)
    fewer = spec.__class__(**{**_fields(spec), "n_stimuli": 50})
    text = format_closed_loop("cl", 0, fewer, max_on_time_s_per_min=3.0)
    assert "on-time at most 2.5 s" in text and "warning" not in text


def _fields(spec) -> dict:
    return {name: getattr(spec, name) for name in spec.__dataclass_fields__}


def test_a_single_pulse_over_the_budget_is_still_refused_by_itself():
    with pytest.raises(SafetyError, match="on_time_s = 3.5"):
        SafetyLimits(max_on_time_s_per_min=3.0, max_n_pulses=1000).check(
            StimPulse(3.0, 3.5e-3, n_pulses=1000, rate_hz=1.0)
        )


def test_an_interval_of_exactly_the_minimum_is_not_refused_after_rounding():
    # Onsets are rounded to 1 ns; at 0.7 s the 6194th interval came out 1 ns
    # short of 0.7 s and a plan at exactly the rig's minimum was refused.
    text = """format_version = 1
[protocol]
name = "long"
[[block]]
configuration = ["C0-A1", "C1-A0"]
amplitude_vpp = [2.0, 2.5, 3.0, 3.5]
duration_ms = 1.0
repeats = 800
inter_stimulus_interval_s = 0.7
"""
    check_plan(plan_of(text), SafetyLimits(min_inter_stimulus_interval_s=0.7))
