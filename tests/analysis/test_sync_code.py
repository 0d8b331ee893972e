"""The optical sync code: schedule, expected and observed LED bits, alignment.

The alignment's contract: every frame it assigns is assigned to the trigger it
shows (zero wrong), under drops, duplicates, a frozen camera, a late start,
jitter and misread bits; what it cannot prove is -1.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import analysis.sync_code as sync_code
from analysis._kernels import (
    sync_forward,
    sync_forward_detached,
    sync_marginals,
    sync_rival,
)
from analysis.sync_code import (
    align_frames_to_triggers,
    band_from_times,
    classify_led,
    led_brightness,
    led_states_from_flashes,
    make_sync_code,
    repeated_frames,
)
from tests.analysis._reference import sync_marginals_reference, sync_rival_reference

PERIOD = 500  # samples: 60 fps at 30 kS/s
DELAY = 60  # trigger to exposure (the simulated camera's 2 ms)


def make_run(
    seed,
    *,
    n_triggers=1200,
    drop=0.0,
    duplicate=0.0,
    flip=0.0,
    late=0,
    freeze=None,
    jitter=PERIOD // 3,
):
    """A simulated run: expected bits per trigger, observed bits per frame, truth.

    The host aims each pulse between exposures, late or early by up to
    ``jitter`` samples; exposures land up to 15 samples off their nominal time,
    inside the 40-sample margin the expected bits allow. A frame whose exposure
    straddles an LED edge reads randomly (on, off or ambiguous). ``freeze`` =
    (first frame, n repeats, n triggers lost): the camera sends one frame
    again and again, then resumes after triggers whose frames never came.
    Duplicates and frozen frames are pixel-identical to the frame before, so
    they are flagged (``repeats``).
    """
    rng = np.random.default_rng(seed)
    code = make_sync_code(n_triggers, seed=seed)
    triggers = np.arange(n_triggers) * PERIOD + 1000
    onsets, durations = code.pulse_schedule(PERIOD, 1000 + DELAY + PERIOD // 2)
    onsets = onsets + rng.integers(-jitter, jitter + 1, onsets.size)
    expected = led_states_from_flashes(
        triggers, 1, onsets, durations, delay_samples=DELAY, margin_samples=40
    )
    keep = rng.random(n_triggers) >= drop
    keep[:late] = False
    shown = np.flatnonzero(keep)
    if freeze is not None:
        first, n_repeats, n_lost = freeze
        first = min(first, shown.size - 1)
        lost = shown[first + 1 : first + 1 + n_lost]
        shown = np.setdiff1d(shown, lost)
        shown = np.insert(shown, first + 1, np.full(n_repeats, shown[first]))
    copies = 1 + (rng.random(shown.size) < duplicate)
    truth = np.repeat(shown, copies)
    repeats = np.r_[False, np.diff(truth) == 0]
    # The LED each exposure really saw (exposure time off by up to 15 samples).
    exposure = triggers[truth] + DELAY + rng.integers(-15, 16, truth.size)
    seen = led_states_from_flashes(exposure, 1, onsets, durations)
    edge = led_states_from_flashes(exposure, 1, onsets, durations, margin_samples=8)
    observed = seen.copy()
    straddle = edge < 0
    observed[straddle] = rng.integers(-1, 2, straddle.sum())
    wrong = (rng.random(truth.size) < flip) & (observed >= 0)
    observed[wrong] ^= 1
    observed[repeats] = observed[np.flatnonzero(repeats) - 1]  # same image
    return expected, observed.astype(np.int8), truth, repeats


def check(expected, observed, truth, repeats, **kwargs):
    assigned, record = align_frames_to_triggers(
        observed, expected, repeats=repeats, **kwargs
    )
    wrong = np.flatnonzero((assigned >= 0) & (assigned != truth))
    assert wrong.size == 0, f"frames {wrong[:10]} assigned {assigned[wrong[:10]]}"
    assert record.n_aligned == int((assigned >= 0).sum())
    return assigned, record


# ---------------------------------------------------------------- the code


def test_code_is_seeded_and_has_no_long_runs():
    a = make_sync_code(5000, seed=7, max_run=3)
    b = make_sync_code(5000, seed=7, max_run=3)
    np.testing.assert_array_equal(a.bits, b.bits)
    assert not np.array_equal(a.bits, make_sync_code(5000, seed=8).bits)
    changes = np.flatnonzero(np.diff(a.bits.astype(int)) != 0)
    assert np.diff(changes).max() <= 3
    assert 0.45 < a.bits.mean() < 0.55


def test_code_windows_are_unique():
    """Any 48 slots of an hour's code (216 000 slots at 60 fps) occur once."""
    bits = make_sync_code(216_000, seed=3).bits.astype(np.uint64)
    window = 48
    keys = np.zeros(bits.size - window + 1, dtype=np.uint64)
    for k in range(window):
        keys = (keys << np.uint64(1)) | bits[k : k + keys.size]
    assert np.unique(keys).size == keys.size


