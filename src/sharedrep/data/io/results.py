"""Writing analysis results: tables, arrays, JSON, atomically and without clobbering.

Every writer goes through :func:`atomic_write`: the file is written to a temporary
file in the destination folder, flushed to disk, and moved into place with an atomic
rename, so a crash never leaves a half-written result. An existing file is never
replaced unless ``overwrite=True`` (the CLI's ``--force``).

Formats
-------
tables
    ``.csv`` / ``.tsv`` (always) or ``.parquet`` (needs ``pyarrow``).
arrays
    ``.h5`` / ``.hdf5`` (needs ``h5py``, in the ``nwb`` extra), ``.nc`` (NetCDF, needs
    ``xarray`` with a NetCDF engine) or ``.npz`` (always; never pickled).
JSON
    ``.json``; numpy scalars/arrays are converted, NaN/inf become ``null``.

:class:`ResultsFolder` picks the best available format automatically. May import
:mod:`sharedrep.utils` and :mod:`sharedrep.data.io._common` only.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from sharedrep.data.io._common import DataFormatError, check_file, require
from sharedrep.utils.files import atomic_write
from sharedrep.utils.validation import is_missing

__all__ = [
    "ResultsFolder",
    "atomic_write",
    "read_arrays",
    "read_json",
    "read_table",
    "table_layout",
    "to_jsonable",
    "write_arrays",
    "write_json",
    "write_table",
]


# --------------------------------------------------------------------------- JSON


def to_jsonable(obj):
    """Convert numpy/pandas values to plain JSON types (NaN/inf -> None).

    Parameters
    ----------
    obj : object
        dicts, lists, tuples, numpy scalars and arrays, pandas objects, paths.

    Returns
    -------
    object
        Built of dict, list, str, int, float, bool and None.

    Raises
    ------
    TypeError
        For values that have no JSON form.
    """
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (pd.Series, pd.Index)):
        return to_jsonable(obj.tolist())
    if isinstance(obj, pd.DataFrame):
        return to_jsonable(obj.to_dict(orient="list"))
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot convert {type(obj).__name__} to JSON")


def write_json(obj, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``obj`` as indented UTF-8 JSON (see :func:`to_jsonable`).

    Parameters
    ----------
    obj : object
    path : str or os.PathLike
    overwrite : bool, default False

    Returns
    -------
    pathlib.Path
    """
    text = json.dumps(to_jsonable(obj), indent=2, allow_nan=False, sort_keys=False)

    def _w(tmp: Path) -> None:
        tmp.write_text(text + "\n", encoding="utf-8")

    return atomic_write(path, _w, overwrite=overwrite)


def read_json(path: str | os.PathLike):
    """Read a JSON file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    object

    Raises
    ------
    FileNotFoundError, DataFormatError
    """
    p = check_file(path, "JSON file")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataFormatError(f"{p}: not valid JSON ({err})") from None


