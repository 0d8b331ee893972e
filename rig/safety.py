"""Host-side safety limits, checked before every command (the board checks too).

The limits are the ``[limits]`` table of the rig file (``rig.rig_file``); the
built-in defaults, conservative, are ``SafetyLimits``'s and fill any key a rig file
leaves out. ``rigs/safety-default.toml`` states every one of them, beside the rig
files (a test keeps it equal to ``default_safety_limits()``). ``SafetyLimits.check(pulse)`` raises
``SafetyError`` naming the field, the value and the allowed range.
``OnTimeBudget`` tracks stimulation on-time over the trailing minute, per electrode.

Per electrode (issue 18): a pulse runs through a configuration, a cathode and an
anode (or the common return). The configuration must be possible on the board's
electrodes (the cathode and anode in range, the anode not the cathode) and, if the
rig file lists them, one of ``allowed_configurations``; the charge of a phase passes
whole through each electrode it uses, so ``max_charge_per_phase_c`` holds per
electrode; ``max_on_time_s_per_min`` is each electrode's on-time in any 60 s.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, fields
from typing import Any

from firmware_bridge.stimulus import (
    MAX_STIM_ELECTRODES,
    StimPulse,
    check_configuration,
    format_configuration,
    legacy_pair_configuration,
    parse_configuration,
)


class SafetyError(ValueError):
    """A stimulus outside the rig's safety limits. Nothing was sent."""

    def __init__(self, field: str, value: Any, allowed: str, where: str = "") -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        prefix = f"{where}: " if where else ""
        super().__init__(
            f"{prefix}{field} = {value:g} exceeds the rig's safety limit "
            f"(allowed {allowed})"
            if isinstance(value, int | float)
            else f"{prefix}{field} = {value!r} is not allowed (allowed {allowed})"
        )


