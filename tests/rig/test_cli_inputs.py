"""Bad command-line options get one line naming the option and what is allowed,
never a traceback and never a silent fallback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from firmware_bridge.sim.cli import build_parser as sim_parser
from rig.cli import main
from tests._cli import ROOT, SHORT


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "protocols/mapping.toml", "--dry-run"],
        ["selftest", "latency", "--sim"],
        ["gui"],
    ],
)
def test_electrode_positions_must_match_the_channel_count(capsys, argv):
    status = main([*argv, "--electrode-positions-mm", "35,55,75"])
    assert status == 2
    err = _error(capsys)
    assert "--electrode-positions-mm 35,55,75: gives 3 positions for 4 channels" in err


def test_positions_that_are_not_numbers_are_refused_by_selftest(capsys):
    assert main(["selftest", "latency", "--sim", "--electrode-positions-mm", "a,b"])
    assert "comma-separated numbers" in _error(capsys)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--channels", "0"], "argument --channels: 0: allowed 1–32"),
        (["--channels", "33"], "argument --channels: 33: allowed 1–32"),
        (["--rate", "7"], "choose from 10000, 20000, 30000, 40000"),
    ],
)
def test_sim_channels_and_rate_are_checked(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        sim_parser().parse_args(argv)
    assert info.value.code == 2
    assert message in _error(capsys)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["analyze", "x.wav", "--px-per-mm", "0"], "argument --px-per-mm: 0 must be"),
        (["analyze", "x.wav", "--px-per-mm", "nan"], "argument --px-per-mm: nan"),
        (["selftest", "latency", "--sim", "--n", "0"], "argument --n: 0: allowed"),
    ],
)
def test_numbers_that_would_fall_back_silently_are_refused(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in _error(capsys)


def test_an_existing_file_as_out_is_refused_before_the_board(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("")
    protocol = tmp_path / "short.toml"
    protocol.write_text(SHORT)
    assert main(["run", str(protocol), "--sim", "--out", str(taken)]) == 2
    assert f"--out {taken} is an existing file; allowed: a folder" in _error(capsys)
    assert main(["calibrate", "gain", "--sim", "--out", str(taken / "sub")]) == 2
    assert f"is inside {taken}, which is an existing file" in _error(capsys)
    assert main(["analyze", str(tmp_path), "--report", str(taken)]) == 2
    assert f"--report {taken} is an existing file" in _error(capsys)
    assert main(["analyze", str(tmp_path), "--json", str(tmp_path)]) == 2
    assert "is a folder; allowed: a file name" in _error(capsys)


def test_a_reader_that_stops_early_gets_no_broken_pipe_traceback():
    proc = subprocess.Popen(
        [sys.executable, "-m", "rig.cli", "run", "protocols/mapping.toml", "--dry-run"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # as `| head -0`: every write finds the pipe closed
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert err == ""
