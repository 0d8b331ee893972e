"""Any recording neo reads (Open Ephys binary and legacy, Intan, Spike2, ABF, EDF,
Blackrock, BrainVision, ...) as a ``Source`` for the offline pipeline, with an
event channel of the file as the stimuli (docs/analysis.md, "Other formats").

neo is an optional extra (``pip install 'neurorig[neo]'``). The reader is chosen
by the input's shape and suffix (``rawio_for``); the user names the event channel
that marks stimuli when the file has more than one, and the electrode positions
(a file of another system carries none). Traces are read lazily, one stimulus's
epoch at a time, in µV from the file's own gains and units. Each neo segment is
placed on one sample axis by its start time, so samples between segments are
lost samples, as in a neurorig recording.
"""

from __future__ import annotations

import itertools
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis.artifact import MARKER_ONSET_SEARCH_S, ONSET_SEARCH_S
from analysis.pipeline import Stimulus
from rig.offline.load import Source
from rig.rig_file import positions_from_option

# Readers by suffix: the common formats of the field, named so that a file is
# never read by a reader that merely shares its suffix. Others fall back to
# neo's own guess (neo.rawio.get_rawio).
READERS_BY_SUFFIX = {
    ".oebin": "OpenEphysBinaryRawIO",
    ".continuous": "OpenEphysRawIO",
    ".rhd": "IntanRawIO",
    ".rhs": "IntanRawIO",
    ".smr": "Spike2RawIO",
    ".abf": "AxonRawIO",
    ".edf": "EDFRawIO",
    ".bdf": "EDFRawIO",
    ".vhdr": "BrainVisionRawIO",
    ".ns5": "BlackrockRawIO",
    ".ns6": "BlackrockRawIO",
    ".nev": "BlackrockRawIO",
}
# Formats read from the folder a file of theirs is in.
READ_BY_FOLDER = {"OpenEphysBinaryRawIO", "OpenEphysRawIO"}
# Formats whose events carry sample numbers (TTL lines stamped by the
# acquisition board): their onsets are exact, the narrow onset search fits.
SAMPLE_STAMPED = {"OpenEphysBinaryRawIO", "OpenEphysRawIO"}
DEFAULT_STIMULUS_CHANNEL = "stimuli"  # the name neurorig's Open Ephys export gives


class NeoInputError(ValueError):
    """A file neo cannot give the pipeline; the message names the file and why."""


def rawio_for(path: Path) -> Any:
    """An unparsed neo RawIO for ``path``, chosen by its shape and suffix."""
    if not path.exists():
        raise NeoInputError(f"{path}: no such file or folder")
    name = None
    target = path
    if path.is_dir():
        if next(path.rglob("structure.oebin"), None) is not None:
            name = "OpenEphysBinaryRawIO"
        elif next(path.glob("*.continuous"), None) is not None:
            name = "OpenEphysRawIO"
    else:
        name = READERS_BY_SUFFIX.get(path.suffix.lower())
        if name in READ_BY_FOLDER:
            target = path.parent
    unknown = (
        f"{path}: not a neurorig recording (no metadata.json), a Spike Recorder "
        "WAV, nor a format neo recognises by its suffix (e.g. "
        f"{', '.join(sorted(READERS_BY_SUFFIX))} or an Open Ephys folder)"
    )
    if name is None and path.is_dir():
        raise NeoInputError(unknown)
    try:
        import neo.rawio
    except ImportError:
        raise NeoInputError(
            f"{path}: reading this format needs neo: pip install 'neurorig[neo]'"
        ) from None
    cls = getattr(neo.rawio, name) if name else neo.rawio.get_rawio(path)
    if cls is None or isinstance(cls, list):
        raise NeoInputError(unknown)
    key = "dirname" if cls.rawmode == "one-dir" else "filename"
    return cls(**{key: str(target)})


@dataclass(frozen=True, slots=True)
class _Segment:
    index: int
    first: int  # sample number of its first sample on the one axis
    n: int


