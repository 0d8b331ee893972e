"""Expanding a protocol into its plan: every trial, its pulse and scheduled onset."""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from firmware_bridge.stimulus import StimPulse, parse_configuration
from rig.protocols._errors import ProtocolError

# A plan is held in memory, trial by trial: 10^7 trials ran out of memory after
# 42 s. 100 000 stimuli at the shortest interval is over 16 minutes of
# stimulation; a longer experiment is several protocol files.
MAX_TRIALS = 100_000


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

    def busiest_on_time_s(self, window_s: float = 60.0) -> tuple[float, int, int]:
        """The most on-time any electrode has in any ``window_s`` up to a
        trial's onset (the rig's budget counts the trailing 60 s per electrode):
        (seconds, electrode, trial index); (0, -1, -1) for an empty plan."""
        windows: dict[int, tuple[deque[float], deque[float]]] = {}
        best = (0.0, -1, -1)
        for t in self.trials:
            for e in t.pulse.electrodes():
                onsets, seconds = windows.setdefault(e, (deque(), deque()))
                while onsets and onsets[0] < t.onset_s - window_s:
                    onsets.popleft()
                    seconds.popleft()
                onsets.append(t.onset_s)
                seconds.append(t.pulse.on_time_s())
                used = math.fsum(seconds)
                if used > best[0]:
                    best = (used, e, t.index)
        return best

    def total_charge_c(self, load_ohm: float) -> float:
        """Charge per phase summed over every pulse delivered, coulombs."""
        return sum(
            t.pulse.charge_per_phase_c(load_ohm) * t.pulse.n_pulses for t in self.trials
        )


def block_size(block) -> int:
    """Trials a block expands to, counted without expanding it."""
    return (
        len(block.amplitudes_vpp)
        * len(block.durations_s)
        * len(block.configurations)
        * len(block.polarities)
        * block.repeats
    )


def check_plan_size(source: str, blocks) -> None:
    """Raise ProtocolError if ``blocks`` expand to more than MAX_TRIALS trials."""
    sizes = [block_size(b) for b in blocks]
    total = sum(sizes)
    if total > MAX_TRIALS:
        largest = max(range(len(sizes)), key=sizes.__getitem__)
        raise ProtocolError(
            source,
            "block",
            f"expands to {total} trials (block[{largest}] alone to "
            f"{sizes[largest]}: amplitudes × durations × configurations × polarities × "
            f"repeats); allowed at most {MAX_TRIALS} trials per protocol: split it "
            "into several protocol files",
        )


def expand(protocol, seed: int) -> Plan:
    """Expand every block in file order; onsets accumulate intervals and pauses."""
    check_plan_size(protocol.source, protocol.blocks)  # before any memory is used
    rng = np.random.default_rng(seed)
    trials: list[Trial] = []
    clock = 0.0
    first = True
    for block in protocol.blocks:
        combos = [
            StimPulse(
                amplitude_vpp=a,
                duration_s=d,
                cathode=p[0],
                anode=p[1],
                polarity=pol,
                n_pulses=block.n_pulses,
                rate_hz=block.train_rate_hz,
            )
            for p, pol, d, a in itertools.product(
                [parse_configuration(c) for c in block.configurations],
                block.polarities,
                block.durations_s,
                block.amplitudes_vpp,
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
        previous_repeat = None
        for r, pulse in ordered:
            if not first:
                clock += block.inter_stimulus_interval_s
                if previous_repeat is not None and r != previous_repeat:
                    clock += block.pause_between_repeats_s
            first = False
            previous_repeat = r
            trials.append(
                Trial(len(trials), block.index, block.name, r, pulse, round(clock, 9))
            )
    return Plan(protocol.name, seed, tuple(trials))
