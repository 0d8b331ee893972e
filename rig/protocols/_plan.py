"""Expanding a protocol into its plan: every trial, its pulse and scheduled onset."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from firmware_bridge.stimulus import StimPulse


@dataclass(frozen=True, slots=True)
class Trial:
    """One stimulus of the plan."""

    index: int
    block: int
    block_name: str
    repeat: int
    pulse: StimPulse
    onset_s: float  # scheduled time from the start of the run


@dataclass(frozen=True, slots=True)
class Plan:
    """Every trial in delivery order."""

    name: str
    seed: int
    trials: tuple[Trial, ...]

    @property
    def n_trials(self) -> int:
        """Number of stimuli (commands) in the plan."""
        return len(self.trials)

    def __len__(self) -> int:
        return len(self.trials)

    def __iter__(self):
        return iter(self.trials)

    @property
    def total_duration_s(self) -> float:
        """From the run's start to the end of the last pulse or train."""
        if not self.trials:
            return 0.0
        last = self.trials[-1]
        return last.onset_s + last.pulse.train_length_s()

    def total_charge_c(self, load_ohm: float) -> float:
        """Charge per phase summed over every pulse delivered, coulombs."""
        return sum(
            t.pulse.charge_per_phase_c(load_ohm) * t.pulse.n_pulses for t in self.trials
        )


def expand(protocol, seed: int) -> Plan:
    """Expand every block in file order; onsets accumulate intervals and pauses."""
    rng = np.random.default_rng(seed)
    trials: list[Trial] = []
    clock = 0.0
    first = True
    for block in protocol.blocks:
        combos = [
            StimPulse(
                amplitude_vpp=a,
                duration_s=d,
                pair=p,
                polarity=pol,
                n_pulses=block.n_pulses,
                rate_hz=block.train_rate_hz,
            )
            for p, pol, d, a in itertools.product(
                block.pairs, block.polarities, block.durations_s, block.amplitudes_vpp
            )
        ]
        ordered: list[tuple[int, StimPulse]] = []
        if block.order == "random":
            pool = [(r, c) for r in range(block.repeats) for c in combos]
            ordered = [pool[i] for i in rng.permutation(len(pool))]
        else:
            for r in range(block.repeats):
                if block.order == "random_per_repeat":
                    ordered += [(r, combos[i]) for i in rng.permutation(len(combos))]
                else:
                    ordered += [(r, c) for c in combos]
        clock += block.pause_before_s
        for r, pulse in ordered:
            if not first:
                clock += block.inter_stimulus_interval_s
            first = False
            trials.append(
                Trial(len(trials), block.index, block.name, r, pulse, round(clock, 9))
            )
    return Plan(protocol.name, seed, tuple(trials))
