"""``sim://`` URL options are checked by name, with what is allowed.

(One session per board, the port opened exclusively, is a behaviour of any
board's port: tests/behaviour/test_handshake.py.)
"""

from __future__ import annotations

import pytest

from rig.core.connect import open_rig


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sim://?channels=0", "channels=0: allowed 1–32"),
        ("sim://?rate=7", "rate=7: allowed 10000, 20000, 30000, 40000 Hz"),
        ("sim://?seed=x", "seed='x' is not a whole number"),
    ],
)
def test_sim_url_options_are_checked(url, message):
    with pytest.raises(ValueError, match=message):
        open_rig(url)
