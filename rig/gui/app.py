"""``neurorig gui``: build the QApplication and the main window."""

from __future__ import annotations

import functools
import sys
from typing import Any

from pyqtgraph.Qt import QtCore, QtWidgets


def default_session_factory(
    url: str, *, camera: str | None = None, rig: Any = None, calibrations: Any = None
):
    """Open and start a Session for ``url``.

    ``camera``: an index, a video file or "sim"; by default the simulated camera
    on the simulated rig and none on a board. ``rig``: a ``RigDescription``
    (limits and geometry; default: the built-in limits). ``calibrations``: a
    ``CalibrationSet``.
    """
    from rig.core.connect import SIM_SCHEME, open_rig

    if camera is None and url.startswith(SIM_SCHEME):
        camera = "sim"
    session = open_rig(url, camera=camera, rig=rig, calibrations=calibrations)
    try:
        session.start()
    except BaseException:
        session.close()
        raise
    return session


def install_error_hook(window) -> None:
    """Show an exception escaping a Qt slot in the window (and the log), not as a
    bare traceback on the console; acquisition and recording carry on."""
    import logging

    log = logging.getLogger("rig.gui")

    def hook(exc_type, exc, tb) -> None:
        log.error("unhandled error in the GUI", exc_info=(exc_type, exc, tb))
        window.show_error(f"internal error ({exc_type.__name__}): {exc}")

    sys.excepthook = hook


def run_app(args) -> int:
    """Run the GUI; with --screenshot, render the window to a PNG after --after s."""
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    from rig.gui.main_window import MainWindow

    window = MainWindow(
        session_factory=functools.partial(
            default_session_factory,
            camera=args.camera,
            rig=args.rig_description,
            calibrations=args.calibration_set,
        ),
        protocol=getattr(args, "protocol", None),
        remote_bind=getattr(args, "remote", None) or "127.0.0.1:5555",
        remote=getattr(args, "remote", None) is not None,
    )
    install_error_hook(window)
    window.show()
    if args.connect_to:  # e.g. the simulated rig in its own process (--sim)
        window.connect_to(args.connect_to)
    if args.screenshot:

        def shoot() -> None:
            window.grab().save(args.screenshot)
            print(f"screenshot: {args.screenshot}")
            window.close()
            app.quit()

        QtCore.QTimer.singleShot(int(args.after * 1000), shoot)
    return app.exec_()
