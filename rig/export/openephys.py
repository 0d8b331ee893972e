"""A recording written as an Open Ephys GUI session in its binary format (GUI ≥ 0.6),
for SpikeInterface, neo and the Open Ephys tools (docs/export.md, "Open Ephys").

The layout is the GUI's own::

    DIR/Record Node 101/experiment1/recording1/
        structure.oebin                          streams, channels, bit_volts
        sync_messages.txt                        start time and first sample
        continuous/Neurorig-100.board/
            continuous.dat                       int16 interleaved: samples.i16's rows
            sample_numbers.npy                   int64, the board's sample numbers
            timestamps.npy                       float64 s = sample number / rate
        events/Neurorig-100.board/TTL/           one TTL line per cathode electrode
            states.npy                           int16 +line on, −line off
            sample_numbers.npy, timestamps.npy   when
            full_words.npy                       uint64: every line's state after it
        events/MessageCenter/                    every events.jsonl line, as text
            text.npy, sample_numbers.npy, timestamps.npy
    DIR/neurorig.json                            the recording's metadata (provenance)

One clock: sample numbers are the board's and timestamps are sample / rate, so a
reader's times equal the recording's (docs/recording-format.md, "One clock"). A
run of contiguous samples is one Open Ephys *recording* (the GUI starts a new
``recordingN`` when recording stops and starts again, sample numbers running on),
so lost samples are never closed up: a reader sees one segment per run. A
recording without gaps keeps its samples where they are: ``continuous.dat`` is
a hard link to ``samples.i16`` when both are on one filesystem (the bytes are
the same layout), else a copy.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import rig.recording
from rig.offline.load import _uv_per_count
from rig.recording import _format as f
from rig.recording.metadata import software_version

GUI_VERSION = "0.6.0"  # the binary layout written here is the GUI's since 0.6.0
PROCESSOR = "Neurorig"  # the "source processor" of the stream
PROCESSOR_ID = 100
RECORD_NODE_ID = 101
STREAM = "board"
STREAM_FOLDER = f"{PROCESSOR}-{PROCESSOR_ID}.{STREAM}"
RECORD_NODE = f"Record Node {RECORD_NODE_ID}"
STIMULUS_CHANNEL = "stimuli"  # the TTL event channel's name, as readers list it
MAX_TTL_LINES = 64  # full_words.npy holds every line in one uint64
COPY_CHUNK_BYTES = 16 << 20


class OpenEphysExportError(ValueError):
    """The recording cannot be exported; the message names the file and why."""


@dataclass(frozen=True, slots=True)
class OpenEphysExport:
    """What an export wrote."""

    folder: Path  # DIR
    recordings: list[Path]  # each experiment1/recordingN folder, one per run
    linked: bool  # continuous.dat is a hard link to samples.i16
    n_samples: int
    n_stimuli: int


def export_openephys(
    recording_path: str | Path, out_dir: str | Path
) -> OpenEphysExport:
    """Write the recording at ``recording_path`` as an Open Ephys binary session
    in ``out_dir`` (made; it must not exist or be empty).

    Refused with one line naming the file and why (``OpenEphysExportError``, or
    ``rig.recording.RecordingFormatError`` for a recording that does not read):
    a recording still being written, one with no samples, a stimulus without a
    duration or on a pair beyond the 64 TTL lines, and an ``out_dir`` that is a
    file or a folder with something in it. Nothing is left behind on failure:
    the session is built beside ``out_dir`` and renamed into place at the end.
    """
    source = Path(recording_path)
    out = Path(out_dir)
    rec = rig.recording.open(source)
    if rec.writer_alive:
        raise OpenEphysExportError(
            f"{source}: still being recorded; export it once the recording has stopped"
        )
    if rec.samples.shape[0] == 0:
        raise OpenEphysExportError(f"{source / f.SAMPLES}: holds no samples")
    _check_out_dir(out)
    try:
        uv_per_count = np.broadcast_to(
            np.asarray(
                _uv_per_count(rec.metadata, source / f.METADATA, rec.n_channels),
                dtype=np.float64,
            ),
            (rec.n_channels,),
        )
    except ValueError as exc:  # the message names metadata.json already
        raise OpenEphysExportError(str(exc)) from None
    edges = _stimulus_edges(rec, source / f.EVENTS)
    runs = _runs(rec)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        linked, folders = _write_session(
            rec, source, partial, runs, edges, uv_per_count
        )
        (partial / "neurorig.json").write_text(
            json.dumps(
                {
                    "exported_by": f"neurorig {software_version()}",
                    "source": str(source.resolve()),
                    "metadata": rec.metadata,
                },
                indent=1,
            )
            + "\n",
            encoding="utf-8",
        )
        os.rename(partial, out)  # replaces an empty out_dir (POSIX rename)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return OpenEphysExport(
        out,
        [out / p.relative_to(partial) for p in folders],
        linked,
        int(rec.samples.shape[0]),
        len(rec.events_of("stim_delivered")),
    )


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise OpenEphysExportError(
            f"{out}: an existing file; allowed: a new or empty folder"
        )
    if out.is_dir() and any(out.iterdir()):
        raise OpenEphysExportError(
            f"{out}: not empty; allowed: a new or empty folder (nothing is overwritten)"
        )
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OpenEphysExportError(
                    f"{out}: inside {parent}, which is a file; allowed: a folder"
                )
            break


def _runs(rec: Any) -> list[tuple[int, int, int]]:
    """(first row, end row, first sample number) of each run that holds rows."""
    rows = [*rec.runs[:, 0].tolist(), rec.samples.shape[0]]
    return [
        (int(row), int(end), int(first))
        for (row, first), end in zip(rec.runs.tolist(), rows[1:], strict=True)
        if end > row
    ]


@dataclass(frozen=True, slots=True)
class _Edges:
    """TTL edges of the stimuli, in time order (off before on at one sample)."""

    samples: np.ndarray  # int64
    states: np.ndarray  # int16: +line on, −line off
    full_words: np.ndarray  # uint64: every line's state after the edge
    onsets: np.ndarray  # int64: the stimulus onset each edge belongs to


def _stimulus_edges(rec: Any, events_path: Path) -> _Edges:
    """A stimulus whose cathode is electrode c is line c + 1 (a version-2
    recording's pair p: line p + 1), on at its sample for round(duration ×
    rate) samples (at least one)."""
    fs = rec.sample_rate_hz
    rows = []
    for k, e in enumerate(rec.events_of("stim_delivered"), start=1):
        duration = e.get("duration_s")
        if duration is None:
            raise OpenEphysExportError(
                f"{events_path}: stimulus {k} (sample {e['sample']}) has no "
                "duration_s; a TTL event needs its off edge"
            )
        pair = int(e["cathode"] if "cathode" in e else e.get("pair", 0))
        if pair >= MAX_TTL_LINES:
            raise OpenEphysExportError(
                f"{events_path}: stimulus {k} on electrode {pair}; allowed "
                f"electrodes 0–{MAX_TTL_LINES - 1} (one TTL line each)"
            )
        on = int(e["sample"])
        off = on + max(1, round(float(duration) * fs))
        rows += [(on, 1, pair + 1, on), (off, 0, pair + 1, on)]
    rows.sort()  # by sample, then off (0) before on (1)
    word = 0
    samples, states, words, onsets = [], [], [], []
    for sample, is_on, line, onset in rows:
        bit = 1 << (line - 1)
        if is_on and word & bit:
            raise OpenEphysExportError(
                f"{events_path}: the stimulus at sample {onset} starts while "
                f"another on electrode {line - 1} is still on; a TTL line cannot be "
                "on twice"
            )
        word = word | bit if is_on else word & ~bit
        samples.append(sample)
        states.append(line if is_on else -line)
        words.append(word)
        onsets.append(onset)
    return _Edges(
        np.array(samples, dtype=np.int64),
        np.array(states, dtype=np.int16),
        np.array(words, dtype=np.uint64),
        np.array(onsets, dtype=np.int64),
    )


def _write_session(
    rec: Any,
    source: Path,
    root: Path,
    runs: list[tuple[int, int, int]],
    edges: _Edges,
    uv_per_count: np.ndarray,
) -> tuple[bool, list[Path]]:
    fs = rec.sample_rate_hz
    firsts = np.array([first for _, _, first in runs], dtype=np.int64)
    # Events go to the run they fall in; before the first run, to the first.
    edge_run = _run_of(firsts, edges.onsets)
    messages = [e for e in rec.events if type(e.get("sample")) is int]
    message_run = _run_of(firsts, np.array([e["sample"] for e in messages], np.int64))
    samples_path = source / f.SAMPLES
    whole_file = (
        len(runs) == 1
        and runs[0][0] == 0
        and samples_path.stat().st_size == rec.samples.nbytes
    )
    linked = False
    folders = []
    for k, (row0, row1, first) in enumerate(runs):
        folder = root / RECORD_NODE / "experiment1" / f"recording{k + 1}"
        continuous = folder / "continuous" / STREAM_FOLDER
        continuous.mkdir(parents=True)
        dat = continuous / "continuous.dat"
        if whole_file and _hard_link(samples_path, dat):
            linked = True
        else:
            _copy_rows(samples_path, dat, row0, row1, rec.n_channels)
        numbers = np.arange(first, first + (row1 - row0), dtype=np.int64)
        np.save(continuous / "sample_numbers.npy", numbers)
        np.save(continuous / "timestamps.npy", numbers / fs)
        mine = edge_run == k
        ttl = folder / "events" / STREAM_FOLDER / "TTL"
        ttl.mkdir(parents=True)
        np.save(ttl / "states.npy", edges.states[mine])
        np.save(ttl / "sample_numbers.npy", edges.samples[mine])
        np.save(ttl / "timestamps.npy", edges.samples[mine] / fs)
        np.save(ttl / "full_words.npy", edges.full_words[mine])
        _write_messages(
            folder / "events" / "MessageCenter",
            [e for e, r in zip(messages, message_run, strict=True) if r == k],
            fs,
        )
        (folder / "structure.oebin").write_text(
            json.dumps(_structure(rec, uv_per_count), indent=2) + "\n",
            encoding="utf-8",
        )
        (folder / "sync_messages.txt").write_text(
            _sync_messages(rec.metadata, first, fs), encoding="utf-8"
        )
        folders.append(folder)
    return linked, folders


def _run_of(firsts: np.ndarray, samples: np.ndarray) -> np.ndarray:
    return np.maximum(np.searchsorted(firsts, samples, side="right") - 1, 0)


def _hard_link(src: Path, dst: Path) -> bool:
    """Link ``dst`` to ``src``'s bytes; False where a link cannot be made (another
    filesystem, or one without links)."""
    try:
        os.link(src, dst)
    except OSError:
        return False
    return True


def _copy_rows(src: Path, dst: Path, row0: int, row1: int, n_channels: int) -> None:
    row_bytes = 2 * n_channels
    remaining = (row1 - row0) * row_bytes
    with open(src, "rb") as reader, open(dst, "wb") as writer:
        reader.seek(row0 * row_bytes)
        while remaining:
            chunk = reader.read(min(COPY_CHUNK_BYTES, remaining))
            if not chunk:
                raise OpenEphysExportError(f"{src}: ended before row {row1}")
            writer.write(chunk)
            remaining -= len(chunk)


def _write_messages(folder: Path, events: list[dict[str, Any]], fs: float) -> None:
    """Each event line as the GUI's text events (bytes, as the GUI writes them)."""
    folder.mkdir(parents=True)
    texts = [
        json.dumps(e, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        for e in events
    ]
    width = max((len(t) for t in texts), default=1)
    numbers = np.array([e["sample"] for e in events], dtype=np.int64)
    np.save(folder / "text.npy", np.array(texts, dtype=f"S{width}"))
    np.save(folder / "sample_numbers.npy", numbers)
    np.save(folder / "timestamps.npy", numbers / fs)


def _structure(rec: Any, uv_per_count: np.ndarray) -> dict[str, Any]:
    """structure.oebin: the stream, its channels and gains, the event channels."""
    fs = rec.sample_rate_hz
    centres = (rec.metadata.get("geometry") or {}).get("pair_centres_m")
    channels = []
    for k in range(rec.n_channels):
        where = f", centre {centres[k] * 1000:g} mm from the head" if centres else ""
        channels.append(
            {
                "channel_name": f"CH{k + 1}",
                "description": f"differential recording pair {k}{where}",
                "identifier": "neurorig.bipolar",
                "history": f"{PROCESSOR} -> Record Node",
                "bit_volts": float(uv_per_count[k]),
                "units": "uV",
            }
        )
    return {
        "GUI version": GUI_VERSION,
        "continuous": [
            {
                "folder_name": f"{STREAM_FOLDER}/",
                "sample_rate": fs,
                "source_processor_name": PROCESSOR,
                "source_processor_id": PROCESSOR_ID,
                "stream_name": STREAM,
                "recorded_processor": "Record Node",
                "recorded_processor_id": RECORD_NODE_ID,
                "num_channels": rec.n_channels,
                "channels": channels,
            }
        ],
        "events": [
            {
                "folder_name": f"{STREAM_FOLDER}/TTL/",
                "channel_name": STIMULUS_CHANNEL,
                "description": "stimuli delivered: line = cathode electrode + 1, on "
                "at the stimulus's sample for its duration",
                "identifier": "neurorig.stim_delivered",
                "sample_rate": fs,
                "type": "int16",
                "source_processor": PROCESSOR,
                "stream_name": STREAM,
                "initial_state": 0,
            },
            {
                "folder_name": "MessageCenter/",
                "channel_name": "Messages",
                "description": "every event of the recording (events.jsonl), one "
                "JSON object each",
                "identifier": "messagecenter.events",
                "sample_rate": fs,
                "type": "string",
                "source_processor": "Message Center",
                "stream_name": STREAM,
            },
        ],
        "spikes": [],
    }


def _sync_messages(metadata: dict[str, Any], first_sample: int, fs: float) -> str:
    created = metadata.get("created_utc")
    try:
        millis = round(dt.datetime.fromisoformat(str(created)).timestamp() * 1000)
    except ValueError:
        millis = 0  # unknown: the GUI's line is kept, with the epoch
    return (
        f"Software Time (milliseconds since midnight Jan 1st 1970 UTC): {millis}\n"
        f"Start Time for {PROCESSOR} ({PROCESSOR_ID}) - {STREAM} @ {fs:g} Hz: "
        f"{first_sample}\n"
    )
