"""A persistent log for every session a command opens on a rig.

Whatever a run, the GUI, a calibration or the self-test logs (INFO and above,
every thread) goes to a rotating file that outlives the terminal, and a hard
crash (segfault, deadlock dump) goes to a ``.faults`` file beside it via
``faulthandler``. The path is printed when the command starts, so a scientist
can attach it to a report. Folder: ``$NEURORIG_LOG_DIR``, else
``$XDG_STATE_HOME/neurorig/logs``, else ``~/.local/state/neurorig/logs``; the
newest ``KEEP`` logs are kept.
"""

from __future__ import annotations

import atexit
import datetime as dt
import faulthandler
import logging
import os
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path

KEEP = 50  # log files kept in the folder (older ones are removed)
MAX_BYTES = 10 * 1024 * 1024  # per file before it rotates (3 kept)


def log_folder() -> Path:
    """Where session logs go."""
    if os.environ.get("NEURORIG_LOG_DIR"):
        return Path(os.environ["NEURORIG_LOG_DIR"])
    state = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(state) / "neurorig" / "logs"


def start_session_log(command: str, argv: list[str]) -> Path | None:
    """Start logging to a new file; returns its path (None if it cannot be made:
    a read-only home is no reason to refuse to run)."""
    folder = log_folder()
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = folder / f"{stamp}-{command}-{os.getpid()}.log"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=3)
        faults = open(path.with_suffix(".faults"), "a")
    except OSError as exc:
        print(f"warning: no session log ({exc})", file=sys.stderr)
        return None
    _stop_previous()
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s %(threadName)s %(levelname)s %(name)s: %(message)s"
        )
    )
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
        # the console keeps showing warnings only, as before
        for other in root.handlers:
            if other is not handler and other.level == logging.NOTSET:
                other.setLevel(logging.WARNING)
    faulthandler.enable(file=faults, all_threads=True)
    if not _active and not _registered:
        atexit.register(_stop_previous)  # closed at exit, not left to the GC
        _registered.append(True)
    _active.append((handler, faults))
    logging.getLogger("rig").info(
        "neurorig %s (%s)", " ".join(argv), sys.version.split()[0]
    )
    _prune(folder)
    return path


# The log this process writes now (a script or a test may run several
# commands in one process: each gets its own file, the previous one is closed).
_active: list[tuple[logging.Handler, object]] = []
_registered: list[bool] = []


def _stop_previous() -> None:
    while _active:
        handler, faults = _active.pop()
        logging.getLogger().removeHandler(handler)
        handler.close()
        if faulthandler.is_enabled():
            faulthandler.disable()
        faults.close()  # type: ignore[attr-defined]


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:  # pruned meanwhile by another neurorig process
        return None


def _prune(folder: Path) -> None:
    # Several neurorig commands may start at once and prune the same folder:
    # a log another one removed between the listing and the stat is skipped
    # (it crashed `neurorig serve` at start in CI: FileNotFoundError).
    dated = [(t, p) for p in folder.glob("*.log") if (t := _mtime(p)) is not None]
    logs = [p for _, p in sorted(dated)]
    for old in logs[:-KEEP]:
        for p in (old, old.with_suffix(".faults")):
            try:
                p.unlink()
            except OSError:
                pass
