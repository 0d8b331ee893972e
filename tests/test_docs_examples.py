"""Every example in README.md and docs/*.md runs (issue 14, item 7).

The fenced code blocks of README.md and docs/*.md are extracted and checked by
their language, each block a test (``-k 'README.md:96'`` runs one):

``python``
    run as a script (this tree's packages first on the path) in a fresh folder
    that has the repository's ``protocols/`` and ``rigs/`` linked in. It passes
    when it ends without an exception: an example that can go wrong says so by
    raising (``if status.finish_reason != "completed": raise ...``).
``sh``, ``bash``
    one shell command a line (``#`` starts a comment), run one after another in
    the block's folder; each must exit 0 within ``TIMEOUT_S``.
``console``
    ``$ COMMAND`` lines are run the same way; the lines after one are its
    expected standard output, compared line by line (trailing spaces ignored): a
    line ``...`` stands for any number of lines, a line ending in ``...`` for
    any rest of that line.
``toml``
    parsed by its real loader: a protocol file (it has ``format_version``) by
    ``rig.protocols.parse_protocol``, a marker map (``[markers."ID"]``) by
    ``rig.offline.spike_recorder.read_marker_map``, anything else as a rig file
    by ``rig.rig_file.load_rig_file``.
``json``
    parsed (JSON Lines line by line; ``...`` and ``[...]`` are placeholders); a
    calibration file (it has ``kind``) by ``calibration.load_calibration``.
no language, ``text``
    formats, messages and synopses: not run. The README's command synopsis
    (marker ``synopsis``) is checked against the real parsers instead.

Commands are ``neurorig ...`` (run as ``python -m rig.cli`` from this tree) or
listed in NOT_RUN with the reason. The rules that keep them short and safe live
here, not in the docs:

- ``neurorig run P`` on a board (``--sim``, ``--port``) runs a shortened copy of
  P with the same file name: one stimulus per block (the first value of each
  list or range, one repeat, no pause), or 3 stimuli of a closed loop. The
  command line and everything after it (the recording, its analysis) are real;
  P itself is checked by its dry run and by ``rig.protocols``' tests.
- ``neurorig selftest latency`` without ``--n`` runs 5 iterations.
- ``neurorig sim ...`` starts in the background; the port it prints replaces the
  docs' example port ``/dev/pts/4`` in the block's later lines; it is stopped at
  the end of the block. Paths under ``/tmp/`` move into the block's folder.
- ``<timestamp>`` in a path is the newest recording in that folder.
- Commands that need a real board or camera (``--port /dev/tty…``,
  ``--camera 0``), a display (``neurorig gui``) or install things (``make``) are
  not run; their ``neurorig`` arguments are still parsed by the real parser.

A block says what else it needs with an HTML comment on the line before its
fence, ``<!-- example: KEY: VALUE -->``:

``skip: REASON``
    not run (a reason is required).
``recording: PATH from PROTOCOL``
    a recording of PROTOCOL (shortened as above, simulated rig and camera)
    exists at PATH in the block's folder.
``in recording: PROTOCOL``
    the block runs inside such a recording's folder.
``analyze: PROTOCOL``
    (json) every key of the block is in ``neurorig analyze --json``'s output for
    such a recording (the first element of a list stands for all).
``synopsis``
    (text) every ``--option`` of a ``neurorig COMMAND`` line exists.

Blocks of files that others own carry their markers in EXTERNAL_MARKERS until
the files do. The recordings are made once per test session. The selected
blocks are checked WORKERS at a time before their tests report (most of a
command's time is the simulated rig's real time): 35–50 s for the whole file on
the 2-core machine with others' work on it (load average 5).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TIMEOUT_S = 120  # per command; the whole file takes well under a minute
WORKERS = 3  # blocks checked at once
SIM_PORT_IN_DOCS = "/dev/pts/4"
NOT_RUN = [
    (r"^make\b", "installs the environment or runs the whole suite"),
    (r"^neurorig gui\b", "opens the GUI (its own tests: tests/rig/gui)"),
    (r"--port /dev/tty", "needs a real board"),
    (r"--camera \d", "needs a real camera"),
]
RUN_OPTIONS = {"--sim", "--port"}
EXTERNAL_MARKERS = {  # (file, first line of the block) -> marker
    ("docs/recording-format.md", "import json, numpy as np"): (
        "in recording: protocols/closed-loop-efficiency.toml"
    ),
}
MARKER = re.compile(r"<!--\s*example:\s*(.*?)\s*-->")
FENCE = re.compile(r"^(\s*)```([\w-]*)\s*$")


@dataclass(frozen=True)
class Block:
    file: str  # relative to the repository
    line: int  # of the opening fence
    lang: str
    text: str
    marker: str  # "" without one

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}-{self.lang or 'text'}"


def extract_blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, with the marker before each."""
    lines = path.read_text(encoding="utf-8").splitlines()
    rel = path.relative_to(ROOT).as_posix()
    blocks, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent, lang = fence.groups()
        body, j = [], i + 1
        while j < len(lines) and lines[j].strip() != "```":
            body.append(lines[j][len(indent) :])
            j += 1
        if j == len(lines):
            raise AssertionError(f"{rel}:{i + 1}: code block never closed")
        before = next((s for s in reversed(lines[:i]) if s.strip()), "")
        marker = MARKER.search(before)
        text = "\n".join(body) + "\n"
        first = next((s for s in body if s.strip()), "")
        external = EXTERNAL_MARKERS.get((rel, first.strip()), "")
        blocks.append(
            Block(rel, i + 1, lang, text, marker.group(1) if marker else external)
        )
        i = j + 1
    return blocks


