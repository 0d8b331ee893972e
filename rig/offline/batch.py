"""Batch analysis: every recording under a folder, one task each, on any executor.

``neurorig analyze --batch DIR`` runs ``analyse_recording`` once per recording
on a ``concurrent.futures.Executor``: in this process (``serial``), on a Dask
``LocalCluster`` (``local[:N]``), or on a Dask scheduler of a lab server or a
cluster (``dask://HOST:PORT``, the executor of ``Client(...).get_executor()``).
A task takes a path and returns JSON-ready results, so it runs wherever the
recordings can be read (a shared file system); each result says which
neurorig version made it, on the worker.

The client then pools the results (``pool``): per worm (the worm's id from the
recording's metadata, else its folder) and over all of them, the parameter map,
the recruitment curves and the strength–duration fit of the stimuli taken
together, and, with the worm as the unit of replication, each worm's fitted
values summarised across worms (docs/batch.md).
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from analysis.fits import SD_MODELS, fit_strength_duration_trials
from analysis.param_maps import parameter_map
from analysis.summary import fit_rows, recruitment_curves
from rig.offline.sites import results_head_end, site_cells
from rig.recording.metadata import software_version

METADATA = "metadata.json"  # what makes a folder a neurorig recording
# Metadata keys that may name the worm, the first present wins.
WORM_KEYS = ("worm", "worm_id", "subject", "subject_id")
FIBRES = ("mgf", "lgf")


class BatchError(ValueError):
    """A batch that cannot start (no recordings, a bad executor); one line."""


# ------------------------------------------------------------------ finding


def find_recordings(folder: str | Path) -> list[Path]:
    """Every neurorig recording folder under ``folder`` (it, or any folder below
    holding a ``metadata.json``), sorted; a recording's own subfolders are not
    searched."""
    root = Path(folder)
    if not root.is_dir():
        raise BatchError(
            f"--batch {folder}: not a folder; allowed: a folder of recordings"
        )
    found, seen = [], set()
    # Links are followed (recordings gathered by links), each real folder once.
    for here, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(here)
        if real in seen:
            subfolders.clear()
            continue
        seen.add(real)
        if METADATA in files:
            found.append(Path(here))
            subfolders.clear()
        subfolders.sort()
    if not found:
        raise BatchError(
            f"--batch {folder}: no recordings in it (a recording is a folder "
            f"with {METADATA}, made by neurorig run or the GUI)"
        )
    return sorted(found)


def worm_of(recording: Path, root: Path) -> str:
    """The worm a recording is of: its metadata's ``worm``/``subject`` (or
    ``subject.id``), else the folder it sits in under ``root``, else its own
    name (a recording directly in ``root`` is a worm of its own)."""
    try:
        meta = json.loads((recording / METADATA).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {}
    for key in WORM_KEYS:
        value = meta.get(key) if isinstance(meta, dict) else None
        if isinstance(value, dict):
            value = value.get("id") or value.get("subject_id")
        if isinstance(value, str | int) and str(value).strip():
            return str(value).strip()
    if recording == root or recording.parent == root:
        return recording.name
    return recording.parent.relative_to(root).as_posix()


# ------------------------------------------------------------------ one task


def analyse_recording(
    path: str, options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Analyse one recording folder, as ``neurorig analyze PATH --json`` does.

    Runs on a worker: everything it needs is the path (a file system the
    worker sees) and plain options (``electrode_positions_mm``,
    ``px_per_mm``, ``mains_hz``, ``retrack``). Returns the analysis results with
    ``software_version`` (the worker's neurorig), or ``{"error": ...}`` with
    one line saying why this recording could not be analysed.
    """
    from rig.offline.load import load_recording
    from rig.offline.pipeline import analyse

    options = options or {}
    version = software_version()
    try:
        source = load_recording(
            Path(path),
            electrode_positions_mm=options.get("electrode_positions_mm"),
            px_per_mm=options.get("px_per_mm"),
        )
        source.mains_hz = options.get("mains_hz")
        results = analyse(source, _no_progress, retrack=bool(options.get("retrack")))
    except Exception as exc:  # one bad recording must not sink the batch
        return {"software_version": version, "error": f"{type(exc).__name__}: {exc}"}
    return {"software_version": version, **results}


def _no_progress(iterable: Any, desc: str, total: int | None = None) -> Any:
    if iterable is None:
        return _NullBar()
    return iterable


class _NullBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


# ------------------------------------------------------------------ executors


class SerialExecutor(Executor):
    """Runs each task at once, in this thread (``--executor serial``)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Run ``fn(*args, **kwargs)`` now; a Future holding its result."""
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