@dataclass(frozen=True, slots=True)
class SafetyLimits:
    """What the host will let the board deliver. Units in the names."""

    min_amplitude_vpp: float = 0.5
    max_amplitude_vpp: float = 6.0
    min_duration_s: float = 1e-3
    max_duration_s: float = 7e-3
    max_n_pulses: int = 100
    max_train_rate_hz: float = 50.0
    load_ohm: float = 1000.0  # electrode load used for charge estimates
    max_charge_per_phase_c: float = 8e-6
    max_on_time_s_per_min: float = 3.0
    min_inter_stimulus_interval_s: float = 0.2
    # The configurations the rig allows ("C0-A1", "C3-R", …); None: every one
    # the board's electrodes make (the per-electrode limits still hold).
    allowed_configurations: tuple[str, ...] | None = None

    def check(
        self, pulse: StimPulse, where: str = "", *, n_electrodes: int | None = None
    ) -> None:
        """Raise SafetyError if ``pulse`` breaks any limit.

        ``n_electrodes``: the board's (or the rig file's) stimulation electrodes;
        the configuration must be possible on them (None: not known here, the
        board checks)."""
        a, d = pulse.amplitude_vpp, pulse.duration_s
        if not self.min_amplitude_vpp <= a <= self.max_amplitude_vpp:
            raise SafetyError(
                "amplitude_vpp",
                a,
                f"{self.min_amplitude_vpp:g}–{self.max_amplitude_vpp:g} Vpp",
                where,
            )
        if not self.min_duration_s <= d <= self.max_duration_s:
            raise SafetyError(
                "duration_ms",
                d * 1e3,
                f"{self.min_duration_s * 1e3:g}–{self.max_duration_s * 1e3:g} ms",
                where,
            )
        self.check_configuration(pulse.cathode, pulse.anode, where, n_electrodes)
        if not 1 <= pulse.n_pulses <= self.max_n_pulses:
            raise SafetyError(
                "n_pulses", pulse.n_pulses, f"1–{self.max_n_pulses}", where
            )
        if pulse.n_pulses > 1:
            if not 0 < pulse.rate_hz <= self.max_train_rate_hz:
                raise SafetyError(
                    "train_rate_hz",
                    pulse.rate_hz,
                    f"up to {self.max_train_rate_hz:g} Hz",
                    where,
                )
            if 1.0 / pulse.rate_hz <= d:
                raise SafetyError(
                    "train_rate_hz",
                    pulse.rate_hz,
                    f"below {1.0 / d:g} Hz so pulses do not overlap",
                    where,
                )
        charge = pulse.charge_per_phase_c(self.load_ohm)
        if charge > self.max_charge_per_phase_c:
            raise SafetyError(
                "charge_per_phase_uc",
                charge * 1e6,
                f"up to {self.max_charge_per_phase_c * 1e6:g} µC per electrode into "
                f"{self.load_ohm:g} Ω",
                where,
            )
        if pulse.on_time_s() > self.max_on_time_s_per_min:
            raise SafetyError(
                "on_time_s",
                pulse.on_time_s(),
                f"up to {self.max_on_time_s_per_min:g} s per minute per electrode",
                where,
            )

    def check_configuration(
        self,
        cathode: int,
        anode: int | None,
        where: str = "",
        n_electrodes: int | None = None,
    ) -> None:
        """Raise SafetyError unless the configuration is possible on
        ``n_electrodes`` electrodes (when given) and allowed by the rig."""
        top = (n_electrodes or MAX_STIM_ELECTRODES) - 1
        try:
            check_configuration(cathode, anode, top + 1)
        except ValueError as exc:
            field, _, rest = str(exc).partition(" = ")
            value, _, allowed = rest.partition(": allowed ")
            raise SafetyError(field, int(value), allowed, where) from None
        text = format_configuration(cathode, anode)
        allowed_list = self.allowed_configurations
        if allowed_list is not None and text not in allowed_list:
            raise SafetyError(
                "configuration", text, f"the rig's {', '.join(allowed_list)}", where
            )

    def configurations(self, n_electrodes: int) -> list[str]:
        """The configurations allowed on ``n_electrodes`` electrodes, in order."""
        from firmware_bridge.stimulus import all_configurations

        every = all_configurations(n_electrodes)
        if self.allowed_configurations is None:
            return every
        return [c for c in every if c in self.allowed_configurations]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for recording metadata."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def default_safety_limits() -> SafetyLimits:
    """The conservative built-in limits (``rigs/safety-default.toml`` states them)."""
    return SafetyLimits()


# What a rig file's [limits] may hold: (lowest, highest, unit, whole number).
# Every limit is finite; a limit that divides or bounds from above is > 0, so a
# NaN, an infinity, a zero or a negative never switches a check off silently.
LIMIT_RANGES: dict[str, tuple[float, float, str, bool]] = {
    "min_amplitude_vpp": (0.0, 20.0, "Vpp", False),
    "max_amplitude_vpp": (0.001, 20.0, "Vpp", False),
    "min_duration_s": (0.0, 0.05, "s", False),
    "max_duration_s": (1e-6, 0.05, "s", False),
    "max_n_pulses": (1, 1000, "", True),
    "max_train_rate_hz": (0.01, 1000.0, "Hz", False),
    "load_ohm": (1.0, 1e7, "Ω", False),
    "max_charge_per_phase_c": (1e-12, 1e-3, "C", False),
    "max_on_time_s_per_min": (0.001, 60.0, "s", False),
    "min_inter_stimulus_interval_s": (0.0, 3600.0, "s", False),
}
MAX_PAIR = 7  # a legacy allowed_pairs entry k is the configuration C(2k)-A(2k+1)


class LimitsFileError(SafetyError):
    """A ``[limits]`` value of a rig file that is missing its mark: the file, the
    field, the value and what is allowed, in one line."""

    def __init__(self, field: str, value: Any, allowed: str, where: str = "") -> None:
        ValueError.__init__(
            self,
            f"{where + ': ' if where else ''}{field} = {value!r}: allowed {allowed}",
        )
        self.field, self.value, self.allowed = field, value, allowed


