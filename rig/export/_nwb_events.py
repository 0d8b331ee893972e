"""The recording's events as NWB tables: stimuli, notes and the rig's other
events in core ``EventsTable``s (NWB 2.10+), trials as ``TimeIntervals``.

Every row keeps its board sample number (``sample``) beside its time, so the
one clock survives the export: time = (sample − first sample) / rate."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from hdmf.common import VectorData
from pynwb import NWBFile
from pynwb.event import DurationVectorData, EventsTable, TimestampVectorData

from firmware_bridge.stimulus import parse_configuration
from rig.recording import Recording
from rig.recording.configuration import stim_configuration

# Stimulus fields -> description (docs/recording-format.md, stim_delivered).
STIM_NUMBERS = {
    "amplitude_vpp": "delivered amplitude, V peak-to-peak, as the board's "
    "stimulus monitor measured it (NaN: not reported)",
    "commanded_vpp": "amplitude sent to the board, V peak-to-peak (after the "
    "stimulator calibration)",
    "requested_vpp": "amplitude asked for by the protocol or the user, V "
    "peak-to-peak (differs from commanded_vpp when a stimulator calibration "
    "corrects the command)",
}
STIM_WHOLE = {
    "cathode": "stimulation electrode used as the cathode (0 = nearest the head): "
    "the stimulation site",
    "anode": "stimulation electrode used as the anode; -1: the common return",
    "polarity": "polarity of the bipolar pulse (0: as wired, 1: reversed)",
    "pulse_index": "pulse within its train (0 for a single pulse)",
}
SAMPLE_TEXT = (
    "board sample number (the recording's one clock: docs/recording-format.md)"
)
# Kinds with their own table, or whose result is elsewhere (camera triggers and
# LED flashes place the video frames: their outcome is the video's timestamps).
OWN_TABLE = {"stim_delivered", "trial", "note", "camera_trigger", "led"}


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return float("nan")
    return float(value)


def _events_table(
    name: str,
    description: str,
    source: str,
    samples: np.ndarray,
    first_sample: int,
    fs: float,
    columns: list[VectorData],
    durations: np.ndarray | None = None,
) -> EventsTable:
    timestamps = (samples - first_sample) / fs
    base: list[VectorData] = [
        TimestampVectorData(
            name="timestamp",
            description="time of the event, s from the recording's first sample",
            data=timestamps,
            resolution=1.0 / fs,
        )
    ]
    if durations is not None:
        base.append(
            DurationVectorData(
                name="duration", description="duration, s", data=durations
            )
        )
    base.append(VectorData(name="sample", description=SAMPLE_TEXT, data=samples))
    return EventsTable(
        name=name,
        description=description,
        source_description=source,
        columns=[*base, *columns],
    )


def add_stimuli(nwbfile: NWBFile, rec: Recording, first_sample: int) -> int:
    """Every delivered stimulus (``stim_delivered``), one row each; returns
    how many."""
    stims = rec.events_of("stim_delivered")
    if not stims:
        return 0
    samples = np.array([e["sample"] for e in stims], dtype=np.int64)
    durations = np.array([_number(e.get("duration_s")) for e in stims])
    columns = [
        VectorData(
            name=key,
            description=text,
            data=np.array([_number(e.get(key)) for e in stims]),
        )
        for key, text in STIM_NUMBERS.items()
    ]
    columns += [
        VectorData(
            name=key,
            description=text,
            data=np.array([_whole(e, key) for e in stims], dtype=np.int32),
        )
        for key, text in STIM_WHOLE.items()
    ]
    table = _events_table(
        "stimuli",
        "bipolar sinusoidal stimulation pulses delivered through the electrodes "
        "under the head; timestamp = the pulse's onset",
        "acquisition system: the board's stimulus monitor (stim_delivered), "
        "timed by its sample counter",
        samples,
        first_sample,
        rec.sample_rate_hz,
        columns,
        durations,
    )
    nwbfile.add_events_table(table)
    return len(stims)


def add_notes(nwbfile: NWBFile, rec: Recording, first_sample: int) -> int:
    """The timestamped notes taken during the run (``Session.note``)."""
    notes = rec.events_of("note")
    if not notes:
        return 0
    samples = np.array([e["sample"] for e in notes], dtype=np.int64)
    text = VectorData(
        name="annotation",
        description="the note",
        data=[str(e.get("text", "")) for e in notes],
    )
    nwbfile.add_events_table(
        _events_table(
            "notes",
            "notes taken during the run, at the newest sample when written",
            "manual entry (neurorig Session.note)",
            samples,
            first_sample,
            rec.sample_rate_hz,
            [text],
        )
    )
    return len(notes)


# What each kind of the rig's other events is (docs/recording-format.md).
KINDS = {
    "stim_requested": "a stimulus the host asked for, after its checks and "
    "before the command was sent",
    "fault": "a fault the board reported",
    "fail_safe": "the fail-safe rule disarmed the board here",
    "emergency_stop": "an emergency stop",
    "board_rebooted": "the board reset (sample numbers continue)",
    "log": "a firmware message",
    "stream_anomaly": "a frame with an impossible sample number, dropped",
    "frame_dropped_by_host": "a camera frame the video encoder could not keep",
    "experiment_refused": "the protocol run could not start",
    "frame_report": "the video's frames against the camera triggers, at the end",
    "optimiser": "a closed-loop decision (docs/closed-loop.md)",
}


def _flat(fields: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested fields as ``outer_inner`` columns; lists as JSON text."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, f"{name}_"))
        elif isinstance(value, list):
            out[name] = json.dumps(value)
        else:
            out[name] = value
    return out


def _column(name: str, values: list[Any]) -> VectorData:
    """One field over the events of a kind: numbers (NaN where absent),
    true/false where every event has it, else text ('' where absent)."""
    present = [v for v in values if v is not None]
    if (
        present
        and all(isinstance(v, bool) for v in present)
        and len(present) == len(values)
    ):
        data: Any = np.array(values, dtype=bool)
    elif present and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in present
    ):
        data = np.array([np.nan if v is None else float(v) for v in values])
    else:
        data = ["" if v is None else str(v) for v in values]
    return VectorData(
        name=name, description=f"the event's {name} (SI units)", data=data
    )


def add_rig_events(nwbfile: NWBFile, rec: Recording, first_sample: int) -> int:
    """The rig's other events (faults, fail-safe, requests, optimiser
    decisions, …), one EventsTable per kind, every field a column: nothing
    recorded is left out. Returns how many events."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for e in rec.events:
        kind = e.get("kind")
        if kind not in OWN_TABLE and isinstance(e.get("sample"), int):
            by_kind.setdefault(str(kind), []).append(e)
    skip = {"sample", "kind"}
    for kind, events in sorted(by_kind.items()):
        rows = [_flat({k: v for k, v in e.items() if k not in skip}) for e in events]
        names = sorted({k for row in rows for k in row})
        nwbfile.add_events_table(
            _events_table(
                kind,
                KINDS.get(kind, f"neurorig event {kind!r} (docs/recording-format.md)"),
                "acquisition system and host (neurorig events.jsonl)",
                np.array([e["sample"] for e in events], dtype=np.int64),
                first_sample,
                rec.sample_rate_hz,
                [_column(n, [row.get(n) for row in rows]) for n in names],
            )
        )
    return sum(len(events) for events in by_kind.values())


