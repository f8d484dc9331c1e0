"""Builders of realistic input files for the I/O tests (imported explicitly).

Every file is written with the real library of its format (pynwb + ndx-pose for NWB,
pandas/PyTables for DeepLabCut, numpy for suite2p, sleap-io for SLEAP), independently
of sharedrep's own writers.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

RATE = 30.0  # imaging frame rate of the synthetic sessions (Hz)
POSE_RATE = 60.0  # camera rate (Hz)
BODYPARTS = ("paw", "nose")


def lever_signal(t: np.ndarray, cues: np.ndarray, delay: float = 0.4) -> np.ndarray:
    """Lever position (mm): 0 at rest, a 4 mm push ramping in 0.1 s after each cue."""
    x = np.zeros_like(t)
    for c in cues:
        on = c + delay
        x += np.clip((t - on) / 0.1, 0, 1) * (t < on + 0.8) * 4.0
    return x


def make_nwb(
    path: Path,
    *,
    subject: str = "m1",
    session_id: str = "m1-day1",
    T: int = 300,
    N: int = 5,
    seed: int = 0,
    rrs: str | None = "DfOverF",
    units: bool = False,
    pose: bool = True,
    lever: bool = True,
    trials: bool = True,
    opto: bool = True,
    pose_confidence: float | None = None,
    subject_id: bool = True,
    lever_start: float = -0.5,
) -> dict:
    """Write a lab-style NWB file; return the ground truth used to build it."""
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.file import Subject

    rng = np.random.default_rng(seed)
    t = np.arange(T) / RATE + 1.0
    x = rng.normal(size=(T, N))
    nwb = NWBFile(
        session_description="lever push",
        identifier=f"id-{session_id}",
        session_start_time=_dt.datetime(2024, 3, 1, 9, 0, tzinfo=_dt.UTC),
        session_id=session_id,
        subject=Subject(subject_id=subject, species="Mus musculus", sex="F", age="P90D")
        if subject_id
        else None,
    )
    truth: dict = {"t": t, "x": x, "roi_ids": np.arange(100, 100 + N)}
    if rrs is not None:
        _add_imaging(nwb, x, t, rrs)
    if units:
        _add_units(nwb, rng, t, truth)
    cues = t[0] + np.arange(1, max(2, int((t[-1] - t[0]) // 2))) * 2.0
    cues = cues[cues < t[-1] - 1.5]
    truth["cues"] = cues
    if trials:
        _add_trials(nwb, cues)
    beh = None
    if lever or pose:
        beh = nwb.create_processing_module(name="behavior", description="behaviour")
    if lever:
        _add_lever(beh, t, cues, lever_start, truth)
    if pose:
        _add_pose(nwb, beh, t, pose_confidence, truth)
    if opto:
        _add_opto(nwb, t, truth)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return truth


def _add_imaging(nwb, x: np.ndarray, t: np.ndarray, rrs: str) -> None:
    """ROIs with ids 100, 101, ... and their activity ``x`` (T, N) in a ``DfOverF`` or
    ``Fluorescence`` interface (``rrs``) of ``processing/ophys``."""
    from pynwb.ophys import DfOverF, Fluorescence, ImageSegmentation, OpticalChannel

    N = x.shape[1]
    dev = nwb.create_device(name="2p")
    oc = OpticalChannel(name="green", description="GCaMP", emission_lambda=510.0)
    plane = nwb.create_imaging_plane(
        name="plane0",
        optical_channel=oc,
        description="L1",
        device=dev,
        excitation_lambda=920.0,
        indicator="GCaMP6s",
        location="M1 L1",
        imaging_rate=RATE,
    )
    oph = nwb.create_processing_module(name="ophys", description="ophys")
    seg = ImageSegmentation()
    oph.add(seg)
    ps = seg.create_plane_segmentation(
        name="PlaneSegmentation", description="boutons", imaging_plane=plane
    )
    for i in range(N):
        ps.add_roi(id=100 + i, pixel_mask=[(i, i, 1.0)])
    iface = DfOverF(name="DfOverF") if rrs == "DfOverF" else Fluorescence(name="Fluorescence")
    oph.add(iface)
    region = ps.create_roi_table_region(region=list(range(N)), description="all")
    iface.create_roi_response_series(
        name="RoiResponseSeries", data=x, rois=region, unit="n.a.", timestamps=t
    )


def _add_units(nwb, rng, t: np.ndarray, truth: dict) -> None:
    """Three spike units (ids 7, 8, 9) with uniform random spike times within ``t``."""
    for i in range(3):
        st = np.sort(rng.uniform(t[0], t[-1], size=20 + 10 * i))
        nwb.add_unit(spike_times=st, id=7 + i)
    truth["spikes"] = [np.asarray(nwb.units["spike_times"][i]) for i in range(3)]


def _add_trials(nwb, cues: np.ndarray) -> None:
    """One trial per cue (-0.5 s .. +1.5 s) with ``cue_time`` and ``outcome`` columns."""
    nwb.add_trial_column(name="cue_time", description="cue")
    nwb.add_trial_column(name="outcome", description="hit/miss")
    for k, c in enumerate(cues):
        nwb.add_trial(
            start_time=c - 0.5,
            stop_time=c + 1.5,
            cue_time=c,
            outcome="hit" if k % 2 else "miss",
        )


def _add_lever(beh, t: np.ndarray, cues: np.ndarray, lever_start: float, truth: dict) -> None:
    """A 100 Hz lever ``TimeSeries`` (mm) in the behaviour module."""
    from pynwb import TimeSeries

    tl = np.arange(t[0] + lever_start, t[-1] + 0.5, 0.01)
    lv = lever_signal(tl, cues)
    beh.add(TimeSeries(name="lever", data=lv, unit="mm", timestamps=tl))
    truth["lever_t"], truth["lever"] = tl, lv


def _add_pose(nwb, beh, t: np.ndarray, pose_confidence, truth: dict) -> None:
    """An ndx-pose ``PoseEstimation`` of :data:`BODYPARTS` at :data:`POSE_RATE`."""
    from ndx_pose import PoseEstimation, PoseEstimationSeries, Skeleton, Skeletons

    tp = np.arange(t[0] - 0.5, t[-1] + 0.5, 1 / POSE_RATE)
    sk = Skeleton(name="mouse", nodes=list(BODYPARTS), edges=np.array([[0, 1]], dtype="uint8"))
    beh.add(Skeletons(skeletons=[sk]))
    cam = nwb.create_device(name="camera")
    series = []
    truth["pose_t"] = tp
    for b, name in enumerate(BODYPARTS):
        xy = np.column_stack([100 + 10 * np.sin(tp + b), 50 + 5 * np.cos(tp)])
        conf = np.full(tp.size, 0.99 if pose_confidence is None else pose_confidence)
        series.append(
            PoseEstimationSeries(
                name=name,
                data=xy,
                confidence=conf,
                reference_frame="top left",
                unit="pixels",
                timestamps=tp,
            )
        )
        truth[f"pose_{name}"] = xy
    beh.add(
        PoseEstimation(
            name="PoseEstimation",
            pose_estimation_series=series,
            skeleton=sk,
            device=cam,
            source_software="DeepLabCut",
        )
    )


def _add_opto(nwb, t: np.ndarray, truth: dict) -> None:
    """An ``OptogeneticSeries`` on the imaging time base with two pulses (5 and 3)."""
    from pynwb.ogen import OptogeneticSeries

    site_dev = nwb.create_device(name="laser")
    site = nwb.create_ogen_site(
        name="VM", device=site_dev, description="fiber", excitation_lambda=470.0, location="VM"
    )
    power = np.zeros(t.size)
    power[30:45] = 5.0
    power[120:130] = 3.0
    nwb.add_stimulus(OptogeneticSeries(name="opto", data=power, site=site, timestamps=t))
    truth["opto"] = [(t[30], t[45], 5.0), (t[120], t[130], 3.0)]


def make_suite2p(
    folder: Path, *, N: int = 6, T: int = 900, fs: float = RATE, seed: int = 0, n_noncell: int = 2
) -> dict:
    """Write a suite2p plane folder with ``N`` cells and ``n_noncell`` rejected ROIs."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    n = N + n_noncell
    base = 200 + 50 * rng.random(n)
    trans = np.maximum(rng.normal(size=(n, T)), 0) * 30
    neu = 50 + rng.normal(size=(n, T))
    F = (base[:, None] + trans + 0.7 * neu).astype(np.float32)
    iscell = np.column_stack([np.r_[np.ones(N), np.zeros(n_noncell)], rng.random(n)])
    np.save(folder / "F.npy", F)
    np.save(folder / "Fneu.npy", neu.astype(np.float32))
    np.save(folder / "iscell.npy", iscell)
    np.save(folder / "ops.npy", np.array({"fs": fs, "nframes": T, "nplanes": 1}, dtype=object))
    stat = np.array([{"med": [i, i], "npix": 10 + i} for i in range(n)], dtype=object)
    np.save(folder / "stat.npy", stat)
    return {"F": F, "Fneu": neu, "iscell": iscell, "fs": fs}


