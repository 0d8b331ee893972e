"""Figure export: every plot of a view as PNG or SVG, for a lab book or a paper.

pyqtgraph's own exporters render the plots (the same drawing as on screen, at
the widget's size); a view with several plots writes one file per plot, named
``<name>-<k>.<suffix>``.
"""

from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
import pyqtgraph.exporters as exporters
from pyqtgraph.Qt import QtWidgets

SUFFIXES = (".png", ".svg")


def plots_in(view: QtWidgets.QWidget) -> list[pg.GraphicsView]:
    """The visible plot canvases of ``view`` (in on-screen order)."""
    found = [view] if isinstance(view, pg.GraphicsView) else []
    found += [w for w in view.findChildren(pg.GraphicsView) if w.isVisibleTo(view)]
    return found


def export_view(view: QtWidgets.QWidget, path: str | Path) -> list[Path]:
    """Write every plot of ``view`` to ``path`` (.png or .svg); returns the files.

    Raises ValueError naming the suffixes allowed, or when the view has no plot.
    """
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise ValueError(
            f"figure file {path.name}: suffix {path.suffix or '(none)'} is not "
            f"one of {', '.join(SUFFIXES)}"
        )
    canvases = plots_in(view)
    if not canvases:
        raise ValueError("this view has no plot to export")
    written = []
    for k, canvas in enumerate(canvases):
        target = (
            path
            if len(canvases) == 1
            else path.with_name(f"{path.stem}-{k + 1}{path.suffix}")
        )
        item = canvas.scene()
        exporter = (
            exporters.SVGExporter(item)
            if path.suffix.lower() == ".svg"
            else exporters.ImageExporter(item)
        )
        exporter.export(str(target))
        written.append(target)
    return written