@contextmanager
def open_executor(spec: str) -> Iterator[Executor]:
    """The executor ``--executor`` names: ``serial``, ``local[:N]`` (a Dask
    LocalCluster of N single-threaded worker processes; N: the CPU count) or
    ``dask://HOST:PORT`` (a running Dask scheduler); closed on exit."""
    if spec == "serial":
        yield SerialExecutor()
        return
    if spec == "local" or spec.startswith("local:"):
        n_workers = _workers(spec)
        distributed = _dask(spec)
        with distributed.LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            scheduler_kwargs={"dashboard": False},  # no web server of ours
            silence_logs=logging.WARNING,
        ) as cluster, distributed.Client(cluster) as client:  # fmt: skip
            yield client.get_executor(pure=False)
        return
    if spec.startswith("dask://"):
        address = "tcp://" + spec.removeprefix("dask://")
        distributed = _dask(spec)
        try:
            client = distributed.Client(address, timeout=10)
        except OSError as exc:
            raise BatchError(
                f"--executor {spec}: no Dask scheduler answers there ({exc})"
            ) from None
        with client:
            # pure=False: a recording is analysed afresh, never answered from
            # results the scheduler keeps for the same path (it may have changed).
            yield client.get_executor(pure=False)
        return
    raise BatchError(
        f"--executor {spec!r}: allowed serial, local, local:N or dask://HOST:PORT"
    )


def _workers(spec: str) -> int:
    if spec == "local":
        return os.cpu_count() or 1
    text = spec.removeprefix("local:")
    if not text.isdigit() or int(text) < 1:
        raise BatchError(f"--executor {spec}: N must be a whole number ≥ 1")
    return int(text)


def _dask(spec: str) -> Any:
    try:
        import distributed
    except ImportError:
        raise BatchError(
            f"--executor {spec} needs Dask: pip install 'neurorig[dask]'"
        ) from None
    # Dask's scheduler and client narrate at INFO; the progress bar is the output.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    return distributed


# ------------------------------------------------------------------ the batch


def run_batch(
    recordings: Iterable[Path],
    executor: Executor,
    *,
    options: dict[str, Any] | None = None,
    progress: Callable[[int], Any] | None = None,
) -> list[dict[str, Any]]:
    """Analyse every recording on ``executor``, one task each; the results in
    the order of ``recordings``. ``progress(total)`` gives a bar with
    ``update``/``close`` (tqdm's), moved as each task ends."""
    paths = list(recordings)
    bar = progress(len(paths)) if progress is not None else _NullBar()
    try:
        futures = []
        for path in paths:
            future = executor.submit(analyse_recording, str(path), options)
            future.add_done_callback(lambda _: bar.update(1))
            futures.append(future)
        return [_outcome(future) for future in futures]
    finally:
        bar.close()


def _outcome(future: Future) -> dict[str, Any]:
    try:
        return dict(future.result())
    except Exception as exc:  # the worker died, the scheduler went away
        return {"error": f"{type(exc).__name__}: {exc}"}


def json_name(recording: Path, root: Path) -> str:
    """The file name of a recording's JSON in ``--json-dir`` (its path under
    ``root`` with ``__`` for ``/``)."""
    relative = recording.relative_to(root) if recording != root else Path(root.name)
    return "__".join(relative.parts) + ".json"


def dumps(value: Any) -> str:
    """The JSON text written for a result (no NaN, as ``neurorig analyze``)."""
    return json.dumps(value, indent=1, allow_nan=False) + "\n"


# ------------------------------------------------------------------ pooling


def pool(
    results: list[dict[str, Any]], worms: list[str], names: list[str]
) -> dict[str, Any]:
    """Pool the recordings' stimuli per worm and over all of them.

    ``results``: one per recording (``analyse_recording``'s); ``worms``: each
    recording's worm; ``names``: each recording's name. Returns
    ``{"per_worm": {worm: group}, "pooled": group, "across_worms": ...}``, a
    group being its recordings, stimuli, parameter map, recruitment curves,
    strength–duration fit and fibre velocities over the stimuli taken together;
    ``across_worms`` gives each worm's values of those fits with their mean,
    standard deviation and n (the worm as the unit: a worm with many stimuli
    counts once).
    """
    groups: dict[str, list[int]] = {}
    for i, worm in enumerate(worms):
        if "error" not in results[i]:
            groups.setdefault(worm, []).append(i)
    per_worm = {
        worm: _group([results[i] for i in rows], [names[i] for i in rows])
        for worm, rows in sorted(groups.items())
    }
    everything = [i for rows in groups.values() for i in rows]
    return {
        "per_worm": per_worm,
        "pooled": _group(
            [results[i] for i in everything], [names[i] for i in everything]
        ),
        "across_worms": _across(per_worm),
    }


