"""The HTML analysis report (``neurorig analyze --report DIR``; docs/analysis.md,
"Report"): a page that tells a recording's story from the results dict that
``rig.offline.pipeline.analyse`` builds, with static matplotlib figures.

``DIR`` holds ``index.html``, its figures (PNG), ``results.json`` (the JSON that
``--json`` writes) and ``stimuli.csv`` (the per-stimulus table ``--csv``
writes). The page, in order: a header (the recording's date, subject, protocol,
calibrations and their state, the software that recorded and analysed it,
where it is), the fit tables with their 95 % intervals (conduction velocity,
recruitment per duration, strength–duration, habituation, correlation of the
AP with motion), then the figures: each fibre's sweeps as the detector saw them
(filtered, artifact removed) with its arrivals marked, latency against
position, velocity over the session, recruitment and strength–duration with
their intervals drawn as bands, the parameter maps drawn as the design was
(a grid, a curve or scattered points), motion per region, and the closed
loop's search when the recording came from one.

Every axis is labelled with its unit; a value that does not exist is written
"n/a" or the reason, never "nan". Figures are drawn on ``matplotlib.figure
.Figure`` directly (no pyplot, no global backend).
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from analysis.artifact import PulseMemory
from analysis.bidirectional import configuration_key
from analysis.fits import RecruitmentFit, sd_threshold_vpp
from analysis.propagation import PRE_MIN_S, PRE_S, analyse_stimulus, search_window_s
from rig.offline.sites import results_head_end

FIBRES = (("mgf", "MGF"), ("lgf", "LGF"))
ARRIVAL_MARKERS = {"mgf": "o", "lgf": "^"}
SWEEPS_PER_CONDITION = 8  # overlays: at most this many sweeps of each condition
SWEEPS_PER_FIBRE = 60  # and this many in all (a closed loop: every sweep its own)
LEGEND_CONDITIONS = 8  # more conditions than this: coloured by amplitude instead
CALIBRATION_KINDS = ("gain", "camera", "stimulator", "timing", "led_region")
RESULTS_NAME = "results.json"
TABLE_NAME = "stimuli.csv"


# ----------------------------------------------------------------- helpers


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and np.isfinite(value)


def _num(value: Any, scale: float = 1.0, digits: int = 3) -> str:
    """A number (×scale) to ``digits`` significant figures, or "n/a"."""
    if not _finite(value):
        return "n/a"
    return f"{value * scale:.{digits}g}"


def _ci(interval: Any, scale: float = 1.0, digits: int = 3) -> str:
    """The interval "(95 % CI a–b)"; an open side (null) is "∞" above and "0" below."""
    if not interval:
        return ""
    lo, hi = interval
    low = _num(lo, scale, digits) if lo is not None else "0"
    high = _num(hi, scale, digits) if hi is not None else "∞"
    return f"(95 % CI {low}–{high})"


def _table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    """An HTML table; cells are HTML already (escape before)."""
    top = "".join(f"<th>{h}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows
    )
    klass = f" class='{cls}'" if cls else ""
    return f"<table{klass}><tr>{top}</tr>{body}</table>"


class _Figures:
    """Draws figures into the report folder and remembers each one's axes
    labels (the page lists them in ``data-axes``, so a test can check units)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def draw(
        self, name: str, draw: Callable[[Any], None], size=(8.0, 4.5), *, alt: str
    ) -> str:
        """Draw with ``draw(fig)`` into ``name``; return the ``<img>`` tag."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=size, dpi=100, layout="constrained")
        draw(fig)
        fig.savefig(self.folder / name)
        labels, drawn = [], []
        for ax in fig.axes:
            if not ax.get_visible() or not ax.axison:
                continue
            labels.append(f"{ax.get_xlabel()} | {ax.get_ylabel()}")
            drawn.append(str(_n_drawn(ax)))
        axes = _esc("; ".join(labels))
        return (
            f"<img src='{name}' alt='{_esc(alt)}' data-axes='{axes}' "
            f"data-drawn='{' '.join(drawn)}'>"
        )


def _n_drawn(ax: Any) -> int:
    """How many things with data an axes shows: lines with a finite point,
    scatters and meshes with points, images, bars (``data-drawn``, so that a
    test in the browser can tell an empty panel from a drawn one)."""
    n = sum(
        1
        for line in ax.lines
        if np.isfinite(np.asarray(line.get_ydata(), dtype=float)).any()
    )
    for collection in ax.collections:
        array = collection.get_array()
        if array is not None and np.ma.count(np.ma.masked_invalid(array)) > 0:
            n += 1
        elif len(collection.get_offsets()) > 0 or len(collection.get_paths()) > 0:
            n += 1
    return n + len(ax.images) + len(ax.patches)


def _colours(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(k % 10) for k in range(n)]


def _first_pulses(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The stimuli the fits are over: analysed first pulses at the head end
    (over sites, one along the body is not on the head end's curve)."""
    return [
        s
        for s, ok in zip(results["stimuli"], results_head_end(results), strict=True)
        if ok and s["analysed"] and s.get("pulse_index", 0) == 0
    ]


def _duration_key(value: Any) -> float | None:
    return None if value is None else round(float(value), 6)


# ------------------------------------------------------------------ header


