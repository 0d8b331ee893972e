"""A recording as one Neurodata Without Borders file (docs/export.md).

``export_nwb(recording, "out.nwb")`` writes, with pynwb (``neurorig[nwb]``):

- the samples: one ``ElectricalSeries`` of the raw int16 counts per contiguous
  run (gzip, chunked), with ``conversion`` (nominal V per count) and
  ``channel_conversion`` (a gain calibration); the electrodes table, one row
  per differential pair with its position along the body;
- stimuli, notes and the rig's other events in core ``EventsTable``s (NWB
  2.10+, pynwb 4), each row with its board sample number; trials as
  ``TimeIntervals``;
- the video as an external-file ``ImageSeries`` stamped on the board clock;
- with the analysis (the default): segment displacement as
  ``BehavioralTimeSeries`` and ``neurorig analyze``'s per-stimulus results and
  fibre velocities in the ``ecephys`` processing module;
- the subject and session from the recording's metadata, the protocol file's
  text (``stimulus_notes``), the software that recorded and exported it
  (``was_generated_by``) and the whole ``metadata.json`` (``data_collection``).

Time 0 is the recording's first sample; ``session_start_time`` is when the
recording was created (the host's clock).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rig.export._common import (
    ExportError,
    need,
    open_for_export,
    protocol_text,
    runs_of,
    start_time,
)
from rig.recording import Recording
from rig.recording.metadata import software_version
from rig.recording.subject import MetadataError, SessionInfo, Subject

# What the DANDI archive requires of a file's subject (its nwbinspector
# configuration's critical checks): said at export, not found at upload.
DANDI_SUBJECT = ("subject_id", "species", "sex")
RIG_DESCRIPTION = (
    "neurorig closed-loop neuromuscular testbed: an earthworm on a raceway, "
    "bipolar sinusoidal stimulation through two electrodes under the head, "
    "differential recording pairs along the body (giant-fibre action "
    "potentials), a camera above (segment motion); one clock, the board's "
    "sample counter"
)
KEYWORDS = ("earthworm", "giant fibre", "conduction velocity", "neurorig")


@dataclass
class NwbExport:
    """What an export wrote."""

    path: Path
    n_series: int  # ElectricalSeries: one per contiguous run
    n_stimuli: int
    n_trials: int
    n_frames: int
    analysed: bool
    seconds: float  # wall time of the export
    warnings: list[str] = field(default_factory=list)


def export_nwb(
    recording: str | Path,
    out: str | Path,
    *,
    analysis: bool = True,
    progress: Any = None,
    overwrite: bool = False,
) -> NwbExport:
    """Write the recording folder ``recording`` as the NWB file ``out``.

    ``analysis``: run ``neurorig analyze``'s pipeline and include its results
    (and segment displacement, with a video); False exports the data alone.
    ``progress``: the analysis's progress factory (``rig.cli.analyze``), or
    None for none. ``overwrite``: replace an existing ``out``. Raises
    ExportError (one line) for what cannot be exported."""
    started = time.perf_counter()
    pynwb = need("pynwb", "nwb")
    out = Path(out)
    if out.exists() and not overwrite:
        raise ExportError(f"{out} exists; give another name or --overwrite")
    if out.suffix != ".nwb":
        raise ExportError(f"{out}: allowed a file name ending in .nwb")
    if not out.parent.is_dir():
        raise ExportError(f"{out}: its folder {out.parent} does not exist")
    from rig.export import _nwb_ecephys, _nwb_events, _nwb_results

    rec = open_for_export(recording)
    runs = runs_of(rec)
    first = int(runs.firsts[0])
    nwbfile, warnings = _new_file(pynwb, rec)
    board = _nwb_ecephys.add_board(nwbfile, rec)
    _nwb_ecephys.add_electrodes(nwbfile, rec, board)
    series = _nwb_ecephys.add_samples(nwbfile, rec, runs, first)
    n_stimuli = _nwb_events.add_stimuli(nwbfile, rec, first)
    n_trials = _nwb_events.add_trials(nwbfile, rec, first)
    _nwb_events.add_notes(nwbfile, rec, first)
    _nwb_events.add_rig_events(nwbfile, rec, first)
    n_frames, video_warnings = _nwb_results.add_video(nwbfile, rec, out, first)
    warnings += video_warnings
    analysed = False
    if analysis:
        results, motion, why_not = _analyse(rec, progress)
        if results is not None:
            _nwb_results.add_analysis(nwbfile, results, rec.sample_rate_hz, first)
            analysed = True
        else:
            warnings.append(f"no analysis in the file: {why_not}")
        if motion is not None and len(motion[0]):
            _nwb_results.add_displacement(nwbfile, motion, rec.sample_rate_hz, first)
    partial = out.with_suffix(".partial.nwb")  # renamed when whole
    try:
        with pynwb.NWBHDF5IO(str(partial), "w") as io:
            io.write(nwbfile)
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    return NwbExport(
        path=out,
        n_series=len(series),
        n_stimuli=n_stimuli,
        n_trials=n_trials,
        n_frames=n_frames,
        analysed=analysed,
        seconds=time.perf_counter() - started,
        warnings=warnings,
    )


def _new_file(pynwb: Any, rec: Recording) -> tuple[Any, list[str]]:
    """The NWBFile with the session's and the subject's description."""
    from rig.export._nwb_ecephys import gap_text

    meta = rec.metadata
    warnings: list[str] = []
    try:
        subject = Subject.from_dict(meta.get("subject"))
        info = SessionInfo.from_dict(meta.get("session"))
    except MetadataError as exc:
        raise ExportError(f"{rec.path}: metadata.json {exc}") from None
    missing = [k for k in DANDI_SUBJECT if getattr(subject, k) is None]
    if subject.age is None and subject.date_of_birth is None:
        missing.append("age or date_of_birth")
    if missing:
        warnings.append(
            f"the recording's subject has no {', '.join(missing)}: DANDI refuses "
            "such a file (give them when recording: neurorig run --subject "
            "--species --sex --age, or the rig file's [subject])"
        )
    protocol_name, protocol = protocol_text(rec)
    software = meta.get("software") or {}
    recorded_with = f"{software.get('version', 'unknown')}" + (
        f" (git {software['git_revision']})" if software.get("git_revision") else ""
    )
    notes = [
        f"recording status: {rec.status}",
        gap_text(rec),
        *(f"reader: {p}" for p in rec.problems),
    ]
    if info.notes:
        notes.insert(0, info.notes)
    nwbfile = pynwb.NWBFile(
        session_description=info.description
        or f"neurorig recording{f' of protocol {protocol_name}' if protocol_name else ''}",
        identifier=str(uuid.uuid4()),
        session_start_time=start_time(rec),
        session_id=rec.path.name,
        experiment_description=RIG_DESCRIPTION,
        keywords=list(KEYWORDS),
        experimenter=list(info.experimenter) or None,
        lab=info.lab,
        institution=info.institution,
        notes="\n".join(notes),
        stimulus_notes=None
        if protocol is None
        else f"protocol file {protocol_name} (neurorig protocol, docs/protocols.md):"
        f"\n\n{protocol}",
        data_collection=json.dumps(meta, indent=1),
        source_script=f"neurorig export --nwb (neurorig {software_version()})",
        source_script_file_name="rig/export/nwb.py",
        was_generated_by=[
            ["neurorig (recording)", recorded_with],
            ["neurorig (export)", software_version()],
            ["pynwb", pynwb.__version__],
        ],
        subject=None if subject.is_empty else _subject(pynwb, subject),
    )
    return nwbfile, warnings


def _subject(pynwb: Any, subject: Subject) -> Any:
    """The recording's subject as NWB's (weight as text in g, the length in the
    description: NWB has no field for it)."""
    import datetime as dt

    description = subject.description
    if subject.length_m is not None:
        length = f"body length {np.format_float_positional(subject.length_m * 1e3, 6, trim='-')} mm"
        description = f"{description}; {length}" if description else length
    weight = None
    if subject.weight_kg is not None:
        grams = np.format_float_positional(subject.weight_kg * 1e3, 6, trim="-")
        weight = f"{grams} g"
    born = None
    if subject.date_of_birth is not None:
        day = dt.date.fromisoformat(subject.date_of_birth)
        born = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return pynwb.file.Subject(
        subject_id=subject.subject_id,
        species=subject.species,
        sex=subject.sex,
        description=description,
        age=subject.age,
        date_of_birth=born,
        weight=weight,
    )


def _analyse(rec: Recording, progress: Any) -> tuple[Any, Any, str]:
    """(results, motion or None, why not) of the offline pipeline."""
    from rig.offline.load import load_recording
    from rig.offline.pipeline import analyse

    geometry = rec.metadata.get("geometry") or {}
    if geometry.get("pair_centres_m") is None:
        return (
            None,
            None,
            (
                "the recording has no electrode positions (neurorig analyze "
                "--electrode-positions-mm can analyse it)"
            ),
        )
    try:
        source = load_recording(rec.path)
    except ValueError as exc:
        return None, None, str(exc)
    results = analyse(source, progress or _quiet)
    return results, source.motion_series, ""


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _quiet(iterable: Any, desc: str, total: int | None = None) -> Any:
    """A progress factory that shows nothing (the pipeline's interface)."""
    return _NoBar() if iterable is None else iterable
