"""The rig file: one TOML file per physical rig, for what neurorig cannot measure.

The simulated rig knows its own geometry; a real one is described here
(``rigs/example-rig.toml`` shows every key). All tables are optional; an unknown
table or key is refused, so a typo is never silently ignored.

``[limits]``
    the host's safety limits (``rig.safety``; conservative defaults, stated in
    ``rigs/safety-default.toml``).
``[electrodes]``
    ``pair_centres_mm``: centre of each recording pair along the body, mm from
    the head, one per channel. Without it the session has no online analysis
    (live AP marks, parameter map, closed loop); offline analysis then needs
    ``--electrode-positions-mm``.
``[stimulator]``
    ``electrode_positions_mm``: each stimulation electrode along the raceway
    bed, mm from the head, ascending (electrode 0 nearest the head; 1–16, as
    many as the board has). The GUI's electrode map draws them; a configuration
    (cathode, anode) must name electrodes that exist.
``[raceway]``
    ``head_on_raceway_mm``: where the worm's head lies on the raceway's x axis.
``[camera]``
    ``raceway_origin_px``: image x (px) of the raceway's x = 0, and
    ``px_per_mm``: the nominal scale (a camera calibration replaces it). With
    both, the live view tracks segments on a real rig too. ``led_region_px``:
    ``[top, bottom, left, right]`` of the timing LED in the image; with it the
    frames are aligned to the triggers by the optical sync code.
``[video]``
    how recordings store the video: ``codec`` (``"ffv1"``, lossless, the
    default; ``"mjpeg"``, lossy, about a tenth of the size) and ``crop_px``
    ``[top, bottom, left, right]``: keep only this region of the camera image
    (around the raceway); tracking stays in the whole image's pixels
    (rig.recording.VideoStorage, docs/rig-file.md).
``[subject]``, ``[session]``
    defaults for every recording's subject (species, sex, age, …) and session
    (experimenter, lab, institution, …); ``neurorig run`` options replace
    them (rig.recording.subject, docs/rig-file.md).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware_bridge.stimulus import MAX_STIM_ELECTRODES, parse_configuration
from rig.recording._video import (
    VideoStorage,
    VideoStorageError,
    check_video_storage,
)
from rig.recording.subject import (
    MetadataError,
    SessionInfo,
    Subject,
    session_from_user,
    subject_from_user,
)
from rig.safety import SafetyLimits, limits_from_table

# Recording pairs a session streams (rig.core.session.Session's default): one
# electrode position per channel.
DEFAULT_CHANNELS = 4

TABLES = {
    "limits": None,  # checked by rig.safety
    "electrodes": {"pair_centres_mm"},
    "stimulator": {"electrode_positions_mm"},
    "raceway": {"head_on_raceway_mm"},
    "camera": {"raceway_origin_px", "px_per_mm", "led_region_px"},
    "video": {"codec", "crop_px"},
    "subject": None,  # checked by _subject_defaults
    "session": None,
}


class RigFileError(ValueError):
    """A rig file (or option) value that is missing, misspelt or out of range."""


@dataclass(frozen=True)
class RigDescription:
    """A rig's limits and geometry, SI units."""

    limits: SafetyLimits = field(default_factory=SafetyLimits)
    pair_centres_m: tuple[float, ...] | None = None
    # Stimulation electrodes along the raceway bed, m from the head, ascending.
    stim_electrodes_m: tuple[float, ...] | None = None
    head_on_raceway_m: float = 0.0
    raceway_origin_px: float | None = None
    px_per_mm: float | None = None
    source: str = "built-in defaults"
    # Where the timing LED shows in the image: (top, bottom, left, right) px.
    # With it the session blinks the optical sync code (docs/optical-sync.md).
    led_region_px: tuple[int, int, int, int] | None = None
    simulated: bool = False  # the simulated rig (rig.core.connect), not hardware
    # Defaults for every recording's subject and session ([subject], [session]).
    subject: Subject = field(default_factory=Subject)
    session_info: SessionInfo = field(default_factory=SessionInfo)
    # How recordings store the video ([video]): codec and crop.
    video: VideoStorage = field(default_factory=VideoStorage)

    def with_positions_mm(
        self, text: str | None, n_channels: int | None = None
    ) -> RigDescription:
        """These electrode positions instead (``"A,B,C,D"`` from the command line);
        with ``n_channels``, exactly that many (one per recording pair)."""
        if not text:
            return self
        return dataclasses.replace(
            self,
            pair_centres_m=positions_from_option(text, n_channels),
            source=f"{self.source}, electrodes from --electrode-positions-mm",
        )

    @property
    def n_stim_electrodes(self) -> int | None:
        """How many stimulation electrodes the rig file places (None: not said)."""
        return None if self.stim_electrodes_m is None else len(self.stim_electrodes_m)

    def geometry(self) -> dict[str, Any] | None:
        """Geometry for the session and the recording's metadata (the keys the
        simulated rig writes, so ``neurorig analyze`` reads both alike)."""
        if self.pair_centres_m is None and self.raceway_origin_px is None:
            return None
        geometry: dict[str, Any] = {
            "pair_centres_m": None
            if self.pair_centres_m is None
            else list(self.pair_centres_m),
            "head_on_raceway_m": self.head_on_raceway_m,
            "source": self.source,
        }
        if self.stim_electrodes_m is not None:
            geometry["stim_electrodes_m"] = list(self.stim_electrodes_m)
        if self.raceway_origin_px is not None:
            geometry["camera"] = {
                "px_per_mm": self.px_per_mm,
                "origin_px": [self.raceway_origin_px],  # x only: the tracker finds y
                "note": "rig file: raceway x = 0 in the image, nominal scale",
            }
        return geometry