def _whole(event: dict, key: str) -> int:
    """A whole-number column's value; cathode and anode from the event's
    configuration (a version-2 recording's pair k is C(2k)-A(2k+1)), the
    common return as anode −1."""
    if key in ("cathode", "anode"):
        cathode, anode = parse_configuration(stim_configuration(event))
        value = cathode if key == "cathode" else anode
        return -1 if value is None else int(value)
    return int(event.get(key, 0))


def add_trials(nwbfile: NWBFile, rec: Recording, first_sample: int) -> int:
    """The protocol's trials: each from its onset to the next trial's (the
    last to the end of the recording), with what the protocol asked for."""
    trials = rec.events_of("trial")
    if not trials:
        return 0
    fs = rec.sample_rate_hz
    last_sample = int(rec.sample_numbers()[-1])
    for key, text in (
        ("index", "trial index in the protocol's plan"),
        ("amplitude_vpp", "requested amplitude, V peak-to-peak"),
        ("duration_s", "requested pulse duration, s"),
        ("cathode", STIM_WHOLE["cathode"]),
        ("anode", STIM_WHOLE["anode"]),
        ("polarity", "polarity (0: as wired, 1: reversed)"),
        ("sample", "board sample number of the onset"),
    ):
        nwbfile.add_trial_column(name=key, description=text)
    onsets = [int(t["sample"]) for t in trials]
    for trial, onset, end in zip(
        trials, onsets, [*onsets[1:], last_sample], strict=True
    ):
        nwbfile.add_trial(
            start_time=(onset - first_sample) / fs,
            stop_time=(max(end, onset) - first_sample) / fs,
            index=int(trial.get("index", -1)),
            amplitude_vpp=_number(trial.get("amplitude_vpp")),
            duration_s=_number(trial.get("duration_s")),
            cathode=_whole(trial, "cathode"),
            anode=_whole(trial, "anode"),
            polarity=int(trial.get("polarity", 0)),
            sample=onset,
        )
    return len(trials)