def load_neo(
    path: Path,
    *,
    electrode_positions_mm: str | None,
    stimulus_channel: str | None = None,
    stimulus_markers: str | None = None,
    marker_map: str | Path | None = None,
    pulse_duration_ms: float | None = None,
    stream: str | None = None,
    channels: str | None = None,
) -> Source:
    """A file or folder neo reads (options as ``neurorig analyze`` names them)."""
    path = Path(path)
    reader = rawio_for(path)  # first: what the input is not is the first thing to say
    if not electrode_positions_mm:
        raise NeoInputError(
            f"{path}: a file of another system carries no electrode geometry; give "
            "--electrode-positions-mm A,B,... (one position per channel, mm)"
        )
    try:
        reader.parse_header()
    except Exception as exc:  # a third-party reader raises anything on a bad file
        raise NeoInputError(
            f"{path}: neo's {type(reader).__name__} could not read it ({exc})"
        ) from None
    if reader.block_count() != 1:
        raise NeoInputError(
            f"{path}: holds {reader.block_count()} blocks (experiments); neurorig "
            "analyses one at a time: give the folder of one experiment"
        )
    stream_index = _stream(reader, path, stream)
    chan_indexes, chan_ids = _channels(reader, path, stream_index, channels)
    fs = float(reader.get_signal_sampling_rate(stream_index))
    positions = np.array(positions_from_option(electrode_positions_mm, len(chan_ids)))
    factor = _uv_factors(reader, path, stream_index, chan_indexes)
    segments = _segments(reader, path, stream_index, fs)

    def read_uv(first: int, n: int):
        for seg in segments:
            if seg.first <= first and first + n <= seg.first + seg.n:
                i0 = first - seg.first
                raw = reader.get_analogsignal_chunk(
                    0, seg.index, i0, i0 + n, stream_index, chan_indexes
                )
                volts = reader.rescale_signal_raw_to_float(
                    raw, "float64", stream_index, chan_indexes
                )
                return volts * factor
        return None  # outside the data, or across a boundary between segments

    stimuli = _stimuli(
        reader, path, fs, stimulus_channel, stimulus_markers, marker_map,
        pulse_duration_ms,
    )  # fmt: skip
    return Source(
        name=str(path),
        fs_hz=fs,
        n_channels=len(chan_ids),
        positions_m=positions,
        stimuli=stimuli,
        read_uv=read_uv,
        first_sample=segments[0].first,
        clip_uv=_rails_uv(reader, stream_index, chan_indexes, factor),
        onset_search_s=ONSET_SEARCH_S
        if type(reader).__name__ in SAMPLE_STAMPED
        else MARKER_ONSET_SEARCH_S,
    )


def _stream(reader: Any, path: Path, wanted: str | None) -> int:
    streams = reader.header["signal_streams"]
    names, ids = list(streams["name"]), list(streams["id"])
    if not names:
        raise NeoInputError(f"{path}: holds no continuous signals")
    if wanted is not None:
        for k, (name, sid) in enumerate(zip(names, ids, strict=True)):
            if wanted in (name, sid):
                return k
        raise NeoInputError(
            f"--stream {wanted!r}: {path} has no such stream; allowed: {_listed(names)}"
        )
    if len(names) > 1:
        raise NeoInputError(
            f"{path}: {len(names)} signal streams; choose one with --stream NAME: "
            f"{_listed(names)}"
        )
    return 0


def _channels(
    reader: Any, path: Path, stream_index: int, wanted: str | None
) -> tuple[np.ndarray | None, list[str]]:
    """Indexes within the stream (None: all) and the channels' names."""
    stream_id = reader.header["signal_streams"]["id"][stream_index]
    mine = reader.header["signal_channels"]
    mine = mine[mine["stream_id"] == stream_id]
    names, ids = list(mine["name"]), list(mine["id"])
    if not wanted:
        return None, names
    picked = []
    for item in (v.strip() for v in wanted.split(",")):
        if item in names:
            picked.append(names.index(item))
        elif item in ids:
            picked.append(ids.index(item))
        elif item.isdigit() and int(item) < len(names):
            picked.append(int(item))
        else:
            raise NeoInputError(
                f"--channels: {item!r} is not a channel of {path}'s stream; allowed "
                f"names, ids or indexes 0–{len(names) - 1}: {_listed(names)}"
            )
    return np.array(picked), [names[k] for k in picked]


def _uv_factors(
    reader: Any, path: Path, stream_index: int, chan_indexes: np.ndarray | None
) -> np.ndarray:
    """µV per unit of each channel's physical unit; only voltages are accepted."""
    import quantities as pq

    stream_id = reader.header["signal_streams"]["id"][stream_index]
    mine = reader.header["signal_channels"]
    mine = mine[mine["stream_id"] == stream_id]
    if chan_indexes is not None:
        mine = mine[chan_indexes]
    factors = []
    for name, unit in zip(mine["name"], mine["units"], strict=True):
        try:
            factor = float(pq.Quantity(1.0, str(unit)).rescale(pq.uV).magnitude)
        except (LookupError, ValueError):
            raise NeoInputError(
                f"{path}: channel {name!r} is in {unit!r}; allowed a voltage (V, mV, "
                "uV): choose the recording channels with --channels"
            ) from None
        factors.append(factor)
    return np.array(factors)


def _rails_uv(
    reader: Any, stream_index: int, chan_indexes: np.ndarray | None, factor: np.ndarray
) -> np.ndarray | None:
    """Where each channel's stored integers clip, in µV (None for float data)."""
    stream_id = reader.header["signal_streams"]["id"][stream_index]
    mine = reader.header["signal_channels"]
    mine = mine[mine["stream_id"] == stream_id]
    if chan_indexes is not None:
        mine = mine[chan_indexes]
    rails = []
    for dtype, gain, offset in zip(
        mine["dtype"], mine["gain"], mine["offset"], strict=True
    ):
        kind = np.dtype(dtype)
        if kind.kind not in "iu":
            return None
        info = np.iinfo(kind)
        rails.append(min(abs(info.max * gain + offset), abs(info.min * gain + offset)))
    return np.array(rails) * np.abs(factor)


