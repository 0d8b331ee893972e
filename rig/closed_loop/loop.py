"""ClosedLoop: runs a search on the rig, one stimulus at a time.

The protocol runner asks ``next_trial(n)`` before each stimulus (on its own
thread). For every stimulus after the first, that call waits for the online
analysis of the previous stimulus (``response_measured``, or ``motion_measured``
for a twitch measure, about 0.4 s after the stimulus), scores it with the
objective, tells the search, and asks it for the next point; the runner then
delivers that point at its scheduled time. Each decision is recorded with the
recording (event ``optimiser``) and published (``optimiser_updated``) for the
GUI, which can also hold each proposal for approval, override it, or stop.

Latency of the host's part of the loop is measured per stimulus: from the
arrival of the batch that completed the previous response window to the
decision (``host_latency_s``), and the decision's compute time alone
(``decision_s``).
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from firmware_bridge.stimulus import StimPulse
from rig.closed_loop._gp import warm_up as gp_warm_up
from rig.closed_loop.measures import needs_motion, response_value
from rig.closed_loop.mixed_search import MixedBayesianSearch
from rig.closed_loop.search import BayesianSearch, GridSearch, RandomSearch
from rig.closed_loop.space import MixedSpace, Objective, ParameterSpace

POSTERIOR_RECORDED = 16  # posterior grid recorded per decision (16 × 16)


@dataclass(frozen=True, slots=True)
class ClosedLoopTrial:
    """One chosen stimulus, in the shape the protocol runner delivers."""

    index: int
    pulse: StimPulse
    onset_s: float
    reason: str
    block: int = 0
    block_name: str = "closed-loop"
    repeat: int = 0


def space_of(spec: Any, electrode_positions_m=None) -> ParameterSpace | MixedSpace:
    """The parameter space a ClosedLoopSpec searches: amplitude × duration per
    pair, or (``configurations``) a MixedSpace over the stimulation electrodes
    at ``electrode_positions_m`` (the rig file's ``[stimulator]
    electrode_positions_mm``)."""
    if getattr(spec, "configurations", None) is None:
        return ParameterSpace(spec.amplitude_vpp, spec.duration_s, tuple(spec.pairs))
    if electrode_positions_m is None:
        raise ValueError(
            "a closed loop over closed_loop.configurations needs the stimulation "
            "electrodes' positions: [stimulator] electrode_positions_mm in the "
            "rig file (--rig FILE)"
        )
    return MixedSpace(
        configurations=tuple(spec.configurations),
        electrode_positions_m=tuple(float(x) for x in electrode_positions_m),
        amplitude_vpp=spec.amplitude_vpp,
        duration_s=spec.duration_s,
        n_pulses=spec.n_pulses,
        rate_hz=spec.rate_hz,
        polarities=spec.polarities,
    )


def make_search(
    spec: Any, *, seed: int = 0, electrode_positions_m=None, load_ohm: float = 1000.0
):
    """The search a ClosedLoopSpec names, over its parameter space."""
    space = space_of(spec, electrode_positions_m)
    if spec.strategy == "grid":
        return GridSearch(space, *spec.grid, seed=seed)  # type: ignore[arg-type]
    if spec.strategy == "random":
        return RandomSearch(space, seed=seed)  # type: ignore[arg-type]
    if isinstance(space, MixedSpace):
        o = spec.objective
        return MixedBayesianSearch(
            space,
            beta=spec.beta,
            safe_radius=spec.safe_radius,
            minimise_charge=o.minimise_charge,
            constraint_max=None if o.constraint is None else o.constraint.max,
            load_ohm=load_ohm,
            seed=seed,
        )
    return BayesianSearch(
        space, beta=spec.beta, safe_radius=spec.safe_radius, seed=seed
    )


def check_spec_is_safe(spec: Any, safety: Any, electrode_positions_m=None) -> None:
    """Refuse a closed-loop protocol whose box or interval breaks the limits."""
    if (
        getattr(spec, "configurations", None) is not None
        and electrode_positions_m is None
    ):
        # the sites' positions do not change what the limits allow
        electrode_positions_m = [0.001 * (i + 1) for i in range(16)]
    check_space_is_safe(
        space_of(spec, electrode_positions_m), spec.inter_stimulus_interval_s, safety
    )


def check_space_is_safe(space: Any, isi_s: float, safety: Any) -> None:
    """Refuse a search space that reaches outside the rig's safety limits."""
    if safety is None:
        return
    if isinstance(space, MixedSpace):  # every configuration at every corner
        corners = [
            space.pulse((c, a, d, n, r, p))
            for c in space.configurations
            for a in space.amplitude_vpp
            for d in space.duration_s
            for n in (space.n_pulses[0], space.n_pulses[-1])
            for r in (space.rate_hz[0], space.rate_hz[-1])
            for p in space.polarities
        ]
    else:
        corners = [
            ParameterSpace.pulse((a, d, p))
            for a in space.amplitude_vpp
            for d in space.duration_s
            for p in space.pairs
        ]
    for pulse in corners:  # the limits are monotonic: the corners bound the box
        safety.check(pulse, where="closed_loop search space")
    if isi_s < safety.min_inter_stimulus_interval_s:
        raise ValueError(
            f"closed_loop.inter_stimulus_interval_s = {isi_s:g} s is below the rig's "
            f"minimum {safety.min_inter_stimulus_interval_s:g} s"
        )


