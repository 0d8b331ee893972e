"""``neurorig gui``: build the QApplication and the main window."""

from __future__ import annotations

import sys

from pyqtgraph.Qt import QtCore, QtWidgets


def default_session_factory(url: str, *, camera: str | None = "sim"):
    """Open and start a Session for ``url`` (with the simulated camera on sim://)."""
    from firmware_bridge.device import Device
    from rig.core.camera import open_camera
    from rig.core.session import Session
    from rig.safety import default_safety_limits

    device = Device.open(url)
    cam = open_camera(camera, device=device) if camera and device.sim_rig else None
    session = Session(device, camera=cam, safety=default_safety_limits())
    session.start()
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

    window = MainWindow(session_factory=default_session_factory)
    install_error_hook(window)
    window.show()
    if args.sim:
        window.connect_to(f"sim://?seed={args.seed}")
    if args.screenshot:

        def shoot() -> None:
            window.grab().save(args.screenshot)
            print(f"screenshot: {args.screenshot}")
            window.close()
            app.quit()

        QtCore.QTimer.singleShot(int(args.after * 1000), shoot)
    return app.exec_()