def test_pulse_schedule_lights_the_one_slots():
    code = make_sync_code(20, seed=1, slot_periods=2, pulse_periods=1.5)
    onsets, durations = code.pulse_schedule(500, start_sample=100)
    np.testing.assert_array_equal(onsets, 100 + 1000 * np.flatnonzero(code.bits))
    assert set(durations.tolist()) == {750}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_slots=0), "n_slots=0"),
        (dict(n_slots=5, pulse_periods=0.5), "pulse_periods=0.5"),
        (dict(n_slots=5, slot_periods=2, pulse_periods=2.5), "pulse_periods=2.5"),
        (dict(n_slots=5, max_run=0), "max_run=0"),
    ],
)
def test_code_refuses_bad_parameters_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_sync_code(seed=1, **kwargs)


# ------------------------------------------------------- expected LED states


def test_expected_states_inside_outside_and_straddling():
    # LED lit over [1000, 1500) and [1500, 1600) (merged) and [3000, 3100).
    onsets, durations = np.array([3000, 1000, 1500]), np.array([100, 500, 100])
    triggers = np.array([0, 940, 960, 1300, 1560, 1590, 2000, 2990, 3050])
    states = led_states_from_flashes(
        triggers, 20, onsets, durations, delay_samples=10, margin_samples=5
    )
    # exposures (with margin): [5,35) [945,975) [965,995) [1305,1335)
    # [1565,1595) [1595,1625) [2005,2035) [2995,3025) [3055,3085)
    np.testing.assert_array_equal(states, [0, 0, 0, 1, 1, -1, 0, -1, 1])


def test_expected_states_without_flashes_are_off():
    states = led_states_from_flashes(np.arange(5) * 100, 10, [], [])
    np.testing.assert_array_equal(states, 0)


def test_expected_states_refuse_mismatched_flash_lists():
    with pytest.raises(ValueError, match="differ in length"):
        led_states_from_flashes(np.arange(3), 1, [1, 2], [5])


# ---------------------------------------------------------- the LED observed


def _frames_with_led(states, *, gain=None, seed=0):
    rng = np.random.default_rng(seed)
    n = len(states)
    frames = rng.normal(60, 3, (n, 40, 50))
    frames[:, 10:16, 30:38] += np.asarray(states, float)[:, None, None] * 120
    if gain is not None:
        frames *= np.asarray(gain)[:, None, None]
    return np.clip(frames, 0, 255).astype(np.uint8)


def test_led_read_from_frames_despite_gain_changes():
    rng = np.random.default_rng(1)
    states = rng.integers(0, 2, 200)
    gain = rng.uniform(0.6, 1.4, 200)
    brightness = led_brightness(_frames_with_led(states, gain=gain), (10, 16, 30, 38))
    reading = classify_led(brightness)
    np.testing.assert_array_equal(reading.bits, states)
    assert reading.separation > 20
    assert reading.on_level > 1.0 > 0.5 > abs(reading.off_level)


def test_half_lit_frames_are_ambiguous():
    rng = np.random.default_rng(2)
    levels = rng.integers(0, 2, 100).astype(float)
    levels[[5, 50, 77]] = 0.5  # an LED edge inside the exposure
    frames = _frames_with_led(levels)
    reading = classify_led(led_brightness(frames, (10, 16, 30, 38)))
    assert set(np.flatnonzero(reading.bits < 0)) == {5, 50, 77}
    known = reading.bits >= 0
    np.testing.assert_array_equal(reading.bits[known], levels[known])


