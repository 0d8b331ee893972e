"""The remote API's messages: requests, replies and events as JSON (docs/remote.md).

Pure: no sockets, no session. The server and the client both use these shapes,
and every one of them is written down in docs/remote.md.

- A **request** is one UTF-8 JSON object, at most ``MAX_REQUEST_BYTES``:
  ``{"id": 7, "command": "stimulate", "args": {"amplitude_vpp": 4.0, ...}}``.
- A **reply** echoes the id: ``{"id": 7, "ok": true, "result": {...}}`` or
  ``{"id": 7, "ok": false, "error": {"type": "SafetyError", "message": "..."}}``.
- An **event** is two frames, the event's name (the subscription topic) and
  ``{"event": "stim_delivered", "seq": 12, "host_time_s": ..., "args": {...}}``;
  ``seq`` counts every event published, so a gap says events were dropped.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

PROTOCOL_VERSION = 1
MAX_REQUEST_BYTES = 64 * 1024  # a protocol file is a few kB
MAX_NOTE_CHARS = 10_000
POLARITIES = ("positive_first", "negative_first")


class BadRequest(ValueError):
    """A request the server cannot act on; the message says why, in one line."""


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument of a command: its name, JSON type and default."""

    name: str
    kind: type  # float, int, str or bool
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    max_chars: int = MAX_REQUEST_BYTES


# Every command and its arguments. The server has one handler per name.
COMMANDS: dict[str, tuple[Arg, ...]] = {
    "hello": (),
    "status": (),
    "arm": (),
    "disarm": (),
    "stimulate": (
        Arg("amplitude_vpp", float, required=True),
        Arg("duration_s", float, required=True),
        # "C0-A1" (cathode 0, anode 1), "C3-R" (cathode 3, the common return)
        Arg("configuration", str, default="C0-A1", max_chars=20),
        Arg("polarity", str, default="positive_first", choices=POLARITIES),
        Arg("n_pulses", int, default=1),
        Arg("rate_hz", float, default=1.0),
    ),
    "run_protocol": (
        Arg("protocol_toml", str, required=True),
        Arg("name", str, default="remote.toml", max_chars=100),
        Arg("record", bool, default=False),
    ),
    "cancel": (),
    "start_recording": (),
    "stop_recording": (),
    "note": (Arg("text", str, required=True, max_chars=MAX_NOTE_CHARS),),
    "emergency_stop": (),
    "reset": (),
    "ping_events": (Arg("nonce", str, required=True, max_chars=100),),
}


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed, checked request."""

    id: int | str | None
    command: str
    args: dict[str, Any]


def parse_request(raw: bytes) -> Request:
    """Parse and check one request; raise BadRequest (one line) if it is not one.

    >>> parse_request(b'{"id": 1, "command": "arm"}')
    Request(id=1, command='arm', args={})
    >>> parse_request(b'{"command": "fly"}')
    Traceback (most recent call last):
    ...
    rig.remote.messages.BadRequest: unknown command 'fly'; allowed: hello, status, \
arm, disarm, stimulate, run_protocol, cancel, start_recording, stop_recording, note, \
emergency_stop, reset, ping_events
    """
    if len(raw) > MAX_REQUEST_BYTES:
        raise BadRequest(
            f"request of {len(raw)} bytes is too large; allowed up to "
            f"{MAX_REQUEST_BYTES} bytes"
        )
    try:
        message = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"request is not UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("request is JSON nested too deeply") from None
    if not isinstance(message, dict):
        raise BadRequest(
            f"request is a JSON {type(message).__name__}; allowed: an object "
            '{"id": ..., "command": ..., "args": {...}}'
        )
    unknown = sorted(set(message) - {"id", "command", "args"})
    if unknown:
        raise BadRequest(
            f"unknown request key {unknown[0]!r}; allowed: id, command, args"
        )
    request_id = request_id_of(message)
    command = message.get("command")
    if not isinstance(command, str) or command not in COMMANDS:
        shown = command if isinstance(command, str) else type(command).__name__
        raise BadRequest(
            f"unknown command {shown[:50]!r}; allowed: {', '.join(COMMANDS)}"
        )
    args = message.get("args", {})
    if not isinstance(args, dict):
        raise BadRequest(f"{command}: args must be a JSON object")
    return Request(request_id, command, check_args(command, args))


def request_id_of(message: Any) -> int | str | None:
    """The request's id if it has a usable one (an int or a short string)."""
    if not isinstance(message, dict):
        return None
    value = message.get("id")
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    if isinstance(value, str) and len(value) > 100:
        return None
    return value