def limits_from_table(table: dict[str, Any], where: str) -> SafetyLimits:
    """SafetyLimits from a TOML ``[limits]`` table; errors name ``where``.

    Every value must be finite and within ``LIMIT_RANGES`` (NaN, ±inf, zero
    where a limit divides, and negatives are refused)."""
    known = {f.name for f in fields(SafetyLimits)}
    values: dict[str, Any] = {}
    table = dict(table)
    if "allowed_pairs" in table:  # version 2's key: pair k = C(2k)-A(2k+1)
        if "allowed_configurations" in table:
            raise LimitsFileError(
                "limits.allowed_pairs",
                table["allowed_pairs"],
                "only one of allowed_pairs (old) and allowed_configurations",
                where,
            )
        pairs = table.pop("allowed_pairs")
        if (
            not isinstance(pairs, list)
            or not pairs
            or not all(
                isinstance(p, int) and not isinstance(p, bool) and 0 <= p <= MAX_PAIR
                for p in pairs
            )
        ):
            raise LimitsFileError(
                "limits.allowed_pairs",
                pairs,
                f"a non-empty list of pair numbers 0–{MAX_PAIR} (or, better, "
                'allowed_configurations = ["C0-A1", …])',
                where,
            )
        table["allowed_configurations"] = [legacy_pair_configuration(p) for p in pairs]
    for key, value in table.items():
        if key not in known:
            raise LimitsFileError(
                f"limits.{key}", value, f"one of {', '.join(sorted(known))}", where
            )
        if key == "allowed_configurations":
            values[key] = _configurations_from_file(value, where)
            continue
        low, high, unit, whole = LIMIT_RANGES[key]
        kind = int if whole else int | float
        if (
            isinstance(value, bool)
            or not isinstance(value, kind)
            or not low <= value <= high  # first: NaN fails it; huge ints too
            or not math.isfinite(value)
        ):
            allowed = f"{'a whole number ' if whole else ''}{low:g}–{high:g}"
            raise LimitsFileError(
                f"limits.{key}", value, f"{allowed}{' ' + unit if unit else ''}", where
            )
        values[key] = value
    limits = SafetyLimits(**values)
    for low_key, high_key in (
        ("min_amplitude_vpp", "max_amplitude_vpp"),
        ("min_duration_s", "max_duration_s"),
    ):
        low_value, high_value = getattr(limits, low_key), getattr(limits, high_key)
        if low_value > high_value:
            # Name the value the file gave (the other may be the default).
            if low_key in table or high_key not in table:
                raise LimitsFileError(
                    f"limits.{low_key}",
                    low_value,
                    f"at most {high_key} ({high_value:g})",
                    where,
                )
            raise LimitsFileError(
                f"limits.{high_key}",
                high_value,
                f"at least {low_key} ({low_value:g}, the default)",
                where,
            )
    return limits


def _configurations_from_file(value: Any, where: str) -> tuple[str, ...] | None:
    """``allowed_configurations``: "all", or a non-empty list of "C3-A4"/"C3-R"."""
    if value == "all":
        return None
    allowed = (
        '"all" or a non-empty list of configurations "C<cathode>-A<anode>" or '
        f'"C<cathode>-R", electrodes 0–{MAX_STIM_ELECTRODES - 1}'
    )
    if not isinstance(value, list) or not value:
        raise LimitsFileError("limits.allowed_configurations", value, allowed, where)
    out = []
    for k, text in enumerate(value):
        try:
            cathode, anode = parse_configuration(text)
            check_configuration(cathode, anode, MAX_STIM_ELECTRODES)
        except (ValueError, TypeError) as exc:
            raise LimitsFileError(
                f"limits.allowed_configurations[{k}]", text, f"{allowed} ({exc})", where
            ) from None
        out.append(format_configuration(cathode, anode))
    if len(set(out)) != len(out):
        raise LimitsFileError(
            "limits.allowed_configurations", value, "each configuration once", where
        )
    return tuple(out)