BLOCKS = [b for path in DOCS for b in extract_blocks(path)]


def _marker(block: Block, key: str) -> str | None:
    """The value of marker ``key`` (``""`` for a bare key), or None."""
    name, _, value = block.marker.partition(":")
    return value.strip() if name.strip() == key else None


# --------------------------------------------------------------- commands


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # The folder the examples run in is not this tree: put this tree first.
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), env.get("PYTHONPATH")])
    )
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    return env


def _workdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name in ("protocols", "rigs"):
        if not (path / name).exists():
            (path / name).symlink_to(ROOT / name)
    return path


def _first(value):
    if isinstance(value, dict):  # a range
        return value["start"]
    if isinstance(value, list):
        return value[0]
    return value


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"


def _toml(data: dict) -> str:
    """TOML for a protocol's dict (tables, arrays of tables, inline tables)."""
    out = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not _is_table(v)]
    for key, value in data.items():
        tables = [value] if isinstance(value, dict) else value
        if not _is_table(value):
            continue
        header = f"[{key}]" if isinstance(value, dict) else f"[[{key}]]"
        for table in tables:
            out.append(header)
            out += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(out) + "\n"


def _is_table(value) -> bool:
    return isinstance(value, dict) or (
        isinstance(value, list) and bool(value) and isinstance(value[0], dict)
    )


def shortened(protocol: Path, folder: Path) -> Path:
    """A copy of ``protocol`` (same file name) that runs in a few seconds."""
    data = tomllib.loads(protocol.read_text(encoding="utf-8"))
    if "closed_loop" in data:
        loop = data["closed_loop"]
        loop["n_stimuli"] = min(3, loop.get("n_stimuli", 3))
    else:
        for table in [data.get("defaults", {}), *data.get("block", [])]:
            for key in ("amplitude_vpp", "duration_ms", "duration_s"):
                if key in table:
                    table[key] = _first(table[key])
            for key in ("pairs", "configuration", "polarities"):
                if key in table:
                    table[key] = [_first(table[key])]
            if "repeats" in table:
                table["repeats"] = 1
            if "pause_before_s" in table:
                table["pause_before_s"] = 0
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / protocol.name
    copy.write_text(_toml(data), encoding="utf-8")
    return copy


def _not_run(line: str) -> str | None:
    for pattern, reason in NOT_RUN:
        if re.search(pattern, line):
            return reason
    return None