def check_args(command: str, args: dict[str, Any]) -> dict[str, Any]:
    """``args`` of ``command`` checked and completed with defaults."""
    spec = COMMANDS[command]
    names = [a.name for a in spec]
    for key in args:
        if key not in names:
            allowed = ", ".join(names) or "none"
            raise BadRequest(
                f"{command}: unknown argument {str(key)[:50]!r}; allowed: {allowed}"
            )
    checked: dict[str, Any] = {}
    for arg in spec:
        if arg.name not in args:
            if arg.required:
                raise BadRequest(f"{command}: missing argument {arg.name!r}")
            checked[arg.name] = arg.default
            continue
        checked[arg.name] = _checked_value(command, arg, args[arg.name])
    return checked


def _checked_value(command: str, arg: Arg, value: Any) -> Any:
    where = f"{command}: {arg.name}"
    if arg.kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BadRequest(f"{where} must be a number, got {_json_type(value)}")
        if not math.isfinite(value):
            raise BadRequest(f"{where} must be a finite number")
        return float(value)
    if arg.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadRequest(f"{where} must be a whole number, got {_json_type(value)}")
        if abs(value) > 2**31:
            raise BadRequest(f"{where} = {value} is out of range")
        return value
    if arg.kind is bool:
        if not isinstance(value, bool):
            raise BadRequest(f"{where} must be true or false, got {_json_type(value)}")
        return value
    if not isinstance(value, str):
        raise BadRequest(f"{where} must be a string, got {_json_type(value)}")
    if len(value) > arg.max_chars:
        raise BadRequest(
            f"{where} has {len(value)} characters; allowed up to {arg.max_chars}"
        )
    if arg.choices and value not in arg.choices:
        raise BadRequest(f"{where} = {value[:50]!r}; allowed: {', '.join(arg.choices)}")
    return value


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


# ------------------------------------------------------------------ encoding


def encode_request(request_id: int | str, command: str, args: dict[str, Any]) -> bytes:
    """One request's bytes."""
    message = {"id": request_id, "command": command, "args": to_jsonable(args)}
    return dumps(message)


def encode_reply(request_id: int | str | None, result: Any) -> bytes:
    """A successful reply's bytes."""
    return dumps({"id": request_id, "ok": True, "result": to_jsonable(result)})


def encode_error(
    request_id: int | str | None, kind: str, message: str, **extra: Any
) -> bytes:
    """A refusal's bytes: the error's type and its one-line message."""
    error = {"type": kind, "message": message, **to_jsonable(extra)}
    return dumps({"id": request_id, "ok": False, "error": error})


def event_body(name: str, seq: int, host_time_s: float, args: dict[str, Any]) -> bytes:
    """An event's second frame (``args`` already made JSON-able)."""
    record = {"event": name, "seq": seq, "host_time_s": host_time_s, "args": args}
    return dumps(record)


def dumps(value: Any) -> bytes:
    """Strict JSON (no NaN) as UTF-8."""
    return json.dumps(value, allow_nan=False, separators=(",", ":")).encode("utf-8")


def to_jsonable(value: Any) -> Any:
    """A deep copy of ``value`` made of JSON types only.

    Dataclasses become objects, enums their value, numpy scalars and arrays
    numbers and lists, a non-finite float null, an exception
    ``{"type", "message"}``; anything else its ``str``.

    >>> import numpy as np
    >>> to_jsonable({"a": np.float32(1.5), "b": (1, float("nan")), 3: np.arange(2)})
    {'a': 1.5, 'b': [1, None], '3': [0, 1]}
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
        }
    if isinstance(value, BaseException):
        return {"type": type(value).__name__, "message": str(value)}
    if isinstance(value, PurePath):
        return str(value)
    tolist = getattr(value, "tolist", None)  # numpy arrays and scalars
    if callable(tolist):
        return to_jsonable(tolist())
    return str(value)
