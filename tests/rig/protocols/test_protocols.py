"""Protocol files: validation errors, expansion, scheduling, shipped examples."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge import Polarity, StimPulse
from rig.protocols import (
    CONFOUND_RHO,
    ProtocolError,
    format_plan,
    load_protocol,
    parse_protocol,
    rank_correlation,
)
from rig.rig_file import load_rig_file
from rig.safety import (
    OnTimeBudget,
    PlanSafetyError,
    SafetyError,
    SafetyLimits,
    check_plan,
)

ROOT = Path(__file__).resolve().parents[3]
BASE = """format_version = 1
[protocol]
name = "t"
seed = 1
"""


def proto(block: str, extra: str = "") -> str:
    return BASE + extra + "[[block]]\n" + block


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            proto("amplitude_vpp = [2, 25]\nduration_ms = 3"),
            r"block\[0\]\.amplitude_vpp\[1\]: 25 is outside the allowed 0–20 Vpp",
        ),
        (
            proto("amplitude_vpp = 3\nduration_ms = 3\namplitude = 4"),
            r"block\[0\]\.amplitude: unknown key; did you mean 'amplitude_vpp'\?",
        ),
        (
            proto("amplitude_vpp = 3\nduration_ms = 3\nkind = 'optimise'"),
            r"block\[0\]\.kind: 'optimise'; known kinds: \['sweep'\]",
        ),
        (proto("amplitude_vpp = 3"), r"block\[0\]\.duration_ms: missing"),
        (
            proto("amplitude_vpp = 3\nduration_ms = 3\nduration_s = 0.003"),
            "give duration_ms or duration_s, not both",
        ),
        (
            proto("amplitude_vpp = {start = 2, stop = 6}\nduration_ms = 3"),
            "give exactly one of step or n",
        ),
        (proto("amplitude_vpp = 'high'\nduration_ms = 3"), "'high' is not a number"),
        (
            proto("amplitude_vpp = 3\nduration_ms = 3\norder = 'shuffled'"),
            r"'shuffled'; allowed: \['sequential', 'random', 'random_per_repeat'\]",
        ),
        (
            proto("amplitude_vpp = 3\nduration_ms = 3\npolarities = ['up']"),
            r"polarities\[0\]: 'up'; allowed: \['negative_first', 'positive_first'\]",
        ),
        (
            proto(
                "amplitude_vpp = 3\nduration_ms = 3\nn_pulses = 5\ntrain_rate_hz = 2"
            ),
            "inter_stimulus_interval_s: 1 s is shorter than the 2.003 s train",
        ),
        (
            proto("amplitude_vpp = 3\nduration_ms = 3\nrepeats = 1.5"),
            r"repeats: 1\.5 is not a whole number",
        ),
        (
            BASE.replace("format_version = 1", "format_version = 2")
            + "[[block]]\namplitude_vpp=3\nduration_ms=3",
            "this neurorig reads format_version = 1",
        ),
        (BASE, r"block: no \[\[block\]\] tables"),
        (
            "format_version = 1\n[[block]]\namplitude_vpp = 3\nduration_ms = 3",
            "protocol.name: missing",
        ),
        ("this is = not [toml", "not valid TOML"),
        (
            proto("amplitude_vpp = 3\nduration_ms = 3", "[defaults]\nrepeats = 0\n"),
            r"defaults\.repeats: 0 is outside the allowed 1–10000",
        ),
    ],
)
def test_invalid_files_name_the_field_value_and_allowed_range(text, message):
    with pytest.raises(ProtocolError, match=message) as info:
        parse_protocol(text, source="bad.toml")
    assert str(info.value).startswith("bad.toml: ")


def test_sweep_expands_every_combination_and_schedules_onsets():
    text = proto(
        "amplitude_vpp = {start = 2, stop = 4, step = 1}\nduration_ms = [2, 5]\n"
        "repeats = 2\ninter_stimulus_interval_s = 1.5\npause_before_s = 3\n"
        "polarities = ['positive_first', 'negative_first']"
    )
    plan = parse_protocol(text).expand()
    assert plan.n_trials == 3 * 2 * 2 * 2
    assert [t.pulse.amplitude_vpp for t in plan.trials[:4]] == [2.0, 3.0, 4.0, 2.0]
    assert plan.trials[3].pulse.duration_s == pytest.approx(5e-3)
    assert plan.trials[6].pulse.polarity == Polarity.NEGATIVE_FIRST
    assert [t.onset_s for t in plan.trials[:3]] == [3.0, 4.5, 6.0]
    assert plan.total_duration_s == pytest.approx(3.0 + 23 * 1.5 + 5e-3)


def test_random_order_is_seeded_reproducible_and_a_permutation():
    text = proto(
        "amplitude_vpp = {start = 2, stop = 6, n = 9}\nduration_ms = 3\n"
        "repeats = 3\norder = 'random'"
    )
    protocol = parse_protocol(text)
    a, b, c = protocol.expand(), protocol.expand(), protocol.expand(seed=99)
    amps = [t.pulse.amplitude_vpp for t in a.trials]
    assert amps == [t.pulse.amplitude_vpp for t in b.trials]
    assert amps != [t.pulse.amplitude_vpp for t in c.trials]
    assert sorted(amps) == sorted([2 + 0.5 * k for k in range(9)] * 3)
    assert amps != sorted(amps)


def test_random_per_repeat_completes_each_repeat_before_the_next():
    text = proto(
        "amplitude_vpp = [2, 3, 4, 5]\nduration_ms = 3\nrepeats = 3\n"
        "order = 'random_per_repeat'"
    )
    trials = parse_protocol(text).expand().trials
    for r in range(3):
        chunk = trials[4 * r : 4 * r + 4]
        assert {t.repeat for t in chunk} == {r}
        assert sorted(t.pulse.amplitude_vpp for t in chunk) == [2, 3, 4, 5]


def test_total_charge_matches_hand_calculation():
    plan = parse_protocol(proto("amplitude_vpp = [2, 6]\nduration_ms = 5")).expand()
    per_phase = [(a / 2) / 1000.0 * 5e-3 / math.pi for a in (2, 6)]
    assert plan.total_charge_c(1000.0) == pytest.approx(sum(per_phase))
    text = format_plan(plan)
    assert "2 stimuli" in text and "total charge estimate 6.4 µC" in text


@pytest.mark.parametrize(
    "name", ["mapping", "recruitment", "strength-duration", "trains"]
)
def test_every_shipped_protocol_loads_and_passes_the_default_limits(name):
    limits = load_rig_file(ROOT / "rigs" / "safety-default.toml").limits
    plan = load_protocol(ROOT / "protocols" / f"{name}.toml").expand()
    check_plan(plan, limits)
    assert plan.n_trials > 0


def test_mapping_protocol_is_the_abstracts_sweep():
    plan = load_protocol(ROOT / "protocols" / "mapping.toml").expand()
    amps = {t.pulse.amplitude_vpp for t in plan.trials}
    durs = {round(t.pulse.duration_s * 1e3, 1) for t in plan.trials}
    assert min(amps) == 2.0 and max(amps) == 6.0
    assert min(durs) == 2.0 and max(durs) == 6.7
    assert {
        round(b.onset_s - a.onset_s, 6) for a, b in zip(plan.trials, plan.trials[1:])
    } == {1.0}


def test_plan_outside_rig_limits_is_refused_before_anything_is_sent():
    plan = parse_protocol(proto("amplitude_vpp = [3, 9, 12]\nduration_ms = 3")).expand()
    with pytest.raises(PlanSafetyError) as info:
        check_plan(plan, SafetyLimits())
    text = str(info.value)
    assert (
        "block[0] (block 0): amplitude_vpp = 9 exceeds the rig's safety limit" in text
    )
    assert "(allowed 0.5–6 Vpp) — trials 1" in text
    assert "amplitude_vpp = 12" in text


def test_single_pulse_checks_name_every_limit():
    limits = SafetyLimits()
    cases = [
        (StimPulse(7.0, 3e-3), "amplitude_vpp = 7 .*0.5–6 Vpp"),
        (StimPulse(3.0, 9e-3), "duration_ms = 9 .*1–7 ms"),
        (StimPulse(3.0, 3e-3, cathode=8), r"cathode = 8 .*electrodes 0–7"),
        (
            StimPulse(3.0, 3e-3, cathode=2, anode=2),
            r"anode = 2 .*other than the cathode",
        ),
        (StimPulse(3.0, 3e-3, n_pulses=3, rate_hz=80.0), "train_rate_hz = 80"),
        (StimPulse(6.0, 6.9e-3), "charge_per_phase_uc = 6.58.*up to 8 µC"),
    ]
    limits = SafetyLimits(max_charge_per_phase_c=6e-6)
    for pulse, message in cases:
        with pytest.raises(SafetyError, match=message.replace("8 µC", "6 µC")):
            limits.check(pulse, n_electrodes=8)
    limits.check(StimPulse(4.0, 3e-3))
    only = SafetyLimits(allowed_configurations=("C0-A1", "C3-R"))
    only.check(StimPulse(4.0, 3e-3, cathode=3, anode=None), n_electrodes=8)
    with pytest.raises(SafetyError, match="configuration = 'C3-A4' .*C0-A1, C3-R"):
        only.check(StimPulse(4.0, 3e-3, cathode=3, anode=4), n_electrodes=8)


def test_on_time_is_budgeted_per_electrode():
    budget = OnTimeBudget(max_on_time_s_per_min=0.02)
    head = StimPulse(3.0, 5e-3, n_pulses=2, rate_hz=10.0, cathode=0, anode=1)
    budget.record(head, 0.0)
    budget.record(head, 1.0)  # electrodes 0 and 1: 20 ms each
    with pytest.raises(SafetyError, match=r"on_time_s_per_min \(electrode 0\) = 0.03"):
        budget.check(head, 2.0)
    with pytest.raises(SafetyError, match=r"\(electrode 1\)"):
        budget.check(dataclasses.replace(head, cathode=5, anode=1), 2.0)
    budget.check(dataclasses.replace(head, cathode=5, anode=None), 2.0)  # fresh
    assert budget.used_s(2.0, 0) == pytest.approx(0.02) and budget.used_s(2.0, 5) == 0


def test_on_time_budget_counts_the_trailing_minute():
    budget = OnTimeBudget(max_on_time_s_per_min=0.02)
    pulse = StimPulse(3.0, 5e-3, n_pulses=2, rate_hz=10.0)  # 10 ms on
    budget.check(pulse, 0.0)
    budget.record(pulse, 0.0)
    budget.record(pulse, 1.0)
    with pytest.raises(SafetyError, match=r"on_time_s_per_min \(electrode 0\) = 0.03"):
        budget.check(pulse, 2.0)
    budget.check(pulse, 60.5)  # the first command has left the window


def test_safety_file_errors_name_the_key(tmp_path):
    bad = tmp_path / "limits.toml"
    bad.write_text("[limits]\nmax_amplitude = 5\n")
    with pytest.raises(SafetyError, match="limits.max_amplitude"):
        load_rig_file(bad)
    bad.write_text("[limits]\nmin_amplitude_vpp = 5\nmax_amplitude_vpp = 4\n")
    with pytest.raises(SafetyError, match="at most max_amplitude_vpp"):
        load_rig_file(bad)


BLOCKED_SD = BASE + "".join(
    f"[[block]]\namplitude_vpp = {{start = 2.0, stop = 6.0, n = 9}}\n"
    f"duration_ms = {d}\nrepeats = 3\norder = 'random'\n"
    f"inter_stimulus_interval_s = 2.0\npause_before_s = {30 if d > 2 else 0}\n"
    for d in (2.0, 3.3, 5.0, 6.7)
)  # the strength–duration protocol as shipped before issue 17


def test_the_dry_run_flags_a_design_that_confounds_a_parameter_with_time():
    plan = parse_protocol(BLOCKED_SD).expand()
    text = format_plan(plan)
    assert "warning: the duration is confounded with time" in text
    assert "+0.97" in text  # the rank correlation with the trial order
    assert "amplitude is confounded" not in text  # random within each block
    ascending = parse_protocol(
        proto("amplitude_vpp = {start = 2, stop = 6, n = 20}\nduration_ms = 3")
    ).expand()
    assert "warning: the amplitude is confounded" in format_plan(ascending)


@pytest.mark.parametrize("name", ["strength-duration", "recruitment", "trains"])
def test_shipped_designs_interleave_and_rest(name):
    plan = load_protocol(ROOT / "protocols" / f"{name}.toml").expand()
    text = format_plan(plan)
    assert "warning" not in text, text.splitlines()[:8]
    assert "habituation load" in text


def test_the_strength_duration_protocol_runs_randomised_blocks_with_rests():
    plan = load_protocol(ROOT / "protocols" / "strength-duration.toml").expand()
    durations = {t.pulse.duration_s for t in plan.trials}
    per_repeat = {}
    for t in plan.trials:
        per_repeat.setdefault(t.repeat, []).append(t)
    assert len(per_repeat) == 4
    for trials in per_repeat.values():  # every condition once in each block
        assert {t.pulse.duration_s for t in trials} == durations
        assert len(trials) == len(durations) * 8
    gaps = np.diff([t.onset_s for t in plan.trials])
    assert sorted(set(np.round(gaps, 6))) == [4.0, 64.0]


def test_pause_between_repeats_schedules_a_rest_after_each_repeat():
    plan = parse_protocol(
        proto(
            "amplitude_vpp = [2, 3]\nduration_ms = 3\nrepeats = 3\n"
            "order = 'random_per_repeat'\npause_between_repeats_s = 10\n"
        )
    ).expand()
    assert [t.onset_s for t in plan.trials] == [0.0, 1.0, 12.0, 13.0, 24.0, 25.0]
    with pytest.raises(
        ProtocolError,
        match=r"pause_between_repeats_s: 10 s with "
        r"order 'random'.*allowed with order 'random_per_repeat'",
    ):
        parse_protocol(
            proto(
                "amplitude_vpp = [2, 3]\nduration_ms = 3\nrepeats = 3\n"
                "order = 'random'\npause_between_repeats_s = 10\n"
            )
        )


def test_rank_correlation_of_a_random_order_is_small():
    rng = np.random.default_rng(0)
    assert rank_correlation(np.arange(50.0)) == pytest.approx(1.0)
    assert rank_correlation(np.ones(5)) == 0.0
    assert abs(rank_correlation(rng.permutation(128))) < CONFOUND_RHO