def _parses(argv: list[str]) -> None:
    """The real parser accepts ``argv`` (for commands that are not run)."""
    from rig.cli import build_parser

    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:
        raise AssertionError(
            f"neurorig {shlex.join(argv)}: refused by its parser"
        ) from exc


def _newest(folder: Path) -> str:
    found = sorted(p for p in folder.iterdir() if p.is_dir())
    assert found, f"no recording in {folder}"
    return found[-1].name


class Shell:
    """Runs one block's commands in ``folder``; background simulators included."""

    def __init__(self, folder: Path) -> None:
        self.folder = _workdir(folder)
        self.port = SIM_PORT_IN_DOCS
        self.background: list[subprocess.Popen] = []

    def close(self) -> None:
        for process in self.background:
            process.terminate()
            process.wait(10)
            process.stdout.close()

    def argv(self, line: str) -> list[str]:
        """The command of a doc line, with the rules of this module applied."""
        argv = [self._word(word) for word in shlex.split(line, comments=True)]
        if argv[:1] != ["neurorig"]:
            raise AssertionError(f"not a neurorig command; add a rule: {line}")
        argv = argv[1:]
        if argv[:1] == ["run"] and RUN_OPTIONS & set(argv) and "--dry-run" not in argv:
            assert argv[1].endswith(".toml"), f"{line}: the protocol first, please"
            argv[1] = str(shortened(self.folder / argv[1], self.folder / ".short"))
        if argv[:2] == ["selftest", "latency"] and "--n" not in argv:
            argv += ["--n", "5"]
        return argv

    def _word(self, word: str) -> str:
        word = word.replace(SIM_PORT_IN_DOCS, self.port)
        word = word.replace("/tmp/", f"{self.folder}/")
        if word.endswith("/<timestamp>"):
            parent = word.removesuffix("/<timestamp>")
            word = f"{parent}/{_newest(self.folder / parent)}"
        return word

    def run(self, line: str) -> str | None:
        """Run one line; its standard output (None when it is not run)."""
        if not line.strip() or line.lstrip().startswith("#"):
            return None
        reason = _not_run(line)
        if reason is not None:
            if line.startswith("neurorig"):
                _parses(shlex.split(line, comments=True)[1:])
            return None
        argv = self.argv(line)
        if argv[:1] == ["sim"]:
            process = subprocess.Popen(
                [sys.executable, "-m", "rig.cli", *argv],
                cwd=self.folder,
                env=_env(),
                stdout=subprocess.PIPE,
                text=True,
            )
            self.background.append(process)
            self.port = process.stdout.readline().strip()
            assert self.port.startswith("/dev/"), f"{line}: printed {self.port!r}"
            return None
        return neurorig(argv, self.folder, line)


def neurorig(argv: list[str], cwd: Path, line: str = "") -> str:
    """Run ``neurorig ARGV`` (this tree's) in ``cwd``; its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", "rig.cli", *argv],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, (
        f"{line}\n(ran: neurorig {shlex.join(argv)})\n"
        f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


def output_matches(expected: list[str], actual: list[str]) -> bool:
    """Line by line; ``...`` alone matches any lines, at a line's end any rest."""
    if not expected:
        return not actual
    head, rest = expected[0].rstrip(), expected[1:]
    if head.strip() == "...":
        return any(output_matches(rest, actual[k:]) for k in range(len(actual) + 1))
    if not actual:
        return False
    line = actual[0].rstrip()
    same = line.startswith(head[:-3]) if head.endswith("...") else line == head
    return same and output_matches(rest, actual[1:])


# ------------------------------------------------------------- recordings


@pytest.fixture(scope="session")
def recording_of(tmp_path_factory):
    """``recording_of(protocol)``: a recording of it (shortened) on the sim."""
    made: dict[str, Path] = {}
    lock = threading.Lock()  # blocks run concurrently: one recording each
    root = tmp_path_factory.mktemp("recordings")

    def make(protocol: str) -> Path:
        with lock:
            if protocol not in made:
                shell = Shell(root / f"r{len(made)}")
                try:
                    shell.run(f"neurorig run {protocol} --sim --camera sim --out runs")
                finally:
                    shell.close()
                runs = shell.folder / "runs"
                made[protocol] = runs / _newest(runs)
            return made[protocol]

    return make