# Window of the on-time budget: the trailing 60 s.
ON_TIME_WINDOW_S = 60.0


class OnTimeBudget:
    """Stimulation on-time in the trailing 60 s per electrode, checked before
    each command: a pulse is on at its cathode and at its anode (not the common
    return). Sums are exact (``math.fsum``): fifteen 0.2 s trains make 3 s, not
    3.0000000000000004 s, so a budget is refused past its value, not at it; the
    dry run (``check_plan``) counts with the same code."""

    def __init__(self, max_on_time_s_per_min: float) -> None:
        self.max_s = max_on_time_s_per_min
        # electrode -> (onsets, on-times) of the commands in the window
        self._log: dict[int, tuple[deque[float], deque[float]]] = {}

    def _window(self, electrode: int, now_s: float) -> deque[float]:
        """The on-times of ``electrode``'s commands in the 60 s before ``now_s``."""
        times, seconds = self._log.setdefault(electrode, (deque(), deque()))
        while times and times[0] < now_s - ON_TIME_WINDOW_S:
            times.popleft()
            seconds.popleft()
        return seconds

    def used_s(self, now_s: float, electrode: int | None = None) -> float:
        """On-time of ``electrode`` in the 60 s before ``now_s`` (None: the
        busiest electrode's)."""
        if electrode is None:
            return max((self.used_s(now_s, e) for e in list(self._log)), default=0.0)
        return math.fsum(self._window(electrode, now_s))

    def would_use_s(self, pulse: StimPulse, now_s: float, electrode: int) -> float:
        """``electrode``'s on-time in the 60 s up to ``now_s`` with ``pulse``."""
        return math.fsum([*self._window(electrode, now_s), pulse.on_time_s()])

    def check(self, pulse: StimPulse, now_s: float) -> None:
        """Raise SafetyError if ``pulse`` would exceed any of its electrodes'
        per-minute budget."""
        for electrode in pulse.electrodes():
            total = self.would_use_s(pulse, now_s, electrode)
            if total > self.max_s:
                raise SafetyError(
                    f"on_time_s_per_min (electrode {electrode})",
                    total,
                    f"up to {self.max_s:g} s per minute per electrode",
                )

    def record(self, pulse: StimPulse, now_s: float) -> None:
        """Count a delivered command."""
        for electrode in pulse.electrodes():
            times, seconds = self._log.setdefault(electrode, (deque(), deque()))
            times.append(now_s)
            seconds.append(pulse.on_time_s())


def check_protocol(
    protocol: Any, limits: SafetyLimits | None, *, n_electrodes: int | None = None
) -> Any:
    """Check a whole protocol before anything is sent; return its plan.

    A sweep is expanded and every trial checked (its configurations against
    ``n_electrodes``, the board's, when known); a closed-loop protocol has no
    plan (returns None): its search box and interval are checked instead.
    """
    if protocol.closed_loop is not None:
        from rig.closed_loop.loop import check_spec_is_safe

        check_spec_is_safe(protocol.closed_loop, limits)
        return None
    plan = protocol.expand()
    if limits is not None:
        check_plan(plan, limits, n_electrodes=n_electrodes)
    return plan


