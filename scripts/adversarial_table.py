"""Hostile inputs through the real ``neurorig`` command line: one table of outcomes.

Generates a few hundred hostile inputs (protocol and rig TOML, calibration JSON,
recording folders, Spike Recorder WAV + events files, command-line flags, serial
ports) in a temporary folder, runs each through the real CLI (a subprocess with a
timeout) or, where the CLI would only add a simulator start, through the loader
the CLI calls, and classifies what happened:

    clear error   exit ≠ 0, the message names the file and/or field, no traceback
    accepted ok   a valid (or tolerable) input accepted, and what must hold holds
    vague error   exit ≠ 0, but the message names neither the file nor the field
    refused valid exit ≠ 0 for an input that must be accepted
    traceback     a Python traceback (or a crash by signal)
    hang          still running at the timeout
    silent wrong  accepted (exit 0) where the input must be refused, or accepted
                  and what must hold does not

Each case states when it is generated whether it must be refused, must be
accepted (and what must then hold) or may be either. The rule it checks
(docs/architecture.md): hostile input gets one clear line naming the file and
the field and what is allowed, never a traceback; nothing silently wrong.

    python scripts/adversarial_table.py [--json FILE|-] [--jobs 2] [--only KIND,..]
        [--quick] [--keep DIR] [--show OUTCOME,..]

Exit status 1 if any case is a traceback, a hang or a silent wrong result.
A benchmark-like script (3 min on 2 cores, 14 min when they are shared), not a test:
``tests/test_adversarial_table.py`` runs a quick subset (``--quick``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

KINDS = ("protocol", "rig", "calibration", "recording", "wav", "cli", "port")
OUTCOMES = (
    "clear error",
    "accepted ok",
    "vague error",
    "refused valid",
    "traceback",
    "hang",
    "silent wrong",
)
FAILURES = ("traceback", "hang", "silent wrong")
# stderr lines that are not the error (session log path, warnings, notes)
NOISE = ("log: ", "warning:", "note:", "calibration warning:")

VALID_PROTOCOL = """format_version = 1
[protocol]
name = "adversarial"
seed = 1
[[block]]
amplitude_vpp = [3.0, 5.0]
duration_ms = 3.0
inter_stimulus_interval_s = 0.4
"""
# a recording of four stimuli on the simulated rig, with the camera
BASE_PROTOCOL = """format_version = 1
[protocol]
name = "base"
seed = 2
[[block]]
amplitude_vpp = [4.0, 5.0]
duration_ms = 3.0
repeats = 2
inter_stimulus_interval_s = 0.4
"""
POSITIONS_MM = "37.5,57.5,77.5,97.5"  # the simulated raceway's pair centres


@dataclass
class Result:
    """What one case did."""

    rc: int | None = None
    stdout: str = ""
    stderr: str = ""
    value: Any = None  # a loader's return value
    error: BaseException | None = None  # a loader's exception
    timed_out: bool = False
    seconds: float = 0.0


@dataclass
class Case:
    """One hostile input and what must happen to it.

    ``expect``: ``refuse`` (must exit ≠ 0 naming ``names``), ``accept`` (must exit
    0 and ``check`` must hold) or ``either`` (a clear refusal, or accepted with
    ``check`` holding). ``check(result)`` returns what is wrong, or None.
    """

    kind: str
    name: str
    expect: str
    names: tuple[str, ...] = ()
    argv: list[str] | None = None
    call: Callable[[], Any] | None = None
    errors: tuple[type[BaseException], ...] = (ValueError,)  # a loader's own errors
    check: Callable[[Result], str | None] | None = None
    timeout: float = 30.0
    runs_forever: bool = False  # a server (neurorig sim): running at timeout = started
    stdout_closed: bool = False  # a reader that stops at once (`| head -0`)
    quick: bool = False  # in the test's representative subset
    outcome: str = ""
    detail: str = ""
    result: Result = field(default_factory=Result)


# --- running -----------------------------------------------------------------


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["NEURORIG_LOG_DIR"] = str(tmp / "logs")
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_cli(case: Case, env: dict[str, str]) -> Result:
    """``python -m rig.cli ARGV`` from the repository root."""
    command = [sys.executable, "-m", "rig.cli", *case.argv]
    start = time.monotonic()
    stdout_target: Any = subprocess.PIPE
    read_end = write_end = None
    if case.stdout_closed:  # as `| head -0`: the reader is gone before any write
        read_end, write_end = os.pipe()
        os.close(read_end)
        stdout_target = write_end
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=stdout_target,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    if write_end is not None:
        os.close(write_end)
    result = Result()
    try:
        out, err = proc.communicate(timeout=case.timeout)
        result.rc = proc.returncode
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        result.timed_out = True
    result.stdout, result.stderr = out or "", err or ""
    result.seconds = time.monotonic() - start
    return result


class _Alarm(Exception):
    pass


def run_loader(case: Case) -> Result:
    """Call the loader in this process (main thread), with a timeout."""

    def ring(*_):
        raise _Alarm

    result = Result()
    old = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, case.timeout)
    start = time.monotonic()
    try:
        result.value = case.call()
        result.rc = 0
    except _Alarm:
        result.timed_out = True
    except BaseException as exc:
        result.error = exc
        result.rc = 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    result.seconds = time.monotonic() - start
    if result.error is not None:
        exc = result.error
        if isinstance(exc, case.errors):
            result.stderr = f"{type(exc).__name__}: {exc}"
        else:
            result.stderr = (
                "Traceback (most recent call last): (in-process)\n"
                f"{type(exc).__name__}: {exc}"
            )
    return result


def error_message(stderr: str) -> str:
    """The error lines of ``stderr`` (session-log path, warnings, notes left out)."""
    lines = [
        line
        for line in stderr.splitlines()
        if line.strip() and not line.startswith(NOISE)
    ]
    return "\n".join(lines)


def classify(case: Case) -> tuple[str, str]:
    """(outcome, detail) of a case that has run."""
    r = case.result
    if r.timed_out and not case.runs_forever:
        return "hang", f"still running after {case.timeout:g} s"
    if "Traceback (most recent call last)" in r.stderr:
        last = [line for line in r.stderr.splitlines() if line.strip()][-1:]
        return "traceback", last[0][:300] if last else ""
    if r.rc is not None and r.rc < 0:
        return "traceback", f"killed by signal {-r.rc}"
    accepted = r.timed_out or r.rc == 0 or (case.stdout_closed and r.rc == 141)
    if accepted:
        if case.expect == "refuse":
            return "silent wrong", f"accepted (exit {r.rc}); must be refused"
        problem = case.check(r) if case.check else None
        if problem:
            return "silent wrong", problem
        return "accepted ok", ""
    message = error_message(r.stderr)
    if case.expect == "accept":
        return "refused valid", message[:300]
    missing = [n for n in case.names if n not in message]
    if not message or missing:
        return "vague error", f"names not {missing}: {message[:300]}"
    return "clear error", message.splitlines()[-1][:300]


def run_cases(cases: list[Case], tmp: Path, jobs: int, progress=None) -> None:
    """Run every case, CLI ones ``jobs`` at a time, and classify it."""
    env = _env(tmp)
    loaders = [c for c in cases if c.call is not None]
    clis = [c for c in cases if c.argv is not None]
    for case in loaders:
        case.result = run_loader(case)
        case.outcome, case.detail = classify(case)
        if progress:
            progress(case)

    def one(case: Case) -> Case:
        case.result = run_cli(case, env)
        case.outcome, case.detail = classify(case)
        return case

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for case in pool.map(one, clis):
            if progress:
                progress(case)


# --- checks ------------------------------------------------------------------


def stdout_has(text: str) -> Callable[[Result], str | None]:
    def check(r: Result) -> str | None:
        return None if text in r.stdout else f"stdout lacks {text!r}"

    return check


def json_file(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def summary(results: dict) -> tuple[int, int, int]:
    """(stimuli, analysed, responded) of `neurorig analyze --json` results."""
    stimuli = results.get("stimuli", [])
    return (
        len(stimuli),
        sum(1 for s in stimuli if s.get("analysed")),
        sum(1 for s in stimuli if s.get("responded")),
    )


def like_base(
    out: Path, base: tuple[int, int, int], *, said: tuple[str, ...] = ()
) -> Callable[[Result], str | None]:
    """Accepted: the same stimuli analysed and responding as the intact input,
    or a difference that stderr names (one of ``said``)."""

    def check(r: Result) -> str | None:
        results = json_file(out)
        if results is None:
            return f"exit 0 but no JSON results at {out}"
        got = summary(results)
        if got == base:
            return None
        if said and any(s in r.stderr for s in said):
            return None
        return (
            f"(stimuli, analysed, responded) = {got}, intact input gives {base}; "
            f"stderr names none of {list(said)}"
        )

    return check


def all_analysed_or_said(out: Path, said: tuple[str, ...]):
    """Accepted: every stimulus analysed, or stderr says why some were not."""

    def check(r: Result) -> str | None:
        results = json_file(out)
        if results is None:
            return f"exit 0 but no JSON results at {out}"
        n, analysed, _ = summary(results)
        if n and analysed == n:
            return None
        if any(s in r.stderr for s in said):
            return None
        return f"{n} stimuli, {analysed} analysed, and stderr does not say why"

    return check


def finite_json(out: Path) -> Callable[[Result], str | None]:
    def check(r: Result) -> str | None:
        results = json_file(out)
        if results is None:
            return f"exit 0 but no JSON results at {out}"
        return None

    return check


# --- file helpers --------------------------------------------------------------


def put(path: Path, data: str | bytes) -> Path:
    """Write ``path`` afresh (never through a hard link to the base's file)."""
    if path.is_symlink() or path.exists():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def fifo(path: Path) -> Path:
    """A named pipe nobody writes: a reader that opens it waits forever."""
    if path.exists():
        path.unlink()
    os.mkfifo(path)
    return path


def deep_toml(n: int = 5000) -> str:
    return "x = " + "[" * n + "]" * n + "\n"


def deep_json(n: int = 100_000) -> str:
    return "[" * n + "]" * n


# --- protocol files ------------------------------------------------------------

HEAD = 'format_version = 1\n[protocol]\nname = "p"\n'


def _block(**keys: str) -> str:
    merged = {
        "amplitude_vpp": "4.0",
        "duration_ms": "3.0",
        "inter_stimulus_interval_s": "0.4",
    }
    merged.update(keys)
    body = "".join(f"{k} = {v}\n" for k, v in merged.items() if v is not None)
    return "[[block]]\n" + body


def protocol_cases(d: Path) -> list[Case]:
    d.mkdir()
    cases: list[Case] = []

    def add(name, text, expect="refuse", field_=None, check=None, quick=False):
        path = put(d / f"{name}.toml", text) if isinstance(text, str | bytes) else text
        names = (path.name,) + ((field_,) if field_ else ())
        cases.append(
            Case(
                "protocol",
                name,
                expect,
                names,
                argv=["run", str(path), "--dry-run"],
                check=check,
                quick=quick,
            )
        )

    add("valid", VALID_PROTOCOL, "accept", check=stdout_has("2 stimuli"), quick=True)
    add(
        "valid-crlf",
        VALID_PROTOCOL.replace("\n", "\r\n"),
        "accept",
        check=stdout_has("2 stimuli"),
    )
    add("empty", "", field_="format_version", quick=True)
    add("binary", b"\x00\xff\xfe\x89PNG\r\n\x1a\n" * 40, field_="file", quick=True)
    add("not-utf8", b'format_version = 1\nname = "\xe9"\n', field_="file")
    add("malformed", HEAD + "[[block]\namplitude_vpp = 4\n", field_="file", quick=True)
    add("truncated", VALID_PROTOCOL[: len(VALID_PROTOCOL) // 2 + 7], field_="file")
    add("deep-list", deep_toml(), field_="file", quick=True)
    add("deep-table", "x = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n", field_="file")
    add("bom", "\ufeff" + VALID_PROTOCOL, "either", field_="file")
    for v in ("2", '"1"', "1.0", "true", "0"):
        add(
            f"format-version-{v.strip(chr(34))}",
            VALID_PROTOCOL.replace("format_version = 1", f"format_version = {v}"),
            field_="format_version",
        )
    add("no-name", VALID_PROTOCOL.replace('name = "adversarial"\n', ""), field_="name")
    add("empty-name", VALID_PROTOCOL.replace('"adversarial"', '"  "'), field_="name")
    add("name-number", VALID_PROTOCOL.replace('"adversarial"', "5"), field_="name")
    add("seed-text", VALID_PROTOCOL.replace("seed = 1", 'seed = "x"'), field_="seed")
    add("seed-float", VALID_PROTOCOL.replace("seed = 1", "seed = 1.5"), field_="seed")
    add(
        "seed-negative-random",
        HEAD + "seed = -1\n" + _block(order='"random"', repeats="2"),
        "either",
        field_="seed",
        check=stdout_has("2 stimuli"),
        quick=True,
    )
    add(
        "seed-huge-random",
        HEAD + "seed = " + "9" * 30 + "\n" + _block(order='"random"', repeats="2"),
        "either",
        field_="seed",
        check=stdout_has("2 stimuli"),
    )
    for v in ("nan", "inf", "-inf", "-1.0", "1e308", '"4"', "true", "[]", "{}"):
        add(
            f"amplitude-{v.strip(chr(34))}",
            HEAD + _block(amplitude_vpp=v),
            field_="amplitude_vpp",
            quick=v in ("nan", "[]"),
        )
    add("amplitude-zero", HEAD + _block(amplitude_vpp="0.0"), field_="amplitude_vpp")
    add("amplitude-missing", HEAD + _block(amplitude_vpp=None), field_="amplitude_vpp")
    for label, v in {
        "range-reversed": "{start = 5.0, stop = 1.0, step = 1.0}",
        "range-step-0": "{start = 1.0, stop = 5.0, step = 0}",
        "range-step-nan": "{start = 1.0, stop = 5.0, step = nan}",
        "range-step-tiny": "{start = 1.0, stop = 5.0, step = 1e-9}",
        "range-n-0": "{start = 1.0, stop = 5.0, n = 0}",
        "range-n-float": "{start = 1.0, stop = 5.0, n = 2.5}",
        "range-n-huge": "{start = 1.0, stop = 5.0, n = " + "9" * 25 + "}",
        "range-no-stop": "{start = 1.0, n = 3}",
        "range-both": "{start = 1.0, stop = 5.0, n = 3, step = 1.0}",
        "range-unknown": "{start = 1.0, stop = 5.0, n = 3, steps = 2}",
    }.items():
        add(
            f"amplitude-{label}", HEAD + _block(amplitude_vpp=v), field_="amplitude_vpp"
        )
    for v in ("nan", "0", "-3.0", "100.0", '"3ms"'):
        add(
            f"duration-{v.strip(chr(34))}",
            HEAD + _block(duration_ms=v),
            field_="duration",
        )
    add("duration-both", HEAD + _block(duration_s="0.003"), field_="duration")
    add(
        "duration-s-huge",
        HEAD + _block(duration_ms=None, duration_s="1e308"),
        field_="duration_s",
    )
    add("duration-missing", HEAD + _block(duration_ms=None), field_="duration")
    for v in ("[99]", "-1", "1.5", '"0"', "[true]"):
        add(f"pairs-{v}", HEAD + _block(pairs=v), field_="pairs")
    add("pairs-empty", HEAD + _block(pairs="[]"), field_="pairs", quick=True)
    add("polarities-bad", HEAD + _block(polarities='["sideways"]'), field_="polarities")
    add("polarities-empty", HEAD + _block(polarities="[]"), field_="polarities")
    add("order-bad", HEAD + _block(order='"shuffled"'), field_="order")
    add("order-list", HEAD + _block(order='["random"]'), field_="order")
    for v in ("0", "nan", "0.001", "1e9", "-0.4"):
        add(
            f"isi-{v}",
            HEAD + _block(inter_stimulus_interval_s=v),
            field_="inter_stimulus_interval_s",
        )
    for v in ("0", "-1", "1.5", "1" + "0" * 30, "true"):
        add(f"repeats-{v[:6]}", HEAD + _block(repeats=v), field_="repeats")
    add("n-pulses-0", HEAD + _block(n_pulses="0"), field_="n_pulses")
    add(
        "train-rate-nan",
        HEAD + _block(n_pulses="3", train_rate_hz="nan"),
        field_="train_rate_hz",
    )
    add("unknown-top-key", VALID_PROTOCOL + "colour = 3\n", field_="colour")
    add("unknown-block-key", HEAD + _block(amplitude="4.0"), field_="amplitude")
    add("block-not-tables", HEAD + "block = 5\n", field_="block")
    add("block-list-of-numbers", HEAD + "block = [1, 2]\n", field_="block")
    add("block-empty-table", HEAD + "[[block]]\n", field_="amplitude_vpp")
    add("defaults-number", HEAD + "defaults = 3\n" + _block(), field_="defaults")
    add(
        "defaults-bad",
        HEAD + "[defaults]\nrepeats = -4\n" + _block(),
        field_="defaults.repeats",
    )
    add(
        "protocol-string",
        'format_version = 1\nprotocol = "x"\n' + _block(),
        field_="protocol",
    )
    add(
        "huge-plan",
        HEAD
        + _block(amplitude_vpp="{start = 0.5, stop = 6.0, n = 1000}", repeats="10000"),
        field_="block",
        quick=True,
    )
    add("many-blocks", HEAD + _block(repeats="10") * 20_000, field_="block")
    cl = "[closed_loop]\n"
    add(
        "closed-loop-and-block",
        HEAD + _block() + cl + "n_stimuli = 3\n",
        field_="closed_loop",
    )
    add("closed-loop-number", HEAD + "closed_loop = 5\n", field_="closed_loop")
    add("closed-loop-n-0", HEAD + cl + "n_stimuli = 0\n", field_="n_stimuli")
    add(
        "closed-loop-bounds-reversed",
        HEAD + cl + "n_stimuli = 3\namplitude_vpp = [6.0, 2.0]\nduration_ms = [2, 5]\n"
        '[closed_loop.objective]\nmeasure = "amplitude_uv_mean"\nkind = "maximise"\n',
        field_="amplitude_vpp",
    )
    add(
        "closed-loop-bad-measure",
        HEAD + cl + "n_stimuli = 3\namplitude_vpp = [2.0, 6.0]\nduration_ms = [2, 5]\n"
        '[closed_loop.objective]\nmeasure = "happiness"\nkind = "maximise"\n',
        field_="measure",
    )
    # the file itself
    add("missing-file", d / "no-such.toml", field_=None, quick=True)
    add("a-folder", d, field_=None)
    add("dev-null", Path("/dev/null"), field_="file")
    add("fifo", fifo(d / "fifo.toml"), field_=None, quick=True)
    return cases


# --- rig files -------------------------------------------------------------------


def rig_cases(d: Path) -> list[Case]:
    d.mkdir()
    protocol = put(d / "protocol.toml", VALID_PROTOCOL)
    cases: list[Case] = []

    def add(name, text, expect="refuse", field_=None, check=None, quick=False):
        path = put(d / f"{name}.toml", text) if isinstance(text, str | bytes) else text
        names = (path.name,) + ((field_,) if field_ else ())
        argv = ["run", str(protocol), "--dry-run", "--rig", str(path)]
        cases.append(
            Case("rig", name, expect, names, argv=argv, check=check, quick=quick)
        )

    ok = stdout_has("2 stimuli")
    example = (ROOT / "rigs" / "example-rig.toml").read_text()
    add("example", example, "accept", check=ok, quick=True)
    add("empty", "", "accept", check=ok)
    add("binary", b"\x00\xff" * 100, field_=None)
    add("malformed", "[limits\nmax_amplitude_vpp = 4\n", field_=None, quick=True)
    add("deep", deep_toml(), field_=None)
    add("unknown-table", "[lights]\non = true\n", field_="lights")
    add("table-not-table", "limits = 5\n", field_="limits")
    add("unknown-key", "[camera]\npx_per_mmm = 3\n", field_="px_per_mmm", quick=True)
    add("limits-unknown", "[limits]\nmax_amps = 4\n", field_="max_amps")
    for v in ("nan", "-1.0", '"4"', "1e9", "inf"):
        add(
            f"max-amplitude-{v.strip(chr(34))}",
            f"[limits]\nmax_amplitude_vpp = {v}\n",
            field_="max_amplitude_vpp",
            quick=v == "nan",
        )
    add(
        "amplitude-min-above-max",
        "[limits]\nmin_amplitude_vpp = 5.0\nmax_amplitude_vpp = 2.0\n",
        field_="amplitude_vpp",
    )
    add("allowed-pairs-empty", "[limits]\nallowed_pairs = []\n", field_="allowed_pairs")
    add("load-zero", "[limits]\nload_ohm = 0\n", field_="load_ohm")
    for label, v in {
        "three": "[37.5, 57.5, 77.5]",
        "nan": "[nan, 57.5, 77.5, 97.5]",
        "duplicate": "[37.5, 37.5, 77.5, 97.5]",
        "zero": "[0, 57.5, 77.5, 97.5]",
        "text": '"37.5,57.5"',
        "strings": '["a", "b", "c", "d"]',
        "nested": "[[37.5], [57.5], [77.5], [97.5]]",
    }.items():
        add(
            f"positions-{label}",
            f"[electrodes]\npair_centres_mm = {v}\n",
            field_="pair_centres_mm",
            quick=label == "three",
        )
    add(
        "head-negative",
        "[raceway]\nhead_on_raceway_mm = -1\n",
        field_="head_on_raceway_mm",
    )
    add("px-per-mm-zero", "[camera]\npx_per_mm = 0\n", field_="px_per_mm")
    add("px-per-mm-nan", "[camera]\npx_per_mm = nan\n", field_="px_per_mm")
    add(
        "origin-text",
        '[camera]\nraceway_origin_px = "left"\n',
        field_="raceway_origin_px",
    )
    add("missing-file", d / "no-such-rig.toml", quick=True)
    add("a-folder", d)
    add("fifo", fifo(d / "fifo-rig.toml"), quick=True)
    # --electrode-positions-mm on the command line (dry run: no board)
    for label, v in {
        "three": "35,55,75",
        "words": "a,b,c,d",
        "nan": "nan,55,75,95",
        "inf": "inf,55,75,95",
        "commas": ",,,",
        "same": "40,40,40,40",
        "negative": "-35,55,75,95",
        "five": "35,55,75,95,115",
    }.items():
        argv = ["run", str(protocol), "--dry-run", "--electrode-positions-mm", v]
        cases.append(
            Case(
                "rig",
                f"option-positions-{label}",
                "refuse",
                ("--electrode-positions-mm",),
                argv=argv,
                quick=label == "nan",
            )
        )
    return cases


# --- calibration files -----------------------------------------------------------

CAL_VALID = {
    "camera": {
        "px_per_mm": 3.2,
        "camera_matrix": [[900.0, 0, 320], [0, 900.0, 240], [0, 0, 1]],
        "dist_coeffs": [0.0, 0.0, 0.0, 0.0, 0.0],
        "reprojection_error_px": 0.3,
        "square_size_mm": 10.0,
        "image_size_px": [640, 480],
    },
    "gain": {
        "uv_per_count": [0.0763] * 4,
        "offset_counts": [0.0] * 4,
        "noise_uv_rms": [2.0] * 4,
        "test_amplitude_uvpp": 100.0,
        "test_frequency_hz": 1000.0,
    },
    "stimulator": {
        "coefficients": [0.0, 1.0, 0.0],
        "commanded_min_vpp": 1.0,
        "commanded_max_vpp": 6.0,
    },
    "timing": {
        "offset_samples": 90.0,
        "offset_s": 0.003,
        "jitter_samples": 2.0,
        "frame_period_samples": 500.0,
    },
}


def _cal(kind_: str, **changes: Any) -> dict:
    data = {"kind": kind_, "schema_version": 1, **CAL_VALID[kind_]}
    data.update(
        fitted_at=time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        rig_id="rig-1",
        residual_rms=0.1,
        n_measurements=30,
    )
    for key, value in changes.items():
        if value is _DROP:
            data.pop(key, None)
        else:
            data[key] = value
    return data


_DROP = object()


def calibration_cases(d: Path) -> list[Case]:
    from calibration import CalibrationError, CalibrationSet, load_calibration

    d.mkdir()
    cases: list[Case] = []

    def folder_with(name: str, kind: str, content: str | bytes | None) -> Path:
        folder = d / name
        folder.mkdir()
        if content is not None:
            put(folder / f"{kind}.json", content)
        return folder

    def in_force_ok(kind: str):
        def check(r: Result) -> str | None:
            cal_set = r.value
            if kind not in cal_set.calibrations:
                return f"a valid {kind}.json was not put in force: {cal_set.warnings}"
            return None

        return check

    def refused_by_warning(kind: str, path: Path):
        def check(r: Result) -> str | None:
            cal_set = r.value
            if kind in cal_set.calibrations:
                return f"{path.name} is in force although it is wrong"
            if not any(path.name in w or str(path) in w for w in cal_set.warnings):
                return f"no warning names {path.name}: {cal_set.warnings}"
            return None

        return check

    def add(name, kind, content, expect="refuse", field_=None, quick=False):
        text = content if isinstance(content, str | bytes) else json.dumps(content)
        folder = folder_with(name, kind, text)
        path = folder / f"{kind}.json"
        names = (f"{kind}.json",) + ((field_,) if field_ else ())
        if expect == "accept":
            check = in_force_ok(kind)
        elif expect == "either":
            check = None
        else:  # refused: CalibrationError, or left out with a warning naming it
            check = refused_by_warning(kind, path)
        cases.append(
            Case(
                "calibration",
                name,
                "either" if expect == "refuse" else expect,
                names,
                call=lambda folder=folder: CalibrationSet.load(folder),
                errors=(CalibrationError,),
                check=check,
                quick=quick,
                timeout=10,
            )
        )

    for kind in CAL_VALID:
        add(f"valid-{kind}", kind, _cal(kind), "accept", quick=kind == "gain")
    add("empty", "gain", "", quick=True)
    add("not-json", "gain", "{uv_per_count: 1", quick=True)
    add("binary", "gain", b"\xff\xfe\x00\x01" * 20, quick=True)
    add("list", "gain", "[]")
    add("null", "gain", "null", quick=True)
    add("string", "gain", '"gain"')
    add("deep", "gain", deep_json(), quick=True)
    add("kind-missing", "gain", _cal("gain", kind=_DROP), field_="kind")
    add("kind-other", "gain", _cal("timing"), field_="kind")
    add("kind-number", "gain", _cal("gain", kind=3), field_="kind")
    add("schema-2", "gain", _cal("gain", schema_version=2), field_="schema_version")
    add(
        "schema-text", "gain", _cal("gain", schema_version="1"), field_="schema_version"
    )
    add(
        "field-missing", "gain", _cal("gain", uv_per_count=_DROP), field_="uv_per_count"
    )
    add(
        "fitted-at-garbage",
        "gain",
        _cal("gain", fitted_at="yesterday"),
        field_="fitted_at",
        quick=True,
    )
    add("fitted-at-number", "gain", _cal("gain", fitted_at=5), field_="fitted_at")
    add(
        "fitted-at-naive",
        "gain",
        _cal("gain", fitted_at="2026-01-01T00:00:00"),
        field_="fitted_at",
    )
    add(
        "fitted-at-future",
        "gain",
        _cal("gain", fitted_at="2999-01-01T00:00:00+00:00"),
        field_="fitted_at",
    )
    add(
        "px-per-mm-nan",
        "camera",
        _cal("camera", px_per_mm=math.nan),
        field_="px_per_mm",
        quick=True,
    )
    add("px-per-mm-zero", "camera", _cal("camera", px_per_mm=0), field_="px_per_mm")
    add(
        "px-per-mm-negative",
        "camera",
        _cal("camera", px_per_mm=-3.2),
        field_="px_per_mm",
    )
    add("px-per-mm-text", "camera", _cal("camera", px_per_mm="3.2"), field_="px_per_mm")
    add(
        "matrix-wrong-shape",
        "camera",
        _cal("camera", camera_matrix=[1, 2]),
        field_="camera_matrix",
    )
    add(
        "uv-per-count-empty",
        "gain",
        _cal("gain", uv_per_count=[]),
        field_="uv_per_count",
    )
    add(
        "uv-per-count-zero",
        "gain",
        _cal("gain", uv_per_count=[0.0] * 4),
        field_="uv_per_count",
    )
    add(
        "uv-per-count-infinity",
        "gain",
        _cal("gain", uv_per_count=[math.inf, -math.inf, 0.07, 0.07]),
        field_="uv_per_count",
    )
    add(
        "uv-per-count-text",
        "gain",
        _cal("gain", uv_per_count="0.07"),
        field_="uv_per_count",
    )
    add(
        "coefficients-short",
        "stimulator",
        _cal("stimulator", coefficients=[1.0]),
        field_="coefficients",
    )
    add(
        "commanded-range-reversed",
        "stimulator",
        _cal("stimulator", commanded_min_vpp=6.0, commanded_max_vpp=1.0),
        field_="commanded",
    )
    add("offset-nan", "timing", _cal("timing", offset_s=math.nan), field_="offset_s")
    add(
        "frame-period-zero",
        "timing",
        _cal("timing", frame_period_samples=0),
        field_="frame_period_samples",
    )
    add("unknown-key", "gain", _cal("gain", uv_per_cnt=[1.0] * 4), "either")
    # the file is not a file
    folder = d / "a-folder"
    (folder / "gain.json").mkdir(parents=True)
    cases.append(
        Case(
            "calibration",
            "gain-json-is-a-folder",
            "either",
            ("gain.json",),
            call=lambda folder=folder: CalibrationSet.load(folder),
            errors=(CalibrationError,),
            check=refused_by_warning("gain", folder / "gain.json"),
            timeout=10,
        )
    )
    folder = d / "fifo"
    folder.mkdir()
    fifo(folder / "gain.json")
    cases.append(
        Case(
            "calibration",
            "gain-json-is-a-fifo",
            "either",
            ("gain.json",),
            call=lambda folder=folder: CalibrationSet.load(folder),
            errors=(CalibrationError,),
            check=refused_by_warning("gain", folder / "gain.json"),
            timeout=5,
            quick=True,
        )
    )
    path = put(d / "direct-nan.json", json.dumps(_cal("camera", px_per_mm=math.nan)))
    cases.append(
        Case(
            "calibration",
            "load-calibration-nan",
            "refuse",
            ("direct-nan.json", "px_per_mm"),
            call=lambda: load_calibration(path),
            errors=(CalibrationError,),
            timeout=10,
        )
    )
    path2 = put(d / "direct-list.json", "[1, 2]")
    cases.append(
        Case(
            "calibration",
            "load-calibration-list",
            "refuse",
            ("direct-list.json",),
            call=lambda: load_calibration(path2),
            errors=(CalibrationError,),
            timeout=10,
        )
    )
    return cases


# --- recordings ------------------------------------------------------------------


def make_base_recording(d: Path, env: dict[str, str]) -> Path:
    """A short recording of the simulated rig with its camera (one simulator run)."""
    protocol = put(d / "base.toml", BASE_PROTOCOL)
    out = d / "runs"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rig.cli",
            "run",
            str(protocol),
            "--sim",
            "--camera",
            "sim",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if proc.returncode != 0:
        raise SystemExit(f"cannot make the base recording:\n{proc.stderr}")
    (folder,) = out.iterdir()
    for extra in ("ground_truth.json", "ground_truth_segments.npz"):
        (folder / extra).unlink(missing_ok=True)
    return folder


def analyze_json(path: Path, out: Path, env: dict[str, str], *extra: str) -> dict:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rig.cli",
            "analyze",
            str(path),
            "--quiet",
            "--json",
            str(out),
            *extra,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise SystemExit(f"analyze of the intact input failed:\n{proc.stderr}")
    return json.loads(out.read_text())


def recording_cases(d: Path, env: dict[str, str]) -> list[Case]:
    d.mkdir()
    base = make_base_recording(d, env)
    base_summary = summary(analyze_json(base, d / "base.json", env))
    if base_summary[1] != base_summary[0] or base_summary[0] < 2:
        raise SystemExit(f"the base recording analyses badly: {base_summary}")
    # Cases about anything but the video run on a copy without it: no tracking,
    # a third of the time; its stimuli and responses are the same.
    base_nv = d / "base-no-video"
    shutil.copytree(base, base_nv, copy_function=os.link)
    for name in ("video.mkv", "frames.csv", "frame_samples.csv"):
        (base_nv / name).unlink()
    if summary(analyze_json(base_nv, d / "base-nv.json", env)) != base_summary:
        raise SystemExit("the base recording analyses differently without its video")
    meta = json.loads((base / "metadata.json").read_text())
    events = (base / "events.jsonl").read_text().splitlines()
    stim = [i for i, e in enumerate(events) if '"stim_delivered"' in e]
    index = (base / "index.jsonl").read_text()
    first_sample = json.loads(index.splitlines()[0])["first_sample"]
    samples_size = (base / "samples.i16").stat().st_size
    cases: list[Case] = []

    def variant(name: str) -> Path:
        folder = d / name
        video = name.startswith(("intact", "frames-", "table-", "video-", "camera-"))
        shutil.copytree(base if video else base_nv, folder, copy_function=os.link)
        return folder

    def add(name, mutate, expect="refuse", names=(), check=None, quick=False, extra=()):
        folder = variant(name)
        mutate(folder)
        out = d / f"{name}.json"
        if check is None and expect != "refuse":
            check = like_base(out, base_summary)
        elif callable(check) and getattr(check, "wants_out", False):
            check = check(out)
        argv = ["analyze", str(folder), "--quiet", "--json", str(out), *extra]
        cases.append(
            Case(
                "recording",
                name,
                expect,
                names,
                argv=argv,
                check=check,
                quick=quick,
                timeout=60,
            )
        )

    def meta_with(**changes):
        def mutate(folder: Path) -> None:
            m = json.loads(json.dumps(meta))
            for key, value in changes.items():
                target = m
                *parents, leaf = key.split(".")
                for p in parents:
                    target = target[p]
                if value is _DROP:
                    target.pop(leaf, None)
                else:
                    target[leaf] = value
            put(folder / "metadata.json", json.dumps(m))

        return mutate

    def file_is(name: str, data: str | bytes | None):
        def mutate(folder: Path) -> None:
            if data is None:
                (folder / name).unlink()
            else:
                put(folder / name, data)

        return mutate

    def said(*tokens):  # accepted if it says so on stderr
        def make(out):
            return like_base(out, base_summary, said=tokens)

        make.wants_out = True
        return make

    def analysed_or_said(*tokens):
        def make(out):
            return all_analysed_or_said(out, tokens)

        make.wants_out = True
        return make

    add("intact", lambda f: None, "accept", quick=True)
    # metadata.json
    add(
        "metadata-missing",
        file_is("metadata.json", None),
        names=("metadata.json",),
        quick=True,
    )
    add(
        "metadata-empty",
        file_is("metadata.json", ""),
        names=("metadata.json",),
        quick=True,
    )
    add(
        "metadata-truncated",
        file_is("metadata.json", json.dumps(meta)[:300]),
        names=("metadata.json",),
    )
    add(
        "metadata-binary",
        file_is("metadata.json", b"\xff\xfe\x00" * 50),
        names=("metadata.json",),
    )
    add("metadata-list", file_is("metadata.json", "[]"), names=("metadata.json",))
    add("metadata-null", file_is("metadata.json", "null"), names=("metadata.json",))
    add(
        "metadata-deep",
        file_is("metadata.json", deep_json()),
        names=("metadata.json",),
        quick=True,
    )
    add(
        "metadata-a-folder",
        lambda f: (f / "metadata.json").unlink() or (f / "metadata.json").mkdir(),
        names=("metadata.json",),
    )
    add("format-other", meta_with(format="wav"), names=("metadata.json", "format"))
    add("schema-99", meta_with(schema_version=99), names=("schema_version",))
    add("schema-text", meta_with(schema_version="1"), names=("schema_version",))
    add(
        "n-channels-missing",
        meta_with(n_channels=_DROP),
        names=("n_channels",),
        quick=True,
    )
    add("n-channels-text", meta_with(n_channels="4"), "either", names=("n_channels",))
    for v in (0, -4, 3, 10**9, 4.5, None):
        add(
            f"n-channels-{v}",
            meta_with(n_channels=v),
            names=("n_channels",),
            quick=v == 0,
        )
    add("n-channels-nan", meta_with(n_channels=math.nan), names=("n_channels",))
    for v in (0, -30000, "fast", None, 1e300):
        add(f"sample-rate-{v}", meta_with(sample_rate_hz=v), names=("sample_rate_hz",))
    add(
        "sample-rate-nan",
        meta_with(sample_rate_hz=math.nan),
        names=("sample_rate_hz",),
        quick=True,
    )
    add(
        "sample-rate-missing",
        meta_with(sample_rate_hz=_DROP),
        names=("sample_rate_hz",),
    )
    add(
        "volts-per-count-nan",
        meta_with(**{"acquisition.volts_per_count_nominal": math.nan}),
        names=("volts_per_count_nominal",),
    )
    add(
        "volts-per-count-zero",
        meta_with(**{"acquisition.volts_per_count_nominal": 0}),
        names=("volts_per_count_nominal",),
    )
    add(
        "volts-per-count-missing",
        meta_with(**{"acquisition.volts_per_count_nominal": _DROP}),
        names=("volts_per_count_nominal",),
    )
    add("acquisition-text", meta_with(acquisition="gain 1000"), names=("acquisition",))
    add(
        "positions-three",
        meta_with(**{"geometry.pair_centres_m": [0.04, 0.06, 0.08]}),
        names=("pair_centres_m",),
    )
    add(
        "positions-nan",
        meta_with(
            **{
                "geometry.pair_centres_m": [
                    math.nan,
                    *meta["geometry"]["pair_centres_m"][1:],
                ]
            }
        ),
        names=("pair_centres_m",),
    )
    add(
        "positions-text",
        meta_with(**{"geometry.pair_centres_m": "front"}),
        names=("pair_centres_m",),
    )
    add(
        "positions-reversed",
        meta_with(
            **{
                "geometry.pair_centres_m": list(
                    reversed(meta["geometry"]["pair_centres_m"])
                )
            }
        ),
        "either",
        names=("pair_centres_m",),
        quick=True,
    )
    add("geometry-missing", meta_with(geometry=None), names=("electrode",))
    add(
        "camera-px-per-mm-zero",
        meta_with(**{"geometry.camera.px_per_mm": 0}),
        "either",
        names=("px_per_mm",),
        check=said("px_per_mm", "px/mm"),
    )
    add(
        "camera-px-per-mm-nan",
        meta_with(**{"geometry.camera.px_per_mm": math.nan}),
        "either",
        names=("px_per_mm",),
        check=said("px_per_mm", "px/mm"),
    )
    add("status-odd", meta_with(status="exploded"), "either", names=("status",))
    # the option overriding the metadata
    add(
        "option-positions-reversed",
        lambda f: None,
        "either",
        names=("--electrode-positions-mm",),
        extra=("--electrode-positions-mm", "97.5,77.5,57.5,37.5"),
    )
    add(
        "option-positions-three",
        lambda f: None,
        names=("--electrode-positions-mm",),
        extra=("--electrode-positions-mm", "35,55,75"),
        quick=True,
    )
    add(
        "option-positions-nan",
        lambda f: None,
        names=("--electrode-positions-mm",),
        extra=("--electrode-positions-mm", "nan,55,75,95"),
    )
    # samples.i16
    add(
        "samples-missing",
        file_is("samples.i16", None),
        names=("samples.i16",),
        quick=True,
    )
    add(
        "samples-empty",
        file_is("samples.i16", b""),
        "either",
        names=("samples.i16",),
        check=analysed_or_said("samples"),
    )
    add(
        "samples-half",
        lambda f: put(
            f / "samples.i16", (base / "samples.i16").read_bytes()[: samples_size // 2]
        ),
        "either",
        names=("samples.i16",),
        check=analysed_or_said("samples", "not analysed", "lost"),
    )
    add(
        "samples-partial-row",
        lambda f: put(
            f / "samples.i16", (base / "samples.i16").read_bytes() + b"\x01\x02\x03"
        ),
        "accept",
    )
    add(
        "samples-a-folder",
        lambda f: (f / "samples.i16").unlink() or (f / "samples.i16").mkdir(),
        names=("samples.i16",),
    )
    # index.jsonl
    add(
        "index-missing",
        file_is("index.jsonl", None),
        names=("index.jsonl",),
        quick=True,
    )
    add("index-empty", file_is("index.jsonl", ""), names=("index.jsonl",))
    add(
        "index-garbage-line",
        file_is("index.jsonl", "garbage\n" + index),
        names=("index.jsonl",),
    )
    add(
        "index-torn-tail",
        file_is("index.jsonl", index + '{"kind":"gap","fir'),
        "accept",
    )
    for label, record in {
        "no-row": {"kind": "run", "first_sample": first_sample},
        "no-kind": {"row": 0, "first_sample": first_sample},
        "row-negative": {"kind": "run", "row": -5, "first_sample": first_sample},
        "first-sample-negative": {"kind": "run", "row": 0, "first_sample": -(10**6)},
        "first-sample-huge": {"kind": "run", "row": 0, "first_sample": 2**70},
        "first-sample-text": {"kind": "run", "row": 0, "first_sample": "x"},
        "first-sample-float": {"kind": "run", "row": 0, "first_sample": 1.5},
        "list": [0, first_sample],
    }.items():
        add(
            f"index-{label}",
            file_is("index.jsonl", json.dumps(record) + "\n"),
            names=("index.jsonl",),
            quick=label == "no-row",
        )
    add(
        "index-runs-backwards",
        file_is(
            "index.jsonl",
            json.dumps({"kind": "run", "row": 0, "first_sample": first_sample})
            + "\n"
            + json.dumps(
                {"kind": "run", "row": 1000, "first_sample": first_sample - 50_000}
            )
            + "\n",
        ),
        names=("index.jsonl",),
    )
    add(
        "index-runs-reordered",
        file_is(
            "index.jsonl",
            json.dumps(
                {"kind": "run", "row": 1000, "first_sample": first_sample + 1000}
            )
            + "\n"
            + json.dumps({"kind": "run", "row": 0, "first_sample": first_sample})
            + "\n",
        ),
        names=("index.jsonl",),
    )
    add(
        "index-gap-negative",
        file_is(
            "index.jsonl",
            index
            + json.dumps(
                {"kind": "gap", "first_sample": first_sample + 10, "n_lost": -300}
            )
            + "\n",
        ),
        "either",
        names=("index.jsonl",),
    )
    # events.jsonl
    add(
        "events-missing",
        file_is("events.jsonl", None),
        "either",
        names=("events.jsonl",),
        check=said("events.jsonl"),
        quick=True,
    )
    add(
        "events-empty",
        file_is("events.jsonl", ""),
        "accept",
        check=stdout_has("0 stimuli"),
    )
    add(
        "events-garbage-line",
        file_is("events.jsonl", "\n".join(["garbage", *events]) + "\n"),
        names=("events.jsonl",),
    )
    add(
        "events-torn-tail",
        file_is("events.jsonl", "\n".join(events) + '\n{"sam'),
        "accept",
    )
    add(
        "events-reordered",
        file_is("events.jsonl", "\n".join(reversed(events)) + "\n"),
        "either",
        names=("events.jsonl",),
        quick=True,
    )
    add(
        "events-binary",
        file_is("events.jsonl", b"\xff\xfe\x00\n" * 30),
        names=("events.jsonl",),
    )

    def stim_with(label, **changes):
        # the last stimulus for one beyond the recording (still in order)
        which = stim[-1] if label == "sample-beyond" else stim[0]

        def mutate(folder: Path) -> None:
            lines = list(events)
            e = json.loads(lines[which])
            for key, value in changes.items():
                if value is _DROP:
                    e.pop(key, None)
                else:
                    e[key] = value
            lines[which] = json.dumps(e)
            put(folder / "events.jsonl", "\n".join(lines) + "\n")

        return mutate

    for label, changes, expect in (
        ("no-sample", {"sample": _DROP}, "refuse"),
        ("sample-text", {"sample": "soon"}, "refuse"),
        ("sample-float", {"sample": 115380.5}, "refuse"),
        ("sample-negative", {"sample": -1000}, "refuse"),
        ("sample-beyond", {"sample": 2**40}, "either"),
        ("sample-huge", {"sample": 2**70}, "refuse"),
        ("sample-before-recording", {"sample": first_sample - 30_000}, "either"),
        ("no-duration", {"duration_s": _DROP}, "refuse"),
        ("duration-negative", {"duration_s": -0.003}, "refuse"),
        ("duration-text", {"duration_s": "3ms"}, "refuse"),
        (
            "amplitude-text",
            {"amplitude_vpp": "high", "requested_vpp": "high", "commanded_vpp": "high"},
            "refuse",
        ),
        ("pair-text", {"pair": "left"}, "refuse"),
    ):
        add(
            f"stim-{label}",
            stim_with(label, **changes),
            expect,
            names=("events.jsonl",),
            check=analysed_or_said("not analysed", "outside the recording")
            if expect == "either"
            else None,
            quick=label in ("no-sample", "sample-beyond"),
        )
    add(
        "stim-duration-nan",
        stim_with("nan", duration_s=math.nan),
        names=("events.jsonl",),
    )
    add(
        "stim-is-a-list",
        lambda f: put(
            f / "events.jsonl", "\n".join([*events, '["stim_delivered", 1]']) + "\n"
        ),
        names=("events.jsonl",),
    )
    add(
        "stim-is-null",
        lambda f: put(f / "events.jsonl", "\n".join([*events, "null"]) + "\n"),
        names=("events.jsonl",),
    )
    add(
        "stim-duplicated",
        lambda f: put(f / "events.jsonl", "\n".join([*events, events[stim[0]]]) + "\n"),
        "either",
        names=("events.jsonl",),
        check=said("events.jsonl", "duplicate"),
    )
    # frames.csv, frame_samples.csv, video.mkv
    frames = (base / "frames.csv").read_text()
    table = (base / "frame_samples.csv").read_text()
    add(
        "frames-missing",
        file_is("frames.csv", None),
        "either",
        names=("frames.csv",),
        check=said("frames.csv"),
    )
    add(
        "frames-garbage-line",
        file_is("frames.csv", frames.replace("\n1,", "\nx,y\n1,", 1)),
        names=("frames.csv",),
    )
    add(
        "frames-more-than-video",
        file_is(
            "frames.csv",
            frames + "".join(f"{k},{99999 + k}.0\n" for k in range(2000, 4000)),
        ),
        "accept",
    )
    add(
        "frames-header-only",
        file_is("frames.csv", "frame_index,host_time_s\n"),
        "either",
        names=("frames.csv",),
        check=said("frames.csv"),
    )
    add(
        "frames-nan-time",
        file_is("frames.csv", frames.replace("\n1,", "\n1,nan\n#", 1)),
        names=("frames.csv",),
    )
    add(
        "table-missing",
        file_is("frame_samples.csv", None),
        "either",
        names=("frame_samples.csv",),
        check=said("frame_samples.csv"),
    )
    add(
        "table-garbage",
        file_is("frame_samples.csv", table.replace("\n1,", "\n1,x\n1,", 1)),
        names=("frame_samples.csv",),
        quick=True,
    )
    add(
        "table-frames-video-lacks",
        file_is(
            "frame_samples.csv",
            table
            + "".join(
                f"{k},{first_sample + 500 * k},trigger,{k}\n" for k in range(5000, 5100)
            ),
        ),
        "accept",
    )
    add(
        "table-negative-index",
        file_is("frame_samples.csv", table + f"-3,{first_sample},trigger,1\n"),
        "either",
        names=("frame_samples.csv",),
    )
    add(
        "table-sample-reordered",
        file_is(
            "frame_samples.csv",
            "\n".join([table.splitlines()[0], *reversed(table.splitlines()[1:])])
            + "\n",
        ),
        "accept",
    )
    add(
        "video-missing",
        file_is("video.mkv", None),
        "either",
        names=("video.mkv",),
        check=said("video.mkv"),
        quick=True,
    )
    add(
        "video-empty",
        file_is("video.mkv", b""),
        "either",
        names=("video.mkv",),
        check=said("video.mkv"),
    )
    add(
        "video-garbage",
        file_is("video.mkv", os.urandom(4096)),
        "either",
        names=("video.mkv",),
        check=said("video.mkv"),
    )
    add(
        "video-truncated",
        lambda f: put(f / "video.mkv", (base / "video.mkv").read_bytes()[:200_000]),
        "either",
        names=("video.mkv",),
        check=said("video.mkv"),
    )
    # the folder itself
    empty = d / "empty-folder"
    empty.mkdir()
    cases.append(
        Case(
            "recording",
            "empty-folder",
            "refuse",
            ("metadata.json",),
            argv=["analyze", str(empty), "--quiet"],
        )
    )
    cases.append(
        Case(
            "recording",
            "no-such-folder",
            "refuse",
            ("no-such",),
            argv=["analyze", str(d / "no-such"), "--quiet"],
        )
    )
    cases.append(
        Case(
            "recording",
            "metadata-fifo",
            "refuse",
            ("metadata.json",),
            argv=["analyze", str(_fifo_metadata(variant("metadata-fifo"))), "--quiet"],
            timeout=20,
            quick=True,
        )
    )
    return cases


def _fifo_metadata(folder: Path) -> Path:
    fifo(folder / "metadata.json")
    return folder


# --- Spike Recorder WAV + events ---------------------------------------------------


def wav_bytes(
    n_channels: int = 1,
    width: int = 2,
    rate: int = 20_000,
    data: bytes = b"\x00\x00" * 100,
    *,
    fmt_tag: int = 1,
    data_size: int | None = None,
    riff: bytes = b"RIFF",
) -> bytes:
    """A WAV file's bytes with every header field under our control."""
    block = n_channels * width
    fmt = struct.pack(
        "<HHIIHH", fmt_tag, n_channels, rate, rate * block, block, 8 * width
    )
    size = len(data) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", size) + data
    return riff + struct.pack("<I", min(len(body), 0xFFFFFFFF)) + body


def make_base_wav(d: Path) -> tuple[Path, int]:
    """A Spike Recorder pair from the simulated worm: 4 channels, 4 stimuli."""
    from firmware_bridge.sim import (
        RacewayGeometry,
        WormModel,
        WormParams,
        to_adc_counts,
    )
    from rig.offline.spike_recorder import write_spike_recorder

    fs = 20_000
    model = WormModel(
        WormParams(
            mgf_velocity_m_per_s=20.0,
            lgf_velocity_m_per_s=10.0,
            habituation_per_stimulus=0.0,
        ),
        RacewayGeometry(),
        fs_hz=fs,
        seed=8,
    )
    onsets = [fs // 2 + k * fs for k in range(4)]
    for onset in onsets:
        model.stimulate(onset, 4.0, 3e-3)
    counts = to_adc_counts(model.render(0, onsets[-1] + fs // 2), gain=1000)
    wav = d / "worm.wav"
    write_spike_recorder(wav, counts, fs, [("1", o / fs) for o in onsets])
    return wav, fs


def wav_cases(d: Path, env: dict[str, str]) -> list[Case]:
    d.mkdir()
    base, _fs = make_base_wav(d)
    base_summary = summary(
        analyze_json(
            base, d / "base.json", env, "--electrode-positions-mm", POSITIONS_MM
        )
    )
    if base_summary[0] != 4 or base_summary[1] != 4:
        raise SystemExit(f"the base WAV analyses badly: {base_summary}")
    wav_data = base.read_bytes()
    events_text = (d / "worm-events.txt").read_text()
    cases: list[Case] = []

    def add(
        name,
        wav=None,
        events=None,
        expect="refuse",
        names=(),
        extra=None,
        check=None,
        quick=False,
    ):
        folder = d / name
        folder.mkdir()
        path = folder / "x.wav"
        if wav is None:
            os.link(base, path)
        elif wav is not _DROP:
            put(path, wav) if isinstance(wav, bytes) else wav(path)
        if events is None:
            put(folder / "x-events.txt", events_text)
        elif events is not _DROP:
            put(folder / "x-events.txt", events) if isinstance(
                events, str | bytes
            ) else events(folder / "x-events.txt")
        out = folder / "out.json"
        options = ["--electrode-positions-mm", POSITIONS_MM] if extra is None else extra
        if check is None and expect != "refuse":
            check = like_base(out, base_summary)
        elif check == "said":
            check = like_base(out, base_summary, said=("x-events.txt", "marker"))
        elif check == "finite":
            check = finite_json(out)
        argv = ["analyze", str(path), "--quiet", "--json", str(out), *options]
        cases.append(
            Case(
                "wav",
                name,
                expect,
                names,
                argv=argv,
                check=check,
                quick=quick,
                timeout=120,
            )
        )

    add("intact", expect="accept", quick=True)
    add("empty", b"", names=("x.wav",), quick=True)
    add("text", b"hello, this is not a wav\n" * 10, names=("x.wav",))
    add("riff-garbage", b"RIFF" + os.urandom(200), names=("x.wav",))
    add("rifx", wav_bytes(riff=b"RIFX"), names=("x.wav",))
    add("8-bit", wav_bytes(width=1, data=b"\x80" * 400), names=("x.wav",))
    add("24-bit", wav_bytes(width=3, data=b"\x00" * 600), names=("x.wav",))
    add("float", wav_bytes(width=4, fmt_tag=3, data=b"\x00" * 800), names=("x.wav",))
    add("0-channels", wav_bytes(n_channels=0), names=("x.wav",), quick=True)
    add(
        "rate-0",
        wav_bytes(n_channels=4, rate=0, data=b"\x00" * 8000),
        names=("x.wav",),
        extra=["--electrode-positions-mm", POSITIONS_MM],
        quick=True,
    )
    add(
        "huge-claimed-size",
        wav_data[:40] + struct.pack("<I", 0xFFFFFFF0) + wav_data[44:],
        expect="either",
        names=("x.wav",),
        quick=True,
    )
    add("header-only", wav_data[:44], names=("x.wav",))
    add("truncated-mid-header", wav_data[:30], names=("x.wav",))
    add(
        "partial-frame",
        wav_data[: 44 + 8 * 1000 + 3],
        expect="either",
        names=("x.wav",),
        check="finite",
    )
    add("a-folder", lambda p: p.mkdir(), names=("x.wav",))
    add("missing", _DROP, names=("x.wav",))
    add("fifo", lambda p: fifo(p), names=("x.wav",), quick=True)
    # events file
    add("events-missing", events=_DROP, names=("x-events.txt",), quick=True)
    add("events-empty", events="", names=("x-events.txt",))
    add(
        "events-comments-only",
        events="# Marker IDs\n# nothing\n",
        names=("x-events.txt",),
    )
    add("events-garbage", events="hello world\n", names=("x-events.txt",), quick=True)
    add(
        "events-binary",
        events=b"\xff\xfe\x00\x01" * 50,
        names=("x-events.txt",),
        quick=True,
    )
    add("events-time-nan", events="1,\tnan\n", names=("x-events.txt",), quick=True)
    add("events-time-inf", events="1,\tinf\n", names=("x-events.txt",), quick=True)
    add("events-time-negative", events="1,\t-0.5\n1,\t0.5\n", names=("x-events.txt",))
    add(
        "events-time-beyond",
        events=events_text + "1,\t999.0\n",
        names=("x-events.txt",),
        quick=True,
    )
    add("events-time-huge", events="1,\t1e300\n", names=("x-events.txt",))
    add("events-only-id", events="1\n", names=("x-events.txt",))
    add(
        "events-extra-column",
        events=events_text + "1,\t1.6,x\n",
        expect="either",
        names=("x-events.txt",),
        check="said",
    )
    add(
        "events-reordered",
        events="\n".join(reversed(events_text.splitlines())) + "\n",
        expect="either",
        names=("x-events.txt",),
    )
    add("events-a-folder", events=lambda p: p.mkdir(), names=("x-events.txt",))
    add("events-fifo", events=lambda p: fifo(p), names=("x-events.txt",), quick=True)
    add(
        "events-sorter-only",
        events="_neuron0,\t0.5\n_neuron0,\t0.7\n",
        names=("x-events.txt",),
    )
    # options
    add("no-positions", extra=[], names=("--electrode-positions-mm",), quick=True)
    add(
        "positions-three",
        extra=["--electrode-positions-mm", "35,55,75"],
        names=("--electrode-positions-mm",),
    )
    add(
        "positions-nan",
        extra=["--electrode-positions-mm", "nan,55,75,95"],
        names=("--electrode-positions-mm",),
        quick=True,
    )
    add(
        "positions-same",
        extra=["--electrode-positions-mm", "40,40,40,40"],
        names=("--electrode-positions-mm",),
    )
    add(
        "positions-reversed",
        expect="either",
        names=("--electrode-positions-mm",),
        extra=["--electrode-positions-mm", "97.5,77.5,57.5,37.5"],
    )
    p = ["--electrode-positions-mm", POSITIONS_MM]
    for v in ("0", "nan", "-1", "inf", "abc"):
        add(
            f"uv-per-count-{v}",
            extra=[*p, "--uv-per-count", v],
            names=("--uv-per-count",),
            quick=v == "nan",
        )
    add(
        "pulse-duration-0",
        extra=[*p, "--pulse-duration-ms", "0"],
        names=("--pulse-duration-ms",),
    )
    add(
        "stimulus-markers-empty",
        extra=[*p, "--stimulus-markers", ","],
        names=("--stimulus-markers",),
    )
    add(
        "stimulus-markers-absent",
        extra=[*p, "--stimulus-markers", "7"],
        names=("x.wav",),
    )
    add("mains-55", extra=[*p, "--mains-hz", "55"], names=("--mains-hz",))
    add(
        "marker-map-missing",
        extra=[*p, "--marker-map", str(d / "none.toml")],
        names=("none.toml",),
    )
    bad_map = put(d / "bad-map.toml", '[markers."1"]\namplitude_vpp = nan\n')
    add(
        "marker-map-nan",
        extra=[*p, "--marker-map", str(bad_map)],
        names=("bad-map.toml", "amplitude_vpp"),
    )
    deep_map = put(d / "deep-map.toml", deep_toml())
    add(
        "marker-map-deep",
        extra=[*p, "--marker-map", str(deep_map)],
        names=("deep-map.toml",),
    )
    return cases


# --- command-line flags ----------------------------------------------------------


def cli_cases(d: Path) -> list[Case]:
    d.mkdir()
    protocol = put(d / "p.toml", VALID_PROTOCOL)
    taken = put(d / "taken", "a file")
    cases: list[Case] = []

    def add(name, argv, expect="refuse", names=(), quick=False, **kw):
        cases.append(Case("cli", name, expect, names, argv=argv, quick=quick, **kw))

    add("no-command", [], "accept")
    add("unknown-command", ["frobnicate"], names=("frobnicate",))
    add("run-no-protocol", ["run"], names=("protocol",))
    add(
        "run-sim-and-port",
        ["run", str(protocol), "--sim", "--port", "/dev/null"],
        names=("--port", "--sim"),
        quick=True,
    )
    add(
        "run-seed-text",
        ["run", str(protocol), "--sim", "--seed", "abc"],
        names=("--seed",),
    )
    add("run-no-board", ["run", str(protocol)], names=("--port", "--sim"))
    add(
        "run-out-is-a-file",
        ["run", str(protocol), "--sim", "--out", str(taken)],
        names=("--out", "taken"),
        quick=True,
    )
    add(
        "run-out-inside-a-file",
        ["run", str(protocol), "--sim", "--out", str(taken / "sub")],
        names=("--out", "taken"),
    )
    add(
        "run-dry-run-into-closed-pipe",
        ["run", str(protocol), "--dry-run"],
        "accept",
        stdout_closed=True,
        quick=True,
        check=lambda r: (
            None
            if r.rc == 141 and not r.stderr
            else f"exit {r.rc}, stderr {r.stderr[:200]!r}"
        ),
    )
    add(
        "selftest-n-0",
        ["selftest", "latency", "--sim", "--n", "0"],
        names=("--n",),
        quick=True,
    )
    add(
        "selftest-n-negative",
        ["selftest", "latency", "--sim", "--n", "-5"],
        names=("--n",),
    )
    add(
        "selftest-n-text",
        ["selftest", "latency", "--sim", "--n", "many"],
        names=("--n",),
    )
    add(
        "selftest-n-float",
        ["selftest", "latency", "--sim", "--n", "1e3"],
        names=("--n",),
    )
    add(
        "selftest-positions-three",
        ["selftest", "latency", "--sim", "--electrode-positions-mm", "35,55,75"],
        names=("--electrode-positions-mm",),
    )
    add("selftest-unknown-test", ["selftest", "speed", "--sim"], names=("speed",))
    add("selftest-no-board", ["selftest", "latency"], names=("--port", "--sim"))
    add("calibrate-unknown-kind", ["calibrate", "colour", "--sim"], names=("colour",))
    add(
        "calibrate-out-is-a-file",
        ["calibrate", "gain", "--sim", "--out", str(taken)],
        names=("--out", "taken"),
    )
    add(
        "calibrate-camera-without-camera",
        ["calibrate", "camera", "--port", "/dev/null"],
        names=("--camera",),
    )
    add("reset-no-board", ["reset"], names=("--port", "--sim"))
    add("analyze-no-such-path", ["analyze", str(d / "nothing")], names=("nothing",))
    add("analyze-a-text-file", ["analyze", str(protocol)], names=("p.toml",))
    for v in ("0", "nan", "-3", "inf", "abc"):
        add(
            f"analyze-px-per-mm-{v}",
            ["analyze", str(d), "--px-per-mm", v],
            names=("--px-per-mm",),
            quick=v == "0",
        )
    add(
        "analyze-mains-55",
        ["analyze", str(d), "--mains-hz", "55"],
        names=("--mains-hz",),
    )
    add(
        "analyze-json-is-a-folder",
        ["analyze", str(d), "--json", str(d)],
        names=("--json",),
    )
    add(
        "analyze-report-is-a-file",
        ["analyze", str(d), "--report", str(taken)],
        names=("--report",),
    )
    # neurorig sim: a server; still running at the timeout means it started
    sim = {"timeout": 6.0, "runs_forever": True}
    for name, argv, names in (
        ("channels-0", ["--channels", "0"], ("--channels",)),
        ("channels-33", ["--channels", "33"], ("--channels",)),
        ("channels-text", ["--channels", "four"], ("--channels",)),
        ("rate-7", ["--rate", "7"], ("--rate",)),
        ("rate-float", ["--rate", "30000.5"], ("--rate",)),
        ("seed-text", ["--seed", "x"], ("--seed",)),
        ("seed-negative", ["--seed", "-1"], ("--seed",)),
        ("bit-flip-2", ["--bit-flip-rate", "2"], ("--bit-flip-rate",)),
        ("bit-flip-nan", ["--bit-flip-rate", "nan"], ("--bit-flip-rate",)),
        ("byte-drop-negative", ["--byte-drop-rate", "-0.1"], ("--byte-drop-rate",)),
        ("camera-drop-inf", ["--camera-drop-rate", "inf"], ("--camera-drop-rate",)),
        ("stall-long", ["--stall", "1:100"], ("--stall",)),
        ("stall-text", ["--stall", "soon"], ("--stall",)),
        ("stall-nan", ["--stall", "1:nan"], ("--stall",)),
        ("stall-negative-start", ["--stall", "-5:1"], ("--stall",)),
        (
            "garbage-rate-negative",
            ["--garbage-burst-rate", "-1"],
            ("--garbage-burst-rate",),
        ),
        (
            "garbage-rate-nan",
            ["--garbage-burst-rate", "nan"],
            ("--garbage-burst-rate",),
        ),
        ("garbage-bytes-0", ["--garbage-burst-bytes", "0"], ("--garbage-burst-bytes",)),
        (
            "garbage-bytes-huge",
            ["--garbage-burst-bytes", "10000000000000"],
            ("--garbage-burst-bytes",),
        ),
        ("unplug-negative", ["--unplug-at", "-1"], ("--unplug-at",)),
        ("unplug-nan", ["--unplug-at", "nan"], ("--unplug-at",)),
        ("reboot-inf", ["--reboot-at", "inf"], ("--reboot-at",)),
        (
            "camera-socket-no-folder",
            ["--camera-socket", str(d / "no" / "such.sock")],
            ("--camera-socket",),
        ),
        ("camera-socket-a-file", ["--camera-socket", str(taken)], ("--camera-socket",)),
        (
            "camera-socket-too-long",
            ["--camera-socket", str(d / ("s" * 120))],
            ("--camera-socket",),
        ),
    ):
        add(
            f"sim-{name}",
            ["sim", *argv],
            names=names,
            quick=name
            in ("channels-0", "rate-7", "garbage-rate-nan", "camera-socket-no-folder"),
            **sim,
        )
    return cases


# --- serial ports ----------------------------------------------------------------


class Silent:
    """A pseudo-terminal whose other end nobody reads or writes (a board that is
    plugged in but says nothing)."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


def port_cases(d: Path, silent: Silent) -> list[Case]:
    d.mkdir()
    protocol = put(d / "p.toml", VALID_PROTOCOL)
    regular = put(d / "regular-file", "not a port")
    ports = {
        "no-such": str(d / "ttyACM9"),
        "dev-null": "/dev/null",
        "dev-zero": "/dev/zero",
        "a-folder": str(d),
        "fifo": str(fifo(d / "fifo-port")),
        "regular-file": str(regular),
        "empty": "",
        "silent-pty": silent.path,
        "socket-url": "socket://localhost:9",
        "rfc2217-url": "rfc2217://localhost:9",
        "loop-url": "loop://",
        "sim-seed-text": "sim://?seed=abc",
        "sim-channels-0": "sim://?channels=0",
        "sim-rate-7": "sim://?rate=7",
        "sim-unknown-option": "sim://?bogus=1",
    }
    cases: list[Case] = []
    quick = ("no-such", "fifo", "silent-pty", "socket-url", "sim-rate-7")
    for label, port in ports.items():
        names = (port,) if port and not port.startswith("sim://") else ()
        if label.startswith("sim-"):
            names = (label.split("-")[1],)
        cases.append(
            Case(
                "port",
                f"reset-{label}",
                "refuse",
                names,
                argv=["reset", "--port", port],
                timeout=30,
                quick=label in quick,
            )
        )
    for label in ("no-such", "fifo", "silent-pty"):
        port = ports[label]
        cases.append(
            Case(
                "port",
                f"run-{label}",
                "refuse",
                (port,),
                argv=["run", str(protocol), "--port", port, "--out", str(d / "runs")],
                timeout=30,
            )
        )
        cases.append(
            Case(
                "port",
                f"selftest-{label}",
                "refuse",
                (port,),
                argv=["selftest", "latency", "--port", port, "--n", "2"],
                timeout=30,
            )
        )
        cases.append(
            Case(
                "port",
                f"calibrate-{label}",
                "refuse",
                (port,),
                argv=["calibrate", "gain", "--port", port, "--out", str(d / "cal")],
                timeout=30,
            )
        )
    return cases


# --- the table -------------------------------------------------------------------


def build_cases(tmp: Path, kinds=KINDS, silent: Silent | None = None) -> list[Case]:
    """Every case of ``kinds``, its files written under ``tmp``."""
    env = _env(tmp)
    makers = {
        "protocol": lambda: protocol_cases(tmp / "protocol"),
        "rig": lambda: rig_cases(tmp / "rig"),
        "calibration": lambda: calibration_cases(tmp / "calibration"),
        "recording": lambda: recording_cases(tmp / "recording", env),
        "wav": lambda: wav_cases(tmp / "wav", env),
        "cli": lambda: cli_cases(tmp / "cli"),
        "port": lambda: port_cases(tmp / "port", silent or Silent()),
    }
    cases: list[Case] = []
    for kind in kinds:
        cases += makers[kind]()
    for case in cases:  # nothing answers a named pipe: 10 s is waiting forever
        if "fifo" in case.name:
            case.timeout = min(case.timeout, 10.0)
    return cases


def table(cases: list[Case]) -> str:
    """Counts by kind × outcome, as Markdown."""
    counts = Counter((c.kind, c.outcome) for c in cases)
    kinds = [k for k in KINDS if any(c.kind == k for c in cases)]
    head = "| kind | " + " | ".join(OUTCOMES) + " | total |"
    rule = "|---" * (len(OUTCOMES) + 2) + "|"
    rows = [head, rule]
    for kind in [*kinds, "all"]:
        cells = [
            sum(n for (k, o), n in counts.items() if (kind in ("all", k)) and o == out)
            for out in OUTCOMES
        ]
        rows.append(f"| {kind} | " + " | ".join(map(str, cells)) + f" | {sum(cells)} |")
    return "\n".join(rows)


def details(case: Case) -> dict:
    r = case.result
    return {
        "kind": case.kind,
        "name": case.name,
        "expect": case.expect,
        "outcome": case.outcome,
        "detail": case.detail,
        "argv": case.argv,
        "exit": r.rc,
        "seconds": round(r.seconds, 2),
        "stderr": r.stderr[-2000:],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write per-case details here ('-': stdout)")
    parser.add_argument("--jobs", type=int, default=2, help="CLI cases at a time")
    parser.add_argument("--only", help="comma-separated kinds: " + ", ".join(KINDS))
    parser.add_argument("--quick", action="store_true", help="the test's subset only")
    parser.add_argument("--keep", help="write the inputs here and keep them")
    parser.add_argument(
        "--show",
        default=",".join((*FAILURES, "vague error", "refused valid")),
        help="list the cases with these outcomes (default: every failure)",
    )
    args = parser.parse_args(argv)
    kinds = tuple(args.only.split(",")) if args.only else KINDS
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"--only {args.only}: unknown kinds {sorted(unknown)}")
    start = time.monotonic()
    silent = Silent()
    with contextlib.ExitStack() as stack:
        stack.callback(silent.close)
        if args.keep:
            tmp = Path(args.keep)
            tmp.mkdir(parents=True, exist_ok=False)
        else:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        cases = build_cases(tmp, kinds, silent)
        if args.quick:
            cases = [c for c in cases if c.quick]
        built = time.monotonic() - start
        run_cases(cases, tmp, args.jobs)
    elapsed = time.monotonic() - start
    show = set(args.show.split(","))
    for case in cases:
        if case.outcome in show:
            print(f"{case.outcome:13} {case.kind}/{case.name}: {case.detail}")
    print()
    print(table(cases))
    print(
        f"\n{len(cases)} cases in {elapsed:.0f} s ({built:.0f} s writing inputs, "
        f"{args.jobs} at a time)"
    )
    if args.json:
        text = json.dumps([details(c) for c in cases], indent=1)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 1 if any(c.outcome in FAILURES for c in cases) else 0


if __name__ == "__main__":
    sys.exit(main())
