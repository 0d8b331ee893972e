"""Any calibration file loads to a calibration or is refused with
CalibrationError naming the file; never another exception, never a hang.

A calibration that loads holds only finite numbers (or null where a value was
not measured), each within its field's rule, so nothing downstream divides by
zero or computes with a NaN; ``CalibrationSet.load`` never raises, and either
puts the kind in force or says why not in a warning naming the kind.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
from dataclasses import asdict

from hypothesis import given
from hypothesis import strategies as st

from calibration import CalibrationError, CalibrationSet, load_calibration
from tests.fuzz._toml import FUZZ, SCALARS

FIELDS = {
    "camera": ["px_per_mm", "camera_matrix", "dist_coeffs", "reprojection_error_px",
               "square_size_mm", "image_size_px"],
    "gain": ["uv_per_count", "offset_counts", "noise_uv_rms", "test_amplitude_uvpp",
             "test_frequency_hz"],
    "stimulator": ["coefficients", "commanded_min_vpp", "commanded_max_vpp"],
    "timing": ["offset_samples", "offset_s", "jitter_samples", "frame_period_samples"],
}  # fmt: skip
COMMON = ["kind", "schema_version", "fitted_at", "rig_id", "residual_rms",
          "n_measurements"]  # fmt: skip
JSON_VALUES = st.recursive(
    st.one_of(SCALARS.filter(lambda v: not (isinstance(v, int) and abs(v) > 2**64)),
              st.none(), st.just("2026-01-01T00:00:00+00:00")),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=5,
)  # fmt: skip
DOCUMENTS = st.sampled_from(sorted(FIELDS)).flatmap(
    lambda kind: st.dictionaries(
        st.sampled_from(COMMON + FIELDS[kind]), JSON_VALUES, max_size=8
    ).map(lambda d: (kind, {"kind": kind, "schema_version": 1, **d}))
)  # (the file's name, its contents: "kind" may be replaced by anything)
VALID = {
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
        "coefficients": [0.0, 1.0, -0.001],
        "commanded_min_vpp": 1.0,
        "commanded_max_vpp": 6.0,
    },
    "timing": {
        "offset_samples": 60.0,
        "offset_s": 0.002,
        "jitter_samples": 2.0,
        "frame_period_samples": 500.0,
    },
}
# Replacement values: hostile ones, and plausible ones that may well be allowed.
REPLACEMENTS = st.one_of(JSON_VALUES, st.floats(0.5, 50.0), st.integers(1, 100))
COMMON_VALID = {"fitted_at": "2026-01-01T00:00:00+00:00", "rig_id": "rig-1",
                "residual_rms": 0.1, "n_measurements": 30}  # fmt: skip


@st.composite
def mutated(draw):
    """A valid file with one to three of its values replaced or removed (most
    files differ from a good one in a value or two)."""
    kind = draw(st.sampled_from(sorted(VALID)))
    doc = {"kind": kind, "schema_version": 1, **copy.deepcopy(VALID[kind])}
    doc.update(COMMON_VALID)
    keys = st.lists(st.sampled_from(sorted(doc)), min_size=1, max_size=3, unique=True)
    for key in draw(keys):
        if draw(st.booleans()):
            doc[key] = draw(REPLACEMENTS)
        elif isinstance(doc[key], list) and doc[key]:  # one element
            where = draw(st.integers(0, len(doc[key]) - 1))
            doc[key][where] = draw(REPLACEMENTS)
        else:
            doc.pop(key)
    return kind, doc


def finite_or_unmeasured(value) -> bool:
    if isinstance(value, list):
        return all(finite_or_unmeasured(v) for v in value)
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return math.isfinite(value)
    return value is None or isinstance(value, str)


def loads_or_refuses(folder, text: bytes, kind: str) -> bool:
    """Load ``text`` as ``<kind>.json``; True if it was accepted."""
    path = folder / f"{kind}.json"
    path.write_bytes(text)
    try:
        calibration = load_calibration(path)
    except CalibrationError as exc:
        assert str(path) in str(exc)
        accepted = False
    else:
        assert calibration.KIND == kind
        assert all(finite_or_unmeasured(v) for v in asdict(calibration).values())
        fitted = dt.datetime.fromisoformat(calibration.fitted_at)
        assert fitted.tzinfo is not None
        accepted = True
    loaded = CalibrationSet.load(folder)  # warns, never raises
    assert (kind in loaded.calibrations) == accepted or any(
        kind in w for w in loaded.warnings
    )
    if kind not in loaded.calibrations:
        assert any(kind in w and path.name in w for w in loaded.warnings)
    return accepted


@FUZZ
@given(case=DOCUMENTS)
def test_calibration_json_loads_or_is_refused(tmp_path_factory, case):
    kind, doc = case
    folder = tmp_path_factory.mktemp("cal")
    loads_or_refuses(folder, json.dumps(doc).encode(), kind)


@FUZZ
@given(case=mutated())
def test_a_good_file_with_bad_values_loads_or_is_refused(tmp_path_factory, case):
    kind, doc = case
    folder = tmp_path_factory.mktemp("cal")
    loads_or_refuses(folder, json.dumps(doc).encode(), kind)


@FUZZ
@given(data=st.one_of(st.binary(max_size=100), st.sampled_from([b"[]", b"null"])))
def test_any_bytes_load_or_are_refused(tmp_path_factory, data):
    loads_or_refuses(tmp_path_factory.mktemp("cal"), data, "gain")


def test_the_valid_documents_load(tmp_path):
    """The fuzz's starting points are accepted (so the tests above see both
    outcomes, and a rule that refused every file would fail here)."""
    for kind, values in VALID.items():
        doc = {"kind": kind, "schema_version": 1, **values, **COMMON_VALID}
        assert loads_or_refuses(tmp_path, json.dumps(doc).encode(), kind)
