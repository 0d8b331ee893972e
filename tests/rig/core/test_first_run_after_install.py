"""The first run after an install: Numba has compiled nothing yet.

Compiling the online analysis's kernels takes ~10 s and holds the GIL. Done at
the first stimulus, with the board armed, it stalled the host long enough for
the board to latch HOST_LOSS, and the protocol ended at trial 1 (seen in CI on
a fresh clone; reproduced with an empty Numba cache). The session now compiles
them before streaming and arming (``OnlineStimulusAnalyzer.warm_up``).
"""

from __future__ import annotations

import json

import numpy as np

from analysis.online import OnlineStimulusAnalyzer
from tests._cli import SHORT, neurorig

PAIRS_M = np.array([0.0375, 0.0575, 0.0775, 0.0975])


def test_a_run_with_nothing_compiled_completes(tmp_path):
    protocol = tmp_path / "short.toml"
    protocol.write_text(SHORT)
    cache = tmp_path / "numba-cache"  # empty: everything compiles in this run
    cache.mkdir()
    done = neurorig(
        "run", str(protocol), "--sim", "--out", str(tmp_path / "runs"),
        timeout=300, env={"NUMBA_CACHE_DIR": str(cache)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "HOST_LOSS" not in done.stdout + done.stderr
    assert any(cache.rglob("*.nbi"))  # it did compile, into the empty cache


def test_warming_up_leaves_the_analyser_as_it_was():
    analyser = OnlineStimulusAnalyzer(
        fs_hz=30_000.0, n_channels=4, positions_m=PAIRS_M, sites_m=[0.004, 0.067]
    )
    analysed = analyser.warm_up()
    # one stimulus from the head end, one about the mid-body site
    assert len(analysed) == 2
    assert analyser.pulse_memory.known(2e-3) is None
    assert analyser._buffer.shape == (0, 4) and not analyser._pending
    head_only = OnlineStimulusAnalyzer(
        fs_hz=30_000.0, n_channels=4, positions_m=PAIRS_M
    )
    assert len(head_only.warm_up()) == 1
    json.dumps(analysed[0][1].to_dict(), default=float)  # a result like any other


def test_a_warm_up_that_fails_is_said_and_the_session_goes_on(caplog, monkeypatch):
    from rig.core.live_analysis import LiveAnalysis
    from rig.core.online_analysis import OnlineResponses

    def broken(self):
        raise ValueError("synthetic epoch refused")

    monkeypatch.setattr(OnlineStimulusAnalyzer, "warm_up", broken)
    live = LiveAnalysis.__new__(LiveAnalysis)
    live.online = OnlineResponses(
        fs_hz=30_000.0, n_channels=4, positions_m=PAIRS_M, uv_per_count=0.1,
        emit=lambda *a: None,
    )  # fmt: skip
    with caplog.at_level("WARNING"):
        live.warm_up()  # no exception
    assert "could not be prepared (synthetic epoch refused)" in caplog.text
