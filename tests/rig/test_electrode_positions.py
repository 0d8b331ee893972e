"""``--electrode-positions-mm`` is read by one function, so ``run``, ``gui``,
``selftest`` and ``analyze`` (a recording folder or a WAV) refuse the same text
with the same line."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import rig.recording
from rig.cli import main
from rig.offline.load import load_recording, load_wav
from rig.offline.spike_recorder import write_spike_recorder
from rig.rig_file import RigDescription, RigFileError, positions_from_option

NOT_NUMBERS = (
    "--electrode-positions-mm 'a,b': give comma-separated numbers (pair centres "
    "along the body, mm), e.g. 37.5,57.5,77.5,97.5"
)
THREE_FOR_FOUR = (
    "--electrode-positions-mm 35,55,75: gives 3 positions for 4 channels; allowed "
    "exactly 4, one per recording pair"
)
OUT_OF_RANGE = (
    "--electrode-positions-mm = [30.0, -5.0, 40.0, 50.0]: allowed 1–32 different "
    "positions, each 0–1000 mm from the head"
)


@pytest.fixture
def wav(tmp_path):
    """A 4-channel Spike Recorder pair with one stimulus marker."""
    path = tmp_path / "worm.wav"
    write_spike_recorder(
        path, np.zeros((2000, 4), dtype=np.int16), 10_000, [("1", 0.1)]
    )
    return path


@pytest.fixture
def recording_of_4(monkeypatch, tmp_path):
    """A 4-channel recording folder as far as the positions are concerned (they are
    read before anything else of the recording)."""
    fake = SimpleNamespace(metadata={}, n_channels=4)
    monkeypatch.setattr(rig.recording, "open", lambda path: fake)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "message"),
    [("a,b", NOT_NUMBERS), ("35,55,75", THREE_FOR_FOUR), ("30,-5,40,50", OUT_OF_RANGE)],
)
def test_every_reader_refuses_the_same_text_with_the_same_line(
    wav, recording_of_4, text, message
):
    readers = [
        lambda: positions_from_option(text, 4),
        lambda: RigDescription().with_positions_mm(text, 4),
        lambda: load_wav(wav, electrode_positions_mm=text),
        lambda: load_recording(recording_of_4, electrode_positions_mm=text),
    ]
    for read in readers:
        with pytest.raises(RigFileError) as info:
            read()
        assert str(info.value) == message


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "protocols/mapping.toml", "--dry-run"],
        ["selftest", "latency", "--sim"],
        ["gui"],
        ["analyze", "WAV", "--quiet"],
    ],
)
def test_every_command_prints_the_same_line(capsys, wav, argv):
    argv = [str(wav) if a == "WAV" else a for a in argv]
    assert main([*argv, "--electrode-positions-mm", "35,55,75"]) == 2
    err = capsys.readouterr().err
    assert THREE_FOR_FOUR in err and "Traceback" not in err


def test_positions_are_read_in_mm_and_given_in_metres(wav, recording_of_4):
    text = "37.5, 57.5,77.5 ,97.5"
    expected = (0.0375, 0.0575, 0.0775, 0.0975)
    assert positions_from_option(text) == pytest.approx(expected)
    rig = RigDescription().with_positions_mm(text, 4)
    assert rig.pair_centres_m == pytest.approx(expected)
    source = load_wav(wav, electrode_positions_mm=text)
    np.testing.assert_allclose(source.positions_m, expected)
