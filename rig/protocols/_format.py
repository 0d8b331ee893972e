"""The dry-run printout of a plan."""

from __future__ import annotations

from rig.protocols._design import design_notes
from rig.protocols._plan import Plan


def format_plan(
    plan: Plan,
    *,
    load_ohm: float = 1000.0,
    max_rows: int = 40,
    max_on_time_s_per_min: float | None = None,
) -> str:
    """Header (counts, duration, charge estimate, the busiest electrode's
    on-time against the rig's budget, design notes: a parameter confounded
    with time, the worm's rest) and the sequence table."""
    minutes, seconds = divmod(plan.total_duration_s, 60)
    charge_uc = plan.total_charge_c(load_ohm) * 1e6
    lines = [
        f"protocol {plan.name!r} (seed {plan.seed})",
        f"  {plan.n_trials} stimuli, "
        f"{sum(t.pulse.n_pulses for t in plan.trials)} pulses",
        f"  total duration {int(minutes)} min {seconds:.1f} s",
        f"  total charge estimate {charge_uc:.1f} µC per phase summed "
        f"(into {load_ohm:g} Ω)",
        _on_time_line(plan, max_on_time_s_per_min),
        *(f"  {line}" for line in design_notes(plan)),
        "",
        f"{'trial':>6} {'onset_s':>9} {'block':>5} {'rep':>4} {'amp_Vpp':>8} "
        f"{'dur_ms':>7} {'config':>7} {'polarity':>15} {'pulses':>6}",
    ]
    trials = plan.trials
    if len(trials) > max_rows:
        head, tail = trials[: max_rows // 2], trials[-max_rows // 2 :]
        skipped = len(trials) - len(head) - len(tail)
    else:
        head, tail, skipped = trials, (), 0

    def row(t) -> str:
        p = t.pulse
        return (
            f"{t.index:>6} {t.onset_s:>9.3f} {t.block:>5} {t.repeat:>4} "
            f"{p.amplitude_vpp:>8.3f} {p.duration_s * 1e3:>7.3f} {p.configuration:>7} "
            f"{p.polarity.name.lower():>15} {p.n_pulses:>6}"
        )

    lines += [row(t) for t in head]
    if skipped:
        lines.append(f"{'…':>6} ({skipped} more trials)")
    lines += [row(t) for t in tail]
    return "\n".join(lines)


def format_closed_loop(
    name: str,
    seed: int,
    spec,
    *,
    load_ohm: float = 1000.0,
    max_on_time_s_per_min: float | None = None,
) -> str:
    """The dry-run printout of a closed-loop protocol: its bounds, not a
    sequence; the worst case of on-time per electrode against the rig's budget
    (``max_on_time_s_per_min``) when given."""
    from firmware_bridge.stimulus import StimPulse

    minutes, seconds = divmod(spec.max_duration_s, 60)
    strongest = StimPulse(spec.amplitude_vpp[1], spec.duration_s[1])
    max_charge_uc = (
        spec.n_stimuli
        * max(spec.n_pulses)
        * strongest.charge_per_phase_c(load_ohm)
        * 1e6
    )
    o = spec.objective
    goal = f"{o.kind} {o.measure}" + (f" → {o.target:g}" if o.kind == "target" else "")
    lines = [
        f"protocol {name!r} (seed {seed}): closed loop, strategy {spec.strategy}",
        f"  objective: {goal}" + (" per µC of charge" if o.per_charge else ""),
        f"  space: amplitude {spec.amplitude_vpp[0]:g}–{spec.amplitude_vpp[1]:g} Vpp × "
        f"duration {spec.duration_s[0] * 1e3:g}–{spec.duration_s[1] * 1e3:g} ms, "
        + _where_searched(spec),
        f"  {spec.n_stimuli} stimuli, one every {spec.inter_stimulus_interval_s:g} s",
        f"  total duration {int(minutes)} min {seconds:.1f} s",
        f"  total charge at most {max_charge_uc:.1f} µC per phase summed "
        f"(every stimulus at the strongest corner, into {load_ohm:g} Ω)",
    ]
    on_time_s, fit, longest_s = spec.worst_on_time_s()
    line = (
        f"  on-time at most {on_time_s:.4g} s per electrode in any 60 s ({fit} "
        f"stimuli × {longest_s * 1e3:g} ms, the longest, all through one electrode)"
    )
    if max_on_time_s_per_min is not None:
        line += f"; the rig's budget {max_on_time_s_per_min:g} s per minute"
    lines.append(line)
    if max_on_time_s_per_min is not None and on_time_s > max_on_time_s_per_min:
        lines.append(
            f"  warning: at its worst the search would spend an electrode's "
            f"on-time budget ({on_time_s:.4g} s > {max_on_time_s_per_min:g} s "
            "per minute): the rig would refuse that stimulus and end the run; a "
            "longer interval, fewer stimuli or a shorter box keeps within it"
        )
    if spec.strategy == "bayesian":
        rule = f"  acquisition: upper confidence bound, β = {spec.beta:g}"
        if spec.safe_radius is not None:
            rule += f"; safe set: within {spec.safe_radius:g} of tested points"
        lines.append(rule)
    from analysis.displacement import ONLINE_TWITCH_WINDOW_S
    from rig.closed_loop.measures import needs_motion

    if needs_motion(o.measure):
        lines.append(
            "  needs the camera with live segment tracking: each twitch is read "
            f"{ONLINE_TWITCH_WINDOW_S:g} s after its stimulus"
        )
    lines.append("  the stimuli are chosen during the run from the responses")
    return "\n".join(lines)


def _where_searched(spec) -> str:
    """``pairs [0]`` or, over sites, the configurations, trains and polarities."""
    if spec.configurations is None:
        return f"pairs {list(spec.pairs)}"
    text = f"configurations {', '.join(spec.configurations)}"
    if spec.n_pulses != (1,):
        rates = ", ".join(f"{r:g}" for r in spec.rate_hz)
        text += f", pulses {list(spec.n_pulses)} at {rates} Hz"
    if len(spec.polarities) > 1:
        text += ", both polarities"
    elif spec.polarities[0] == 1:
        text += ", negative first"
    return text


def _on_time_line(plan: Plan, budget_s: float | None) -> str:
    """The most on-time an electrode has in any 60 s, and where."""
    seconds, electrode, trial = plan.busiest_on_time_s()
    if electrode < 0:
        return "  no stimulation on-time"
    line = (
        f"  on-time at most {seconds:.4g} s per electrode in any 60 s "
        f"(electrode {electrode}, up to trial {trial})"
    )
    return line + (f"; the rig's budget {budget_s:g} s per minute" if budget_s else "")