# With approval on, how long to wait for the previous response before proposing.
APPROVAL_WAIT_S = 3.0
# At the end of a run, how long to wait for the responses still to come.
FINISH_WAIT_S = 2.0
# The niceness the deciding thread takes where the system permits (root or
# CAP_SYS_NICE): with two CPU-bound processes on 2 cores an ordinary thread
# waits for a core (decision p99 9.8–12.6 ms wall for 0.35 ms of CPU); at −10
# it is scheduled first (0.3–4.8 ms; benchmarks/bench_closed_loop.py decision).
DECISION_NICENESS = -10


def raise_thread_priority(
    thread_id: int, niceness: int = DECISION_NICENESS
) -> int | None:
    """Give one thread (Linux: its own niceness) a higher priority where the
    system permits; return its niceness before, or None where not permitted
    (the thread stays as it was). The deciding thread sleeps while it waits
    for a response, so it takes nothing from anyone but the moments it decides."""
    try:
        before = os.getpriority(os.PRIO_PROCESS, thread_id)
        if before <= niceness:
            return before
        os.setpriority(os.PRIO_PROCESS, thread_id, niceness)
    except (OSError, AttributeError):  # EPERM, or no such call on this system
        return None
    return before


def restore_thread_priority(thread_id: int, niceness: int) -> None:
    """Undo ``raise_thread_priority`` (the thread may have ended: no error)."""
    try:
        os.setpriority(os.PRIO_PROCESS, thread_id, niceness)
    except (OSError, AttributeError):
        pass


