"""What every recording's metadata says about the rig, the software and the run."""

from __future__ import annotations

import datetime as dt
import functools
import platform
import subprocess
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from rig.recording.subject import SessionInfo, Subject


@functools.cache  # (read from the package's metadata: ~3 ms a call)
def software_version() -> str:
    """Installed neurorig version."""
    try:
        return importlib_metadata.version("neurorig")
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


def git_revision() -> str | None:
    """Git commit of the source tree, if it is a checkout (with '+dirty')."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("+dirty" if dirty else "")


def build_metadata(session: Any, *, protocol_path: str | None = None) -> dict[str, Any]:
    """Metadata for a new recording of ``session``."""
    device = session.device
    info = device.info.to_dict() if device.info is not None else None
    rig = session.rig  # rig.rig_file.RigDescription: the one geometry
    calibrations = getattr(session, "calibrations", None)
    return {
        "created_utc": dt.datetime.now(dt.UTC).isoformat(),
        "software": {
            "name": "neurorig",
            "version": software_version(),
            "git_revision": git_revision(),
            "python": platform.python_version(),
            "host": platform.node(),
        },
        "board": info,
        "simulated": rig.simulated,
        "acquisition": {
            "sample_rate_hz": session.sample_rate_hz,
            "n_channels": session.n_channels,
            "gain": session.gain,
            "volts_per_count_nominal": (
                device.info.volts_per_count(session.gain) if device.info else None
            ),
        },
        "geometry": rig.geometry(),
        "calibrations": calibrations.to_metadata() if calibrations else None,
        "protocol_file": Path(protocol_path).name if protocol_path else None,
        **subject_metadata(session),
        "camera": {
            "source": str(getattr(session.camera, "source", None))
            if session.camera is not None
            else None,
            "trigger_rate_hz": session.camera_rate_hz
            if session.camera is not None
            else None,
        },
    }


def subject_metadata(session: Any) -> dict[str, Any]:
    """``subject`` and ``session`` for metadata.json: what ``session`` (a
    rig.core Session) says of the worm and the run, from the rig file's
    defaults, the ``run`` options or a script (rig.recording.subject)."""
    subject = getattr(session, "subject", None) or Subject()
    info = getattr(session, "session_info", None) or SessionInfo()
    return {"subject": subject.to_dict(), "session": info.to_dict()}
