"""Every command that opens a rig keeps a persistent log and says where."""

from __future__ import annotations

import os
from pathlib import Path

from rig.cli import _log
from tests._cli import SHORT, neurorig


def test_a_run_prints_its_log_path_and_the_log_holds_the_command(tmp_path):
    proto = tmp_path / "short.toml"
    proto.write_text(SHORT)
    logs = tmp_path / "logs"
    out = neurorig(
        "run", str(proto), "--sim", "--out", str(tmp_path / "runs"),
        env={"NEURORIG_LOG_DIR": str(logs)},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stderr.splitlines() if x.startswith("log: "))
    path = line.removeprefix("log: ")
    assert path.startswith(str(logs)) and path.endswith(".log")
    text = Path(path).read_text()
    assert f"neurorig run {proto} --sim" in text
    assert os.path.exists(path.removesuffix(".log") + ".faults")  # faulthandler's


def test_a_dry_run_opens_no_rig_and_keeps_no_log(tmp_path):
    proto = tmp_path / "short.toml"
    proto.write_text(SHORT)
    out = neurorig(
        "run", str(proto), "--dry-run", env={"NEURORIG_LOG_DIR": str(tmp_path / "logs")}
    )
    assert out.returncode == 0, out.stderr
    assert "log: " not in out.stderr and not (tmp_path / "logs").exists()


def test_only_the_newest_logs_are_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(_log, "KEEP", 3)
    for k in range(5):
        path = tmp_path / f"{k}.log"
        path.write_text("x")
        os.utime(path, (k, k))
    _log._prune(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.log")) == ["2.log", "3.log", "4.log"]


def test_a_folder_that_cannot_be_made_warns_and_the_command_goes_on(
    tmp_path, monkeypatch, capsys
):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("NEURORIG_LOG_DIR", str(blocker / "logs"))
    assert _log.start_session_log("run", ["run"]) is None
    assert "warning: no session log" in capsys.readouterr().err