def dlc_frame(
    T: int = 200,
    bodyparts=BODYPARTS,
    *,
    scorer: str = "DLC_resnet50_leverJan1shuffle1_100000",
    seed: int = 0,
    low: dict | None = None,
    individuals=None,
) -> pd.DataFrame:
    """A DeepLabCut prediction table; ``low={bodypart: slice}`` sets likelihood 0.1."""
    rng = np.random.default_rng(seed)
    cols, data = [], []
    inds = [None] if individuals is None else list(individuals)
    for ind in inds:
        for b, bp in enumerate(bodyparts):
            frame = np.arange(T)
            x = 100 + 20 * np.sin(frame / 10 + b)
            y = 80 + 10 * np.cos(frame / 7)
            lk = 0.95 + 0.04 * rng.random(T)
            if low and bp in low:
                lk[low[bp]] = 0.1
            for c, v in zip(("x", "y", "likelihood"), (x, y, lk), strict=True):
                cols.append((scorer, bp, c) if ind is None else (scorer, ind, bp, c))
                data.append(v)
    names = ["scorer", "bodyparts", "coords"]
    if individuals is not None:
        names = ["scorer", "individuals", "bodyparts", "coords"]
    mi = pd.MultiIndex.from_tuples(cols, names=names)
    return pd.DataFrame(np.column_stack(data), columns=mi)


