"""Readers and writers: NWB, suite2p, DeepLabCut/SLEAP pose, lever traces, results.

Optional dependencies (``pynwb``, ``ndx-pose``, ``h5py``, ``tables``, ``sleap-io``,
``pyarrow``) are imported only inside the functions that need them; a missing one
raises :class:`ImportError` naming the extra to install.

Errors: a missing file raises :class:`FileNotFoundError`; a file that exists but cannot
be used (wrong type, truncated, corrupted, lacking the expected content) raises
:class:`DataFormatError` (a :class:`ValueError`) whose message names the file.
The readers may import :mod:`sharedrep.utils` and :mod:`sharedrep.data` only.
"""

from sharedrep.data.io._common import DataFormatError, Traces
from sharedrep.data.io.assemble import build_session, read_intervals
from sharedrep.data.io.lever import read_lever, read_trace
from sharedrep.data.io.nwb import read_nwb, write_nwb
from sharedrep.data.io.nwb_header import NWBHeader, read_nwb_header
from sharedrep.data.io.pose import clean_pose, read_dlc, read_sleap
from sharedrep.data.io.results import (
    ResultsFolder,
    atomic_write,
    read_arrays,
    read_json,
    read_table,
    write_arrays,
    write_json,
    write_table,
)
from sharedrep.data.io.suite2p import Suite2pPlane, read_suite2p

__all__ = [
    "DataFormatError",
    "NWBHeader",
    "ResultsFolder",
    "Suite2pPlane",
    "Traces",
    "atomic_write",
    "build_session",
    "clean_pose",
    "read_arrays",
    "read_dlc",
    "read_intervals",
    "read_json",
    "read_lever",
    "read_nwb",
    "read_nwb_header",
    "read_sleap",
    "read_suite2p",
    "read_table",
    "read_trace",
    "write_arrays",
    "write_json",
    "write_nwb",
    "write_table",
]
