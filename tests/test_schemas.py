"""The JSON Schemas shipped in rig/recording/schemas hold for what neurorig
really writes: a simulated closed-loop run with its camera (metadata.json, every
events.jsonl line, the analysis JSON), a session that reboots and is emergency-
stopped, every board message as the session records it, and the recordings and
analyses of the export and input tests. Each example is also checked strictly:
every key it holds must be described in its schema, so a writer that adds a key
fails here until the schema (and docs/recording-format.md) says what it is. The
schema files themselves are pinned: changing one is a deliberate act."""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import rig.recording
from firmware_bridge.protocol import (
    CameraTriggered,
    Fault,
    LedFlashed,
    Log,
    StimDelivered,
)
from firmware_bridge.protocol.stream import StreamAnomaly
from rig.core.board_messages import event_record
from rig.recording import schemas

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_DIR = ROOT / "rig" / "recording" / "schemas"
# sha256 of each schema file. A change that keeps every file valid (a new
# optional key or kind) updates the digest here; one that does not bumps
# schema_version (rig/recording/_format.py) and says so in
# docs/recording-format.md, "Versioning".
PINNED = {
    "analysis": "cd0a0610819dd42a1161ca2c2ac29958a4eb6e7a0d0f99183842c757f39c2e50",
    "events": "a4888e2c1a9b5a1cba13ef8ab6fe5d14876f4f3afce703b9130c9a0621ef16a1",
    "metadata": "02993e32e396d440534acc47b88f241ee3ae0a38fd5ec62d7f399a8b9331b83a",
}
CLOSED_LOOP = """format_version = 1
[protocol]
name = "schema-check"
seed = 3
[closed_loop]
strategy = "bayesian"
n_stimuli = 3
inter_stimulus_interval_s = 0.5
amplitude_vpp = [2.0, 6.0]
duration_ms = [2.0, 6.0]
pairs = [0]
[closed_loop.objective]
measure = "amplitude_uv_mean"
kind = "maximise"
per_charge = true
"""


def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        target = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = target
    return schema


def _described(instance: dict, schema: dict, root: dict) -> tuple[dict, Any, bool]:
    """The properties a schema (with its allOf and matching if/then) names for
    ``instance``, what it says of others, and whether it names any."""
    schema = _resolve(schema, root)
    props = dict(schema.get("properties", {}))
    extra = schema.get("additionalProperties")
    strict = "properties" in schema
    for branch in schema.get("allOf", []):
        if "if" in branch:
            if not Draft202012Validator(branch["if"]).is_valid(instance):
                continue
            branch = branch["then"]
        more, more_extra, more_strict = _described(instance, branch, root)
        props.update(more)
        strict = strict or more_strict
        extra = more_extra if extra is None else extra
    return props, extra, strict


def undocumented(instance: Any, schema: dict, root: dict, where: str = "") -> list[str]:
    """Keys of ``instance`` that its schema does not name (in objects whose
    schema names its keys and does not allow others explicitly)."""
    schema = _resolve(schema, root)
    found: list[str] = []
    if isinstance(instance, dict):
        props, extra, strict = _described(instance, schema, root)
        for key, value in instance.items():
            if key in props:
                found += undocumented(value, props[key], root, f"{where}.{key}")
            elif isinstance(extra, dict):
                found += undocumented(value, extra, root, f"{where}.{key}")
            elif strict and extra is not True:
                found.append(f"{where}.{key}")
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for k, value in enumerate(instance):
            found += undocumented(value, schema["items"], root, f"{where}[{k}]")
    return sorted(set(found))


def check(instance: Any, name: str) -> None:
    """Valid against schema ``name``, and every key described there."""
    assert schemas.problems(instance, name) == []
    root = schemas.schema(name)
    missing = undocumented(instance, root, root)
    assert not missing, f"{name}: not in the schema: " + ", ".join(missing)


def check_recording(folder: Path) -> list[dict[str, Any]]:
    assert schemas.recording_problems(folder) == []
    meta = json.loads((folder / "metadata.json").read_text())
    check(meta, "metadata")
    events = rig.recording.open(folder).events
    for event in events:
        assert event["kind"] in schemas.schema("events")["$defs"], event
        check(event, "events")
    return events


