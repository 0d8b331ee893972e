"""The frame report's drops named from the frame table
(rig.core.frame_alignment.drops_from_frame_table), against a camera made here:
triggers from a first count on, some exposing no frame, the video's frames
proven or not. A named drop is always a true one; with every frame proven,
every drop before the last frame is named; the ones left unnamed are counted."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rig.core.frame_alignment import drops_from_frame_table


@settings(max_examples=300, deadline=None)
@given(
    first=st.integers(0, 50),
    fates=st.lists(st.sampled_from(["frame", "drop", "unproven"]), max_size=60),
)
def test_named_drops_are_true_and_complete_where_frames_are_proven(first, fates):
    counts: list[int | None] = []  # the video's frames: their trigger or None
    truly: list[int] = []
    for offset, fate in enumerate(fates):
        count = first + offset
        if fate == "drop":
            truly.append(count)
        else:
            counts.append(count if fate == "frame" else None)
    result = drops_from_frame_table(counts, first)
    if all(c is None for c in counts):
        assert result is None
        return
    assert result is not None
    named, not_named = result
    last_proven = max(c for c in counts if c is not None)
    before_last = [c for c in truly if c < last_proven]
    assert set(named) <= set(before_last)
    assert len(named) + not_named == len(before_last)
    if None not in counts:
        assert named == before_last and not_named == 0


def test_a_repeated_frame_and_a_frame_before_the_recording_are_not_drops():
    # frame 0 exposed by the trigger before the recording; frame 2 repeats 1
    assert drops_from_frame_table([9, 10, 10, 12], first_count=10) == ([11], 0)