# --------------------------------------------------------------------------- tables


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def write_table(
    df: pd.DataFrame, path: str | os.PathLike, *, overwrite: bool = False, index: bool = False
) -> Path:
    """Write a DataFrame as CSV/TSV or Parquet (chosen by suffix).

    Parameters
    ----------
    df : pandas.DataFrame
    path : str or os.PathLike
        ``.csv``, ``.tsv`` or ``.parquet``.
    overwrite : bool, default False
    index : bool, default False
        Also write the index.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileExistsError, ValueError, ImportError
        Existing file; unknown suffix; ``.parquet`` without ``pyarrow``.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    p = Path(path)
    suf = p.suffix.lower()
    if suf in (".csv", ".tsv"):
        sep = "\t" if suf == ".tsv" else ","

        def _w(tmp: Path) -> None:
            df.to_csv(tmp, sep=sep, index=index)

    elif suf == ".parquet":
        require("pyarrow", "parquet", "Writing Parquet tables")

        def _w(tmp: Path) -> None:
            df.to_parquet(tmp, index=index)

    else:
        raise ValueError(f"{p}: unsupported table format {suf!r} (use .csv, .tsv or .parquet)")
    return atomic_write(p, _w, overwrite=overwrite)


def read_table(path: str | os.PathLike, *, layout: Mapping | None = None) -> pd.DataFrame:
    """Read a table written by :func:`write_table`.

    CSV/TSV cells are read as text and converted without lossy type inference: with the
    ``layout`` recorded when the table was written (:func:`table_layout`) every column
    gets back its dtype (zero-padded ids such as ``"001"`` stay strings; a table without
    columns keeps its number of rows); without it a column becomes numeric or boolean
    only when every value is written exactly as that number or boolean would be.

    Parameters
    ----------
    path : str or os.PathLike
    layout : dict, optional
        ``{"rows": n, "columns": [{"name": ..., "dtype": ...}, ...]}`` from
        :func:`table_layout`; columns added or removed by hand are matched by name.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    FileNotFoundError, DataFormatError
    """
    p = check_file(path, "table")
    suf = p.suffix.lower()
    if suf in (".csv", ".tsv"):
        return _read_csv(p, "\t" if suf == ".tsv" else ",", layout or {})
    try:
        if suf == ".parquet":
            require("pyarrow", "parquet", "Reading Parquet tables")
            return pd.read_parquet(p)
    except ImportError:
        raise
    except Exception as err:
        raise DataFormatError(f"{p}: cannot read table ({type(err).__name__}: {err})") from None
    raise DataFormatError(f"{p}: unsupported table format {suf!r}")


#: The dtype pandas gives text columns (object before pandas 3, ``str`` from 3 on).
_TEXT = pd.Series(["text"]).dtype
#: Recorded dtype of an object column holding values that are not strings.
_MIXED = "mixed"


def _column_dtype(col: pd.Series) -> str:
    """The dtype recorded for a column (what its values need to be read back as)."""
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        # Shown as its values: a categorical column is read back as its categories' type.
        dtype = dtype.categories.dtype
    if str(dtype) == "object" and not all(isinstance(v, str) for v in col if not is_missing(v)):
        return _MIXED
    return str(dtype)


def table_layout(df: pd.DataFrame) -> dict:
    """Rows and column names/dtypes of a table: what :func:`read_table` needs (``layout``)
    to read its CSV back with the types it was written with (JSON-serialisable)."""
    return {
        "rows": len(df),
        "columns": [
            {"name": str(name), "dtype": _column_dtype(df.iloc[:, i])}
            for i, name in enumerate(df.columns)
        ],
    }


def _infer_value(text):
    """A CSV cell as bool, int or float when it is written exactly so, else the text."""
    if not isinstance(text, str):
        return text
    if text in ("True", "False"):
        return text == "True"
    try:
        i = int(text)
    except ValueError:
        pass
    else:
        return i if str(i) == text else text
    try:
        f = float(text)
    except ValueError:
        return text
    return f if not math.isnan(f) and repr(f) == text else text


def _infer_column(raw: pd.Series) -> pd.Series:
    """Read a column of CSV text without lossy type inference.

    The column becomes boolean / integer / float only when every non-empty cell is
    written exactly as such a value would be (``"001"`` or ``"1.50"`` keep the column
    text).
    """
    values = [_infer_value(v) for v in raw]
    present = [v for v in values if not is_missing(v)]
    if not present:  # all empty: NaN, as pandas reads it
        return raw.astype(float)
    if not all(isinstance(v, (bool, int, float)) for v in present):
        return raw.astype(_TEXT)
    kinds = {type(v) for v in present}
    if kinds == {bool}:
        return raw.map({"True": True, "False": False}) if len(present) == len(raw) else raw
    if bool in kinds:
        return raw
    if kinds == {int} and len(present) == len(raw):
        return pd.to_numeric(raw)
    return raw.astype(float)


def _restore_column(raw: pd.Series, dtype: str | None) -> pd.Series:
    """Convert a column of CSV text (``str`` or NaN cells) to its recorded dtype.

    Falls back to :func:`_infer_column` for unknown columns and for values that do not
    fit the recorded dtype (a CSV edited by hand).
    """
    if dtype is None:
        return _infer_column(raw)
    if dtype == "object":
        return raw  # strings stay strings; empty cells are NaN, as they were written
    if dtype == "str":  # pandas' default string dtype (pandas >= 3)
        return raw.astype(_TEXT)
    if dtype == _MIXED:
        return raw.map(_infer_value)
    try:
        if dtype.startswith("string"):
            return raw.astype(dtype)  # empty cells: <NA>
        if dtype in ("bool", "boolean"):
            present = raw.dropna()
            if not present.isin(["True", "False"]).all() or (
                dtype == "bool" and len(present) < len(raw)
            ):
                raise ValueError("not boolean")
            return raw.map({"True": True, "False": False}).astype(dtype)
        if dtype.lower().startswith(("int", "uint", "float")):
            if dtype[0].isupper():  # nullable Int64 / Float64
                return pd.to_numeric(raw).astype(dtype)
            return raw.astype(dtype)
        if dtype.startswith("datetime64"):
            return pd.to_datetime(raw, format="ISO8601").astype(dtype)
        if dtype.startswith("timedelta64"):
            return pd.to_timedelta(raw).astype(dtype)
    except (ValueError, TypeError, OverflowError, ImportError):
        pass
    return _infer_column(raw)


def _header_matches(read: str, name: str) -> bool:
    # read_csv renames duplicate headers (a, a.1) and blank ones (Unnamed: 0)
    return (
        read == name
        or re.fullmatch(re.escape(name) + r"\.\d+", read) is not None
        or read.startswith("Unnamed: ")
    )


def _read_csv(path: Path, sep: str, entry: Mapping) -> pd.DataFrame:
    """:func:`read_table` for CSV/TSV: cells read as text, then converted to the dtypes
    of ``entry`` (a :func:`table_layout`; empty for none)."""
    columns = entry.get("columns")
    if not isinstance(columns, list):
        columns = None
    try:
        raw = pd.read_csv(
            path, sep=sep, dtype=object, keep_default_na=False, na_values=[""], encoding="utf-8"
        )
    except pd.errors.EmptyDataError:
        # A table without columns (e.g. the table of a skipped analysis) is written
        # as blank lines: one per row.
        rows = entry.get("rows") if columns == [] else 0
        return pd.DataFrame(index=pd.RangeIndex(rows if isinstance(rows, int) else 0))
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataFormatError(f"{path}: cannot read table ({type(err).__name__}: {err})") from None
    read_names = [str(c) for c in raw.columns]
    names, dtypes = read_names, [None] * len(read_names)
    if columns is not None:
        rec = [(str(c.get("name")), c.get("dtype")) for c in columns if isinstance(c, Mapping)]
        if len(rec) == len(read_names) and all(
            _header_matches(r, n) for r, (n, _) in zip(read_names, rec, strict=True)
        ):
            names, dtypes = [n for n, _ in rec], [d for _, d in rec]
        else:  # edited by hand: restore the columns that are still there by name
            by_name = dict(reversed(rec))
            dtypes = [by_name.get(n) for n in read_names]
    data = {
        i: _restore_column(raw.iloc[:, i], d if isinstance(d, str) else None)
        for i, d in enumerate(dtypes)
    }
    out = pd.DataFrame(data, index=raw.index)
    out.columns = names
    return out


# --------------------------------------------------------------------------- arrays


def _check_arrays(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for k, v in arrays.items():
        if not isinstance(k, str) or not k or "/" in k or k.startswith("__"):
            raise ValueError(f"invalid array name {k!r} (non-empty, no '/', no leading '__')")
        a = np.asarray(v)
        if a.dtype.kind not in "biufcUS":
            raise ValueError(f"array {k!r} has dtype {a.dtype}; only numeric/str arrays")
        out[k] = a
    return out


def write_arrays(
    arrays: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    *,
    attrs: Mapping | None = None,
    overwrite: bool = False,
) -> Path:
    """Write named arrays (and JSON-able attributes) to HDF5, NetCDF or NPZ.

    Parameters
    ----------
    arrays : mapping of str to array_like
        Numeric or string arrays of any shape.
    path : str or os.PathLike
        ``.h5``/``.hdf5`` (h5py), ``.nc`` (xarray) or ``.npz``.
    attrs : mapping, optional
        Metadata stored as JSON (see :func:`to_jsonable`).
    overwrite : bool, default False

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileExistsError, ValueError, ImportError
    """
    arr = _check_arrays(arrays)
    meta = json.dumps(to_jsonable(dict(attrs or {})), allow_nan=False)
    p = Path(path)
    suf = p.suffix.lower()
    if suf in (".h5", ".hdf5"):
        h5py = require("h5py", "nwb", "Writing HDF5 arrays")

        def _w(tmp: Path) -> None:
            with h5py.File(tmp, "w") as f:
                f.attrs["sharedrep_attrs"] = meta
                for k, a in arr.items():
                    if a.dtype.kind == "U":
                        f.create_dataset(k, data=a.astype(object), dtype=h5py.string_dtype())
                    else:
                        f.create_dataset(k, data=a)

    elif suf == ".nc":
        xr = require("xarray", "netcdf", "Writing NetCDF arrays")

        def _w(tmp: Path) -> None:
            ds = xr.Dataset(
                {k: ([f"{k}_dim{i}" for i in range(a.ndim)], a) for k, a in arr.items()},
                attrs={"sharedrep_attrs": meta},
            )
            ds.to_netcdf(tmp)

    elif suf == ".npz":

        def _w(tmp: Path) -> None:
            # the layout of np.savez, written member by member: passing names as
            # keyword arguments to np.savez breaks names such as "file"/"allow_pickle"
            members = {"__attrs__": np.array(meta), **arr}
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
                for k, a in members.items():
                    with zf.open(f"{k}.npy", "w", force_zip64=True) as fh:
                        np.lib.format.write_array(fh, a, allow_pickle=False)

    else:
        raise ValueError(f"{p}: unsupported array format {suf!r} (use .h5, .nc or .npz)")
    return atomic_write(p, _w, overwrite=overwrite)


def read_arrays(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Read arrays written by :func:`write_arrays`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    arrays : dict of str to numpy.ndarray
        String arrays come back as numpy unicode (``'<U'``) arrays for every format.
    attrs : dict

    Raises
    ------
    FileNotFoundError, DataFormatError
    """
    p = check_file(path, "array file")
    suf = p.suffix.lower()
    try:
        if suf == ".npz":
            with np.load(p, allow_pickle=False) as z:
                out = {k: z[k] for k in z.files if k != "__attrs__"}
                attrs = json.loads(str(z["__attrs__"])) if "__attrs__" in z.files else {}
            return out, attrs
        if suf in (".h5", ".hdf5"):
            h5py = require("h5py", "nwb", "Reading HDF5 arrays")
            with h5py.File(p, "r") as f:
                out = {}
                for k in f:
                    a = f[k][()]
                    if f[k].dtype.kind == "O":  # variable-length str -> '<U' as in .npz
                        a = np.asarray(f[k].asstr()[()], dtype=str)
                    out[k] = np.asarray(a)
                attrs = json.loads(f.attrs.get("sharedrep_attrs", "{}"))
            return out, attrs
        if suf == ".nc":
            xr = require("xarray", "netcdf", "Reading NetCDF arrays")
            with xr.open_dataset(p) as ds:
                out = {k: ds[k].values for k in ds.data_vars}
                attrs = json.loads(ds.attrs.get("sharedrep_attrs", "{}"))
            return out, attrs
    except ImportError:
        raise
    except Exception as err:
        raise DataFormatError(f"{p}: cannot read arrays ({type(err).__name__}: {err})") from None
    raise DataFormatError(f"{p}: unsupported array format {suf!r}")