def test_led_never_lit_is_not_seen():
    frames = _frames_with_led(np.zeros(100))
    reading = classify_led(led_brightness(frames, (10, 16, 30, 38)))
    assert np.all(reading.bits == -1)
    assert reading.separation < 6


def test_region_outside_image_is_refused():
    with pytest.raises(ValueError, match="not inside a 40×50 image"):
        led_brightness(np.zeros((2, 40, 50)), (35, 45, 0, 5))


def test_repeated_frames_are_pixel_identical_ones():
    frames = _frames_with_led(np.ones(6), seed=3)
    frames[2] = frames[1]
    frames[3] = frames[1]
    frames[5] = frames[4]
    np.testing.assert_array_equal(
        repeated_frames(frames), [False, False, True, True, False, True]
    )


# ------------------------------------------------ the kernels vs references


def _enumerated_marginals(obs, exp, repeat, lo, hi, mismatch, gap, stay):
    """Every monotone path, costed one by one: the reference's own reference."""
    n, n_trig = len(obs), len(exp)
    best = np.full((n, n_trig), math.inf)
    for path in itertools.product(range(n_trig), repeat=n):
        if any(not lo[j] <= path[j] < hi[j] for j in range(n)):
            continue
        cost = 0.0
        for j, t in enumerate(path):
            if obs[j] >= 0 and exp[t] >= 0 and obs[j] != exp[t]:
                cost += mismatch
            if j:
                step = t - path[j - 1]
                if step < 0 or (repeat[j] and step != 0):
                    cost = math.inf
                    break
                cost += 0 if repeat[j] or step == 1 else stay if step == 0 else gap
        for j, t in enumerate(path):
            best[j, t] = min(best[j, t], cost)
    best_t = np.argmin(best, axis=1)
    low = best[np.arange(n), best_t]
    best[np.arange(n), best_t] = math.inf
    return best_t, low, best.min(axis=1)


def _enumerated_rival(obs, exp, repeat, lo, hi, mismatch, gap, stay, path, bonus):
    """Per frame, the least cost of a path with it off ``path``, path by path.

    Detached from ``path`` up to the start (first frame behind it, no frame on
    it) or from the frame to the end (no later frame on it, last frame ahead
    of it): ``bonus`` less for each.
    """
    n, n_trig = len(obs), len(exp)
    rival = np.full(n, math.inf)
    for q in itertools.product(range(n_trig), repeat=n):
        if any(not lo[j] <= q[j] < hi[j] for j in range(n)):
            continue
        cost = 0.0
        for j, t in enumerate(q):
            if obs[j] >= 0 and exp[t] >= 0 and obs[j] != exp[t]:
                cost += mismatch
            if j:
                step = t - q[j - 1]
                if step < 0 or (repeat[j] and step != 0):
                    cost = math.inf
                    break
                cost += 0 if repeat[j] or step == 1 else stay if step == 0 else gap
        off = [q[k] != path[k] for k in range(n)]
        for j in range(n):
            if not off[j]:
                continue
            c = cost
            if all(off[: j + 1]) and q[0] < path[0]:
                c -= bonus
            if all(off[j:]) and q[-1] > path[-1]:
                c -= bonus
            rival[j] = min(rival[j], c)
    return rival