def _when(text: Any) -> str | None:
    """An ISO 8601 time as 'YYYY-MM-DD HH:MM UTC' (None if not one)."""
    if not isinstance(text, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _subject(meta: dict[str, Any]) -> str:
    subject = meta.get("subject") or {}
    parts = []
    names = (
        ("subject_id", "id", 1.0, ""),
        ("species", "species", 1.0, ""),
        ("sex", "sex", 1.0, ""),
        ("age", "age", 1.0, ""),
        ("date_of_birth", "born", 1.0, ""),
        ("length_m", "length", 1000.0, " mm"),
        ("weight_kg", "weight", 1000.0, " g"),
        ("description", "", 1.0, ""),
    )
    for key, label, scale, unit in names:
        value = subject.get(key) if isinstance(subject, dict) else None
        if value is None or value == "":
            continue
        shown = f"{value * scale:g}{unit}" if _finite(value) else str(value)
        parts.append(f"{label} {shown}".strip())
    if not parts:
        return "not given (the recording's metadata names no subject)"
    return _esc(", ".join(parts))


def _calibrations(meta: dict[str, Any]) -> str:
    """Each kind: applied (fitted when, how old at the recording) or not."""
    found = meta.get("calibrations")
    if not isinstance(found, dict):
        return "none recorded (nominal values used throughout)"
    recorded = _parse(meta.get("created_utc"))
    rows = []
    for kind in CALIBRATION_KINDS:
        cal = found.get(kind)
        if not isinstance(cal, dict):
            rows.append(f"{kind}: not applied (nominal)")
            continue
        fitted = _parse(cal.get("fitted_at"))
        state = "applied"
        if fitted is not None:
            state += f", fitted {fitted.strftime('%Y-%m-%d')}"
            if recorded is not None:
                age = (recorded - fitted).total_seconds() / 86400
                state += f" ({age:.0f} days before the recording)"
        rows.append(f"{kind}: {state}")
    warnings = [str(w) for w in found.get("warnings") or []]
    items = "".join(f"<li>{_esc(r)}</li>" for r in rows)
    items += "".join(f"<li class='warning'>warning: {_esc(w)}</li>" for w in warnings)
    return f"<ul>{items}</ul>"


def _parse(text: Any) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _software(value: Any) -> str:
    if not isinstance(value, dict):
        return "not stated"
    text = f"{value.get('name', 'neurorig')} {value.get('version', '?')}"
    if value.get("git_revision"):
        text += f" (git {str(value['git_revision'])[:12]})"
    return _esc(text)


def _protocol(meta: dict[str, Any], optimiser: list[dict[str, Any]]) -> str:
    files = meta.get("protocol_files") or (
        [meta["protocol_file"]] if meta.get("protocol_file") else []
    )
    text = ", ".join(str(f) for f in files) if files else "not stated"
    if optimiser:
        objective = optimiser[-1].get("objective") or {}
        text += (
            f" — closed loop ({optimiser[-1].get('strategy', '?')} search, "
            f"objective: {objective.get('kind', '?')} "
            f"{objective.get('measure', '?')}"
            + (" per charge" if objective.get("per_charge") else "")
            + ")"
        )
    if meta.get("resumed_from"):
        text += f"; resumed from {meta['resumed_from']}"
    return _esc(text)


def _header(results: dict[str, Any], source: Any) -> str:
    meta = getattr(source, "metadata", None)
    optimiser = getattr(source, "optimiser", None) or []
    positions = ", ".join(f"{c['position_mm']:g}" for c in results["channels"])
    rows: list[tuple[str, str]] = [("Recording", _esc(results["source"]))]
    if isinstance(meta, dict):
        started = _when(meta.get("created_utc"))
        ended = _when(meta.get("closed_utc"))
        if started and ended:
            recorded = f"{started} to {ended}"
        elif started or ended:
            recorded = f"started {started}" if started else f"closed {ended}"
        else:
            recorded = "not stated"
        status = meta.get("status") or "not stated"
        if meta.get("stop_reason"):
            status = f"{status} ({meta['stop_reason']})"
        board = meta.get("board") or {}
        simulated = meta.get("simulated")
        rig = (
            "not stated"
            if simulated is None
            else "simulated rig"
            if simulated
            else "board"
        )
        if isinstance(board, dict) and board.get("firmware_version"):
            rig += f", firmware {board['firmware_version']}"
            if board.get("board_id"):
                rig += f", board {board['board_id']}"
        session = meta.get("session") or {}
        who = ", ".join(
            str(v)
            for v in [
                *(session.get("experimenter") or []),
                session.get("lab"),
                session.get("institution"),
            ]
            if v
        )
        rows += [
            ("Recorded", _esc(recorded)),
            ("Status", _esc(status)),
            ("Subject (worm)", _subject(meta)),
            ("Session", _esc(who or "experimenter not given")),
            ("Protocol", _protocol(meta, optimiser)),
            ("Calibrations", _calibrations(meta)),
            ("Rig", _esc(rig)),
            ("Recorded with", _software(meta.get("software"))),
        ]
    else:
        rows += [
            (
                "Recorded",
                "not stated (a WAV or another format's file carries no "
                "neurorig metadata: no date, subject, protocol or calibrations)",
            )
        ]
    rows += [
        ("Analysed with", _software(results.get("software"))),
        (
            "Signals",
            _esc(
                f"{results['n_channels']} channels at "
                f"{results['sample_rate_hz'] / 1000:g} kS/s; electrode pairs at "
                f"{positions} mm from the head"
            ),
        ),
        ("Amplitudes fitted", _esc(results.get("fit_amplitudes", "commanded"))),
        (
            "Files",
            f"<a href='{RESULTS_NAME}'>{RESULTS_NAME}</a> (results, "
            f"{_esc(results.get('format', 'neurorig-analysis'))} version "
            f"{_esc(results.get('format_version', '?'))}), "
            f"<a href='{TABLE_NAME}'>{TABLE_NAME}</a> (one row per stimulus and "
            "fibre)",
        ),
    ]
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table class='header'>{body}</table>"


# ------------------------------------------------------------------ tables


def _velocity_table(results: dict[str, Any]) -> str:
    rows = []
    for key, label in FIBRES:
        f = results["fibres"][key]
        if f["determined"]:
            value = f"{_num(f['median'], 1, 4)} m/s {_ci(f['ci95'], 1, 4)}"
            note = ""
        else:
            value = "not determined" if f["n"] else "not recruited"
            note = f["reason"] or ""
        rows.append([label, value, str(f["n"]), str(f.get("n_suspect", 0)), _esc(note)])
    return _table(
        ["fibre", "conduction velocity", "sweeps", "set aside (timing)", "note"], rows
    )


def _channel_table(results: dict[str, Any]) -> str:
    rows = [
        [
            str(c["index"]),
            f"{c['position_mm']:g}",
            _num(c["latency_s_median"], 1000, 3),
            _num(c["amplitude_uv_median"], 1, 3),
            _num(c["response_probability"], 1, 2),
        ]
        for c in results["channels"]
    ]
    return _table(
        [
            "channel",
            "position (mm)",
            "median latency (ms)",
            "median amplitude (µV)",
            "response probability",
        ],
        rows,
    )


def _threshold_cell(fit: dict[str, Any]) -> tuple[str, str]:
    """(threshold, slope) cells of a recruitment fit."""
    if fit["determined"]:
        return (
            f"{_num(fit['threshold_vpp'])} Vpp {_ci(fit['threshold_ci95_vpp'])}",
            f"{_num(fit['slope_vpp'], 1, 2)} Vpp {_ci(fit['slope_ci95_vpp'], 1, 2)}",
        )
    between = fit.get("threshold_between_vpp")
    if between:
        lo, hi = between
        if hi is None:
            return f"threshold above {_num(lo, 1, 4)} Vpp", "—"
        if lo is None or lo <= 0:  # the fits' 0: open below
            return f"threshold below {_num(hi, 1, 4)} Vpp", "—"
        return f"threshold between {_num(lo, 1, 4)} and {_num(hi, 1, 4)} Vpp", "—"
    return "not determined", "—"


def _recruitment_table(results: dict[str, Any]) -> str:
    fits = results["recruitment"]
    if not fits:
        return "<p>No stimuli with an amplitude and a duration: no recruitment fit.</p>"
    rows = []
    for fit in fits:
        threshold, slope = _threshold_cell(fit)
        rows.append(
            [
                _num(fit["duration_s"], 1000, 3),
                str(fit["n"]),
                str(fit["n_responses"]),
                threshold,
                slope,
                _esc(fit["reason"] or ""),
            ]
        )
    return _table(
        [
            "duration (ms)",
            "stimuli",
            "responses",
            "50 % threshold",
            "slope",
            "note",
        ],
        rows,
    )


def _sd_value(
    fit: dict[str, Any], name: str, suffix: str, scale: float, unit: str
) -> str:
    """Rheobase or chronaxie: value (CI), or not determined with its bound."""
    value, ci = fit[f"{name}_{suffix}"], fit[f"{name}_ci95_{suffix}"]
    if fit[f"{name}_determined"]:
        return f"{_num(value, scale)} {unit} {_ci(ci, scale)}"
    if ci:
        lo, hi = ci
        if hi is not None and (lo is None or lo == 0):
            return f"not determined (at most {_num(hi, scale)} {unit})"
        if lo is not None and lo > 0 and hi is None:
            return f"not determined (at least {_num(lo, scale)} {unit})"
        if lo is not None and hi is not None:
            return (
                f"not determined (between {_num(lo, scale)} and "
                f"{_num(hi, scale)} {unit})"
            )
    return "not determined"


def _sd_table(results: dict[str, Any]) -> str:
    fits = results.get("strength_duration") or {}
    if not fits:
        return "<p>No strength–duration fit: no stimuli with a duration.</p>"
    rows = []
    for model, fit in fits.items():
        rows.append(
            [
                _esc(model.capitalize()),
                ", ".join(f"{d * 1000:g}" for d in fit["durations_s"]) or "none",
                str(fit["n"]),
                _sd_value(fit, "rheobase", "vpp", 1.0, "Vpp"),
                _sd_value(fit, "chronaxie", "s", 1000.0, "ms"),
                _esc(fit["reason"] or ""),
            ]
        )
    return _table(
        ["law", "durations (ms)", "stimuli", "rheobase", "chronaxie", "note"], rows
    )


def _habituation_block(results: dict[str, Any]) -> str:
    hab = results.get("habituation")
    if not hab:
        return "<p>Habituation: not measured (no stimulus times or nothing fitted).</p>"
    text = f"<p>{_esc(hab['summary'])}.</p>"
    rested = hab.get("rested_thresholds") or []
    if rested:
        text += _table(
            ["duration (ms)", "rested worm's threshold"],
            [
                [
                    _num(r["duration_s"], 1000),
                    f"{_num(r['threshold_vpp'])} Vpp {_ci(r['ci95_vpp'])}",
                ]
                for r in rested
            ],
        )
    return text


def _corr_cells(c: dict[str, Any]) -> list[str]:
    if not c["determined"]:
        return [str(c["n"]), _esc(f"not determined: {c['reason']}"), ""]
    return [
        str(c["n"]),
        f"r = {_r(c['pearson_r'])} {_r_ci(c['pearson_ci95'])}",
        f"ρ = {_r(c['spearman_rho'])} {_r_ci(c['spearman_ci95'])}",
    ]


def _r(value: Any) -> str:
    return f"{value:.2f}" if _finite(value) else "n/a"


def _r_ci(interval: Any) -> str:
    return f"(95 % CI {_r(interval[0])} to {_r(interval[1])})" if interval else ""


def _correlation_table(results: dict[str, Any]) -> str:
    corr = results.get("correlation")
    if not corr:
        return "<p>Not measured: no motion was tracked.</p>"
    rows = []
    for group, label in (
        ("responders", "whole body, stimuli with an AP"),
        ("all_stimuli", "whole body, all stimuli (no AP = 0 µV)"),
    ):
        rows.append([_esc(label), *_corr_cells(corr["overall"][group]), ""])
    for region in corr["regions"]:
        lo, hi = region["region_mm"]
        lag = region["lag"]
        lag_text = (
            f"{_num(lag['median_s'], 1000)} ms {_ci(lag['ci95_s'], 1000)} "
            f"(n = {lag['n']})"
            if _finite(lag["median_s"])
            else "n/a"
        )
        where = (
            f"channel {region['channel']} at {region['position_mm']:g} mm "
            f"(region {lo:g}–{hi:g} mm)"
        )
        rows.append(
            [_esc(where + ", responders"), *_corr_cells(region["responders"]), lag_text]
        )
        rows.append(
            [_esc(where + ", all stimuli"), *_corr_cells(region["all_stimuli"]), ""]
        )
    return _table(
        [
            "AP amplitude against peak displacement",
            "n",
            "Pearson (95 % CI)",
            "Spearman (95 % CI)",
            "lag of motion after the AP",
        ],
        rows,
    )


def _trains_table(results: dict[str, Any]) -> str:
    trains = results.get("trains") or []
    if not trains:
        return ""
    rows = [
        [
            str(t["first_stimulus"]),
            _num(t["time_s"], 1, 4),
            str(t["n_pulses"]),
            _num(t["rate_hz"]),
            f"{sum(t['responded'])} of {len(t['responded'])}",
            _num(t.get("peak_displacement_mm")),
        ]
        for t in trains
    ]
    return "<h3>Trains (summed twitch measured as one)</h3>" + _table(
        [
            "first stimulus",
            "time (s)",
            "pulses",
            "rate (Hz)",
            "pulses with an AP",
            "peak displacement (mm)",
        ],
        rows,
    )


# ---------------------------------------------------------------- overlays


def _conditions(stimuli: list[dict[str, Any]]) -> dict[tuple, str]:
    """Each condition's key (amplitude, duration, configuration) -> its label."""
    keys = sorted(
        {_condition(s) for s in stimuli},
        key=lambda k: tuple(-1 if v is None else v for v in k),
    )
    pairs = {k[2] for k in keys}
    out = {}
    for amp, dur, pair in keys:
        label = "parameters not given" if amp is None else f"{amp:g} Vpp"
        if dur is not None:
            label += f", {dur * 1000:g} ms"
        if len(pairs) > 1:
            label += f", {pair}"
        out[(amp, dur, pair)] = label
    return out


def _configuration_of(row: dict[str, Any]) -> str:
    """A stimulus's or map cell's configuration ("C0-A1" for first-wave rows)."""
    if row.get("configuration"):
        return str(row["configuration"])
    pair = int(row.get("pair") or 0)
    return f"C{2 * pair}-A{2 * pair + 1}"


def _condition(stim: dict[str, Any]) -> tuple:
    amp = stim.get("amplitude_vpp")
    return (
        None if amp is None else round(float(amp), 3),
        _duration_key(stim.get("duration_s")),
        _configuration_of(stim),
    )


def _pick(rows: list[int], k: int) -> list[int]:
    """At most ``k`` of ``rows``, spread over the session."""
    if len(rows) <= k:
        return rows
    return [rows[int(i)] for i in np.linspace(0, len(rows) - 1, k).round()]


class _Sweeps:
    """Cleaned epochs (band-passed, hum and artifact out) of chosen stimuli,
    analysed again as the pipeline did with ``keep_cleaned``."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.memory = PulseMemory()
        self.cache: dict[int, tuple[np.ndarray, np.ndarray] | None] = {}
        self.post = round(search_window_s(source.positions_m) * source.fs_hz)

    def get(self, stim: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
        """(time from the pulse's true start, ms; cleaned µV (n, n_channels))."""
        sample = int(stim["sample"])
        if sample in self.cache:
            return self.cache[sample]
        src, fs = self.source, self.source.fs_hz
        found = None
        for pre_s in (PRE_S, PRE_MIN_S):
            pre = round(pre_s * fs)
            epoch = src.read_uv(sample - pre, pre + self.post)
            if epoch is not None:
                found = (pre, epoch)
                break
        out = None
        if found is not None:
            pre, epoch = found
            duration = stim.get("duration_s")
            response = analyse_stimulus(
                epoch,
                fs_hz=fs,
                onset=pre,
                duration_s=duration,
                positions_m=src.positions_m,
                clip_uv=src.clip_uv,
                mains_hz=src.mains_hz,
                onset_search_s=src.onset_search_s,
                pulse_memory=self.memory,
                keep_cleaned=True,
            )
            shift = response.quality.onset_shift_s if response.quality else 0.0
            shift = shift if np.isfinite(shift) else 0.0
            t_ms = ((np.arange(epoch.shape[0]) - pre) / fs - shift) * 1000
            out = (t_ms, np.asarray(response.cleaned_uv, dtype=float))
        self.cache[sample] = out
        return out


def _overlay_figure(
    fig: Any,
    fibre: str,
    label: str,
    chosen: list[dict[str, Any]],
    sweeps: _Sweeps,
    results: dict[str, Any],
) -> None:
    n_ch = results["n_channels"]
    positions = [c["position_mm"] for c in results["channels"]]
    axes = fig.subplots(n_ch, 1, sharex=True, squeeze=False)[:, 0]
    conditions = _conditions(chosen)
    legend = len(conditions) <= LEGEND_CONDITIONS
    amps = [k[0] for k in conditions if k[0] is not None]
    norm = None
    if not legend:
        from matplotlib import colormaps
        from matplotlib.colors import Normalize

        cmap = colormaps["viridis"]
        norm = Normalize(min(amps), max(amps)) if amps else Normalize(0, 1)
        colour = {k: cmap(norm(k[0] if k[0] is not None else 0)) for k in conditions}
    else:
        colour = dict(zip(conditions, _colours(len(conditions)), strict=True))
    shown: set[tuple] = set()
    last_ms = 5.0
    suspect = False
    for stim in chosen:
        got = sweeps.get(stim)
        if got is None:
            continue
        t_ms, cleaned = got
        key = _condition(stim)
        for ch, ax in enumerate(axes):
            ax.plot(
                t_ms,
                cleaned[:, ch],
                color=colour[key],
                lw=0.7,
                alpha=0.6,
                label=conditions[key]
                if (legend and ch == 0 and key not in shown)
                else None,
            )
        shown.add(key)
        # Every fibre's arrivals on this sweep, each fibre its own marker.
        marked = [(v, True) for v in stim["volleys"]] + [
            (v, False) for v in stim.get("suspect_volleys") or []
        ]
        for volley, clean in marked:
            marker = ARRIVAL_MARKERS.get(volley["fibre"], "s")
            for ch, ax in enumerate(axes):
                latency = volley["latency_s"][ch]
                if latency is None:
                    continue
                last_ms = max(last_ms, latency * 1000)
                row = int(np.argmin(np.abs(t_ms - latency * 1000)))
                value = cleaned[row, ch]
                ax.plot(
                    latency * 1000,
                    value if np.isfinite(value) else 0.0,
                    marker,
                    ms=4.5,
                    mfc=colour[key] if clean else "none",
                    mec="k" if clean else colour[key],
                    mew=0.6 if clean else 1.0,
                )
                suspect |= not clean
    handles, names = axes[0].get_legend_handles_labels()
    from matplotlib.lines import Line2D

    for name, marker in ARRIVAL_MARKERS.items():
        handles.append(Line2D([], [], marker=marker, ls="", mfc="0.5", mec="k"))
        names.append(f"{name.upper()} arrival")
    if suspect:
        handles.append(Line2D([], [], marker="o", ls="", mfc="none", mec="0.3"))
        names.append("hollow: timing not clean\n(set aside)")
    for ch, ax in enumerate(axes):
        ax.set_ylabel(f"ch {ch}, {positions[ch]:g} mm\n(µV)", fontsize=8)
        ax.axvline(0, color="0.6", lw=0.5)
    axes[-1].set_xlabel("time from the pulse's start (ms)")
    axes[0].set_xlim(-1.0, min(sweeps.post / sweeps.source.fs_hz * 1000, last_ms + 6))
    fig.legend(
        handles,
        names,
        loc="outside right upper",
        fontsize=7,
        title="condition" if legend else None,
    )
    if not legend:
        from matplotlib.cm import ScalarMappable

        bar = fig.colorbar(ScalarMappable(norm=norm, cmap="viridis"), ax=list(axes))
        bar.set_label("amplitude (Vpp)")
    fig.suptitle(
        f"{label}: sweeps that recruited it, filtered, artifact removed; "
        "arrivals marked",
        fontsize=9,
    )


def _overlays(results: dict[str, Any], source: Any, figures: _Figures) -> str:
    sweeps = _Sweeps(source)
    parts = []
    analysed = [s for s in results["stimuli"] if s["analysed"]]
    for fibre, label in FIBRES:
        carrying = [
            s for s in analysed if any(v["fibre"] == fibre for v in s["volleys"])
        ]
        if not carrying:
            parts.append(
                f"<p>{label}: no sweep recruited it with clean timing; nothing to "
                "overlay.</p>"
            )
            continue
        by_condition: dict[tuple, list[int]] = {}
        for k, s in enumerate(carrying):
            by_condition.setdefault(_condition(s), []).append(k)
        chosen_rows = sorted(
            k
            for rows in by_condition.values()
            for k in _pick(rows, SWEEPS_PER_CONDITION)
        )
        chosen = [carrying[k] for k in _pick(chosen_rows, SWEEPS_PER_FIBRE)]

        def draw(fig: Any, f: str = fibre, lab: str = label, c: list = chosen) -> None:
            _overlay_figure(fig, f, lab, c, sweeps, results)

        tag = figures.draw(
            f"overlays-{fibre}.png",
            draw,
            size=(9.0, 1.6 * results["n_channels"] + 1.0),
            alt=f"{label} sweeps",
        )
        parts.append(
            f"<h3>{label}</h3><p>{len(chosen)} of the {len(carrying)} sweeps that "
            f"recruited the {label} (at most {SWEEPS_PER_CONDITION} of each "
            f"condition and {SWEEPS_PER_FIBRE} in all, spread over the session), "
            "as the detector saw them: "
            "band-passed, hum and the stimulus artifact removed (blanked samples "
            "are gaps). On the waveforms: each fibre's arrival at each pair "
            "(MGF ●, LGF ▲; hollow: timing not clean, set aside).</p>"
            f"{tag}"
        )
    return "".join(parts)


# ----------------------------------------------------- latency and velocity


def _latency_figure(fig: Any, results: dict[str, Any]) -> None:
    ax = fig.subplots()
    positions = np.array([c["position_mm"] for c in results["channels"]])
    colours = _colours(len(FIBRES))
    for (fibre, label), colour in zip(FIBRES, colours, strict=True):
        lat = np.array(
            [
                [np.nan if x is None else x for x in v["latency_s"]]
                for s in results["stimuli"]
                if s["analysed"]
                for v in s["volleys"]
                if v["fibre"] == fibre
            ],
            dtype=float,
        ).reshape(-1, positions.size)
        if not lat.size:
            continue
        for row in lat:
            ax.plot(positions, row * 1000, ".", color=colour, ms=3, alpha=0.3)
        counts = np.isfinite(lat).sum(axis=0)
        med = np.full(positions.size, np.nan)
        for ch in np.flatnonzero(counts):
            med[ch] = np.median(lat[np.isfinite(lat[:, ch]), ch])
        ok = np.isfinite(med)
        ax.plot(
            positions[ok],
            med[ok] * 1000,
            "o",
            color=colour,
            mec="k",
            label=f"{label}: median per pair",
        )
        velocity = results["fibres"][fibre]["median"]
        if _finite(velocity) and ok.any():
            # the line of the fibre's median velocity through the medians
            offset_s = float(np.median(med[ok] - positions[ok] / 1000 / velocity))
            xs = np.array([positions.min(), positions.max()])
            ax.plot(
                xs,
                (offset_s + xs / 1000 / velocity) * 1000,
                "-",
                color=colour,
                label=f"{label}: {velocity:.3g} m/s",
            )
    ax.set_xlabel("electrode pair position along the body (mm)")
    ax.set_ylabel("latency from the pulse's start (ms)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def _velocity_figure(fig: Any, results: dict[str, Any]) -> None:
    ax = fig.subplots()
    for (fibre, label), colour in zip(FIBRES, _colours(2), strict=True):
        pts = [
            (s["time_s"], v["conduction_velocity_m_per_s"])
            for s in results["stimuli"]
            if s["analysed"]
            for v in s["volleys"]
            if v["fibre"] == fibre
        ]
        if pts:
            t, v = zip(*pts, strict=True)
            ax.plot(t, v, "o", ms=3, color=colour, label=label)
    ax.set_xlabel("time in the recording (s)")
    ax.set_ylabel("conduction velocity (m/s)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


# ------------------------------------------- recruitment and strength–duration


def _recruitment_band(fit: RecruitmentFit, xs: np.ndarray) -> np.ndarray | None:
    """(2, n): the lowest and highest curve over the corners of the
    threshold's and slope's 95 % intervals (None: an open side)."""
    if fit.threshold_ci95_vpp is None or fit.slope_ci95_vpp is None:
        return None
    corners = [
        (t, s)
        for t in fit.threshold_ci95_vpp
        for s in fit.slope_ci95_vpp
        if np.isfinite(t) and np.isfinite(s) and s > 0
    ]
    if len(corners) < 4:
        return None
    curves = [
        RecruitmentFit.probability(
            RecruitmentFit(
                fit.duration_s,
                fit.n,
                fit.n_responses,
                fit.link,
                True,
                None,
                t,
                None,
                s,
                None,
            ),
            xs,
        )
        for t, s in corners
    ]
    stack = np.vstack([fit.probability(xs), *curves])
    return np.vstack([stack.min(axis=0), stack.max(axis=0)])


def _recruitment_figure(fig: Any, results: dict[str, Any]) -> None:
    ax = fig.subplots()
    rows = _first_pulses(results)
    fits = results["recruitment"]
    markers = "osD^vP"
    every = [s["amplitude_vpp"] for s in rows if s["amplitude_vpp"] is not None]
    span = (max(every) - min(every)) if every else 1.0
    for k, (fit_dict, colour) in enumerate(zip(fits, _colours(len(fits)), strict=True)):
        d = fit_dict["duration_s"]
        here = [
            s
            for s in rows
            if _duration_key(s["duration_s"]) == d and s["amplitude_vpp"] is not None
        ]
        amps = np.array([s["amplitude_vpp"] for s in here], dtype=float)
        fired = np.array([bool(s.get("ap_evoked", s["responded"])) for s in here])
        levels = np.unique(amps)
        name = f"{d * 1000:g} ms" if d is not None else "duration not given"
        fractions = [fired[amps == a].mean() for a in levels]
        dodge = (k - (len(fits) - 1) / 2) * 0.006 * span
        ax.plot(
            levels + dodge,
            fractions,
            markers[k % len(markers)],
            color=colour,
            ms=5,
            mfc="none" if k % 2 else colour,
        )
        for a, f in zip(levels, fractions, strict=True):
            n = int((amps == a).sum())
            ax.annotate(
                f"{n}",
                (a + dodge, f),
                xytext=(2, 3),
                textcoords="offset points",
                fontsize=6,
                color=colour,
            )
        curve = RecruitmentFit.from_dict(fit_dict)
        threshold, _ = _threshold_cell(fit_dict)
        if curve.determined and levels.size:
            lo = min(levels.min(), curve.threshold_vpp)
            hi = max(levels.max(), curve.threshold_vpp)
            xs = np.linspace(lo, hi, 200)
            ax.plot(
                xs, curve.probability(xs), color=colour, label=f"{name}: {threshold}"
            )
            band = _recruitment_band(curve, xs)
            if band is not None:
                ax.fill_between(xs, band[0], band[1], color=colour, alpha=0.15, lw=0)
        elif fit_dict.get("threshold_between_vpp") and levels.size:
            lo, hi = fit_dict["threshold_between_vpp"]
            # an open side (null, or the fits' 0 below) ends at the levels tried
            lo = levels.min() if lo is None or lo <= 0 else lo
            hi = levels.max() if hi is None else hi
            ax.axvspan(lo, hi, color=colour, alpha=0.15, label=f"{name}: {threshold}")
        elif levels.size:
            ax.plot([], [], "o", color=colour, label=f"{name}: not determined")
    ax.set_ylim(-0.05, 1.1)
    ax.set_xlabel("stimulus amplitude (Vpp)")
    ax.set_ylabel("fraction of first pulses with an AP (0–1)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, title="duration: 50 % threshold", title_fontsize=7)


def _sd_band(fit: dict[str, Any], xs: np.ndarray) -> np.ndarray | None:
    r_ci, c_ci = fit.get("rheobase_ci95_vpp"), fit.get("chronaxie_ci95_s")
    if not r_ci or not c_ci:
        return None
    corners = [
        (r, c)
        for r in r_ci
        for c in c_ci
        if _finite(r) and _finite(c) and r > 0 and c > 0
    ]
    if len(corners) < 4:
        return None
    curves = [sd_threshold_vpp(fit["model"], r, c, xs) for r, c in corners]
    stack = np.vstack(curves)
    return np.vstack([stack.min(axis=0), stack.max(axis=0)])


def _sd_figure(fig: Any, results: dict[str, Any]) -> None:
    ax = fig.subplots()
    fits = results["recruitment"]
    durations = [f["duration_s"] for f in fits if f["duration_s"] is not None]
    for f in fits:
        d = f["duration_s"]
        if d is None:
            continue
        if f["determined"]:
            lo, hi = f["threshold_ci95_vpp"] or (f["threshold_vpp"],) * 2
            lo = f["threshold_vpp"] if lo is None else lo
            hi = f["threshold_vpp"] if hi is None else hi
            ax.errorbar(
                d * 1000,
                f["threshold_vpp"],
                yerr=[[f["threshold_vpp"] - lo], [hi - f["threshold_vpp"]]],
                fmt="ko",
                ms=4,
                capsize=3,
                label="threshold (95 % CI)" if d == durations[0] else None,
            )
        elif f.get("threshold_between_vpp"):
            lo, hi = f["threshold_between_vpp"]
            open_below = lo is None or lo <= 0
            open_above = hi is None
            if open_below and open_above:
                continue
            # An open side: a short bar with an arrowhead pointing on.
            bottom = hi * 0.9 if open_below else lo
            top = lo * 1.1 if open_above else hi
            ax.plot(
                [d * 1000] * 2,
                [bottom, top],
                color="0.4",
                lw=4,
                alpha=0.5,
                solid_capstyle="butt",
            )
            if open_below:
                ax.plot(d * 1000, bottom, "v", color="0.4", alpha=0.7)
            if open_above:
                ax.plot(d * 1000, top, "^", color="0.4", alpha=0.7)
    if any(
        not f["determined"] and f.get("threshold_between_vpp") for f in fits
    ):  # one legend entry for the intervals
        ax.plot(
            [],
            [],
            color="0.4",
            lw=4,
            alpha=0.5,
            label="threshold between (responses separate)",
        )
    hab = results.get("habituation") or {}
    rested = [
        r for r in hab.get("rested_thresholds") or [] if _finite(r["threshold_vpp"])
    ]
    if rested:
        x = np.array([r["duration_s"] * 1000 for r in rested])
        y = np.array([r["threshold_vpp"] for r in rested])
        ci = [r["ci95_vpp"] or [None, None] for r in rested]
        low = np.array(
            [v if lo is None else lo for v, (lo, _) in zip(y, ci, strict=True)]
        )
        high = np.array(
            [v if hi is None else hi for v, (_, hi) in zip(y, ci, strict=True)]
        )
        ax.errorbar(
            x * 1.02,  # beside the threshold's interval, not on it
            y,
            yerr=[y - low, high - y],
            fmt="s",
            mfc="none",
            mec="C2",
            ecolor="C2",
            capsize=3,
            label="rested worm's threshold (95 % CI)",
        )
    notes = []
    if durations:
        xs = np.linspace(min(durations) * 0.8, max(durations) * 1.2, 200)
        for (model, fit), colour in zip(
            (results.get("strength_duration") or {}).items(), ("C3", "C0"), strict=False
        ):
            if fit["determined"]:
                r, c = fit["rheobase_vpp"], fit["chronaxie_s"]
                ax.plot(
                    xs * 1000,
                    sd_threshold_vpp(model, r, c, xs),
                    color=colour,
                    label=f"{model.capitalize()}: rheobase {r:.3g} Vpp, chronaxie "
                    f"{c * 1000:.3g} ms",
                )
                band = _sd_band(fit, xs)
                if band is not None:
                    ax.fill_between(
                        xs * 1000, band[0], band[1], color=colour, alpha=0.12, lw=0
                    )
            else:
                notes.append(f"{model.capitalize()}: {fit['reason']}")
                interval = fit.get("rheobase_ci95_vpp") or [None, None]
                if fit["rheobase_determined"] and all(map(_finite, interval)):
                    ax.axhspan(
                        interval[0],
                        interval[1],
                        color=colour,
                        alpha=0.08,
                        label=f"{model.capitalize()} rheobase "
                        f"{fit['rheobase_vpp']:.3g} Vpp (95 % CI)",
                    )
    if notes:
        ax.set_title(
            "\n".join(_wrap(n, 110) for n in notes),
            fontsize=7,
            loc="left",
            color="0.25",
        )
    ax.set_xlabel("pulse duration (ms)")
    ax.set_ylabel("50 % threshold (Vpp)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


# ---------------------------------------------------------- parameter maps

MAP_MEASURES = (
    ("response_probability", "AP evoked, probability (0–1)"),
    ("conduction_velocity_m_per_s", "MGF conduction velocity (m/s)"),
    ("peak_displacement_mm", "peak displacement (mm)"),
)


def map_design(cells: list[dict[str, Any]], closed_loop: bool) -> str:
    """How a design's parameter map is drawn: ``"amplitude"`` or
    ``"duration"`` (a curve over the one parameter that varies), ``"grid"``
    (every cell of amplitude × duration, the untested ones empty) or
    ``"scattered"`` (points: a closed loop, or a grid less than half tested).

    >>> cell = lambda a, d: {"amplitude_vpp": a, "duration_s": d}
    >>> map_design([cell(2.0, 1e-3), cell(3.0, 1e-3)], False)
    'amplitude'
    >>> map_design([cell(a, d) for a in (2, 3) for d in (1e-3, 2e-3)], False)
    'grid'
    >>> map_design([cell(a, d) for a in (2, 3) for d in (1e-3, 2e-3)], True)
    'scattered'
    """
    amps = {c["amplitude_vpp"] for c in cells}
    durs = {c["duration_s"] for c in cells}
    if closed_loop and len(cells) > 1:
        return "scattered"
    if len(durs) == 1:
        return "amplitude"
    if len(amps) == 1:
        return "duration"
    tested = {(c["amplitude_vpp"], c["duration_s"]) for c in cells}
    if len(tested) < 0.5 * len(amps) * len(durs):
        return "scattered"
    return "grid"


def _grid_panel(fig, ax, cells, key, label) -> None:
    amps = sorted({c["amplitude_vpp"] for c in cells})
    durs = sorted({c["duration_s"] for c in cells})
    values = np.full((len(durs), len(amps)), np.nan)
    tested = np.zeros(values.shape, dtype=bool)
    counts = np.zeros(values.shape, dtype=int)
    for c in cells:
        i, j = durs.index(c["duration_s"]), amps.index(c["amplitude_vpp"])
        tested[i, j] = True
        counts[i, j] += c["n"]
        if c[key] is not None:
            values[i, j] = c[key]
    x_edges = np.arange(len(amps) + 1) - 0.5
    y_edges = np.arange(len(durs) + 1) - 0.5
    masked = np.ma.masked_invalid(values)
    if masked.count():
        mesh = ax.pcolormesh(x_edges, y_edges, masked, cmap="viridis")
        bar = fig.colorbar(mesh, ax=ax)
        bar.set_label(label, fontsize=7)
    no_value = tested & ~np.isfinite(values)
    for i, j in zip(*np.nonzero(no_value), strict=True):
        ax.add_patch(_hatched(j, i))
    for i, j in zip(*np.nonzero(tested), strict=True):
        dark = False
        if masked.count() and np.isfinite(values[i, j]):
            red, green, blue, _ = mesh.cmap(mesh.norm(values[i, j]))
            dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
        ax.text(
            j,
            i,
            f"n={counts[i, j]}",
            ha="center",
            va="center",
            fontsize=6,
            color="w" if dark else "k",
        )
    ax.set_xlim(x_edges[0], x_edges[-1])
    ax.set_ylim(y_edges[0], y_edges[-1])
    ax.set_xticks(range(len(amps)), [f"{a:g}" for a in amps], fontsize=7)
    ax.set_yticks(range(len(durs)), [f"{d * 1000:g}" for d in durs], fontsize=7)
    ax.set_xlabel("amplitude (Vpp)")
    ax.set_ylabel("duration (ms)")
    ax.set_title(label, fontsize=8)


def _hatched(j: int, i: int):
    from matplotlib.patches import Rectangle

    return Rectangle(
        (j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor="0.6", lw=0
    )


def _curve_panel(ax, cells, key, label, along: str) -> None:
    pairs = sorted({_configuration_of(c) for c in cells})
    for pair, colour in zip(pairs, _colours(len(pairs)), strict=True):
        here = sorted(
            (c for c in cells if _configuration_of(c) == pair),
            key=lambda c: c[f"{along}"],
        )
        scale = 1000.0 if along == "duration_s" else 1.0
        xs = np.array([c[along] * scale for c in here])
        ys = np.array([np.nan if c[key] is None else c[key] for c in here])
        other = here[0]["duration_s" if along == "amplitude_vpp" else "amplitude_vpp"]
        fixed = f"{other * 1000:g} ms" if along == "amplitude_vpp" else f"{other:g} Vpp"
        name = f"at {fixed}" + (f", {pair}" if len(pairs) > 1 else "")
        ok = np.isfinite(ys)
        ax.plot(xs[ok], ys[ok], "o-", color=colour, ms=4, label=name)
        for x, y, c in zip(xs, ys, here, strict=True):
            ax.annotate(
                f"n={c['n']}" if np.isfinite(y) else f"n={c['n']}, no value",
                (x, y if np.isfinite(y) else 0.0),
                xytext=(2, 3),
                textcoords="offset points",
                fontsize=6,
                color=colour,
            )
    ax.set_xlabel("amplitude (Vpp)" if along == "amplitude_vpp" else "duration (ms)")
    ax.set_ylabel(label)
    ax.legend(fontsize=6)


def _posterior(optimiser: list[dict[str, Any]]) -> dict[str, Any] | None:
    for event in reversed(optimiser):
        if event.get("posterior"):
            return event["posterior"]
    return None


def _scatter_panel(fig, ax, cells, key, label, posterior) -> None:
    if posterior is not None:
        mean = np.array(
            [[np.nan if v is None else v for v in row] for row in posterior["mean"]]
        )
        amps = np.asarray(posterior["amplitude_vpp"])
        durs = np.asarray(posterior["duration_s"]) * 1000
        if np.isfinite(mean).sum() > 3 and np.nanmax(mean) > np.nanmin(mean):
            ax.contour(amps, durs, mean.T, levels=6, colors="0.6", linewidths=0.6)
    xs = np.array([c["amplitude_vpp"] for c in cells])
    ys = np.array([c["duration_s"] * 1000 for c in cells])
    vs = np.array([np.nan if c[key] is None else c[key] for c in cells])
    ok = np.isfinite(vs)
    if ok.any():
        points = ax.scatter(
            xs[ok],
            ys[ok],
            c=vs[ok],
            cmap="viridis",
            s=28,
            edgecolors="k",
            linewidths=0.4,
        )
        bar = fig.colorbar(points, ax=ax)
        bar.set_label(label, fontsize=7)
    if (~ok).any():
        ax.scatter(xs[~ok], ys[~ok], marker="x", color="0.5", s=20)
    ax.margins(0.06)
    ax.set_xlabel("amplitude (Vpp)")
    ax.set_ylabel("duration (ms)")
    ax.set_title(label, fontsize=8)


def _maps(results: dict[str, Any], source: Any, figures: _Figures) -> str:
    cells = [
        c
        for c in results["parameter_map"]
        if c["amplitude_vpp"] is not None and c["duration_s"] is not None
    ]
    if not cells:
        return "<p>No stimuli with known parameters: no map.</p>"
    optimiser = getattr(source, "optimiser", None) or []
    design = map_design(cells, bool(optimiser))
    measures = [
        (k, lab) for k, lab in MAP_MEASURES if any(c[k] is not None for c in cells)
    ]
    missing = [lab for k, lab in MAP_MEASURES if (k, lab) not in measures]
    posterior = _posterior(optimiser) if design == "scattered" else None

    def draw(fig):
        axes = fig.subplots(1, len(measures), squeeze=False)[0]
        for ax, (key, label) in zip(axes, measures, strict=True):
            if design == "grid":
                _grid_panel(fig, ax, cells, key, label)
            elif design == "scattered":
                _scatter_panel(fig, ax, cells, key, label, posterior)
            else:
                along = "amplitude_vpp" if design == "amplitude" else "duration_s"
                _curve_panel(ax, cells, key, label, along)

    tag = figures.draw(
        "maps.png", draw, size=(4.0 * len(measures) + 1, 3.8), alt="parameter maps"
    )
    how = {
        "grid": "every amplitude × duration of the design; each tested cell "
        "shows its stimuli (n); untested cells are empty, hatched ones were "
        "tested but have no value",
        "amplitude": "one duration: each measure as a curve over amplitude (n per point)",
        "duration": "one amplitude: each measure as a curve over duration (n per point)",
        "scattered": "the points tried, coloured by the measure (× : no value)"
        + (
            "; grey contours: the optimiser's last posterior mean of its objective"
            if posterior is not None
            else ""
        ),
    }[design]
    text = f"<p>{_esc(how)}.</p>"
    if missing:
        text += f"<p>No values for: {_esc(', '.join(missing))}.</p>"
    return text + tag


# ------------------------------------------------------------------ motion


def _motion(results: dict[str, Any], source: Any, figures: _Figures) -> str:
    motion = results.get("motion") or {}
    if not motion.get("tracked") or getattr(source, "motion_series", None) is None:
        return "<p>No motion was measured (no video, or frames whose alignment is unproven).</p>"
    t, series = source.motion_series
    regions = motion.get("regions_mm_from_head") or []
    positions = [c["position_mm"] for c in results["channels"]]
    analysed = [s for s in results["stimuli"] if s["analysed"]]
    colours = _colours(max(len(regions), 1))

    # AP amplitude against displacement, per region, among single pulses
    # that evoked an AP (a train's pulses have no displacement of their own:
    # with none, the panel is left out rather than drawn empty)
    scatter = {}
    for k in range(len(regions)):
        pts = [
            (s["amplitude_uv"][k], s["region_peak_displacement_mm"][k])
            for s in analysed
            if s["responded"]
            and k < len(s["amplitude_uv"])
            and s["amplitude_uv"][k] is not None
            and k < len(s.get("region_peak_displacement_mm") or [])
            and s["region_peak_displacement_mm"][k] is not None
        ]
        if pts:
            scatter[k] = pts

    def draw(fig):
        if scatter:
            ax1, ax2 = fig.subplots(1, 2)
        else:
            ax1, ax2 = fig.subplots(1, 1), None
        for k in range(series.shape[1] - 1):
            lo, hi = regions[k] if k < len(regions) else (np.nan, np.nan)
            ax1.plot(
                t,
                series[:, k],
                lw=0.8,
                color=colours[k % len(colours)],
                label=f"region {k}: {lo:.0f}–{hi:.0f} mm",
            )
        for s in analysed:
            ax1.axvline(s["time_s"], color="0.85", lw=0.5, zorder=0)
        ax1.set_xlabel("time in the recording (s)")
        ax1.set_ylabel("displacement (mm)")
        ax1.legend(fontsize=6, title="from the head", title_fontsize=6)
        if ax2 is None:
            return
        for k, pts in scatter.items():
            x, y = zip(*pts, strict=True)
            ax2.plot(
                x,
                y,
                "o",
                ms=3,
                color=colours[k % len(colours)],
                label=f"ch {k} at {positions[k]:g} mm",
            )
        ax2.set_xlabel("AP amplitude at the region's pair (µV)")
        ax2.set_ylabel("peak displacement of the region (mm)")
        ax2.legend(fontsize=6, title="responders", title_fontsize=6)

    tag = figures.draw("motion.png", draw, size=(10.0, 4.2), alt="motion per region")
    rows = []
    trains = results.get("trains") or []

    def peak(row: dict[str, Any], k: int) -> float | None:
        values = row.get("region_peak_displacement_mm") or []
        return values[k] if k < len(values) else None

    for k, (lo, hi) in enumerate(regions):
        # Single pulses that evoked an AP, and trains (a train's summed
        # twitch is its measure; its pulses have none of their own)
        singles = [
            peak(s, k) for s in analysed if s["responded"] and peak(s, k) is not None
        ]
        summed = [
            peak(t, k) for t in trains if any(t["responded"]) and peak(t, k) is not None
        ]
        both = singles + summed
        rows.append(
            [
                str(k),
                f"{lo:g}–{hi:g}",
                f"{positions[k]:g}" if k < len(positions) else "n/a",
                f"{len(singles)}" + (f" + {len(summed)} trains" if trains else ""),
                _num(float(np.median(both)) if both else None),
            ]
        )
    table = _table(
        [
            "region",
            "along the body (mm from the head)",
            "its pair (mm)",
            "responses measured",
            "median peak displacement (mm)",
        ],
        rows,
    )
    return table + tag


# ------------------------------------------------------------- closed loop


def objective_unit(objective: dict[str, Any]) -> str:
    """The unit of a closed loop's score: its measure's, per µC of charge per
    phase when ``per_charge`` (rig.closed_loop.space.Objective).

    >>> objective_unit({"measure": "amplitude_uv_mean", "per_charge": True})
    'µV/µC'
    >>> objective_unit({"measure": "peak_displacement_mm[2]"})
    'mm'
    >>> objective_unit({"measure": "responded_cv"})
    '0–1'
    """
    measure = str(objective.get("measure", ""))
    unit = "0–1"  # responded, responded_cv
    for suffix, name in (("_uv", "µV"), ("_mm", "mm"), ("_m_per_s", "m/s")):
        if suffix in measure:
            unit = name
    if objective.get("per_charge"):
        unit = "1/µC" if unit == "0–1" else f"{unit}/µC"
    return unit


def _amp_dur_config(point: Any) -> tuple[float, float, str] | None:
    """(amplitude Vpp, duration s, configuration) of an optimiser's point.

    A point over sites is ``(configuration, Vpp, s, pulses, Hz, polarity)``; a
    first-wave point ``(Vpp, s, pair)``, pair k being electrodes 2k, 2k + 1.
    """
    if not point:
        return None
    if isinstance(point[0], str):
        return float(point[1]), float(point[2]), point[0]
    pair = int(point[2]) if len(point) > 2 else 0
    return float(point[0]), float(point[1]), f"C{2 * pair}-A{2 * pair + 1}"


def _closed_loop(source: Any, figures: _Figures) -> str:
    optimiser = getattr(source, "optimiser", None) or []
    if not optimiser:
        return ""
    last = optimiser[-1]
    objective = last.get("objective") or {}
    measure = objective.get("measure", "score") + (
        " per charge" if objective.get("per_charge") else ""
    )
    unit = objective_unit(objective)
    posterior = _posterior(optimiser)
    points = [_amp_dur_config(e["point"]) for e in optimiser if e.get("point")]
    # The run's outcome when it ended (every response learnt), else the last
    # decision's.
    result = getattr(source, "optimiser_result", None) or {}
    recommended = _amp_dur_config(
        result.get("recommended_point") or last.get("recommended_point")
    )
    scores = [
        (e["observed"]["trial"], e["observed"]["score"])
        for e in optimiser
        if e.get("observed") and _finite(e["observed"].get("score"))
    ]
    for e in optimiser:
        for late in e.get("observed_late") or []:
            if _finite(late.get("score")):
                scores.append((late["trial"], late["score"]))
    scores.sort()

    def draw(fig):
        ax1, ax2 = fig.subplots(1, 2)
        if posterior is not None:
            mean = np.array(
                [[np.nan if v is None else v for v in row] for row in posterior["mean"]]
            )
            amps = np.asarray(posterior["amplitude_vpp"])
            durs = np.asarray(posterior["duration_s"]) * 1000
            mesh = ax1.pcolormesh(
                amps,
                durs,
                np.ma.masked_invalid(mean.T),
                shading="nearest",
                cmap="magma",
            )
            bar = fig.colorbar(mesh, ax=ax1)
            bar.set_label(f"posterior mean, {measure} ({unit})", fontsize=7)
        xs = [p[0] for p in points]
        ys = [p[1] * 1000 for p in points]
        ax1.plot(xs, ys, "-", color="c", lw=0.8, alpha=0.8)
        ax1.scatter(
            xs,
            ys,
            c=np.arange(len(xs)),
            cmap="cool",
            s=18,
            edgecolors="k",
            linewidths=0.4,
            zorder=3,
            label="decisions, first to last",
        )
        if recommended:
            ax1.plot(
                recommended[0],
                recommended[1] * 1000,
                "*",
                ms=14,
                color="gold",
                mec="k",
                zorder=4,
                label="recommended",
            )
        ax1.set_xlabel("amplitude (Vpp)")
        ax1.set_ylabel("duration (ms)")
        ax1.legend(fontsize=6, loc="upper left")
        ax1.set_title("the search's path", fontsize=8)
        if scores:
            trial, score = zip(*scores, strict=True)
            best = (
                np.maximum.accumulate(score)
                if objective.get("kind") != ("minimise")
                else np.minimum.accumulate(score)
            )
            ax2.plot(trial, score, "o", ms=3, label="observed")
            ax2.step(trial, best, where="post", color="k", lw=0.8, label="best so far")
            ax2.legend(fontsize=6)
        ax2.set_xlabel("trial (number)")
        ax2.set_ylabel(f"{measure} ({unit})")
        ax2.set_title("objective per trial", fontsize=8)

    tag = figures.draw("closed-loop.png", draw, size=(10.0, 4.2), alt="closed loop")
    rec_text = (
        f"{recommended[2]} (configuration), {recommended[0]:.3g} Vpp, "
        f"{recommended[1] * 1000:.3g} ms"
        if recommended
        else "none yet"
    )
    rows = [
        ["strategy", _esc(last.get("strategy", "?"))],
        ["objective", _esc(f"{objective.get('kind', '?')} {measure}")],
        ["decisions", str(len(optimiser))],
        ["observations", str(last.get("n_observations", len(scores)))],
        ["recommendation", _esc(rec_text)],
        [
            "best observed",
            _esc(
                f"{_num(last.get('best_score'))} at "
                + (_point_text(last["best_point"]) if last.get("best_point") else "n/a")
            ),
        ],
    ]
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>{tag}" + _loop_sites(source, figures, measure, unit)


# ---------------------------------------------------------------- sections


def _any_volley(results: dict[str, Any]) -> bool:
    return any(s["volleys"] for s in results["stimuli"] if s["analysed"])


def _latency_section(results: dict[str, Any], figures: _Figures) -> str:
    if not _any_volley(results):
        return "<p>No volley was timed: nothing to draw.</p>"
    return (
        "<p>Each fibre's arrival at each pair; the line: its median velocity.</p>"
        + (
            figures.draw(
                "latency.png",
                lambda f: _latency_figure(f, results),
                alt="latency against position",
            )
        )
    )


def _velocity_section(results: dict[str, Any], figures: _Figures) -> str:
    if not _any_volley(results):
        return "<p>No volley was timed: nothing to draw.</p>"
    return figures.draw(
        "velocity.png",
        lambda f: _velocity_figure(f, results),
        alt="velocity over the recording",
    )


def _recruitment_section(results: dict[str, Any], figures: _Figures) -> str:
    levels: dict[Any, set] = {}
    for s in _first_pulses(results):
        if s["amplitude_vpp"] is not None:
            levels.setdefault(_duration_key(s["duration_s"]), set()).add(
                s["amplitude_vpp"]
            )
    if not any(len(v) >= 2 for v in levels.values()):
        return (
            "<p>No pulse duration was tried at two amplitudes or more: no "
            "recruitment curve to draw.</p>"
        )
    return (
        "<p>Points: the fraction of first pulses that evoked an AP at each "
        "amplitude (n beside); lines: the fits; bands: the curves over the "
        "threshold's and slope's 95 % intervals; a shaded span: the interval a "
        "threshold lies in when the responses separate.</p>"
        + figures.draw(
            "recruitment.png",
            lambda f: _recruitment_figure(f, results),
            alt="recruitment curves",
        )
    )


def _sd_section(results: dict[str, Any], figures: _Figures) -> str:
    fits = results["recruitment"]
    bounded = [
        f
        for f in fits
        if f["duration_s"] is not None
        and (f["determined"] or f.get("threshold_between_vpp"))
    ]
    if not bounded:
        return (
            "<p>No duration's threshold was determined or bounded: nothing to "
            "draw (the tables above say why).</p>"
        )
    return (
        "<p>Thresholds per duration with their 95 % intervals; the laws fitted "
        "to the trials with their bands (the curves over rheobase's and "
        "chronaxie's intervals), or why not.</p>"
        + figures.draw(
            "strength-duration.png",
            lambda f: _sd_figure(f, results),
            alt="strength-duration",
        )
    )


# --------------------------------------------------------------------- page

STYLE = """body{font-family:sans-serif;max-width:1000px;margin:auto;padding:0 1em}
td,th{padding:2px 10px;text-align:left;vertical-align:top}
table{border-collapse:collapse;margin:0.5em 0}
tr:nth-child(even){background:#f4f4f4}
table.header th{width:11em}
li.warning{color:#a60}
img{max-width:100%}"""


def write_report(results: dict[str, Any], source: Any, folder: Path) -> Path:
    """Write ``folder/index.html``, its figures, ``results.json`` and
    ``stimuli.csv``; return the index path."""
    from rig.offline.tables import write_csv

    folder.mkdir(parents=True, exist_ok=True)
    (folder / RESULTS_NAME).write_text(
        json.dumps(results, indent=1, allow_nan=False) + "\n", encoding="utf-8"
    )
    write_csv(results, folder / TABLE_NAME)
    figures = _Figures(folder)
    stimuli = results["stimuli"]
    cv = results["conduction_velocity_m_per_s"]
    analysed = sum(1 for s in stimuli if s["analysed"])
    responded = sum(1 for s in stimuli if s["responded"])
    summary = (
        f"<p>{len(stimuli)} stimuli, {analysed} analysed; {responded} with a "
        "propagating action potential. "
        + (
            f"Fastest fibre ({_esc(str(cv['fibre']).upper())}): <b>"
            f"{_num(cv['median'], 1, 4)} m/s</b> {_ci(cv['ci95'], 1, 4)}."
            if _finite(cv["median"])
            else "No fibre's conduction velocity was determined."
        )
        + "</p>"
    )
    sections = [
        ("Recording", _header(results, source)),
        ("Summary", _alignment_banner(results) + _sites_banner(results) + summary),
        ("Conduction velocity", _velocity_table(results)),
        ("Channels", _channel_table(results)),
        ("Recruitment (per pulse duration)", _recruitment_table(results)),
        ("Strength–duration", _sd_table(results)),
        ("Habituation", _habituation_block(results)),
        ("AP against motion", _correlation_table(results) + _trains_table(results)),
        ("Sweeps per fibre", _overlays(results, source, figures)),
        ("Latency against position", _latency_section(results, figures)),
        (
            "Conduction velocity over the recording",
            _velocity_section(results, figures),
        ),
        ("Recruitment curves", _recruitment_section(results, figures)),
        ("Strength–duration curve", _sd_section(results, figures)),
    ]
    per_site = _sites_section(results, figures)
    if per_site:
        sections.append(("Per site", per_site))
    sections += [
        (
            "Parameter maps",
            _maps(results, source, figures) + _site_maps(results, figures),
        ),
        ("Motion per region", _motion(results, source, figures)),
    ]
    loop = _closed_loop(source, figures)
    if loop:
        sections.append(("Closed loop", loop))
    body = "".join(
        f"<section><h2>{_esc(title)}</h2>{content}</section>"
        for title, content in sections
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>neurorig analysis: {_esc(results['source'])}</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>Analysis of {_esc(Path(results['source']).name)}</h1>{body}"
        "</body></html>\n"
    )
    index = folder / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def _alignment_banner(results: dict[str, Any]) -> str:
    """A warning box when motion was refused or is unproven (else nothing)."""
    alignment = (results.get("motion") or {}).get("alignment")
    if not alignment or alignment["proven"]:
        return ""
    what = (
        "Motion below is measured from frames whose alignment to the board's "
        "clock is <b>unproven</b>: displacement times may be whole frames off."
        if alignment["unproven_accepted"]
        else "Motion was <b>not measured</b>: the frames' alignment to the "
        "board's clock is unproven."
    )
    return (
        "<p class='unproven' style='border:2px solid #c00;padding:6px'>"
        f"{what} ({html.escape(str(alignment['reason']))})</p>"
    )


def _sites_banner(results: dict[str, Any]) -> str:
    """For a recording over sites: which sections analyse every stimulus as
    if from the head, and where each is analysed about its own site."""
    sites = results.get("sites")
    if not sites:
        return ""
    names = ", ".join(_esc(str(c["configuration"])) for c in sites["configurations"])
    return (
        "<p class='sites-note' style='border:2px solid #c60;padding:6px'>"
        f"Stimulated at {len(sites['configurations'])} configuration(s): {names}. "
        "The sections from <i>Conduction velocity</i> to <i>Strength–duration "
        "curve</i> analyse every stimulus <b>as if delivered at the head end</b> "
        "(distances from the head): right for a site at the head end, before "
        "the first recording pair, not for one along the body. The channel "
        "table, the fits and the AP–motion correlation take only the stimuli "
        "at the head end; the first parameter map's cells along the body, the "
        "<i>Per site</i> section and the maps per site analyse each stimulus "
        "about its own site.</p>"
    )


# ------------------------------------------------------------------ per site


def _mm(value: Any) -> str:
    return _num(value, 1e3, 3) + " mm" if _finite(value) else "n/a"


def _side_cell(side: dict[str, Any]) -> str:
    """A side's signed velocity with its interval, or why not."""
    if side.get("determined"):
        lo, hi = side["velocity_ci95_m_per_s"]
        sign = -1.0 if side["side"] == "anterior" else 1.0
        signed = [None if v is None else sign * v for v in (lo, hi)]
        interval = sorted(v for v in signed if v is not None)
        ci = (
            f" (95 % CI {_num(interval[0])}–{_num(interval[1])})"
            if len(interval) == 2
            else ""
        )
        return _esc(f"{_num(side['signed_velocity_m_per_s'])} m/s{ci}")
    return _esc(f"not determined: {side.get('reason') or 'no fit'}")


def _site_cell(cell: dict[str, Any]) -> str:
    est = cell["site_estimate"]
    if est["determined"]:
        lo, hi = est["site_ci95_m"]
        return _esc(
            f"{_mm(est['site_m'])} (95 % CI {_num(lo, 1e3)}–{_num(hi, 1e3)}; "
            f"{str(est['fibre']).upper()})"
        )
    return _esc(f"not determined: {est['reason']}")


def _selectivity_cell(cell: dict[str, Any]) -> str:
    s = cell["selectivity"]
    lo, hi = s["lgf_without_mgf_ci95"]
    text = (
        f"LGF without MGF {_num(s['lgf_without_mgf'], 1, 2)} "
        f"(95 % CI {_num(lo, 1, 2)}–{_num(hi, 1, 2)}, n = {s['n']})"
    )
    twitch = cell.get("twitch")
    if twitch:
        k = twitch["strongest_region"]
        if k >= 0:
            r = twitch["ratio"][k]
            a, b = twitch["ratio_ci95"][k]
            text += (
                f"; twitch strongest at region {k}: {_num(r, 1, 3)}× the others "
                f"(95 % CI {_num(a, 1, 3)}–{_num(b, 1, 3)})"
            )
        else:
            text += "; twitch: no region stands out (not determined)"
    return _esc(text)


def _sites_table(sites: dict[str, Any]) -> str:
    rows = []
    for cell in sites["configurations"]:
        for k, (name, label) in enumerate(FIBRES):
            pooled = cell["pooled"][name]
            fit = pooled["fit"]
            if fit is None:
                ant = post = _esc(f"not determined: {pooled['reason']}")
            elif not fit["determined"]:
                ant = post = _esc(f"not determined: {pooled['reason']}")
            else:
                ant, post = _side_cell(fit["anterior"]), _side_cell(fit["posterior"])
            # The configuration's own cells once, on its first fibre's row.
            first = k == 0
            rows.append(
                [
                    _esc(cell["configuration"]),
                    _esc(_mm(cell["site_m"])) if first else "",
                    _site_cell(cell) if first else "",
                    label,
                    f"{pooled['n_volleys']} of {cell['n']}",
                    ant,
                    post,
                    _selectivity_cell(cell) if first else "",
                ]
            )
    return _table(
        [
            "configuration", "cathode at", "site from the data", "fibre",
            "volleys", "anterior-going velocity", "posterior-going velocity",
            "selectivity",
        ],
        rows,
        cls="sites",
    )  # fmt: skip


def _sites_figure(fig: Any, sites: dict[str, Any], stimuli: list[dict]) -> None:
    cells = sites["configurations"]
    x_mm = np.asarray(sites["pair_positions_m"], float) * 1e3
    n = len(cells)
    cols = min(n, 3)
    axes = fig.subplots((n + cols - 1) // cols, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    colours = dict(zip(("mgf", "lgf"), _colours(2), strict=True))
    for ax, cell in zip(axes, cells, strict=False):
        config = cell["configuration"]
        for s in stimuli:
            if s.get("configuration") != config or not s.get("bidirectional"):
                continue
            for v in s["bidirectional"]["volleys"]:
                t = np.array([np.nan if a is None else a for a in v["latency_s"]])
                ax.plot(
                    x_mm, t * 1e3, ARRIVAL_MARKERS.get(v["fibre"], "o"),
                    color=colours.get(v["fibre"], "k"), ms=3, alpha=0.35,
                )  # fmt: skip
        span = np.linspace(x_mm.min() - 5, x_mm.max() + 5, 200)
        for name, label in FIBRES:
            pooled = cell["pooled"][name]
            fit = pooled["fit"]
            if pooled["latency_s_median"] is not None:
                med = np.array(
                    [np.nan if a is None else a for a in pooled["latency_s_median"]]
                )
                ax.plot(
                    x_mm, med * 1e3, ARRIVAL_MARKERS[name], color=colours[name],
                    ms=7, mec="k", label=f"{label} median",
                )  # fmt: skip
            if fit is None or not fit["determined"]:
                continue
            apex = fit["site_given_m"] if fit["site_given_m"] is not None else None
            apex = apex if apex is not None else fit["site_m"]
            if apex is None:
                continue
            v = fit["velocity_m_per_s"]
            line = fit["t0_s"] + np.abs(span / 1e3 - apex) / v
            ax.plot(
                span, line * 1e3, "-", color=colours[name], lw=1,
                label=f"{label} V fit, {v:.3g} m/s",
            )  # fmt: skip
        if cell["site_m"] is not None:
            ax.axvline(cell["site_m"] * 1e3, color="0.4", ls="--", lw=0.8,
                       label="cathode")  # fmt: skip
        est = cell["site_estimate"]
        if est["determined"]:
            lo, hi = est["site_ci95_m"]
            if lo is not None and hi is not None:
                ax.axvspan(lo * 1e3, hi * 1e3, color="gold", alpha=0.3,
                           label="site, 95 % CI")  # fmt: skip
        ax.set_title(config, fontsize=8)
        ax.set_xlabel("position (mm)")
        ax.set_ylabel("latency (ms)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=5)


def _sites_section(results: dict[str, Any], figures: _Figures) -> str:
    sites = results.get("sites")
    if not sites:
        return ""
    cells = sites["configurations"]
    text = (
        "<p>Each configuration's stimuli analysed about its site (the cathode's "
        "position): per fibre, the V fitted to the per-pair median latencies "
        "(pairs where the fibre was seen in at least half its volleys), with "
        "the cathode given; the site as the data place it; velocities signed "
        "along the body (&lt; 0 toward the head, &gt; 0 toward the tail) with their "
        "95 % intervals, or why not. Selectivity: the fraction of stimuli with "
        "an LGF volley and no MGF volley (exact interval).</p>"
    )
    rows = 1 + (len(cells) - 1) // 3
    tag = figures.draw(
        "sites-latency.png",
        lambda f: _sites_figure(f, sites, results["stimuli"]),
        size=(3.4 * min(len(cells), 3) + 0.6, 3.0 * rows),
        alt="latency against position per configuration",
    )
    return text + _sites_table(sites) + tag


def _site_cells(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per configuration, amplitude and duration: n and the response
    probability, a response being a volley seen in the analysis about the
    stimulus's site (the first-wave analysis measures distances from the head
    pair and misses spikes that start mid-body)."""
    groups: dict[tuple, list[bool]] = {}
    for s in results["stimuli"]:
        about = s.get("bidirectional")
        if about is None or s["amplitude_vpp"] is None or s["duration_s"] is None:
            continue
        key = (_configuration_of(s), s["amplitude_vpp"], s["duration_s"])
        groups.setdefault(key, []).append(bool(about["volleys"]))
    return [
        {
            "configuration": c,
            "amplitude_vpp": a,
            "duration_s": d,
            "n": len(seen),
            "response_probability": float(np.mean(seen)),
        }
        for (c, a, d), seen in groups.items()
    ]


def _site_maps(results: dict[str, Any], figures: _Figures) -> str:
    """The response probability over amplitude × duration, one panel per
    configuration (a recording over sites)."""
    cells = _site_cells(results)
    configs = sorted({_configuration_of(c) for c in cells}, key=configuration_key)
    if len(configs) < 2:
        return ""

    def draw(fig):
        cols = min(len(configs), 4)
        axes = fig.subplots(
            (len(configs) + cols - 1) // cols, cols, squeeze=False, sharex=True,
            sharey=True,
        ).ravel()  # fmt: skip
        for ax in axes[len(configs) :]:
            ax.set_visible(False)
        points = None
        for ax, config in zip(axes, configs, strict=False):
            here = [c for c in cells if _configuration_of(c) == config]
            xs = np.array([c["amplitude_vpp"] for c in here])
            ys = np.array([c["duration_s"] * 1e3 for c in here])
            vs = np.array([c["response_probability"] for c in here], dtype=float)
            points = ax.scatter(
                xs, ys, c=vs, cmap="viridis", vmin=0, vmax=1, s=40,
                edgecolors="k", linewidths=0.4,
            )  # fmt: skip
            for x, y, c in zip(xs, ys, here, strict=True):
                ax.annotate(f"n={c['n']}", (x, y), xytext=(3, 3),
                            textcoords="offset points", fontsize=5)  # fmt: skip
            ax.set_title(config, fontsize=8)
            ax.set_xlabel("amplitude (Vpp)")
            ax.set_ylabel("duration (ms)")
            ax.margins(0.15)
        if points is not None:
            bar = fig.colorbar(points, ax=list(axes[: len(configs)]))
            bar.set_label("response probability (0–1)", fontsize=7)

    rows = 1 + (len(configs) - 1) // 4
    tag = figures.draw(
        "maps-per-site.png",
        draw,
        size=(2.6 * min(len(configs), 4) + 1.2, 2.4 * rows + 0.4),
        alt="response probability per configuration",
    )
    return (
        "<p>Per configuration (site): the response probability (a giant-fibre "
        "volley in the analysis about the site) at each amplitude × duration "
        "tried (n stimuli beside each point).</p>" + tag
    )


# ---------------------------------------------------- closed loop over sites


def _front(source: Any) -> list[dict[str, Any]]:
    """The Pareto front: the run's outcome's, else the last decision's."""
    result = getattr(source, "optimiser_result", None) or {}
    if result.get("pareto_front"):
        return list(result["pareto_front"])
    for e in reversed(getattr(source, "optimiser", None) or []):
        if e.get("pareto_front"):
            return list(e["pareto_front"])
    return []


def _point_text(point: Any) -> str:
    p = _amp_dur_config(point)
    if p is None:
        return "n/a"
    return f"{p[2]} {p[0]:.3g} Vpp × {p[1] * 1000:.3g} ms"


def _loop_sites(source: Any, figures: _Figures, measure: str, unit: str) -> str:
    """The search's path per configuration, and the Pareto front (a search
    over sites only; empty otherwise)."""
    optimiser = getattr(source, "optimiser", None) or []
    decisions: list[tuple[int, tuple[float, float, str]]] = []
    for e in optimiser:
        point = _amp_dur_config(e.get("point"))
        if point is not None:
            decisions.append((int(e["trial"]), point))
    if not decisions or not isinstance(optimiser[-1]["point"][0], str):
        return ""
    result = getattr(source, "optimiser_result", None) or {}
    recommended = _amp_dur_config(
        result.get("recommended_point") or optimiser[-1].get("recommended_point")
    )
    by_config = optimiser[-1].get("by_configuration") or {}
    configs = sorted(
        {p[2] for _, p in decisions} | set(by_config), key=configuration_key
    )

    def path(fig):
        cols = min(len(configs), 4)
        n_rows = (len(configs) + cols - 1) // cols + 1
        grid = fig.add_gridspec(n_rows, cols)
        strip = fig.add_subplot(grid[0, :])
        index = {c: k for k, c in enumerate(configs)}
        trials = [t for t, _ in decisions]
        ys = [index[p[2]] for _, p in decisions]
        strip.plot(trials, ys, "-", color="c", lw=0.8)
        strip.scatter(trials, ys, c=trials, cmap="cool", s=16, edgecolors="k",
                      linewidths=0.3, zorder=3)  # fmt: skip
        strip.set_yticks(range(len(configs)), configs, fontsize=6)
        strip.set_xlabel("trial (number)")
        strip.set_ylabel("configuration (name)")
        strip.set_title("configuration of each decision", fontsize=8)
        first = None
        for k, config in enumerate(configs):
            ax = fig.add_subplot(grid[1 + k // cols, k % cols], sharex=first,
                                 sharey=first)  # fmt: skip
            first = first or ax
            here = [(t, p) for t, p in decisions if p[2] == config]
            if here:
                ax.plot([p[0] for _, p in here], [p[1] * 1e3 for _, p in here], "-",
                        color="c", lw=0.6)  # fmt: skip
                ax.scatter(
                    [p[0] for _, p in here], [p[1] * 1e3 for _, p in here],
                    c=[t for t, _ in here], cmap="cool", vmin=min(trials),
                    vmax=max(trials), s=16, edgecolors="k", linewidths=0.3,
                    zorder=3,
                )  # fmt: skip
            best = _amp_dur_config((by_config.get(config) or {}).get("best_point"))
            if best:
                ax.plot(best[0], best[1] * 1e3, "D", ms=6, mfc="none", mec="k",
                        label="highest posterior mean")  # fmt: skip
            if recommended and recommended[2] == config:
                ax.plot(recommended[0], recommended[1] * 1e3, "*", ms=13,
                        color="gold", mec="k", zorder=4, label="recommended")  # fmt: skip
            ax.set_title(f"{config}: {len(here)} decisions", fontsize=7)
            ax.set_xlabel("amplitude (Vpp)")
            ax.set_ylabel("duration (ms)")
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=5)

    rows = 1 + (len(configs) - 1) // 4
    html_ = (
        "<p>The search over sites: which configuration each decision chose, "
        "then each configuration's points (colour: trial, first to last; ◇: "
        "its highest posterior mean at the last decision; ★: the "
        "recommendation).</p>"
        + figures.draw(
            "closed-loop-sites.png",
            path,
            size=(2.6 * min(len(configs), 4) + 1.0, 2.3 * (rows + 1) + 0.4),
            alt="the search's path per configuration",
        )
    )
    if by_config:
        html_ += _table(
            ["configuration", "highest posterior mean at", f"mean ({unit})",
             f"SD ({unit})"],
            [
                [_esc(c), _esc(_point_text(v.get("best_point"))),
                 _num(v.get("mean")), _num(v.get("std"))]
                for c, v in sorted(by_config.items(),
                                   key=lambda kv: configuration_key(kv[0]))
            ],
        )  # fmt: skip
    front = _front(source)
    if front:

        def pareto(fig):
            ax = fig.subplots()
            q = np.array([f["charge_uc"] for f in front], float)
            r = np.array([f["response"] for f in front], float)
            order = np.argsort(q)
            ax.step(q[order], r[order], where="post", color="k", lw=0.8)
            names = [_amp_dur_config(f["point"]) for f in front]
            configs_here = sorted({p[2] for p in names if p}, key=configuration_key)
            for config, colour in zip(
                configs_here, _colours(len(configs_here)), strict=True
            ):
                k = [i for i, p in enumerate(names) if p and p[2] == config]
                ax.plot(q[k], r[k], "o", color=colour, mec="k", label=config)
            ax.set_xlabel("charge per phase (µC)")
            ax.set_ylabel(f"{measure} ({unit})")
            ax.set_title("Pareto front: response against charge", fontsize=8)
            ax.legend(fontsize=6)

        html_ += (
            "<p>The Pareto front: tested points no other beats on both the "
            "response and the charge per phase (cheapest first).</p>"
            + figures.draw("pareto.png", pareto, size=(6.0, 3.6), alt="Pareto front")
            + _table(
                ["point", "charge per phase (µC)", f"{_esc(measure)} ({unit})"],
                [
                    [
                        _esc(_point_text(f["point"])),
                        _num(f["charge_uc"]),
                        _num(f["response"]),
                    ]
                    for f in front
                ],
                cls="pareto",
            )
        )
    return html_