def check_plan(
    plan: Any, limits: SafetyLimits, *, n_electrodes: int | None = None
) -> None:
    """Check every trial of a plan before anything is sent; list the offenders,
    one line per problem: a trial's field past a limit, and per electrode its
    charge per phase and its on-time in any 60 s of the schedule (the
    runtime's on-time budget, run over the planned onsets)."""
    problems: dict[str, list[int]] = {}
    charge: dict[int, list[Any]] = {}  # electrode -> trials past the limit
    previous = None
    for trial in plan.trials:
        where = f"block[{trial.block}] ({trial.block_name})"
        try:
            limits.check(trial.pulse, where, n_electrodes=n_electrodes)
            if (
                previous is not None
                and trial.onset_s - previous
                # onsets are rounded to 1 ns (rig.protocols._plan): an interval
                # of exactly the minimum may come out 1 ns short
                < limits.min_inter_stimulus_interval_s - 2e-9
            ):
                raise SafetyError(
                    "inter_stimulus_interval_s",
                    trial.onset_s - previous,
                    f"at least {limits.min_inter_stimulus_interval_s:g} s",
                    where,
                )
        except SafetyError as exc:
            if exc.field == "charge_per_phase_uc":  # said per electrode below
                for electrode in trial.pulse.electrodes():
                    charge.setdefault(electrode, []).append(trial)
            else:
                problems.setdefault(str(exc), []).append(trial.index)
        previous = trial.onset_s
    lines = [
        f"{text} — trials {_compact(indices)}" for text, indices in problems.items()
    ]
    lines += [_charge_line(e, trials, limits) for e, trials in sorted(charge.items())]
    lines += on_time_problems(plan, limits)
    if lines:
        raise PlanSafetyError(lines)


def _where(trial: Any) -> str:
    """``trial 12 (block[0] (sites), C3-R 5 Vpp × 6 ms, onset 11 s)``."""
    p = trial.pulse
    train = f" × {p.n_pulses} at {p.rate_hz:g} Hz" if p.n_pulses > 1 else ""
    return (
        f"trial {trial.index} (block[{trial.block}] ({trial.block_name}), "
        f"{p.configuration} {p.amplitude_vpp:g} Vpp × {p.duration_s * 1e3:g} ms"
        f"{train}, onset {trial.onset_s:g} s)"
    )


def _charge_line(electrode: int, trials: list[Any], limits: SafetyLimits) -> str:
    worst = max(t.pulse.charge_per_phase_c(limits.load_ohm) for t in trials)
    return (
        f"electrode {electrode}: charge per phase {worst * 1e6:.3g} µC exceeds the "
        f"rig's limit of {limits.max_charge_per_phase_c * 1e6:g} µC per electrode "
        f"(into {limits.load_ohm:g} Ω), first at {_where(trials[0])} — trials "
        f"{_compact([t.index for t in trials])}"
    )


def on_time_problems(plan: Any, limits: SafetyLimits) -> list[str]:
    """Per electrode, the trials whose on-time in the 60 s up to their onset
    (the plan's schedule, every earlier trial delivered) would exceed
    ``max_on_time_s_per_min``, counted by the run time's OnTimeBudget: one
    line per electrode, naming the first such trial."""
    budget = OnTimeBudget(limits.max_on_time_s_per_min)
    over: dict[int, list[tuple[Any, float]]] = {}
    for trial in plan.trials:
        for electrode in trial.pulse.electrodes():
            total = budget.would_use_s(trial.pulse, trial.onset_s, electrode)
            if total > budget.max_s:
                over.setdefault(electrode, []).append((trial, total))
        budget.record(trial.pulse, trial.onset_s)
    lines = []
    for electrode, trials in sorted(over.items()):
        first, total = trials[0]
        worst = max(t for _, t in trials)
        lines.append(
            f"electrode {electrode}: on-time {total:.4g} s in the 60 s up to "
            f"{_where(first)} exceeds the rig's budget of "
            f"{limits.max_on_time_s_per_min:g} s per minute per electrode (at most "
            f"{worst:.4g} s) — trials {_compact([t.index for t, _ in trials])}"
        )
    return lines


class PlanSafetyError(SafetyError):
    """One or more trials of a plan break the limits (each problem listed once)."""

    def __init__(self, problems: list[str]) -> None:
        ValueError.__init__(
            self,
            "the protocol breaks the rig's safety limits:\n  " + "\n  ".join(problems),
        )
        self.field, self.value, self.allowed = "plan", len(problems), ""
        self.problems = problems


def _compact(indices: list[int]) -> str:
    shown = ", ".join(str(i) for i in indices[:5])
    return shown + (f" and {len(indices) - 5} more" if len(indices) > 5 else "")