# --------------------------------------------------------------------------- folder


class ResultsFolder:
    """An output folder that picks file formats and never clobbers silently.

    Parameters
    ----------
    path : str or os.PathLike
        Folder (created if missing).
    overwrite : bool, default False
        Allow replacing existing files (the CLI's ``--force``).
    table_format : {"auto", "csv", "parquet"}, default "auto"
        ``"auto"``: Parquet if ``pyarrow`` is installed, else CSV.
    array_format : {"auto", "h5", "nc", "npz"}, default "auto"
        ``"auto"``: HDF5 if ``h5py`` is installed, else NPZ.

    Examples
    --------
    >>> out = ResultsFolder("results", overwrite=False)  # doctest: +SKIP
    >>> out.table("cv_scores", df)                          # doctest: +SKIP
    PosixPath('results/cv_scores.parquet')
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        overwrite: bool = False,
        table_format: str = "auto",
        array_format: str = "auto",
    ) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(f"{self.path} exists and is not a folder")
        self.overwrite = bool(overwrite)
        if table_format == "auto":
            table_format = "parquet" if _has("pyarrow") else "csv"
        if array_format == "auto":
            array_format = "h5" if _has("h5py") else "npz"
        if table_format not in ("csv", "tsv", "parquet"):
            raise ValueError(
                f"table_format must be 'csv', 'tsv' or 'parquet', got {table_format!r}"
            )
        if array_format not in ("h5", "nc", "npz"):
            raise ValueError(f"array_format must be 'h5', 'nc' or 'npz', got {array_format!r}")
        self.table_format = table_format
        self.array_format = array_format

    def file(self, name: str) -> Path:
        """Path of ``name`` inside the folder (``name`` must not leave the folder).

        Parameters
        ----------
        name : str

        Returns
        -------
        pathlib.Path
        """
        q = Path(name)
        if q.is_absolute() or ".." in q.parts:
            raise ValueError(f"result name {name!r} must be a relative path inside the folder")
        return self.path / q

    def table(self, name: str, df: pd.DataFrame, *, index: bool = False) -> Path:
        """Write a table as ``<name>.<table_format>``.

        Parameters
        ----------
        name : str
        df : pandas.DataFrame
        index : bool, default False

        Returns
        -------
        pathlib.Path
        """
        return write_table(
            df, self.file(f"{name}.{self.table_format}"), overwrite=self.overwrite, index=index
        )

    def arrays(self, name: str, arrays: Mapping[str, np.ndarray], attrs=None) -> Path:
        """Write arrays as ``<name>.<array_format>``.

        Parameters
        ----------
        name : str
        arrays : mapping of str to array_like
        attrs : mapping, optional

        Returns
        -------
        pathlib.Path
        """
        return write_arrays(
            arrays, self.file(f"{name}.{self.array_format}"), attrs=attrs, overwrite=self.overwrite
        )

    def json(self, name: str, obj) -> Path:
        """Write ``obj`` as ``<name>.json``.

        Parameters
        ----------
        name : str
        obj : object

        Returns
        -------
        pathlib.Path
        """
        return write_json(obj, self.file(f"{name}.json"), overwrite=self.overwrite)