def positions_from_option(
    text: str, n_channels: int | None = None
) -> tuple[float, ...]:
    """Pair centres in metres from ``--electrode-positions-mm A,B,C,D`` (mm).

    The one reader of the option (``run``, ``gui``, ``selftest`` through
    ``RigDescription.with_positions_mm``, and ``neurorig analyze``): numbers
    separated by commas, each in the rig file's range, all different; with
    ``n_channels``, exactly that many (one per recording pair).

    >>> positions_from_option("37.5,57.5, 77.5,97.5")
    (0.0375, 0.0575, 0.0775, 0.0975)
    """
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise RigFileError(
            f"--electrode-positions-mm {text!r}: give comma-separated numbers "
            "(pair centres along the body, mm), e.g. 37.5,57.5,77.5,97.5"
        ) from None
    if n_channels is not None and len(values) != n_channels:
        raise RigFileError(
            f"--electrode-positions-mm {text}: gives {len(values)} positions for "
            f"{n_channels} channels; allowed exactly {n_channels}, one per "
            "recording pair"
        )
    return _positions_m(values, "--electrode-positions-mm")


def load_rig_file(
    path: str | Path | None, n_channels: int | None = DEFAULT_CHANNELS
) -> RigDescription:
    """Read a rig file; ``None`` gives the built-in defaults (no geometry).

    ``n_channels``: the recording pairs the session streams; the file's
    ``pair_centres_mm`` must give exactly one position per channel (None: any
    number, 1–32).
    """
    if path is None:
        return RigDescription()
    path = Path(path)
    where = str(path)
    if path.exists() and not path.is_file():  # a pipe nobody writes never ends
        raise RigFileError(
            f"rig file {where}: not a regular file (a folder, pipe or device); "
            "give a rig file (TOML)"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RigFileError(f"rig file {where}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise RigFileError(f"{where} is not a rig file (not UTF-8 text)") from None
    except tomllib.TOMLDecodeError as exc:
        raise RigFileError(f"rig file {where} is not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per level of nesting
        raise RigFileError(
            f"{where} is not a valid rig file (tables or lists nested too deep)"
        ) from None
    for table, value in data.items():
        if table not in TABLES or not isinstance(value, dict):
            raise RigFileError(
                f"{where}: [{table}] is not a rig-file table "
                f"(allowed: {', '.join(f'[{t}]' for t in TABLES)})"
            )
        keys = TABLES[table]
        if keys is None:  # a table whose keys are checked where it is read
            continue
        for key in value:
            if key not in keys:
                raise RigFileError(
                    f"{where}: {table}.{key} is not a key of [{table}] "
                    f"(allowed: {', '.join(sorted(keys))})"
                )
    electrodes = data.get("electrodes", {})
    positions = None
    if "pair_centres_mm" in electrodes:
        values = electrodes["pair_centres_mm"]
        if not isinstance(values, list):
            raise RigFileError(
                f"{where}: electrodes.pair_centres_mm = {values!r}: give a list of "
                "numbers (mm), one per recording pair"
            )
        positions = _positions_m(values, f"{where}: electrodes.pair_centres_mm")
        if n_channels is not None and len(positions) != n_channels:
            raise RigFileError(
                f"{where}: electrodes.pair_centres_mm = {values!r}: gives "
                f"{len(positions)} positions for {n_channels} channels; allowed "
                f"exactly {n_channels}, one per recording pair"
            )
    limits = limits_from_table(data.get("limits", {}), where)
    stim = _stim_electrodes_m(data.get("stimulator", {}), where)
    if stim is not None and limits.allowed_configurations is not None:
        try:
            for text in limits.allowed_configurations:
                limits.check_configuration(
                    *parse_configuration(text), n_electrodes=len(stim)
                )
        except ValueError as exc:
            raise RigFileError(
                f"{where}: limits.allowed_configurations names {text}, but "
                f"stimulator.electrode_positions_mm places {len(stim)} electrodes "
                f"(0–{len(stim) - 1}): {exc}"
            ) from None
    return RigDescription(
        limits=limits,
        pair_centres_m=positions,
        stim_electrodes_m=stim,
        head_on_raceway_m=(
            _number(data, "raceway.head_on_raceway_mm", where, 0, 1000) or 0.0
        )
        / 1000,
        raceway_origin_px=_number(data, "camera.raceway_origin_px", where, -1e5, 1e5),
        px_per_mm=_number(data, "camera.px_per_mm", where, 0.01, 1000),
        led_region_px=_region(data.get("camera", {}), where),
        video=_video(data.get("video", {}), where),
        source=where,
        **_subject_defaults(data, where),
    )


def _video(table: dict, where: str) -> VideoStorage:
    """``[video] codec, crop_px``; a bad value refused naming the key."""
    codec = table.get("codec", "ffv1")
    try:
        crop = check_video_storage(
            codec,
            table.get("crop_px"),
            codec_field=f"{where}: video.codec",
            crop_field=f"{where}: video.crop_px",
        )
    except VideoStorageError as exc:
        raise RigFileError(str(exc)) from None
    return VideoStorage(codec, crop)


def _stim_electrodes_m(table: dict, where: str) -> tuple[float, ...] | None:
    """``[stimulator] electrode_positions_mm``: 1–16 ascending positions."""
    if "electrode_positions_mm" not in table:
        return None
    values = table["electrode_positions_mm"]
    ok = (
        isinstance(values, list)
        and 1 <= len(values) <= MAX_STIM_ELECTRODES
        and all(
            isinstance(v, int | float)
            and not isinstance(v, bool)
            and math.isfinite(v)
            and 0 <= v <= 1000
            for v in values
        )
        and all(b > a for a, b in itertools.pairwise(values))
    )
    if not ok:
        raise RigFileError(
            f"{where}: stimulator.electrode_positions_mm = {values!r}: allowed "
            f"1–{MAX_STIM_ELECTRODES} ascending positions, each 0–1000 mm from the "
            "head (electrode 0 nearest the head)"
        )
    return tuple(float(v) / 1000 for v in values)


def _region(camera: dict, where: str) -> tuple[int, int, int, int] | None:
    """``[camera] led_region_px = [top, bottom, left, right]``, or None."""
    if "led_region_px" not in camera:
        return None
    value = camera["led_region_px"]
    ok = (
        isinstance(value, list)
        and len(value) == 4
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        and 0 <= value[0] < value[1] <= 100_000
        and 0 <= value[2] < value[3] <= 100_000
    )
    if not ok:
        raise RigFileError(
            f"{where}: camera.led_region_px = {value!r}: allowed [top, bottom, left, "
            "right], whole pixels, top < bottom and left < right"
        )
    return (value[0], value[1], value[2], value[3])


def _positions_m(values: list, where: str) -> tuple[float, ...]:
    ok = 1 <= len(values) <= 32 and all(
        isinstance(v, int | float)
        and not isinstance(v, bool)
        and math.isfinite(v)
        and 0 < v <= 1000
        for v in values
    )
    if not ok or len(set(values)) != len(values):
        raise RigFileError(
            f"{where} = {values!r}: allowed 1–32 different positions, each "
            "0–1000 mm from the head"
        )
    return tuple(float(v) / 1000 for v in values)


def _number(data: dict, name: str, where: str, low: float, high: float):
    """``data[table][key]`` for ``name = "table.key"``; None if absent."""
    table, key = name.split(".")
    if key not in data.get(table, {}):
        return None
    value = data[table][key]
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not low <= value <= high
    ):
        raise RigFileError(f"{where}: {name} = {value!r}: allowed {low:g}–{high:g}")
    return float(value)


# ------------------------------------------------ subject and session defaults

SUBJECT_KEYS = (
    "subject_id", "species", "sex", "description", "age", "date_of_birth",
    "weight_g", "length_mm",
)  # fmt: skip
SESSION_KEYS = ("experimenter", "lab", "institution", "description", "notes")


def _subject_defaults(data: dict, where: str) -> dict[str, Any]:
    """``[subject]`` and ``[session]`` as RigDescription fields (each value
    checked by rig.recording.subject; an unknown key refused)."""
    out: dict[str, Any] = {}
    try:
        if "subject" in data:
            _known_keys(data["subject"], "subject", SUBJECT_KEYS, where)
            out["subject"] = subject_from_user(
                data["subject"], lambda key: f"{where}: subject.{key}"
            )
        if "session" in data:
            _known_keys(data["session"], "session", SESSION_KEYS, where)
            out["session_info"] = session_from_user(
                data["session"], lambda key: f"{where}: session.{key}"
            )
    except MetadataError as exc:
        raise RigFileError(str(exc)) from None
    return out


def _known_keys(values: dict, table: str, keys: tuple[str, ...], where: str) -> None:
    for key in values:
        if key not in keys:
            raise RigFileError(
                f"{where}: {table}.{key} is not a key of [{table}] "
                f"(allowed: {', '.join(keys)})"
            )