# ------------------------------------------------------------------ tests


def check_block(block: Block, tmp: Path, recording_of) -> None:
    """Check one block (raises on failure, ``pytest.skip`` for text)."""
    reason = _marker(block, "skip")
    if reason is not None:
        assert reason, f"{block.id}: a skipped example needs a reason"
        pytest.skip(reason)
    folder = _workdir(tmp / "work")
    made = _marker(block, "recording")
    if made is not None:
        path, _, protocol = made.partition(" from ")
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).symlink_to(recording_of(protocol.strip()))
    inside = _marker(block, "in recording")
    if inside is not None:
        folder = recording_of(inside)
    check = {
        "python": _check_python,
        "sh": _check_shell,
        "bash": _check_shell,
        "console": _check_console,
        "toml": _check_toml,
        "json": _check_json,
    }.get(block.lang, _check_text)
    check(block, folder, tmp, recording_of)


@pytest.fixture(scope="session")
def outcomes(request, tmp_path_factory, recording_of):
    """Every selected block checked, WORKERS at a time (most of a command's
    time is the simulated rig's real time, not CPU): block id -> exception."""
    selected = [
        item.callspec.params["block"]
        for item in request.session.items
        if item.module.__name__ == __name__
        and getattr(item, "originalname", "") == "test_example"
    ]
    # The slowest first: command blocks, then scripts, then the rest.
    order = ["sh", "python"]
    selected.sort(key=lambda b: order.index(b.lang) if b.lang in order else 2)

    def attempt(block: Block) -> BaseException | None:
        tmp = tmp_path_factory.mktemp(re.sub(r"\W", "_", block.id))
        try:
            check_block(block, tmp, recording_of)
        except BaseException as exc:  # pytest.skip's too: re-raised in the test
            return exc
        return None

    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(
            zip([b.id for b in selected], pool.map(attempt, selected), strict=True)
        )


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_example(block, outcomes):
    outcome = outcomes[block.id]
    if outcome is not None:
        raise outcome


def _check_python(block: Block, folder: Path, scratch: Path, recording_of) -> None:
    script = scratch / f"example-{block.line}.py"
    script.write_text(block.text, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=folder,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 0, f"{block.id} failed:\n{done.stderr[-4000:]}"


def _check_shell(block: Block, folder: Path, scratch: Path, recording_of) -> None:
    shell = Shell(folder)
    try:
        for line in block.text.splitlines():
            shell.run(line)
    finally:
        shell.close()


def _check_console(block: Block, folder: Path, scratch: Path, recording_of) -> None:
    shell = Shell(folder)
    try:
        command, expected = None, []
        for line in [*block.text.splitlines(), "$ "]:
            if line.startswith("$ "):
                if command:
                    actual = (shell.run(command) or "").splitlines()
                    assert output_matches(expected, actual), (
                        f"{block.id}: $ {command}\nexpected:\n"
                        + "\n".join(expected)
                        + "\ngot:\n"
                        + "\n".join(actual)
                    )
                command, expected = line[2:].strip(), []
            else:
                expected.append(line)
    finally:
        shell.close()


def _check_toml(block: Block, folder: Path, scratch: Path, recording_of) -> None:
    from rig.offline.spike_recorder import read_marker_map
    from rig.protocols import parse_protocol
    from rig.rig_file import load_rig_file

    data = tomllib.loads(block.text)
    if "format_version" in data:
        parse_protocol(block.text, source=block.id)
    elif "markers" in data:
        path = folder / "markers.toml"
        path.write_text(block.text, encoding="utf-8")
        assert read_marker_map(path)
    else:
        path = folder / "rig.toml"
        path.write_text(block.text, encoding="utf-8")
        load_rig_file(path)


def _json_documents(text: str) -> list:
    text = text.replace("[...]", "[]").replace(", ...}", "}").replace("...", "null")
    try:
        return [json.loads(text)]
    except json.JSONDecodeError:  # JSON Lines
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def _missing_keys(documented, real, where: str = "") -> list[str]:
    if isinstance(documented, dict) and isinstance(real, dict):
        missing = [f"{where}.{k}" for k in documented if k not in real]
        for k in documented.keys() & real.keys():
            missing += _missing_keys(documented[k], real[k], f"{where}.{k}")
        return missing
    if isinstance(documented, list) and documented and isinstance(real, list) and real:
        return _missing_keys(documented[0], real[0], f"{where}[0]")
    return []


def _check_json(block: Block, folder: Path, scratch: Path, recording_of) -> None:
    from calibration import load_calibration

    documents = _json_documents(block.text)
    if len(documents) == 1 and "kind" in documents[0]:
        path = folder / f"{documents[0]['kind']}.json"
        path.write_text(block.text, encoding="utf-8")
        load_calibration(path)
    protocol = _marker(block, "analyze")
    if protocol is not None:
        out = folder / "out.json"
        neurorig(["analyze", str(recording_of(protocol)), "--json", str(out)], folder)
        real = json.loads(out.read_text(encoding="utf-8"))
        assert _missing_keys(documents[0], real) == []


def _check_text(block: Block, folder: Path, scratch: Path, recording_of) -> None:
    if _marker(block, "synopsis") is None:
        pytest.skip("text, not code")
    from firmware_bridge.sim.cli import build_parser as sim_parser
    from rig.cli import build_parser

    commands = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ).choices
    command = None
    for line in block.text.splitlines():
        start = re.match(r"neurorig (\w+)", line)
        if start:
            command = start.group(1)
        elif not line.startswith(" "):
            command = None
        if command is None:
            continue
        parser = sim_parser() if command == "sim" else commands[command]
        known = {o for a in parser._actions for o in a.option_strings}
        for option in re.findall(r"(?<![\w-])--[a-z][a-z-]*", line):
            assert option in known, f"neurorig {command} has no {option}"


