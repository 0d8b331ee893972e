"""Recordings out to the field's formats (docs/export.md).

``export_nwb(recording, out)`` writes a Neurodata Without Borders file (pynwb:
the optional extra ``neurorig[nwb]``); ``rig.export.openephys.export_openephys``
an Open Ephys binary session. Each format is one module with one ``export_*``
function; ``neurorig export`` (rig/cli/export.py) only dispatches.
"""

from rig.export._common import ExportError
from rig.export.nwb import export_nwb

__all__ = ["ExportError", "export_nwb"]
