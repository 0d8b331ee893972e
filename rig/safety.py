"""Host-side safety limits, checked before every command (the board checks too).

The limits are the ``[limits]`` table of the rig file (``rig.rig_file``); the
built-in defaults, conservative, are ``SafetyLimits``'s and fill any key a rig file
leaves out. ``rigs/safety-default.toml`` states every one of them, beside the rig
files (a test keeps it equal to ``default_safety_limits()``). ``SafetyLimits.check(pulse)`` raises
``SafetyError`` naming the field, the value and the allowed range.
``OnTimeBudget`` tracks stimulation on-time over the trailing minute.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, fields
from typing import Any

from firmware_bridge.stimulus import StimPulse


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
    allowed_pairs: tuple[int, ...] = (0,)

    def check(self, pulse: StimPulse, where: str = "") -> None:
        """Raise SafetyError if ``pulse`` breaks any limit."""
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
        if pulse.pair not in self.allowed_pairs:
            raise SafetyError(
                "pair", pulse.pair, f"pairs {list(self.allowed_pairs)}", where
            )
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
                f"up to {self.max_charge_per_phase_c * 1e6:g} µC into "
                f"{self.load_ohm:g} Ω",
                where,
            )
        if pulse.on_time_s() > self.max_on_time_s_per_min:
            raise SafetyError(
                "on_time_s",
                pulse.on_time_s(),
                f"up to {self.max_on_time_s_per_min:g} s per minute",
                where,
            )

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
MAX_PAIR = 31


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
    for key, value in table.items():
        if key not in known:
            raise LimitsFileError(
                f"limits.{key}", value, f"one of {', '.join(sorted(known))}", where
            )
        if key == "allowed_pairs":
            if (
                not isinstance(value, list)
                or not value
                or not all(
                    isinstance(p, int)
                    and not isinstance(p, bool)
                    and 0 <= p <= MAX_PAIR
                    for p in value
                )
            ):
                raise LimitsFileError(
                    f"limits.{key}",
                    value,
                    f"a non-empty list of pair numbers 0–{MAX_PAIR}",
                    where,
                )
            values[key] = tuple(value)
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


class OnTimeBudget:
    """Stimulation on-time in the trailing 60 s, checked before each command."""

    def __init__(self, max_on_time_s_per_min: float) -> None:
        self.max_s = max_on_time_s_per_min
        self._log: deque[tuple[float, float]] = deque()

    def used_s(self, now_s: float) -> float:
        """On-time spent in the 60 s before ``now_s``."""
        while self._log and self._log[0][0] < now_s - 60.0:
            self._log.popleft()
        return sum(s for _, s in self._log)

    def check(self, pulse: StimPulse, now_s: float) -> None:
        """Raise SafetyError if ``pulse`` would exceed the per-minute budget."""
        total = self.used_s(now_s) + pulse.on_time_s()
        if total > self.max_s:
            raise SafetyError(
                "on_time_s_per_min", total, f"up to {self.max_s:g} s per minute"
            )

    def record(self, pulse: StimPulse, now_s: float) -> None:
        """Count a delivered command."""
        self._log.append((now_s, pulse.on_time_s()))


def check_protocol(protocol: Any, limits: SafetyLimits | None) -> Any:
    """Check a whole protocol before anything is sent; return its plan.

    A sweep is expanded and every trial checked; a closed-loop protocol has no
    plan (returns None): its search box and interval are checked instead.
    """
    if protocol.closed_loop is not None:
        from rig.closed_loop.loop import check_spec_is_safe

        check_spec_is_safe(protocol.closed_loop, limits)
        return None
    plan = protocol.expand()
    if limits is not None:
        check_plan(plan, limits)
    return plan


def check_plan(plan: Any, limits: SafetyLimits) -> None:
    """Check every trial of a plan before anything is sent; list the offenders."""
    problems: dict[str, list[int]] = {}
    previous = None
    for trial in plan.trials:
        where = f"block[{trial.block}] ({trial.block_name})"
        try:
            limits.check(trial.pulse, where)
            if (
                previous is not None
                and trial.onset_s - previous
                < limits.min_inter_stimulus_interval_s - 1e-12
            ):
                raise SafetyError(
                    "inter_stimulus_interval_s",
                    trial.onset_s - previous,
                    f"at least {limits.min_inter_stimulus_interval_s:g} s",
                    where,
                )
        except SafetyError as exc:
            problems.setdefault(str(exc), []).append(trial.index)
        previous = trial.onset_s
    if problems:
        raise PlanSafetyError(
            [
                f"{text} — trials {_compact(indices)}"
                for text, indices in problems.items()
            ]
        )


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
