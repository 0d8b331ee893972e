"""Log pruning when another neurorig process removed a log meanwhile."""

from __future__ import annotations

import os

from rig.cli import _log


def test_a_log_gone_between_listing_and_stat_is_skipped(tmp_path):
    for i in range(_log.KEEP + 3):
        path = tmp_path / f"2026{i:04d}-run.log"
        path.write_text("x")
        os.utime(path, (i, i))
    # listed by the glob, gone at the stat (as a log another process pruned)
    (tmp_path / "gone.log").symlink_to(tmp_path / "nowhere")
    _log._prune(tmp_path)  # no FileNotFoundError
    kept = sorted(p.name for p in tmp_path.glob("2026*.log"))
    assert len(kept) == _log.KEEP and kept[0] == "20260003-run.log"
