"""What a plan's design lets the analysis conclude: the dry run's design notes.

A worm changes during a session: each stimulus raises its threshold a little
and it recovers over tens of seconds (habituation, docs/analysis.md), and
electrodes and preparation drift. A parameter that changes with time (durations
run block by block, amplitudes swept upward once) is then confounded with
them: a threshold that rises over the session looks like a threshold that
depends on the parameter. The dry run measures it before anything is sent, as
the rank correlation between each varied parameter and the trial order, and
warns above ``CONFOUND_RHO``. It also states how hard the plan works the worm:
the habituation load (``analysis.fits.habituation_load``) the plan reaches, and
the threshold rise that gives at ``TYPICAL_HABITUATION_PER_STIMULUS``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from analysis.fits import HABITUATION_RECOVERY_S, habituation_load
from rig.protocols._plan import Plan

# |Spearman ρ| between a parameter and the trial order above which the design
# confounds them. A random order of n trials gives ρ ≈ N(0, 1/√(n − 1)):
# beyond ±0.3 by chance in ~2 % of plans of 60 trials, < 0.1 % of 128; blocks
# run in order give |ρ| ≈ 0.9.
CONFOUND_RHO = 0.3
# Threshold rise per recent stimulus, assumed typical (the simulated worm's,
# docs/simulated-rig.md), to say what a plan's pace does to the worm.
TYPICAL_HABITUATION_PER_STIMULUS = 0.01
# Above this threshold rise the dry run says the worm gets too little rest.
REST_WARNING_RISE = 0.15

_PARAMETERS = (
    ("amplitude", lambda p: p.amplitude_vpp),
    ("duration", lambda p: p.duration_s),
    ("site (cathode)", lambda p: p.cathode),
    ("polarity", lambda p: int(p.polarity)),
    ("pulses per train", lambda p: p.n_pulses),
    ("train rate", lambda p: p.rate_hz if p.n_pulses > 1 else 0.0),
)


def rank_correlation(values: np.ndarray) -> float:
    """Spearman's ρ between ``values`` and their order (0 if they are constant)."""
    v = np.asarray(values, dtype=float)
    if v.size < 3 or np.ptp(v) == 0:
        return 0.0
    r = rankdata(v) - (v.size + 1) / 2
    i = np.arange(v.size) - (v.size - 1) / 2
    return float((r @ i) / np.sqrt((r @ r) * (i @ i)))


def design_notes(plan: Plan) -> list[str]:
    """Lines for the dry run: ``warning: ...`` for a parameter confounded with
    time or a worm given too little rest, and the habituation load."""
    if plan.n_trials < 2:
        return []
    lines = []
    pulses = [t.pulse for t in plan.trials]
    for name, value in _PARAMETERS:
        rho = rank_correlation(np.array([value(p) for p in pulses]))
        if abs(rho) > CONFOUND_RHO:
            lines.append(
                f"warning: the {name} is confounded with time (rank correlation "
                f"with the trial order {rho:+.2f}, beyond ±{CONFOUND_RHO:g}): "
                "habituation and drift over the session would look like an "
                f"effect of the {name}. Interleave the conditions: one block with "
                "every value and order = 'random_per_repeat'"
            )
    # Every pulse of a train habituates the worm.
    onsets = np.array(
        [
            t.onset_s + k / t.pulse.rate_hz
            for t in plan.trials
            for k in range(t.pulse.n_pulses)
        ]
    )
    load = habituation_load(np.sort(onsets), HABITUATION_RECOVERY_S)
    rise = TYPICAL_HABITUATION_PER_STIMULUS * load
    lines.append(
        f"habituation load: mean {load.mean():.1f}, at most {load.max():.1f} recent "
        f"stimuli (τ {HABITUATION_RECOVERY_S:g} s): at "
        f"{_pc(TYPICAL_HABITUATION_PER_STIMULUS)} per stimulus, thresholds "
        f"+{_pc(rise.mean())} on average, up to +{_pc(rise.max())}"
    )
    if rise.max() > REST_WARNING_RISE:
        lines.append(
            f"warning: little rest for the worm: thresholds may rise up to "
            f"+{_pc(rise.max())} over the session; longer intervals or "
            "pause_between_repeats_s let it recover (the analysis measures the "
            "rise and corrects for it, at the cost of wider intervals)"
        )
    return lines


def _pc(fraction: float) -> str:
    return f"{fraction * 100:.0f} %"