# ------------------------------------------------ the checker checks itself


def test_every_doc_has_its_examples_found():
    langs = {b.lang for b in BLOCKS}
    assert {"python", "sh", "console", "toml", "json", "text"} <= langs
    assert len([b for b in BLOCKS if b.file == "README.md"]) >= 4


def test_output_matching_is_strict():
    assert output_matches(["a", "...", "z"], ["a", "b", "c", "z"])
    assert output_matches(["total 3 s ..."], ["total 3 s (into 1000 Ω)"])
    assert not output_matches(["a", "b"], ["a", "c"])
    assert not output_matches(["a"], ["a", "extra"])


def test_a_failing_command_fails(tmp_path):
    shell = Shell(tmp_path)
    with pytest.raises(AssertionError, match="exit 2"):
        shell.run("neurorig run protocols/no-such-file.toml --dry-run")
    with pytest.raises(AssertionError, match="refused by its parser"):
        shell.run("neurorig gui --no-such-option")
    with pytest.raises(AssertionError, match="not a neurorig command"):
        shell.run("rm -rf runs")


def test_a_wrong_example_fails(tmp_path, recording_of):
    wrong = Block("x.md", 1, "python", "raise SystemExit(3)\n", "")
    with pytest.raises(AssertionError, match="failed"):
        _check_python(wrong, _workdir(tmp_path / "w"), tmp_path, recording_of)
    typo = Block("x.md", 1, "toml", 'format_version = 1\n[protocol]\nnam = "x"\n', "")
    with pytest.raises(ValueError, match="nam"):
        _check_toml(typo, tmp_path, tmp_path, recording_of)


def test_a_shortened_protocol_is_the_same_protocol_briefly(tmp_path):
    from rig.protocols import load_protocol

    for path in sorted((ROOT / "protocols").glob("*.toml")):
        full, short = load_protocol(path), load_protocol(shortened(path, tmp_path))
        assert short.name == full.name
        if full.closed_loop is not None:
            assert short.closed_loop.n_stimuli == 3
            assert short.closed_loop.objective == full.closed_loop.objective
        else:
            assert 1 <= len(short.expand()) == len(full.blocks) < len(full.expand())