def _group(results: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """One group's stimuli taken together: the same fits as one recording's,
    each said to be not determined where the stimuli cannot support it."""
    records, head = [], []
    for res in results:
        stimuli = res.get("stimuli") or []
        for r, ok in zip(stimuli, results_head_end(res), strict=True):
            if r.get("analysed"):
                records.append(r)
                head.append(ok)
    responded = np.array([bool(r.get("responded")) for r in records], dtype=bool)
    # The trials as one recording's fits take them (analysis.summary.fit_rows):
    # first pulses, the delivered amplitude where measured, and a fibre that
    # fired counted whether or not its volley was timed clean; stimuli at the
    # head end only (over sites, a site along the body is another curve).
    fitted = [r for r, ok in zip(records, head, strict=True) if ok]
    rows = fit_rows(
        _floats(r.get("amplitude_vpp") for r in fitted),
        _floats(r.get("duration_s") for r in fitted),
        np.array([bool(r.get("ap_evoked", r.get("responded"))) for r in fitted]),
        None,
        np.array([int(r.get("pulse_index") or 0) for r in fitted]),
        _floats((r.get("parameters") or {}).get("delivered_vpp") for r in fitted),
    )
    amplitudes, durations = rows["amplitude_vpp"], rows["duration_s"]
    evoked = rows["responded"]
    # Each duration's threshold by maximum likelihood, with its interval, or
    # the interval it lies in and why not (analysis.fits.fit_recruitment).
    recruitment = [
        fit.to_dict() for fit in recruitment_curves(amplitudes, durations, evoked)
    ]
    known = [
        r.get("amplitude_vpp") is not None and r.get("duration_s") is not None
        for r in records
    ]
    mappable = [r for r, k in zip(records, known, strict=True) if k]
    mappable_head = [ok for ok, k in zip(head, known, strict=True) if k]
    return {
        "recordings": names,
        "n_stimuli": len(records),
        "n_responded": int(responded.sum()),
        # a site along the body measured about its site, as in one recording's
        "parameter_map": site_cells(parameter_map(mappable), mappable, mappable_head),
        "recruitment": recruitment,
        "strength_duration": _strength_duration(amplitudes, durations, evoked),
        "fibre_velocity_m_per_s": {
            fibre: _median_or_none(
                v.get("conduction_velocity_m_per_s")
                for r in records
                for v in r.get("volleys") or []
                if v.get("fibre") == fibre
            )
            for fibre in FIBRES
        },
    }


def _strength_duration(
    amplitudes: np.ndarray, durations: np.ndarray, responded: np.ndarray
) -> dict[str, Any]:
    """Weiss's and Lapicque's laws fitted to the group's trials, each
    determined or not with its reason (analysis.fits). The recordings' stimuli
    are pooled as if rested: habituation is fitted per recording, where the
    stimuli's order in time is known (``neurorig analyze``). The trials are
    ``fit_rows``'s: amplitudes and durations finite and positive."""
    if not amplitudes.size:
        return dict.fromkeys(SD_MODELS)
    return {
        model: fit_strength_duration_trials(
            amplitudes, durations, responded, model=model
        ).to_dict()
        for model in SD_MODELS
    }


def _across(per_worm: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each worm's fitted values, and their mean, SD and n across worms."""
    values: dict[str, dict[str, float]] = {}

    def add(name: str, worm: str, value: Any) -> None:
        if isinstance(value, int | float) and math.isfinite(value):
            values.setdefault(name, {})[worm] = float(value)

    for worm, group in per_worm.items():
        weiss = group["strength_duration"]["weiss"] or {}
        if weiss.get("rheobase_determined"):
            add("rheobase_vpp", worm, weiss["rheobase_vpp"])
        if weiss.get("chronaxie_determined"):
            add("chronaxie_s", worm, weiss["chronaxie_s"])
        for curve in group["recruitment"]:
            if curve["determined"]:
                key = f"threshold_vpp_at_{curve['duration_s'] * 1e3:g}_ms"
                add(key, worm, curve["threshold_vpp"])
        for fibre, velocity in group["fibre_velocity_m_per_s"].items():
            add(f"{fibre}_velocity_m_per_s", worm, velocity)
    return {name: _spread(by_worm) for name, by_worm in sorted(values.items())}


def _spread(by_worm: dict[str, float]) -> dict[str, Any]:
    v = np.array(list(by_worm.values()))
    return {
        "n_worms": int(v.size),
        "mean": float(v.mean()),
        # One worm says nothing of the spread between worms: not determined.
        "sd": float(v.std(ddof=1)) if v.size > 1 else None,
        "per_worm": by_worm,
    }


def _floats(values: Iterable[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def _median_or_none(values: Iterable[Any]) -> float | None:
    v = _floats(values)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else None


def version_note(results: list[dict[str, Any]]) -> str | None:
    """A warning when workers ran another neurorig version than this one."""
    here = software_version()
    others = sorted({str(r.get("software_version")) for r in results} - {here, "None"})
    if not others:
        return None
    return (
        f"warning: workers ran neurorig {', '.join(others)}, this client "
        f"{here}: results may differ from a run here"
    )


def stderr_bar(total: int, enabled: bool = True) -> Any:
    """A tqdm bar on stderr, counting recordings."""
    from tqdm import tqdm

    return tqdm(
        total=total, desc="recordings", unit="rec", file=sys.stderr, disable=not enabled
    )