@pytest.fixture(scope="module")
def closed_loop_run(tmp_path_factory):
    """A closed loop of 3 stimuli on the simulated rig with its camera, and the
    analysis of it."""
    folder = tmp_path_factory.mktemp("schemas")
    (folder / "loop.toml").write_text(CLOSED_LOOP)
    run = subprocess.run(
        [sys.executable, "-m", "rig.cli", "run", str(folder / "loop.toml"), "--sim",
         "--camera", "sim", "--out", str(folder / "runs")],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    recording = Path(run.stdout.strip().splitlines()[-1].removeprefix("recording: "))
    out = subprocess.run(
        [sys.executable, "-m", "rig.cli", "analyze", str(recording), "--quiet",
         "--json", str(folder / "r.json")],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return recording, json.loads((folder / "r.json").read_text())


def test_a_simulated_run_and_its_analysis_follow_the_schemas(closed_loop_run):
    recording, results = closed_loop_run
    events = check_recording(recording)
    kinds = {e["kind"] for e in events}
    assert {"stim_delivered", "stim_requested", "trial", "camera_trigger", "led",
            "frame_report", "optimiser"} <= kinds  # fmt: skip
    check(results, "analysis")
    assert results["motion"]["tracked"] and results["stimuli"]


def test_a_rebooted_and_emergency_stopped_session_follows_the_schemas(tmp_path):
    from firmware_bridge.sim import FaultPlan, SimulatedRig
    from rig.recording import RecordingWriter
    from tests._rigs import session_on

    # The reboot comes well after the recording starts, even on a loaded machine.
    simulator = SimulatedRig(seed=7, faults=FaultPlan(seed=7, reboot_at_s=3.0))
    session = session_on(simulator)
    session.start()
    try:
        session.start_recording(
            RecordingWriter.create(
                tmp_path / "run", n_channels=4,
                sample_rate_hz=session.sample_rate_hz, metadata={},
            )
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while session.fail_safe.outcome is None and time.monotonic() < deadline:
            time.sleep(0.05)  # the reboot trips the fail-safe rule
        session.emergency_stop()
        session.stop_recording()
    finally:
        session.close()
    kinds = {e["kind"] for e in check_recording(tmp_path / "run")}
    assert {"board_rebooted", "fail_safe", "emergency_stop"} <= kinds


@pytest.mark.parametrize(
    "message",
    [
        StimDelivered(900, 1, 0, 4000, 3980, 3000, 0, 1, 1),
        CameraTriggered(901, 17),
        Fault(902, 1, "no heartbeat"),
        LedFlashed(903, 16_667),
        Log(904, 30, "brown-out"),
        StreamAnomaly(905, "ahead", 99_999, 32, "a frame 99 094 samples ahead"),
    ],
    ids=lambda m: type(m).__name__,
)
def test_every_board_message_is_recorded_as_its_schema_says(message):
    sample, kind, fields = event_record(message, lambda mvpp: mvpp / 1000.0)
    check({"sample": sample, "kind": kind, "host_time_s": 1.0, **fields}, "events")


def test_the_export_and_input_tests_recordings_and_analyses_hold(tmp_path):
    from tests.offline._recordings import worm_recording

    worm = worm_recording(tmp_path / "rec", n_stimuli=3)
    check_recording(worm.path)
    out = subprocess.run(
        [sys.executable, "-m", "rig.cli", "analyze", str(worm.path), "--quiet",
         "--json", str(tmp_path / "r.json")],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    check(json.loads((tmp_path / "r.json").read_text()), "analysis")


@pytest.mark.parametrize(
    ("name", "instance", "message"),
    [
        ("metadata", {"format": "neurorig-recording", "schema_version": 1,
                      "status": "finished", "n_channels": 4, "sample_rate_hz": 3e4,
                      "sample_dtype": "<i2"}, "status: 'finished' does not match"),
        ("metadata", {"format": "neurorig-recording", "schema_version": 2,
                      "status": "completed", "n_channels": 4, "sample_rate_hz": 3e4,
                      "sample_dtype": "<i2"}, "schema_version: 1 was expected"),
        ("metadata", {"format": "neurorig-recording", "schema_version": 1,
                      "status": "completed", "n_channels": 0, "sample_rate_hz": 3e4,
                      "sample_dtype": "<i2"}, "n_channels: 0 is less than"),
        ("events", {"sample": -1, "kind": "led", "duration_s": 0.01},
         "sample: -1 is less than"),
        ("events", {"sample": 3, "kind": "stim_delivered", "amplitude_vpp": 4.0},
         "'duration_s' is a required property"),
        ("events", {"sample": 3, "kind": "log", "level": "info", "message": "x"},
         "level: 'info' is not of type 'integer'"),
        ("analysis", {"source": "x"}, "'fibres' is a required property"),
    ],
)  # fmt: skip
def test_the_schemas_refuse_what_the_format_does_not_allow(name, instance, message):
    found = schemas.problems(instance, name)
    assert any(message in p for p in found), found


def test_new_kinds_and_keys_are_valid_but_not_undocumented():
    event = {"sample": 3, "kind": "lamp", "text": "lamp on"}  # a future kind
    assert schemas.problems(event, "events") == []
    root = schemas.schema("events")
    assert event["kind"] not in root["$defs"]
    led = {"sample": 3, "kind": "led", "duration_s": 0.01, "colour": "red"}
    assert schemas.problems(led, "events") == []
    assert undocumented(led, root, root) == [".colour"]
    meta = schemas.schema("metadata")
    extra = {"software": {"name": "neurorig", "os": "linux"}}
    assert undocumented(extra, meta, meta) == [".software.os"]


def test_the_schema_files_are_pinned():
    changed = {
        name: hashlib.sha256(
            (SCHEMA_DIR / f"{name}.schema.json").read_bytes()
        ).hexdigest()
        for name in schemas.NAMES
    }
    assert changed == PINNED, (
        "a schema changed: if every file valid before is still valid (a new "
        "optional key or kind), update PINNED; if not, bump schema_version in "
        "rig/recording/_format.py and docs/recording-format.md"
    )
    for name in schemas.NAMES:  # each is a valid Draft 2020-12 schema
        Draft202012Validator.check_schema(schemas.schema(name))


def test_the_schemas_ship_in_the_wheel(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--quiet", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if built.returncode != 0 and "No module named" in built.stderr:
        pytest.skip(f"cannot build a wheel here: {built.stderr.strip()[-200:]}")
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("neurorig-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in schemas.NAMES:
        assert f"rig/recording/schemas/{name}.schema.json" in names


def test_a_copy_of_a_schema_is_a_copy():
    first = schemas.schema("metadata")
    first["properties"].clear()
    assert schemas.schema("metadata")["properties"]
    assert copy.deepcopy(schemas.schema("events")) == schemas.schema("events")
