"""Resume a protocol where a recording of it stopped (a fault, an unplug, a
crash): the trials it did not deliver, into a new recording linked to it.

The first recording must have run this same protocol (its attached copy is
compared byte for byte); trials it delivered are those with a ``trial`` event.
The remaining trials keep their indices and their spacing; the new recording's
metadata says ``resumed_from`` (the first recording's folder and the first trial
of this one), so an analysis can join the two.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rig.recording
from rig.recording import RecordingFormatError


class ResumeError(ValueError):
    """The recording cannot be resumed with this protocol (names why)."""


@dataclass(frozen=True)
class Resumption:
    """What is left of a plan after a recording of it."""

    recording: Path
    first_trial: int  # index of the first trial not delivered
    trials: tuple[Any, ...]  # the rest, onsets shifted to start at 0

    def metadata(self) -> dict[str, Any]:
        """The ``resumed_from`` entry of the new recording's metadata."""
        return {"recording": str(self.recording), "first_trial": self.first_trial}


def resume_plan(
    recording: str | Path, protocol_path: str | Path, plan: Any
) -> Resumption:
    """The trials of ``plan`` that ``recording`` did not deliver."""
    folder = Path(recording)
    if plan is None:
        raise ResumeError(
            "--resume: a closed-loop protocol cannot be resumed (its search starts "
            "again); run it anew"
        )
    try:
        rec = rig.recording.open(folder)
    except (RecordingFormatError, OSError, ValueError) as exc:
        raise ResumeError(f"--resume {folder}: {exc}") from None
    attached = folder / "attachments" / Path(protocol_path).name
    if not attached.is_file():
        raise ResumeError(
            f"--resume {folder}: it holds no copy of {Path(protocol_path).name}; "
            "allowed: a recording of this same protocol file"
        )
    if attached.read_bytes() != Path(protocol_path).read_bytes():
        raise ResumeError(
            f"--resume {folder}: it ran a different version of "
            f"{Path(protocol_path).name}; allowed: the same protocol file"
        )
    done = [int(e["index"]) for e in rec.events_of("trial")]
    first = max(done, default=-1) + 1
    if first >= plan.n_trials:
        raise ResumeError(
            f"--resume {folder}: all {plan.n_trials} trials were delivered; "
            "nothing to resume"
        )
    rest = plan.trials[first:]
    start_s = rest[0].onset_s
    shifted = tuple(dataclasses.replace(t, onset_s=t.onset_s - start_s) for t in rest)
    return Resumption(recording=folder, first_trial=first, trials=shifted)
