"""Score an analysis result against a synthetic case's truth.

Only these keys of the analysis JSON are used:

* ``result["fibres"][name]`` for name in ("mgf", "lgf"):
  ``{"median": float | None, "n": int, "determined": bool, ...}``.
  A fibre counts as *reported* when ``determined`` is true and ``median`` is a
  number; anything else (missing entry, ``determined`` false, ``median`` None) is
  "not determined".
* ``result["stimuli"]``: one entry per stimulus marker, in marker order, each with
  ``"volleys": [{"fibre": "mgf" | "lgf", "conduction_velocity_m_per_s": float}]``.
  Entries are matched to the truth's stimuli by index.

Verdict per fibre (``mgf`` = the faster fibre, ``lgf`` = the slower):

* ``"ok"``: reported, and within +/- ``tolerance`` (default 3 %) of the truth
  velocity (whether or not the truth calls it determinable);
* ``"not_determined_ok"``: not reported, and not determinable in the truth
  (including a fibre absent from the recording);
* ``"missed"``: not reported, but determinable in the truth;
* ``"wrong"``: reported but outside the tolerance, or reported for a fibre that is
  absent from the recording.  This is the worst outcome.

``invented_fraction`` per fibre: the fraction of the truth's sweeps in which the
result has a volley of that fibre although the fibre did not fire in that sweep
(every volley of a fibre absent from the recording counts).  It must be
<= ``max_invented`` (default 5 %).

``passed`` is true when every verdict is "ok" or "not_determined_ok", every
invented fraction is within the limit, and the result has one stimulus entry per
stimulus marker.
"""

from __future__ import annotations

import math

from .generator import FIBRES, Case

TOLERANCE = 0.03
MAX_INVENTED = 0.05
GOOD_VERDICTS = ("ok", "not_determined_ok")


def _reported_velocity(entry) -> float | None:
    if not isinstance(entry, dict) or not entry.get("determined", False):
        return None
    median = entry.get("median")
    if median is None:
        return None
    median = float(median)
    return median if math.isfinite(median) else None


def score(
    result: dict,
    case: Case,
    tolerance: float = TOLERANCE,
    max_invented: float = MAX_INVENTED,
) -> dict:
    """Compare an analysis result (its JSON as a dict) with ``case.truth``.

    Returns ``{"fibres": {name: {...}}, "n_stimuli_truth", "n_stimuli_result",
    "stimuli_count_ok", "passed"}``; each fibre entry has ``truth_v``,
    ``reported_v``, ``rel_error`` (None unless both are known), ``determinable``,
    ``verdict``, ``invented_fraction``, ``invented_ok``, ``n_sweeps_fired`` (truth),
    ``n_sweeps_reported`` (sweeps with a volley of that fibre) and
    ``sweep_rel_error_median`` (median |error| of the per-sweep velocities in the
    sweeps where the fibre did fire; informative only).
    """
    truth = case.truth
    stimuli_truth = truth.stimuli
    n_truth = len(stimuli_truth)
    stimuli_result = list(result.get("stimuli") or [])
    fibres_result = result.get("fibres") or {}

    out_fibres: dict[str, dict] = {}
    for f in FIBRES:
        truth_v = truth.velocity_m_per_s.get(f)
        determinable = bool(truth.determinable.get(f, False))
        reported_v = _reported_velocity(fibres_result.get(f))
        rel_error = None
        if reported_v is None:
            verdict = "missed" if determinable else "not_determined_ok"
        elif truth_v is None:
            verdict = "wrong"
        else:
            rel_error = abs(reported_v - truth_v) / truth_v
            verdict = "ok" if rel_error <= tolerance else "wrong"

        invented = 0
        n_reported = 0
        sweep_errors = []
        for i, st in enumerate(stimuli_truth):
            if i >= len(stimuli_result):
                break
            volleys = [
                v
                for v in (stimuli_result[i] or {}).get("volleys") or []
                if isinstance(v, dict) and v.get("fibre") == f
            ]
            if not volleys:
                continue
            n_reported += 1
            if not st.fired.get(f, False):
                invented += 1
                continue
            v_true = st.velocity_m_per_s[f]
            v_rep = volleys[0].get("conduction_velocity_m_per_s")
            if v_rep is not None and v_true:
                sweep_errors.append(abs(float(v_rep) - v_true) / v_true)
        invented_fraction = invented / n_truth if n_truth else 0.0
        sweep_errors.sort()
        out_fibres[f] = {
            "truth_v": truth_v,
            "reported_v": reported_v,
            "rel_error": rel_error,
            "determinable": determinable,
            "verdict": verdict,
            "invented_fraction": invented_fraction,
            "invented_ok": invented_fraction <= max_invented,
            "n_sweeps_fired": sum(1 for st in stimuli_truth if st.fired.get(f, False)),
            "n_sweeps_reported": n_reported,
            "sweep_rel_error_median": (
                sweep_errors[len(sweep_errors) // 2] if sweep_errors else None
            ),
        }

    stimuli_count_ok = len(stimuli_result) == n_truth
    passed = stimuli_count_ok and all(
        d["verdict"] in GOOD_VERDICTS and d["invented_ok"] for d in out_fibres.values()
    )
    return {
        "fibres": out_fibres,
        "n_stimuli_truth": n_truth,
        "n_stimuli_result": len(stimuli_result),
        "stimuli_count_ok": stimuli_count_ok,
        "passed": passed,
    }


def perfect_result(case: Case) -> dict:
    """The result a perfect analysis would write for this case (for self-tests):
    every determinable fibre reported at its true velocity, one volley per sweep in
    which it fired.
    """
    stimuli = []
    for st in case.truth.stimuli:
        volleys = [
            {"fibre": f, "conduction_velocity_m_per_s": st.velocity_m_per_s[f]}
            for f in FIBRES
            if st.fired.get(f) and case.truth.determinable.get(f)
        ]
        stimuli.append({"volleys": volleys})
    fibres = {}
    for f in FIBRES:
        det = case.truth.determinable.get(f, False)
        fibres[f] = {
            "median": case.truth.velocity_m_per_s[f] if det else None,
            "n": sum(1 for s in stimuli for v in s["volleys"] if v["fibre"] == f),
            "determined": det,
        }
    return {"fibres": fibres, "stimuli": stimuli}