def _segments(reader: Any, path: Path, stream_index: int, fs: float) -> list[_Segment]:
    segments = []
    for seg in range(reader.segment_count(0)):
        t_start = float(reader.get_signal_t_start(0, seg, stream_index))
        n = int(reader.get_signal_size(0, seg, stream_index))
        if n:
            segments.append(_Segment(seg, round(t_start * fs), n))
    if not segments:
        raise NeoInputError(f"{path}: its signal stream holds no samples")
    segments.sort(key=lambda s: s.first)
    for a, b in itertools.pairwise(segments):
        if b.first < a.first + a.n:
            raise NeoInputError(
                f"{path}: segments {a.index} and {b.index} overlap in time; allowed "
                "segments one after another on one clock"
            )
    return segments


def _stimuli(
    reader: Any,
    path: Path,
    fs: float,
    wanted: str | None,
    markers: str | None,
    marker_map: str | Path | None,
    pulse_duration_ms: float | None,
) -> list[Stimulus]:
    from rig.offline.spike_recorder import read_marker_map

    channel = _event_channel(reader, path, wanted)
    times, durations, labels = [], [], []
    for seg in range(reader.segment_count(0)):
        ts, dur, lab = reader.get_event_timestamps(0, seg, channel)
        times += reader.rescale_event_timestamp(ts, "float64", channel).tolist()
        if dur is None:
            durations += [math.nan] * len(ts)
        else:
            durations += reader.rescale_epoch_duration(dur, "float64", channel).tolist()
        labels += [str(v) for v in lab]
    name = str(reader.header["event_channels"]["name"][channel])
    chosen = None
    if markers:
        chosen = {v.strip() for v in markers.split(",") if v.strip()}
        if not chosen:
            raise NeoInputError(
                f"--stimulus-markers {markers!r}: give labels, e.g. 1,2"
            )
    keep = [chosen is None or label in chosen for label in labels]
    if chosen is not None and not all(keep):
        ignored = sorted(
            {label for label, k in zip(labels, keep, strict=True) if not k}
        )
        print(
            f"note: {keep.count(False)} events of {name!r} are not stimuli and were "
            f"ignored (labels {_listed(ignored)})",
            file=sys.stderr,
        )
    if not any(keep):
        found = _listed(sorted(set(labels))) if labels else "none"
        raise NeoInputError(
            f"{path}: no stimuli in event channel {name!r}"
            + (f" with labels {markers}" if chosen is not None else "")
            + f" (labels found: {found})"
        )
    mapping = read_marker_map(marker_map) if marker_map else {}
    stimuli = []
    for t, d, label, k in sorted(zip(times, durations, labels, keep, strict=True)):
        if not k:
            continue
        params = mapping.get(label)
        if params is None and mapping:
            raise NeoInputError(
                f"{marker_map}: label {label!r} of event channel {name!r} is not "
                "in the marker map"
            )
        duration = params.duration_s if params and params.duration_s else None
        if duration is None and math.isfinite(d) and round(d * fs) > 0:
            # the file's own on/off (a TTL's, an epoch's), in whole samples as
            # it was sampled (a difference of two float times is not)
            duration = round(d * fs) / fs
        if duration is None and pulse_duration_ms:
            duration = pulse_duration_ms / 1000.0
        stimuli.append(
            Stimulus(
                round(t * fs),
                params.amplitude_vpp if params else math.nan,
                math.nan if duration is None else duration,
                params.configuration if params else "C0-A1",
            )
        )
    return stimuli


def _event_channel(reader: Any, path: Path, wanted: str | None) -> int:
    channels = reader.header["event_channels"]
    names, ids = list(channels["name"]), list(channels["id"])
    if not names:
        raise NeoInputError(
            f"{path}: holds no event channel; the stimuli must be events or epochs "
            "of the file"
        )
    if wanted is not None:
        for k, (name, cid) in enumerate(zip(names, ids, strict=True)):
            if wanted in (name, cid):
                return k
        raise NeoInputError(
            f"--stimulus-channel {wanted!r}: {path} has no such event channel; "
            f"allowed: {_listed(names)}"
        )
    if len(names) == 1:
        return 0
    if DEFAULT_STIMULUS_CHANNEL in names:
        return names.index(DEFAULT_STIMULUS_CHANNEL)
    raise NeoInputError(
        f"{path}: {len(names)} event channels; name the one that marks stimuli "
        f"with --stimulus-channel NAME: {_listed(names)}"
    )


def _listed(names: list[Any], limit: int = 12) -> str:
    shown = ", ".join(repr(str(n)) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