class ClosedLoop:
    """A search driven by the session's online responses."""

    def __init__(
        self,
        session: Any,
        spec: Any,
        *,
        seed: int = 0,
        search: Any = None,
        require_approval: bool = False,
    ) -> None:
        self.session = session
        self.spec = spec
        positions = getattr(session, "stim_electrode_positions_m", None)
        load_ohm = session.limits.load_ohm if session.limits else 1000.0
        self.search = search or make_search(
            spec, seed=seed, electrode_positions_m=positions, load_ohm=load_ohm
        )
        self.space = self.search.space
        check_space_is_safe(self.space, spec.inter_stimulus_interval_s, session.limits)
        o = spec.objective
        self.objective = Objective(
            measure=o.measure,
            kind=o.kind,
            target=o.target,
            per_charge=o.per_charge,
            load_ohm=session.limits.load_ohm if session.limits else 1000.0,
        )
        self._mixed = isinstance(self.space, MixedSpace)
        self.interval_s = spec.inter_stimulus_interval_s
        # Wait for a response at most this long: most of the interval, so a lost
        # response costs one observation, not the schedule.
        self.response_timeout_s = max(0.05, 0.8 * self.interval_s)
        if require_approval:  # a person decides: no schedule to keep
            self.response_timeout_s = max(self.response_timeout_s, APPROVAL_WAIT_S)
        if getattr(session, "positions_m", None) is None:
            raise ValueError(
                "a closed loop needs the online analysis, which needs the recording "
                "electrodes' positions: give pair_centres_mm in the rig file's "
                "[electrodes] (--rig FILE) or --electrode-positions-mm A,B,C,D"
            )
        self._responses = session.events.response_measured
        if needs_motion(o.measure):
            self._responses = session.events.motion_measured
            _check_motion_possible(session, o.measure, self.response_timeout_s)
        self.require_approval = require_approval
        self.host_latency_s: list[float] = []
        self.decision_s: list[float] = []
        self.missed_responses = 0  # not there when their decision was made
        self.late_responses = 0  # of those, observed at a later decision
        self._late: list[int] = []  # trials whose response may still come
        self._decided_with: set[int] = set()  # trials whose response was awaited
        # late responses learnt since the last decision was recorded (it says so)
        self.late_observed: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []  # one entry per decision
        self.result: dict[str, Any] | None = None  # optimiser_result, at finish
        self._cond = threading.Condition()
        self._results: dict[int, tuple[dict, float]] = {}  # onset sample -> result
        self._onsets: dict[int, int] = {}  # trial index -> onset sample
        self._points: dict[int, tuple[float, float, int]] = {}
        self._approval: str | None = None  # "accept" | "override" | "stop"
        self._override: Any = None  # the user's point, delivered next
        self._stopped = False
        # the runner thread deciding, and its niceness before the run raised it
        # (None: not permitted here, decisions at the ordinary priority)
        self._decider: tuple[int, int] | None = None
        self.priority_raised: bool | None = None  # known at the first decision

    # ------------------------------------------------------------ running

    def start(self) -> None:
        """Start the run through the session's protocol runner."""
        gp_warm_up()  # before arming, never at the first decision
        self._responses.connect(self._on_response)
        self.session.events.trial_delivered.connect(self._on_trial)
        self.session.run_protocol(self.next_trial, n_trials=self.spec.n_stimuli)

    def finish(self) -> None:
        """Learn from the responses still to come (the last stimulus's, late
        ones), then disconnect from the session (after the run ended)."""
        with self._cond:
            unanswered = [i for i in self._onsets if i not in self._decided_with]
        self._late.extend(i for i in unanswered if i not in self._late)
        self.missed_responses += len(unanswered)  # until they arrive
        deadline = time.monotonic() + FINISH_WAIT_S
        while self._late and time.monotonic() < deadline:
            self._observe_late_arrivals()
            with self._cond:
                self._cond.wait(0.01)
        self._observe_late_arrivals()
        self._restore_priority()
        self._record_result()
        self._responses.disconnect(self._on_response)
        self.session.events.trial_delivered.disconnect(self._on_trial)

    def run(self, timeout_s: float | None = None) -> Any:
        """Start, wait for the run to end, disconnect; return the final status."""
        self.start()
        try:
            return self.session.runner.wait(timeout_s)
        finally:
            self.finish()

    # ------------------------------------------------------------ controls

    def accept(self) -> None:
        """Approve the pending proposal (with ``require_approval``)."""
        self._answer("accept")

    def override(
        self,
        amplitude_vpp: float,
        duration_s: float,
        pair: int = 0,
        *,
        configuration: str | None = None,
        n_pulses: int | None = None,
        rate_hz: float | None = None,
        polarity: int | None = None,
    ) -> None:
        """Deliver this point next instead of the proposal (checked for safety).

        Over sites, ``configuration`` names the electrodes (needed); pulses,
        rate and polarity default to the space's first values."""
        if self._mixed:
            point: Any = self._site_override(
                amplitude_vpp, duration_s, configuration, n_pulses, rate_hz, polarity
            )
        else:
            point = (float(amplitude_vpp), float(duration_s), int(pair))
            if not self.space.contains(*point):
                (a0, a1), (d0, d1) = self.space.amplitude_vpp, self.space.duration_s
                raise ValueError(
                    f"override {point[0]:g} Vpp × {point[1] * 1e3:g} ms (pair "
                    f"{point[2]}) is outside the search space {a0:g}–{a1:g} Vpp × "
                    f"{d0 * 1e3:g}–{d1 * 1e3:g} ms, pairs {list(self.space.pairs)}"
                )
        if self.session.limits is not None:
            self.session.limits.check(self.space.pulse(point), where="override")
        with self._cond:
            self._override = point
        self._answer("override")

    def _site_override(self, amplitude_vpp, duration_s, configuration, n, rate, p):
        """The override's point over sites, or ValueError naming the field."""
        space = self.space
        if configuration not in space.configurations:
            raise ValueError(
                f"override configuration {configuration!r} is not one of the "
                f"search's {', '.join(space.configurations)}"
            )
        point = space.point(
            configuration,
            amplitude_vpp,
            duration_s,
            space.n_pulses[0] if n is None else n,
            space.rate_hz[0] if rate is None else rate,
            space.polarities[0] if p is None else p,
        )
        if not space.contains(point):
            (a0, a1), (d0, d1) = space.amplitude_vpp, space.duration_s
            raise ValueError(
                f"override {space.describe(point)} is outside the search space "
                f"{a0:g}–{a1:g} Vpp × {d0 * 1e3:g}–{d1 * 1e3:g} ms, pulses "
                f"{list(space.n_pulses)}, rates {list(space.rate_hz)} Hz, "
                f"polarities {list(space.polarities)}"
            )
        return point

    def stop(self) -> None:
        """End the run after the current stimulus."""
        with self._cond:
            self._stopped = True
        self._answer("stop")
        self.session.runner.cancel()

    def _answer(self, answer: str) -> None:
        with self._cond:
            self._approval = answer
            self._cond.notify_all()

    # ------------------------------------------------------------ the loop

    def next_trial(self, delivered: int) -> ClosedLoopTrial | None:
        """Runner thread: observe the last response, choose the next stimulus."""
        if self.priority_raised is None:
            tid = threading.get_native_id()
            before = raise_thread_priority(tid)
            self.priority_raised = before is not None
            if before is not None:
                self._decider = (tid, before)
        if delivered >= self.spec.n_stimuli or self._stopped:
            self._restore_priority()
            return None
        observed = None
        t_ready = time.monotonic()
        if delivered > 0:
            observed, t_ready = self._observe(delivered - 1)
        t0 = time.perf_counter()
        with self._cond:
            override, self._override = self._override, None
        if override is not None:
            point, reason = override, "user override"
            self.search.last_decision = None
        else:
            point = self.search.propose()
            reason = self.search.last_decision.reason
        self.decision_s.append(time.perf_counter() - t0)
        if delivered > 0:
            self.host_latency_s.append(time.monotonic() - t_ready)
        state = self._publish(delivered, point, reason, observed)
        if self.require_approval:
            proposed = point
            point, reason = self._await_approval(point, reason, state)
            if point is None:
                return None
            if point != proposed:
                self._record_override(state, point)
        self._points[delivered] = point
        return ClosedLoopTrial(
            index=delivered,
            pulse=self.space.pulse(point),
            onset_s=delivered * self.interval_s,
            reason=reason,
        )

    def _restore_priority(self) -> None:
        """The runner thread back to its niceness (it runs other protocols)."""
        decider, self._decider = self._decider, None
        if decider is not None:
            restore_thread_priority(*decider)

    def _observe(self, index: int) -> tuple[dict | None, float]:
        """Wait for trial ``index``'s response; score it; tell the search."""
        prepare = getattr(self.search, "prepare", None)
        if prepare is not None:
            prepare()  # the slow part of a decision, while the response comes in
        self._observe_late_arrivals()
        self._decided_with.add(index)
        deadline = time.monotonic() + self.response_timeout_s
        with self._cond:
            while True:
                result_at = self._result_of(index)
                if result_at is not None:
                    result, t_arrived = result_at
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    # Decide without it (the schedule holds); a busy host's late
                    # response is still learnt from at a later decision.
                    self.missed_responses += 1
                    self._late.append(index)
                    return None, time.monotonic()
                self._cond.wait(left)
        return self._learn(index, result), t_arrived

    def _result_of(self, index: int) -> tuple[dict, float] | None:
        """Trial ``index``'s response and when it arrived, if it has (locked)."""
        onset = self._onsets.get(index)
        if onset is None or onset not in self._results:
            return None
        return self._results.pop(onset)

    def _observe_late_arrivals(self) -> None:
        """Learn from responses that came after their own decision was made."""
        with self._cond:
            arrived = [(i, self._result_of(i)) for i in self._late]
        for index, result_at in arrived:
            if result_at is not None:
                self._late.remove(index)
                self.missed_responses -= 1
                self.late_responses += 1
                learnt = self._learn(index, result_at[0])
                if learnt is not None:
                    self.late_observed.append(learnt)

    def _learn(self, index: int, result: dict) -> dict | None:
        """Score trial ``index``'s response and tell the search (None: no
        measurable response, no observation)."""
        point = self._points[index]
        response = response_value(result, self.objective.measure)
        if not math.isfinite(response):  # no twitch measurable: no observation
            self.missed_responses += 1
            return None
        score = self.objective.score(response, point)
        learnt = {"trial": index, "point": list(point), "response": response,
                  "score": score}  # fmt: skip
        constraint = self.spec.objective.constraint if self._mixed else None
        if constraint is not None:
            value = response_value(result, constraint.measure)
            learnt["constraint"] = value
            self.search.observe(point, score, constraint=value)
        else:
            self.search.observe(point, score)
        return learnt

    def _await_approval(self, point, reason, state):
        with self._cond:
            self._approval = None
            # A stop pressed before this proposal was shown still stops it.
            while self._approval is None and not self._stopped:
                self._cond.wait(0.1)
            answer = "stop" if self._stopped else self._approval
            self._approval = None
            override, self._override = self._override, None
        if answer == "stop":
            return None, reason
        if answer == "override" and override is not None:
            return override, "user override"
        return point, reason

    def _record_override(self, state: dict[str, Any], point) -> None:
        """The user delivered ``point`` instead of the decision's proposal: the
        record says so (event ``optimiser_override``)."""
        state["overridden_by"] = list(point)
        self.session.record_event(
            "optimiser_override",
            trial=state["trial"],
            proposed=state["point"],
            delivered=list(point),
        )

    def _take_late_observed(self) -> list[dict[str, Any]]:
        late, self.late_observed = self.late_observed, []
        return late

    def _publish(self, index, point, reason, observed) -> dict[str, Any]:
        """Record the decision with the recording and tell the GUI (which also
        gets, over sites, the search's ``view()``: the posterior map of every
        configuration and every tested point, not recorded)."""
        state = decision_state(
            self.search,
            self.spec.objective,
            self.objective,
            index,
            point,
            reason,
            observed=observed,
            observed_late=self._take_late_observed(),
        )
        self.history.append(state)
        self.session.record_event("optimiser", **state)
        published = state
        if isinstance(self.search, MixedBayesianSearch):
            published = {**state, **self.search.view()}
        self.session.events.optimiser_updated.emit(published)
        return state

    def _record_result(self) -> None:
        """The run's outcome (event ``optimiser_result``): the recommendation
        and, for a Pareto search, the front, with every response learnt."""
        obs = self.search.observations
        result: dict[str, Any] = {
            "strategy": self.search.name,
            "n_observations": len(obs.points),
            "recommended_point": _point(self.search.recommendation()),
            "missed_responses": self.missed_responses,
        }
        if isinstance(self.search, MixedBayesianSearch):
            result["recommended"] = (
                None if result["recommended_point"] is None
                else self.space.describe(self.search.recommendation())
            )  # fmt: skip
            if self.search.minimise_charge:
                result["pareto_front"] = self.search.pareto_front()
        self.result = result
        self.session.record_event("optimiser_result", **result)

    # ------------------------------------------------------------ listeners

    def _on_trial(self, trial: Any, onset: int) -> None:
        with self._cond:
            self._onsets[int(trial.index)] = int(onset)
            self._cond.notify_all()

    def _on_response(self, trial: int, result: dict) -> None:
        arrived = result.get("window_received_s", time.monotonic())
        with self._cond:
            self._results[int(result["stimulus_sample"])] = (result, arrived)
            self._cond.notify_all()


