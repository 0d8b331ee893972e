"""Batch analysis: every recording under a folder, one task each, on serial,
a Dask LocalCluster and an external Dask scheduler + workers, all giving the
same per-recording JSON; the pooling per worm and across worms.

The recordings are real: ``neurorig run`` on the simulated rig, in two worm
folders, one of them naming its worm in its metadata.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rig.offline import batch
from tests._cli import neurorig

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = """format_version = 1
[protocol]
name = "batch"
seed = 1
[[block]]
amplitude_vpp = [2.0, 3.0, 4.0, 5.0]
duration_ms = [2.0, 4.0]
inter_stimulus_interval_s = 0.25
"""


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """worm-a/ two recordings, worm-b/ one, loose/ one whose metadata says
    it is of worm "W7"."""
    root = tmp_path_factory.mktemp("batch") / "data"
    protocol = root.parent / "batch.toml"
    protocol.write_text(PROTOCOL)
    for seed, folder in ((3, "worm-a"), (4, "worm-a"), (5, "worm-b"), (6, "loose")):
        out = neurorig(
            "run",
            str(protocol),
            "--sim",
            "--seed",
            str(seed),
            "--out",
            str(root / folder),
        )
        assert out.returncode == 0, out.stderr
        time.sleep(1.0)  # recordings are named by the second
    (loose,) = (root / "loose").iterdir()
    meta = json.loads((loose / "metadata.json").read_text())
    (loose / "metadata.json").write_text(json.dumps({**meta, "subject": "W7"}))
    return root


@pytest.fixture(scope="module")
def serial(recordings, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    result = neurorig("analyze", "--batch", str(recordings), "--json-dir", str(out))
    assert result.returncode == 0, result.stderr
    return out


def per_recording(folder: Path) -> dict[str, str]:
    return {
        p.name: p.read_text() for p in folder.glob("*.json") if p.name != "batch.json"
    }


def test_serial_writes_one_json_per_recording_with_the_version(serial, recordings):
    files = per_recording(serial)
    assert len(files) == 4
    for text in files.values():
        result = json.loads(text)
        assert result["software_version"] == batch.software_version()
        assert len(result["stimuli"]) == 8
    # each is what `neurorig analyze PATH --json` writes, plus the version
    one = next(iter(sorted(recordings.glob("worm-a/*"))))
    single = serial.parent / "single.json"
    assert neurorig("analyze", str(one), "--json", str(single)).returncode == 0
    name = batch.json_name(one, recordings)
    alone = json.loads(single.read_text())
    assert json.loads(files[name]) == {
        "software_version": batch.software_version(),
        **alone,
    }


def test_a_local_cluster_gives_the_same_json_as_serial(recordings, serial, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, scheduler_kwargs={"dashboard": False}
    ) as cluster, distributed.Client(cluster) as client:  # fmt: skip
        results = batch.run_batch(
            batch.find_recordings(recordings), client.get_executor()
        )
        workers = {r["software_version"] for r in results}
    assert workers == {batch.software_version()}
    on_cluster = {
        batch.json_name(path, recordings): batch.dumps(result)
        for path, result in zip(batch.find_recordings(recordings), results, strict=True)
    }
    assert on_cluster == per_recording(serial)


@pytest.fixture
def external_dask(tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1."""
    pytest.importorskip("distributed")
    dask = Path(sys.executable).with_name("dask")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # workers import this tree
    scheduler_file = tmp_path / "scheduler.json"
    common = ["--no-dashboard", "--host", "127.0.0.1"]
    processes = [
        subprocess.Popen(
            [
                str(dask),
                "scheduler",
                "--port",
                "0",
                "--scheduler-file",
                str(scheduler_file),
                *common,
            ],
            cwd=tmp_path,
            env=env,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists():
            assert time.monotonic() < deadline, "the Dask scheduler did not start"
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        for _ in range(2):
            processes.append(
                subprocess.Popen(
                    [str(dask), "worker", address, "--nthreads", "1", *common],
                    cwd=tmp_path,
                    env=env,
                    stderr=subprocess.DEVNULL,
                )
            )
        import distributed

        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


def test_an_external_scheduler_gives_the_same_json_as_serial(
    recordings, serial, external_dask, tmp_path
):
    out = tmp_path / "external"
    spec = external_dask.replace("tcp://", "dask://")
    result = neurorig(
        "analyze",
        "--batch",
        str(recordings),
        "--executor",
        spec,
        "--json-dir",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert per_recording(out) == per_recording(serial)
    summary = json.loads((out / "batch.json").read_text())
    assert summary["executor"] == spec
    assert {r["software_version"] for r in summary["recordings"]} == {
        batch.software_version()
    }


def test_worms_from_folders_and_metadata_are_pooled(serial):
    summary = json.loads((serial / "batch.json").read_text())
    worms = {r["json"]: r["worm"] for r in summary["recordings"]}
    assert sorted(set(worms.values())) == ["W7", "worm-a", "worm-b"]
    assert set(summary["per_worm"]) == {"W7", "worm-a", "worm-b"}
    assert len(summary["per_worm"]["worm-a"]["recordings"]) == 2
    assert summary["per_worm"]["worm-a"]["n_stimuli"] == 16
    assert summary["pooled"]["n_stimuli"] == 32
    # the pooled map is the parameter map of all stimuli taken together
    cells = {
        (c["amplitude_vpp"], c["duration_s"]): c
        for c in summary["pooled"]["parameter_map"]
    }
    assert {n for (_, _), c in cells.items() for n in [c["n"]]} == {4}  # 4 recordings
    velocity = summary["across_worms"]["mgf_velocity_m_per_s"]
    assert velocity["n_worms"] == 3 and velocity["sd"] is not None
    assert velocity["mean"] == pytest.approx(sum(velocity["per_worm"].values()) / 3)


def test_pooling_takes_the_worm_as_the_unit():
    """Known thresholds: worm 1 has three recordings, worm 2 one. Pooled per
    worm, each worm counts once across worms, however many stimuli it has."""

    def stimuli(threshold_vpp: float, duration_s: float) -> list[dict]:
        # 10 stimuli at each of 5 amplitudes around the threshold, responding
        # 0, 2, 5, 8, 10 times: symmetric, so the fitted 50 % point is exact.
        rows = []
        for offset, hits in ((-0.6, 0), (-0.3, 2), (0.0, 5), (0.3, 8), (0.6, 10)):
            for k in range(10):
                rows.append(
                    {
                        "analysed": True,
                        "amplitude_vpp": threshold_vpp + offset,
                        "duration_s": duration_s,
                        "responded": k < hits,
                        "volleys": [
                            {"fibre": "mgf", "conduction_velocity_m_per_s": 10.0 + k}
                        ]
                        if k < hits
                        else [],
                    }
                )
        return rows

    def recording(rheobase_vpp: float) -> dict:
        # Weiss's law, chronaxie 2 ms: threshold(d) = rheobase (1 + 2 ms / d),
        # at three durations (a strength-duration fit needs 3 or more)
        return {
            "stimuli": stimuli(rheobase_vpp * 3.0, 1e-3)
            + stimuli(rheobase_vpp * 2.0, 2e-3)
            + stimuli(rheobase_vpp * 1.5, 4e-3)
        }

    results = [recording(2.0), recording(2.0), recording(2.0), recording(3.0)]
    pooled = batch.pool(results, ["w1", "w1", "w1", "w2"], ["a", "b", "c", "d"])
    w1, w2 = pooled["per_worm"]["w1"], pooled["per_worm"]["w2"]
    assert w1["recordings"] == ["a", "b", "c"] and w1["n_stimuli"] == 450
    per_worm = {}
    for name, worm, rheobase_vpp in (("w1", w1, 2.0), ("w2", w2, 3.0)):
        fit = worm["strength_duration"]["weiss"]  # fitted to the trials
        assert fit["determined"] is True
        lo, hi = fit["rheobase_ci95_vpp"]
        assert lo < rheobase_vpp < hi and hi - lo < 0.15 * rheobase_vpp
        lo, hi = fit["chronaxie_ci95_s"]
        assert lo < 2e-3 < hi
        per_worm[name] = fit["rheobase_vpp"]
    across = pooled["across_worms"]["rheobase_vpp"]
    assert across["n_worms"] == 2 and across["per_worm"] == per_worm
    # each worm once, not 3:1
    assert across["mean"] == pytest.approx((per_worm["w1"] + per_worm["w2"]) / 2)
    assert across["sd"] == pytest.approx(abs(per_worm["w1"] - per_worm["w2"]) / 2**0.5)
    assert pooled["across_worms"]["threshold_vpp_at_2_ms"]["per_worm"] == {
        "w1": pytest.approx(4.0, rel=1e-3),
        "w2": pytest.approx(6.0, rel=1e-3),
    }
    # one worm alone says nothing of the spread between worms
    alone = batch.pool(results[:1], ["w1"], ["a"])["across_worms"]["rheobase_vpp"]
    assert alone["n_worms"] == 1 and alone["sd"] is None


def test_a_threshold_outside_the_amplitudes_tried_is_not_determined():
    # Even the strongest pulse tried evokes a response only 1 time in 4: the
    # 50 % point lies beyond 5 Vpp, an extrapolation.
    stimuli = [
        {"analysed": True, "amplitude_vpp": a, "duration_s": 2e-3, "responded": hit}
        for a in (2.0, 3.0, 4.0, 5.0)
        for hit in (a == 5.0, False, False, False)
    ]
    group = batch.pool([{"stimuli": stimuli}], ["w"], ["r"])["pooled"]
    (curve,) = group["recruitment"]
    assert curve["determined"] is False and curve["threshold_vpp"] is None
    # above 4 Vpp, and nothing bounds it from above: not "between 4 and 5"
    assert curve["threshold_between_vpp"] == [4.0, None]
    for model in ("weiss", "lapicque"):
        fit = group["strength_duration"][model]
        assert fit["determined"] is False
        assert "needs 3 or more" in fit["reason"]


def test_a_recording_that_cannot_be_read_is_reported_and_the_rest_go_on(
    recordings, tmp_path
):
    root = tmp_path / "data"
    shutil.copytree(recordings, root)
    broken = sorted(root.glob("worm-b/*"))[0]
    (broken / "index.jsonl").write_text("not json\n")
    out = neurorig("analyze", "--batch", str(root), "--quiet")
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if "not analysed" in line]
    assert len(errors) == 1 and broken.name in errors[0]
    assert "3 of 4 recordings analysed" in out.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ["--executor", "threads"],
            "allowed serial, local, local:N or dask://HOST:PORT",
        ),
        (["--executor", "local:0"], "N must be a whole number ≥ 1"),
        (["--executor", "dask://127.0.0.1:1"], "no Dask scheduler answers there"),
    ],
)
def test_a_bad_executor_is_one_line(recordings, args, says):
    out = neurorig("analyze", "--batch", str(recordings), *args)
    assert out.returncode == 2
    assert says in out.stderr.strip().splitlines()[-1]
    assert "Traceback" not in out.stderr


def test_batch_needs_a_folder_of_recordings(tmp_path):
    out = neurorig("analyze", "--batch", str(tmp_path))
    assert out.returncode == 2
    assert "no recordings in it" in out.stderr
    both = neurorig("analyze", str(tmp_path), "--batch", str(tmp_path))
    assert both.returncode == 2 and "not both" in both.stderr
