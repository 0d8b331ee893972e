"""Subject and session metadata captured when the data are made (issue 19,
item 1): checked with one line naming the field as the user wrote it, taken
from the rig file's defaults, ``neurorig run`` options and a script, written
into metadata.json; timestamped notes as events on the board clock.

What the checks accept is cross-checked against nwbinspector's own checks
(independent code: what neurorig accepts, the DANDI archive accepts)."""

from __future__ import annotations

import json
import string
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rig.recording
from rig.recording.subject import (
    SUBJECT_FIELDS,
    MetadataError,
    SessionInfo,
    Subject,
    check_age,
    session_from_user,
    subject_from_user,
)
from rig.rig_file import RigFileError, load_rig_file
from tests._cli import SHORT, neurorig

nwbinspector_checks = pytest.importorskip("nwbinspector.checks._nwbfile_metadata")
pynwb_file = pytest.importorskip("pynwb.file")

TEXT_FIELDS = ("subject_id", "species", "sex", "description", "age", "date_of_birth")
anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=80),
    st.lists(st.text(max_size=5), max_size=3),
)
duration_parts = st.lists(
    st.tuples(
        st.one_of(
            st.integers(0, 500).map(str),
            st.from_regex(r"\d{1,3}\.\d{1,2}", fullmatch=True),
        ),
        st.sampled_from("YMWDHS"),
    ),
    max_size=4,
)
age_like = st.one_of(
    st.text(alphabet="PYMWDTHS0123456789./ ", max_size=16),
    duration_parts.map(lambda parts: "P" + "".join(n + u for n, u in parts)),
)


@given(field=st.sampled_from(list(SUBJECT_FIELDS)), value=anything)
@settings(max_examples=300, deadline=None)
def test_any_value_is_kept_or_refused_naming_its_field(field, value):
    extra = {"description": "hermaphrodite"} if field != "description" else {}
    try:
        subject = Subject(**{**extra, field: value})
    except MetadataError as exc:
        message = str(exc)
        assert message.startswith(f"subject.{field}") or message.startswith(
            "subject.sex"
        )
        assert "\n" not in message
        assert "allowed" in message or "needs" in message
        return
    assert Subject.from_dict(json.loads(json.dumps(subject.to_dict()))) == subject


@given(age=age_like)
@settings(max_examples=400, deadline=None)
def test_an_accepted_age_passes_nwbinspectors_age_checks(age):
    try:
        check_age(age, "age")
    except MetadataError:
        return
    subject = pynwb_file.Subject(age=age)
    assert nwbinspector_checks.check_subject_age(subject) is None
    assert nwbinspector_checks.check_subject_proper_age_range(subject) is None


@given(
    species=st.one_of(
        st.text(alphabet=string.ascii_letters + " _.:/0123456789", max_size=40),
        st.from_regex(r"[A-Z][a-z]{1,12} [a-z]{1,12}", fullmatch=True),
    )
)
@settings(max_examples=300, deadline=None)
def test_an_accepted_species_passes_nwbinspectors_form_check(species):
    try:
        Subject(species=species)
    except MetadataError:
        return
    result = nwbinspector_checks.check_subject_species_form(
        pynwb_file.Subject(species=species)
    )
    assert result is None


@pytest.mark.parametrize(
    ("subject", "sex_ok"),
    [
        (Subject(subject_id="worm-07", species="Eisenia fetida", sex="O",
                 description="hermaphrodite", age="P90D"), True),
        (Subject(species="http://purl.obolibrary.org/obo/NCBITaxon_123", sex="U",
                 age="P1Y/"), True),
    ],
)  # fmt: skip
def test_a_full_subject_passes_every_subject_check(subject, sex_ok):
    nwb = pynwb_file.Subject(
        subject_id=subject.subject_id, species=subject.species, sex=subject.sex,
        age=subject.age, description=subject.description,
    )  # fmt: skip
    for check in (
        nwbinspector_checks.check_subject_sex,
        nwbinspector_checks.check_subject_species_form,
        nwbinspector_checks.check_subject_age,
        nwbinspector_checks.check_subject_id_no_slashes,
    ):
        assert check(nwb) is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"species": "earthworm"}, "--species = 'earthworm': allowed a Latin binomial"),
        ({"species": "lumbricus terrestris"}, "--species = 'lumbricus terrestris'"),
        ({"sex": "H"}, "--sex = 'H': allowed M, F, U (unknown) or O"),
        ({"sex": "O"}, "--sex = 'O' (other) needs --subject-description saying what"),
        ({"age": "90 days"}, "--age = '90 days': allowed an ISO 8601 duration"),
        ({"age": "P120D/P60D"}, "lower bound is the shorter"),
        ({"age": "/"}, "--age = '/': allowed"),
        (
            {"date_of_birth": "01/03/2026"},
            "--date-of-birth = '01/03/2026': allowed an ISO date",
        ),
        ({"date_of_birth": "2999-01-01"}, "not in the future"),
        ({"subject_id": "worm/7"}, "--subject = 'worm/7': allowed the worm's ID"),
        ({"weight_g": 0.0}, "--weight-g = 0.0: allowed a number 0.001–10000 g"),
        ({"length_mm": float("nan")}, "--length-mm = nan: allowed a number 1–5000 mm"),
    ],
)
def test_bad_subject_options_are_refused_in_one_line(values, message):
    names = {
        "subject_id": "--subject", "description": "--subject-description",
        "date_of_birth": "--date-of-birth", "weight_g": "--weight-g",
        "length_mm": "--length-mm",
    }  # fmt: skip
    with pytest.raises(MetadataError) as caught:
        subject_from_user(values, lambda k: names.get(k, f"--{k}"))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_person_types_grams_and_millimetres_the_metadata_holds_si():
    subject = subject_from_user(
        {"weight_g": 3.2, "length_mm": 120, "date_of_birth": "2026-03-01"}, str
    )
    assert (subject.weight_kg, subject.length_m) == (0.0032, 0.12)
    assert subject.date_of_birth == "2026-03-01"


