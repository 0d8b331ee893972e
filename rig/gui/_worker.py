"""Run blocking core calls off the GUI thread; report back on the GUI thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pyqtgraph.Qt import QtCore


class _Signals(QtCore.QObject):
    done = QtCore.pyqtSignal(object)
    failed = QtCore.pyqtSignal(object)


class _Task(QtCore.QRunnable):
    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__()
        self.fn = fn
        self.signals = _Signals()

    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as exc:
            self.signals.failed.emit(exc)
        else:
            self.signals.done.emit(result)


_keep: set[_Task] = set()


def run_in_background(
    fn: Callable[[], Any],
    *,
    on_done: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
) -> None:
    """Run ``fn`` on the global QThreadPool; callbacks run on the GUI thread."""
    task = _Task(fn)
    task.setAutoDelete(False)
    _keep.add(task)

    def finish(_: object = None) -> None:
        _keep.discard(task)

    if on_done is not None:
        task.signals.done.connect(on_done)
    if on_error is not None:
        task.signals.failed.connect(on_error)
    task.signals.done.connect(finish)
    task.signals.failed.connect(finish)
    QtCore.QThreadPool.globalInstance().start(task)