def _random_problem(rng, n, n_trig, banded):
    obs = rng.integers(-1, 2, n).astype(np.int8)
    exp = rng.integers(-1, 2, n_trig).astype(np.int8)
    repeat = rng.random(n) < 0.2
    repeat[0] = False
    if banded:
        lo = np.sort(rng.integers(0, n_trig // 2, n))
        hi = np.minimum(lo + rng.integers(2, n_trig, n), n_trig)
    else:
        lo, hi = np.zeros(n, np.int64), np.full(n, n_trig, np.int64)
    return obs, exp, repeat, lo.astype(np.int64), hi.astype(np.int64)


def _kernel_marginals(obs, exp, repeat, lo, hi, mismatch, gap, stay):
    n = obs.size
    fwd = np.full((n, max(int((hi - lo).max()), 1)), np.inf, dtype=np.float32)
    sync_forward(obs, exp, repeat, lo, hi, mismatch, gap, stay, fwd)
    best_t, best, second = np.empty(n, np.int64), np.empty(n), np.empty(n)
    sync_marginals(
        obs, exp, repeat, lo, hi, mismatch, gap, stay, fwd, best_t, best, second
    )
    return best_t, best, second


@pytest.mark.parametrize("seed", range(6))
def test_reference_equals_every_path_enumerated(seed):
    rng = np.random.default_rng(seed)
    problem = _random_problem(rng, 4, 6, banded=seed % 2 == 1)
    costs = (1.0, 2.0, 1.5)
    ref = sync_marginals_reference(*problem, *costs)
    brute = _enumerated_marginals(*problem, *costs)
    for a, b in zip(ref, brute):
        np.testing.assert_array_equal(a, b)


def _kernel_rival(obs, exp, repeat, lo, hi, mismatch, gap, stay, path, bonus):
    n = obs.size
    fwd = np.full((n, max(int((hi - lo).max()), 1)), np.inf, dtype=np.float32)
    sync_forward(obs, exp, repeat, lo, hi, mismatch, gap, stay, fwd)
    sync_forward_detached(obs, exp, repeat, lo, hi, mismatch, gap, stay, path, bonus,
                          fwd)  # fmt: skip
    rival = np.empty(n)
    sync_rival(obs, exp, repeat, lo, hi, mismatch, gap, stay, fwd, path, bonus, rival)
    return rival


def _random_path(rng, problem, costs):
    """The best path's triggers (as the aligner uses it), or any triggers."""
    if rng.random() < 0.5:
        return _kernel_marginals(*problem, *costs)[0]
    return rng.integers(-1, len(problem[1]), len(problem[0])).astype(np.int64)


@pytest.mark.parametrize("seed", range(8))
def test_rival_reference_equals_every_path_enumerated(seed):
    rng = np.random.default_rng(200 + seed)
    problem = _random_problem(rng, 4, 6, banded=seed % 2 == 1)
    costs = (1.0, 2.0, 1.5)
    path = _random_path(rng, problem, costs)
    ref = sync_rival_reference(*problem, *costs, path, 2.0)
    brute = _enumerated_rival(*problem, *costs, path, 2.0)
    np.testing.assert_array_equal(ref, brute)


@pytest.mark.parametrize("banded", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_rival_kernels_equal_reference(seed, banded):
    rng = np.random.default_rng(300 + seed)
    problem = _random_problem(rng, 30, 45, banded)
    costs = (1.0, 2.0, 2.0) if seed % 2 else (1.0, 1.5, 0.5)
    path = _random_path(rng, problem, costs)
    rival = _kernel_rival(*problem, *costs, path, costs[1])
    np.testing.assert_array_equal(
        rival, sync_rival_reference(*problem, *costs, path, costs[1])
    )


@pytest.mark.parametrize("banded", [False, True])
@pytest.mark.parametrize("seed", range(4))
def test_alignment_kernels_equal_reference(seed, banded):
    rng = np.random.default_rng(100 + seed)
    problem = _random_problem(rng, 30, 45, banded)
    costs = (1.0, 2.0, 2.0) if seed % 2 else (1.0, 1.5, 0.5)
    best_t, best, second = _kernel_marginals(*problem, *costs)
    ref_t, ref_best, ref_second = sync_marginals_reference(*problem, *costs)
    np.testing.assert_array_equal(best, ref_best)
    np.testing.assert_array_equal(second, ref_second)
    finite = np.isfinite(ref_best)
    np.testing.assert_array_equal(best_t[finite], ref_t[finite])


# ------------------------------------------------------------ the alignment


def test_clean_run_aligns_every_frame():
    expected, observed, truth, repeats = make_run(0, n_triggers=600)
    assigned, record = check(expected, observed, truth, repeats)
    assert record.verdict == "aligned"
    assert record.n_aligned / record.n_frames > 0.97
    assert record.n_dropped_triggers == 0 and record.n_mismatched == 0


def test_late_start_and_drops_are_found():
    expected, observed, truth, repeats = make_run(1, drop=0.01, late=137)
    assigned, record = check(expected, observed, truth, repeats)
    assert assigned[assigned >= 0].min() >= 137
    assert record.n_aligned / record.n_frames > 0.85
    assert record.verdict == "partial" or record.n_aligned >= 0.9 * record.n_frames
    # The drops counted are the triggers the camera missed between the first
    # and last aligned frames.
    span = np.arange(assigned[assigned >= 0][0], assigned.max() + 1)
    assert record.n_dropped_triggers == np.setdiff1d(span, truth).size > 5


def test_frozen_camera_frames_share_the_frozen_trigger():
    expected, observed, truth, repeats = make_run(2, freeze=(300, 45, 60))
    assigned, record = check(expected, observed, truth, repeats)
    frozen = slice(300, 346)
    assert np.all(truth[frozen] == truth[300])
    # The frame the camera froze on is followed by 60 lost triggers: only its
    # own bit tells whether it is trigger t or t + 1, so it may stay unproven;
    # its repeats share its fate.
    assert len(set(assigned[frozen].tolist())) == 1
    after = assigned[346 + 10 :]
    assert np.mean(after >= 0) > 0.95
    assert record.n_dropped_triggers >= 60


def test_duplicated_frames_take_their_originals_trigger():
    expected, observed, truth, repeats = make_run(3, duplicate=0.03)
    assigned, record = check(expected, observed, truth, repeats)
    assert repeats.sum() > 20
    dup = np.flatnonzero(repeats)
    np.testing.assert_array_equal(assigned[dup], assigned[dup - 1])
    assert record.n_repeats >= 0.9 * repeats.sum()
    assert record.n_aligned / record.n_frames > 0.95


def test_unflagged_duplicates_without_drops_are_placed_as_stays():
    expected, observed, truth, repeats = make_run(4, duplicate=0.01)
    assigned, record = check(expected, observed, truth, np.zeros_like(repeats))
    assert record.n_aligned / record.n_frames > 0.8


def test_too_short_a_sequence_is_not_determined():
    expected, observed, truth, repeats = make_run(5)
    assigned, record = align_frames_to_triggers(observed[400:406], expected)
    assert np.all(assigned == -1)
    assert record.verdict == "not_determined" and record.n_aligned == 0


def test_led_not_seen_is_not_determined():
    expected, observed, truth, repeats = make_run(6, n_triggers=300)
    assigned, record = align_frames_to_triggers(np.full(290, -1), expected)
    assert np.all(assigned == -1) and record.verdict == "not_determined"


def test_no_code_in_the_expected_bits_is_not_determined():
    """Before the code starts the LED is off: every placement fits."""
    observed = np.zeros(200, np.int8)
    assigned, record = align_frames_to_triggers(observed, np.zeros(400, np.int8))
    assert np.all(assigned == -1)


def test_frames_of_another_run_are_refused():
    """Frames from a different code: nothing fits, nothing may be assigned."""
    expected, *_ = make_run(7, n_triggers=800)
    _, observed, *_ = make_run(8, n_triggers=800)
    assigned, record = align_frames_to_triggers(observed, expected)
    assert record.n_aligned < 0.02 * record.n_frames


def test_record_is_json_ready():
    expected, observed, truth, repeats = make_run(9, drop=0.02, n_triggers=500)
    _, record = check(expected, observed, truth, repeats)
    data = json.loads(json.dumps(record.to_dict()))
    assert data["method"] == "led_code"
    assert data["n_frames"] == truth.size
    assert data["n_aligned"] + data["n_not_determined"] == truth.size
    assert 0.0 <= data["mismatch_fraction"] < 0.02


def test_frame_numbers_give_every_frame_and_agree_with_the_code():
    expected, observed, truth, repeats = make_run(10, drop=0.02, late=50)
    numbers = truth - 40  # the camera counts its exposures from its own start
    assigned, record = align_frames_to_triggers(
        observed, expected, frame_numbers=numbers
    )
    np.testing.assert_array_equal(assigned, truth)
    assert record.method == "frame_numbers+led_code"
    assert record.frame_number_offset == 40
    assert record.frame_number_disagreements == 0
    assert record.verdict == "aligned"


def test_frame_numbers_that_slip_are_caught_by_the_code():
    expected, observed, truth, repeats = make_run(11, drop=0.01)
    numbers = truth.copy()
    numbers[600:700] -= 3  # a counter that slipped (firmware bug) for a while
    numbers[700:] -= 3  # and stayed slipped: still non-decreasing overall
    numbers = np.maximum.accumulate(numbers)
    assigned, record = align_frames_to_triggers(
        observed, expected, frame_numbers=numbers
    )
    assert record.frame_number_disagreements > 50
    bad = (assigned >= 0) & (assigned != truth)
    assert not bad.any()
    assert any("disagree" in note for note in record.notes)


def test_frame_numbers_the_code_cannot_place_are_not_trusted():
    expected = np.zeros(500, np.int8)
    observed = np.zeros(300, np.int8)
    assigned, record = align_frames_to_triggers(
        observed, expected, frame_numbers=np.arange(300)
    )
    assert np.all(assigned == -1)
    assert record.frame_number_offset is None
    assert any("does not prove" in note for note in record.notes)


def test_decreasing_frame_numbers_are_refused():
    with pytest.raises(ValueError, match="must not decrease"):
        align_frames_to_triggers(
            np.zeros(3), np.zeros(5), frame_numbers=np.array([3, 4, 2])
        )


def test_margin_must_exceed_the_event_costs():
    with pytest.raises(ValueError, match="margin=2"):
        align_frames_to_triggers(np.zeros(3), np.zeros(5), margin=2, gap_cost=2)


def test_long_runs_need_a_band(monkeypatch):
    monkeypatch.setattr(sync_code, "MAX_CELLS", 200_000)
    expected, observed, truth, repeats = make_run(12, drop=0.01)
    with pytest.raises(ValueError, match="pass band="):
        align_frames_to_triggers(observed, expected, repeats=repeats)
    # Host arrival times, late by a varying 0–100 ms (CPU load): a ±1 s band.
    rng = np.random.default_rng(0)
    trigger_t = np.arange(expected.size) / 60 + rng.uniform(0, 0.01, expected.size)
    frame_t = truth / 60 + 0.006 + rng.uniform(0, 0.1, truth.size)
    band = band_from_times(frame_t, trigger_t, slack_s=1.0)
    assigned, record = check(expected, observed, truth, repeats, band=band)
    assert record.n_aligned / record.n_frames > 0.85


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**32 - 1),
    drop=st.floats(0.0, 0.03),
    duplicate=st.floats(0.0, 0.02),
    flip=st.floats(0.0, 0.02),
    late=st.integers(0, 200),
    freeze=st.none()
    | st.tuples(st.integers(0, 500), st.integers(1, 60), st.integers(0, 90)),
    jitter=st.integers(0, PERIOD // 2),
)
@example(  # the worst corner at once: 3 % drops, 2 % flips, jitter 0.43 period
    seed=385, drop=0.029869155481214018, duplicate=0.0, flip=0.01953125,
    late=77, freeze=(207, 1, 80), jitter=216,
)  # fmt: skip
@example(  # two drops and a misread bit in the last 8 frames (a free end)
    seed=39, drop=0.0234375, duplicate=0.0078125, flip=0.015625, late=0,
    freeze=(0, 6, 0), jitter=1,
)  # fmt: skip
def test_no_frame_is_ever_assigned_wrongly(
    seed, drop, duplicate, flip, late, freeze, jitter
):
    expected, observed, truth, repeats = make_run(
        seed,
        n_triggers=800,
        drop=drop,
        duplicate=duplicate,
        flip=flip,
        late=late,
        freeze=freeze,
        jitter=jitter,
    )
    assigned, record = check(expected, observed, truth, repeats)
    # Fraction aligned: ~0.95 clean, ~0.6 at the worst corner (3 % drops, 2 %
    # misread bits), 0.38 with near half-period jitter and a frozen frame on top
    # (the first example, found by Hypothesis); below 0.35 would mean the
    # aligner gave up on a decodable run. Frames it leaves out are "not
    # determined", never wrong (the assertions in check).
    assert record.n_aligned >= 0.35 * record.n_frames


@pytest.mark.xfail(strict=True, reason="known limit: merged drops mid-run")
@pytest.mark.parametrize(
    "params",
    [  # found by 60 000-run hunts (1 run in ~20 000); frames 70, 723, 447
        dict(seed=4145580784, drop=0.01639388997789191, duplicate=0.018238995589524527,
             flip=0.01733631565904511, late=185, freeze=None, jitter=67),
        dict(seed=982769155, drop=0.03, duplicate=0.009108965409839775, flip=0,
             late=29, freeze=None, jitter=250),
        dict(seed=1170362563, drop=0.01951646533499687, duplicate=0, flip=0.02,
             late=99, freeze=(84, 25, 55), jitter=84),
    ],
)  # fmt: skip
def test_three_drops_merged_into_one_gap_mid_run(params):
    """Three drops within a few frames, with misread bits, inside the run.

    The best path puts one gap of three triggers there (a gap costs the same
    whatever its length), the truth three gaps: two gaps more, which is the
    margin, so the first frame after the stretch is placed one trigger off.
    Trimming every run's edges beside such a stretch fixes both but costs
    2-5 % of frames at the worst corner (its @example above fell to 0.33);
    this records the limit until a better proof is found.
    """
    check(*make_run(n_triggers=800, **params))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 12))