def test_session_text_is_checked():
    info = session_from_user(
        {"experimenter": ["Darwin, Charles", "Wallace, Alfred"], "notes": "a\nb"}, str
    )
    assert info.experimenter == ("Darwin, Charles", "Wallace, Alfred")
    with pytest.raises(MetadataError, match="lab = '': allowed one line of text"):
        SessionInfo(lab="")
    with pytest.raises(MetadataError, match="allowed one line of text without control"):
        SessionInfo(institution="Down\nHouse")
    with pytest.raises(
        MetadataError, match="session.experimenter = 3: allowed one line"
    ):
        SessionInfo(experimenter=[3])  # type: ignore[arg-type]


RIG = """
[subject]
species = "Lumbricus terrestris"
sex = "O"
description = "hermaphrodite, field-collected"
weight_g = 4.0
date_of_birth = 2026-01-15

[session]
experimenter = "Darwin, Charles"
lab = "Worm lab"
institution = "Down House"
"""


def test_the_rig_file_gives_defaults(tmp_path):
    path = tmp_path / "rig.toml"
    path.write_text(RIG)
    rig = load_rig_file(path)
    assert rig.subject.species == "Lumbricus terrestris"
    assert rig.subject.weight_kg == 0.004
    assert rig.subject.date_of_birth == "2026-01-15"
    assert rig.session_info.experimenter == ("Darwin, Charles",)
    assert load_rig_file(None).subject.is_empty


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[subject]\nspecie = 'x'",
            "subject.specie is not a key of [subject] (allowed: subject_id,",
        ),
        ("[subject]\nage = 90", "subject.age = 90: allowed an ISO 8601 duration"),
        ("[subject]\nweight_g = -1", "subject.weight_g = -1: allowed a number"),
        ("[session]\nlab = ''", "session.lab = '': allowed one line of text"),
        ("[session]\nexperimenter = [1]", "session.experimenter = 1: allowed"),
    ],
)
def test_bad_rig_file_subject_values_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "rig.toml"
    path.write_text(text)
    with pytest.raises(RigFileError) as caught:
        load_rig_file(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_run_refuses_a_bad_option_before_the_board(tmp_path):
    done = neurorig(
        "run", "protocols/mapping.toml", "--dry-run", "--age", "three months"
    )
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == (
        "neurorig: error: --age = 'three months': allowed an ISO 8601 duration, e.g. "
        "'P90D' (90 days), 'P6M', 'P1Y2M', or a range 'P60D/P120D' ('P1Y/': at "
        "least a year)"
    )


def test_run_records_the_rig_files_defaults_under_its_options(tmp_path):
    (tmp_path / "rig.toml").write_text(RIG)
    (tmp_path / "short.toml").write_text(SHORT)
    done = neurorig(
        "run", str(tmp_path / "short.toml"), "--sim", "--out", str(tmp_path / "runs"),
        "--rig", str(tmp_path / "rig.toml"), "--subject", "worm-09", "--age", "P90D",
        "--weight-g", "3.5", "--experimenter", "Wallace, Alfred",
        "--session-description", "velocity along the body",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [folder] = (tmp_path / "runs").iterdir()
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["subject"] == {
        "subject_id": "worm-09",
        "species": "Lumbricus terrestris",
        "sex": "O",
        "description": "hermaphrodite, field-collected",
        "age": "P90D",
        "date_of_birth": "2026-01-15",
        "weight_kg": 0.0035,
        "length_m": None,
    }
    assert meta["session"] == {
        "experimenter": ["Wallace, Alfred"],
        "lab": "Worm lab",
        "institution": "Down House",
        "description": "velocity along the body",
        "notes": None,
    }
    from rig.recording import schemas

    assert schemas.problems(meta, "metadata") == []  # the published schema knows them
    meta["subject"]["sex"] = "hermaphrodite"  # and would catch a writer's slip
    assert schemas.problems(meta, "metadata") != []


def test_notes_are_events_on_the_board_clock(tmp_path):
    from rig.core.connect import open_rig

    with open_rig("sim://?seed=4") as session:
        with pytest.raises(RuntimeError, match="no recording in progress"):
            session.note("too early")
        session.start()
        heard = []
        session.events.note_added.connect(
            lambda sample, text: heard.append((sample, text))
        )
        session.start_recording(
            rig.recording.RecordingWriter.create(
                tmp_path / "rec", n_channels=4, sample_rate_hz=30000, metadata={}
            )
        )
        time.sleep(0.3)
        first = session.note("one")
        time.sleep(0.3)
        second = session.note("two\nlines")
        with pytest.raises(MetadataError, match="note = ''"):
            session.note("")
        session.stop_recording()
    rec = rig.recording.open(tmp_path / "rec")
    notes = rec.events_of("note")
    assert [(e["sample"], e["text"]) for e in notes] == heard == [
        (first, "one"), (second, "two\nlines"),
    ]  # fmt: skip
    numbers = rec.sample_numbers()
    assert numbers[0] <= first < second <= numbers[-1] + 1
