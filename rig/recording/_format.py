"""Names and versions of the recording format (docs/recording-format.md)."""

from __future__ import annotations

FORMAT_NAME = "neurorig-recording"
SCHEMA_VERSION = 1

METADATA = "metadata.json"  # replaced atomically (write temp, fsync, rename)
LOCK = "samples.i16"  # a live writer holds an exclusive flock on it
SAMPLES = "samples.i16"  # int16 little-endian, interleaved (n_rows, n_channels)
INDEX = "index.jsonl"  # runs of contiguous samples and gaps, one JSON per line
EVENTS = "events.jsonl"  # one JSON object per line: sample, kind, fields
VIDEO = "video.mkv"  # grayscale frames: FFV1 (lossless) or Motion JPEG
FRAMES = "frames.csv"  # frame_index, host_time_s, camera_frame_number (as they arrive)
FRAME_SAMPLES = "frame_samples.csv"  # frame_index, sample, source, trigger_count
# (appended as rows are established, the last row of a frame wins; or written whole)
TRACKING = "tracking.jsonl"  # the live tracking of each recorded frame, one JSON
# per line (appended as frames are tracked; the last line of a frame wins)
RESERVE = "metadata.reserve"  # disk space held for the last metadata; gone at close
ATTACHMENTS = "attachments"  # copies of protocol and calibration files

SAMPLE_DTYPE = "<i2"