def test_short_windows_are_never_assigned_wrongly(seed, n):
    expected, observed, truth, repeats = make_run(seed % 1000, n_triggers=600)
    start = seed % (truth.size - n)
    assigned, _ = align_frames_to_triggers(
        observed[start : start + n], expected, repeats=repeats[start : start + n]
    )
    ok = (assigned == -1) | (assigned == truth[start : start + n])
    assert ok.all()


def test_frames_whose_trigger_precedes_the_list_are_left_out_not_misplaced():
    # The host's trigger history began after the camera's first frames (it was
    # pruned, or the board's events for them were lost): those frames have no
    # trigger to name; every other frame still gets its own.
    expected, observed, truth, repeats = make_run(12, drop=0.01)
    cut = 30
    kept = truth >= cut
    assigned, record = align_frames_to_triggers(
        observed, expected[cut:], frame_numbers=truth, repeats=repeats
    )
    assert record.frame_number_offset == -cut
    placed = assigned >= 0
    np.testing.assert_array_equal(assigned[placed], truth[placed] - cut)
    assert np.all(assigned[~kept] == -1)
    # Near the list's start a frame has bits on one side only: some of the
    # first frames may stay unproven, never misplaced.
    assert placed[kept].mean() > 0.95


def test_frame_numbers_carry_frames_through_drops_too_dense_for_the_code():
    # A third of the frames lost: the code alone places few, but the bits
    # around each frame still prove its number's trigger against a slip.
    expected, observed, truth, repeats = make_run(13, drop=0.35, n_triggers=2000)
    alone, by_code = align_frames_to_triggers(observed, expected, repeats=repeats)
    assigned, record = check(
        expected, observed, truth, repeats, frame_numbers=truth + 7
    )
    assert record.frame_number_offset == -7
    assert record.n_aligned > max(by_code.n_aligned, 0.9 * truth.size)
    assert record.frame_number_disagreements == 0


def test_lost_trigger_events_are_filled_in_from_the_period():
    samples, counts, lost = sync_code.fill_lost_triggers(
        np.array([1000, 1500, 3000, 3500]), np.array([1, 2, 5, 6])
    )
    assert samples.tolist() == [1000, 1500, 2000, 2500, 3000, 3500]
    assert counts.tolist() == [1, 2, 3, 4, 5, 6]
    assert lost.tolist() == [False, False, True, True, False, False]
    # A count that starts again (the board restarted it): nothing is filled.
    samples, counts, lost = sync_code.fill_lost_triggers(
        np.array([1000, 1500, 9000]), np.array([7, 8, 1])
    )
    assert counts.tolist() == [7, 8, 1] and not lost.any()
