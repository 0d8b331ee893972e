"""The recording format: crash-safe writer and memory-mapped reader.

See docs/recording-format.md. ``rig.recording.open(path)`` reads a recording back.
"""

from rig.recording._reader import (
    Recording,
    RecordingFormatError,
    SavedTracking,
    VideoFrames,
    open_recording,
)
from rig.recording._video import VideoStorage, VideoStorageError
from rig.recording._writer import (
    DiskFullError,
    RecordingStopped,
    RecordingWriter,
    WriterStats,
)

open = open_recording

__all__ = [
    "DiskFullError",
    "Recording",
    "RecordingFormatError",
    "RecordingStopped",
    "RecordingWriter",
    "SavedTracking",
    "VideoFrames",
    "VideoStorage",
    "VideoStorageError",
    "WriterStats",
    "open",
    "open_recording",
]