def decision_state(
    search: Any,
    objective_spec: Any,
    objective: Objective,
    index: int,
    point,
    reason: str,
    *,
    observed: dict | None = None,
    observed_late: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One decision as recorded (event ``optimiser``): the point, why, what
    was learnt, the best and recommended points, the objective, the posterior
    (first wave) or the map over configurations and the Pareto front (over
    sites)."""
    best, best_score = search.observations.best()
    decision = search.last_decision
    record: dict[str, Any] = {
        "measure": objective.measure,
        "kind": objective.kind,
        "target": objective.target,
        "per_charge": objective.per_charge,
    }
    constraint = getattr(objective_spec, "constraint", None)
    if isinstance(search, MixedBayesianSearch) and constraint is not None:
        record["constraint"] = {"measure": constraint.measure, "max": constraint.max}
    state: dict[str, Any] = {
        "trial": index,
        "strategy": search.name,
        "point": list(point),
        "reason": reason,
        "acquisition": _finite(decision.acquisition) if decision else None,
        "mean": _finite(decision.mean) if decision else None,
        "std": _finite(decision.std) if decision else None,
        "observed": observed,
        "observed_late": list(observed_late or []),
        "n_observations": len(search.observations.points),
        "best_point": list(best) if best else None,
        "best_score": _finite(best_score),
        "recommended_point": _point(search.recommendation()),
        "objective": record,
    }
    posterior = _posterior(search)
    if posterior is not None:
        state["posterior"] = posterior
    if isinstance(search, MixedBayesianSearch):
        state["by_configuration"] = search.by_configuration()
        if search.minimise_charge:
            state["pareto_front"] = search.pareto_front()
    return state


def _posterior(search: Any) -> dict[str, Any] | None:
    """Posterior mean and std on a coarse grid (Bayesian search only)."""
    if not isinstance(search, BayesianSearch):
        return None
    try:
        amps, durs, mean, std = search.posterior()
    except LookupError:
        return None
    step = max(1, (len(amps) - 1) // (POSTERIOR_RECORDED - 1))
    return {
        "amplitude_vpp": amps[::step].tolist(),
        "duration_s": durs[::step].tolist(),
        "mean": np.round(mean[::step, ::step], 6).tolist(),
        "std": np.round(std[::step, ::step], 6).tolist(),
    }


def _check_motion_possible(session: Any, measure: str, wait_s: float) -> None:
    """Refuse a twitch objective the session cannot measure in time."""
    motion = getattr(session, "motion", None)
    if motion is None:
        raise ValueError(
            f"objective measure {measure!r} needs live segment tracking, which this "
            "session does not have: it needs a camera (--camera) and, on a real "
            "rig, the raceway's position in the image"
        )
    needed_s = motion.window_s + 0.2  # the window, then frame readout and tracking
    if wait_s < needed_s:
        raise ValueError(
            f"objective measure {measure!r} is read {motion.window_s:g} s after each "
            f"stimulus: closed_loop.inter_stimulus_interval_s must be at least "
            f"{needed_s / 0.8:.2g} s for the next stimulus to wait for it"
        )


def _point(point) -> list | None:
    if point is None:
        return None
    # text and whole numbers (configuration, pulses, polarity) stay as they are
    return [v if isinstance(v, str | int) else float(v) for v in point]


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)