def write_dlc(df: pd.DataFrame, path: Path) -> Path:
    """Write like DeepLabCut: HDF5 key ``df_with_missing`` or CSV with header rows."""
    if path.suffix == ".h5":
        df.to_hdf(path, key="df_with_missing", mode="w", format="table")
    else:
        df.to_csv(path)
    return path


def make_sleap(path: Path, *, T: int = 50, tracks: int = 1, seed: int = 0) -> None:
    """Write a small SLEAP predictions file with sleap-io."""
    import sleap_io as sio

    rng = np.random.default_rng(seed)
    skel = sio.Skeleton(nodes=list(BODYPARTS), name="mouse")
    video = sio.Video(filename="video.mp4", open_backend=False)
    trk = [sio.Track(name=f"animal{i}") for i in range(tracks)]
    frames = []
    for f in range(T):
        insts = []
        for k in range(tracks):
            pts = np.column_stack([np.full(2, 10.0 + f + 100 * k), np.full(2, 5.0 + k)])
            insts.append(
                sio.PredictedInstance.from_numpy(
                    points_data=pts,
                    point_scores=0.9 + 0.05 * rng.random(2),
                    score=1.0,
                    skeleton=skel,
                    track=trk[k],
                )
            )
        frames.append(sio.LabeledFrame(video=video, frame_idx=f, instances=insts))
    labels = sio.Labels(labeled_frames=frames, videos=[video], skeletons=[skel], tracks=trk)
    sio.save_slp(labels, str(path))


def run_isolated(code: str, timeout: float = 120.0) -> dict:
    """Run ``code`` in a fresh interpreter (so a hang or crash cannot take pytest down);
    the code must print one JSON object as its last output line."""
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join(
        [src, str(Path(__file__).parent), env.get("PYTHONPATH", "")]
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"isolated run crashed (rc={proc.returncode}):\n{proc.stdout[-3000:]}\n"
            f"{proc.stderr[-3000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- fuzzing

TRUNCATE_AT = (0.0, 0.02, 0.1, 0.35, 0.6, 0.9, 0.999)


def fuzz_main(root: str) -> list[dict]:
    """Feed random bytes and truncated copies of valid files to every reader.

    Runs in a child process (see ``run_isolated``); returns one record per call:
    ``case``, ``variant``, ``outcome`` ("ok", "DataFormatError", "timeout", or
    "<OtherType>: message"), ``named`` (whether the message names the file), ``text``
    (whether the format is plain text) and ``sane`` (for "ok": result is consistent).
    """
    root_p = Path(root)
    valid = root_p / "valid"
    valid.mkdir(parents=True)
    rng = np.random.default_rng(123)
    cases = _fuzz_cases(valid)
    plane = valid / "plane0"
    make_suite2p(plane, N=3, T=100, n_noncell=1)
    records = []
    for name, reader, path, is_text, n_orig in cases:
        work = root_p / name
        work.mkdir()
        for vname, q in _variants(path, work, rng):
            outcome, result, msg = _guarded(reader, q)
            records.append(
                dict(
                    case=name,
                    variant=vname,
                    outcome=outcome,
                    named=q.name in msg,
                    text=is_text,
                    sane=outcome == "ok" and _sane(result, n_orig),
                )
            )
    records += _fuzz_suite2p(root_p, plane, rng)
    records += _fuzz_study(root_p, rng)
    return records


def _fuzz_cases(valid: Path) -> list[tuple]:
    """Write one valid file per reader into ``valid``; return the cases
    ``(name, reader, valid path, is_text, original length (negative: may be empty) or
    None)`` for the readers whose optional dependency is installed."""
    import importlib.util

    from sharedrep.data.io import (
        read_arrays,
        read_dlc,
        read_json,
        read_nwb,
        read_sleap,
        read_table,
        read_trace,
        write_arrays,
        write_json,
        write_table,
    )

    has = {
        m: importlib.util.find_spec(m) is not None for m in ("pynwb", "tables", "sleap_io", "h5py")
    }
    cases = []
    if has["pynwb"]:
        make_nwb(valid / "s.nwb", T=150, N=3, units=True)
        cases.append(("nwb", lambda p: read_nwb(p), valid / "s.nwb", False, None))
        cases.append(
            (
                "nwb-units",
                lambda p: read_nwb(p, neural="units", bin_size=0.1),
                valid / "s.nwb",
                False,
                None,
            )
        )
    df = dlc_frame(40)
    if has["tables"]:
        write_dlc(df, valid / "p.h5")
        cases.append(
            ("dlc-h5", lambda p: read_dlc(p, min_likelihood=None), valid / "p.h5", False, None)
        )
    write_dlc(df, valid / "p.csv")
    cases.append(
        ("dlc-csv", lambda p: read_dlc(p, min_likelihood=None), valid / "p.csv", True, 40)
    )
    t = np.arange(0, 2, 0.01)
    pd.DataFrame({"time": t, "lever": np.sin(t)}).to_csv(valid / "lever.csv", index=False)
    cases.append(("lever-csv", lambda p: read_trace(p), valid / "lever.csv", True, t.size))
    np.save(valid / "lever.npy", np.sin(t))
    cases.append(
        ("lever-npy", lambda p: read_trace(p, sampling_rate=100), valid / "lever.npy", False, None)
    )
    if has["sleap_io"]:
        make_sleap(valid / "p.slp", T=20)
        cases.append(("sleap", lambda p: read_sleap(p), valid / "p.slp", False, None))
    write_arrays({"a": np.arange(50.0)}, valid / "arr.npz", attrs={"k": 1})
    cases.append(("arrays-npz", read_arrays, valid / "arr.npz", False, None))
    if has["h5py"]:
        write_arrays({"a": np.arange(50.0)}, valid / "arr.h5", attrs={"k": 1})
        cases.append(("arrays-h5", read_arrays, valid / "arr.h5", False, None))
    write_json({"a": list(range(20))}, valid / "r.json")
    cases.append(("json", read_json, valid / "r.json", True, None))
    write_table(pd.DataFrame({"a": np.arange(20.0)}), valid / "t.csv")
    # a results table may legitimately have no rows, so a header-only truncation is fine
    cases.append(("table-csv", read_table, valid / "t.csv", True, -20))
    return cases


def _guarded(fn, path) -> tuple:
    """``(outcome, result, message)`` of ``fn(path)``, with a 30 s alarm."""
    import signal

    from sharedrep.data.io import DataFormatError

    def on_alarm(signum, frame):
        raise TimeoutError

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(30)
    try:
        return "ok", fn(path), ""
    except DataFormatError as err:
        return "DataFormatError", None, str(err)
    except TimeoutError:
        return "timeout", None, ""
    except Exception as err:  # anything else is a failure of the reader
        return f"{type(err).__name__}: {err}"[:400], None, str(err)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _variants(src: Path, where: Path, rng) -> list[tuple[str, Path]]:
    """Random-byte files and truncated copies of ``src``, written into ``where``."""
    data = src.read_bytes()
    out = []
    for n in (1, 64, 4096):
        q = where / f"random{n}{src.suffix}"
        q.write_bytes(rng.bytes(n))
        out.append((f"random{n}", q))
    for frac in TRUNCATE_AT:
        q = where / f"trunc{int(frac * 1000)}{src.suffix}"
        q.write_bytes(data[: int(len(data) * frac)])
        out.append((f"truncated@{frac}", q))
    return out


def _sane(result, n_orig) -> bool:
    """Whether a result read from a damaged file is consistent: not longer than the
    original (``n_orig`` samples; negative: may be empty) with increasing times."""
    if n_orig is None:
        return result is not None
    n = getattr(result, "n_samples", None)
    if n is None:
        n = len(result)
    ts = getattr(result, "timestamps", None)
    ok_t = ts is None or (np.all(np.isfinite(ts)) and np.all(np.diff(ts) > 0))
    lo = 0 if n_orig < 0 else 1
    return bool(lo <= n <= abs(n_orig) and ok_t)


def _fuzz_suite2p(root_p: Path, plane: Path, rng) -> list[dict]:
    """suite2p: corrupt one file of an otherwise valid plane folder at a time."""
    import shutil

    from sharedrep.data.io import read_suite2p

    records = []
    s2p_variants = root_p / "s2p_variants"
    s2p_variants.mkdir()
    for fname in ("F.npy", "Fneu.npy", "iscell.npy", "ops.npy", "stat.npy"):
        for vname, q in _variants(plane / fname, s2p_variants, rng):
            work = root_p / f"s2p_{fname}_{vname}"
            shutil.copytree(plane, work)
            shutil.copy(q, work / fname)
            q.unlink()
            outcome, result, msg = _guarded(read_suite2p, work)
            records.append(
                dict(
                    case=f"suite2p/{fname}",
                    variant=vname,
                    outcome=outcome,
                    named=fname in msg,
                    text=False,
                    sane=False,
                )
            )
    return records


def _fuzz_study(root_p: Path, rng) -> list[dict]:
    """Study files: validate reports problems, load raises StudyError."""
    from sharedrep.data.studyfile import StudyError, load_study, validate_study

    records = []
    toml_dir = root_p / "toml"
    toml_dir.mkdir()
    good = toml_dir / "study.toml"
    good.write_text('[study]\nname = "x"\n[[sessions]]\nsubject = "m1"\npath = "a.nwb"\n')
    for vname, q in _variants(good, toml_dir, rng):
        outcome, result, msg = _guarded(validate_study, q)
        ok = outcome == "ok" and isinstance(result, list) and len(result) > 0
        records.append(
            dict(
                case="study-validate",
                variant=vname,
                outcome=outcome,
                named=True,
                text=True,
                sane=ok,
            )
        )
        try:
            load_study(q)
            lo = "ok"
        except StudyError as err:
            lo = "StudyError" if err.problems else "empty StudyError"
        except Exception as err:
            lo = f"{type(err).__name__}: {err}"[:300]
        records.append(
            dict(case="study-load", variant=vname, outcome=lo, named=True, text=False, sane=False)
        )
    return records
