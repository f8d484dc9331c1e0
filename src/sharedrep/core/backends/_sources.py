"""Sessions given as file paths or lazy arrays, and the per-subject statistics task.

A *source* stands for one subject's neural activity, behaviour or trial ids without
holding the values: its shape and dtype are known on the driver (read from file
metadata), the values are read only where the statistics are computed (a dask worker,
or this process one subject at a time). Accepted:

* ``str`` / :class:`os.PathLike`: a ``.npy`` file (memory-mapped), a ``.npz`` member
  (``"file.npz::name"`` or :class:`FileArray` with ``key``), a zarr array (``.zarr``
  directory; ``key`` for an array inside a group), an HDF5/NWB dataset (``.h5``,
  ``.hdf5``, ``.nwb``; ``key`` = dataset path, e.g.
  ``"processing/ophys/Fluorescence/RoiResponseSeries/data"``);
* :class:`FileArray` (a path with ``key`` and/or a custom ``loader``);
* a torch tensor (:class:`TensorArray`): used in place by ``backend="torch"`` (e.g.
  activity already on the GPU), read to host memory by the other backends;
* a dask array (computed inside the task with the synchronous scheduler), a zarr array,
  an h5py dataset (re-opened from its file by path on the worker) or any object with
  ``shape``, ``dtype`` and numpy-style slicing.

Values are validated when they are read (numeric, finite unless ``nan_policy="omit"``;
trial ids present for every sample) with the same messages as in-memory arrays.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from sharedrep.core import data_pass, solver
from sharedrep.utils.validation import (
    check_array,
    check_pair_shapes,
    check_pandas_alignment,
    check_same_features,
    check_trial_ids,
    nonfinite_error,
)

__all__ = [
    "FileArray",
    "LazyArray",
    "TensorArray",
    "is_source",
    "has_sources",
    "defers_conversion",
    "check_sources",
    "load",
]

_HDF5_SUFFIXES = {".h5", ".hdf5", ".nwb", ".hdf"}


class _Source:
    """Base class: ``shape``, ``dtype``, ``ndim`` on the driver; ``load()`` on a worker."""

    shape: tuple
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def load(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class FileArray(_Source):
    """An array stored in a file, read only where it is used.

    Parameters
    ----------
    path : str or PathLike
        ``.npy``, ``.npz``, zarr store (``.zarr`` or a directory), HDF5/NWB file.
        ``"file.npz::name"`` is short for ``FileArray("file.npz", key="name")``.
    key : str, optional
        Member of an ``.npz``, array path inside a zarr group or HDF5/NWB file.
    loader : callable, optional
        ``loader(path)`` or ``loader(path, key)`` returning an array or a lazy array
        (anything with ``shape``, ``dtype`` and slicing, or a dask array). It is called on
        the driver to read the shape (so it should not read the values) and again on the
        worker to read them; with a process-based cluster it must be importable there
        (a module-level function).
    """

    def __init__(self, path, key: str | None = None, loader=None):
        path = os.fspath(path)
        if key is None and loader is None and "::" in path:
            path, key = path.split("::", 1)
        self.path = path
        self.key = key
        self.loader = loader
        self._meta = None

    def __repr__(self) -> str:
        key = f", key={self.key!r}" if self.key is not None else ""
        return f"FileArray({self.path!r}{key})"

    def __getstate__(self):
        return {"path": self.path, "key": self.key, "loader": self.loader, "_meta": self._meta}

    # -------------------------------------------------------------- metadata
    def _read_meta(self):
        path = Path(self.path)
        if self.loader is None and not path.exists():
            raise FileNotFoundError(f"no such file: {self.path}")
        if self.loader is not None:
            arr = self._call_loader()
            return tuple(arr.shape), np.dtype(arr.dtype)
        suffix = path.suffix.lower()
        try:
            if suffix == ".npy":
                arr = np.load(path, mmap_mode="r", allow_pickle=False)
                return arr.shape, arr.dtype
            if suffix == ".npz":
                return _npz_member_meta(path, self.key)
            if suffix in _HDF5_SUFFIXES:
                import h5py

                with h5py.File(path, "r") as fh:
                    ds = fh[self._require_key()]
                    return tuple(ds.shape), np.dtype(ds.dtype)
            if suffix == ".zarr" or path.is_dir():
                arr = self._open_zarr()
                return tuple(arr.shape), np.dtype(arr.dtype)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{self!r} could not be read: {exc}") from exc
        raise ValueError(
            f"{self!r}: unknown file type {suffix!r}; use .npy, .npz, .zarr, .h5/.hdf5/.nwb "
            "or give FileArray(path, loader=...)"
        )

    @property
    def shape(self) -> tuple:
        if self._meta is None:
            self._meta = self._read_meta()
        return self._meta[0]

    @property
    def dtype(self) -> np.dtype:
        if self._meta is None:
            self._meta = self._read_meta()
        return self._meta[1]

    # -------------------------------------------------------------- values
    def _require_key(self) -> str:
        if self.key is None:
            raise ValueError(f"{self!r}: give key= (the dataset path inside the file)")
        return self.key

    def _call_loader(self):
        return self.loader(self.path) if self.key is None else self.loader(self.path, self.key)

    def _open_zarr(self):
        import zarr

        if self.key is None:
            return zarr.open_array(self.path, mode="r")
        return zarr.open_array(self.path, mode="r", path=self.key)

    def load(self) -> np.ndarray:
        """Read the values (on the worker)."""
        path = Path(self.path)
        if self.loader is not None:
            return _materialize(self._call_loader())
        suffix = path.suffix.lower()
        if suffix == ".npy":
            return np.load(path, mmap_mode="r", allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return z[_npz_key(z.files, self.key, path)]
        if suffix in _HDF5_SUFFIXES:
            import h5py

            with h5py.File(path, "r") as fh:
                return fh[self._require_key()][...]
        return np.asarray(self._open_zarr()[...])


def _npz_key(files, key, path):
    if key is None:
        if len(files) != 1:
            raise ValueError(
                f"{path} holds {len(files)} arrays {sorted(files)}; give 'file.npz::name'"
            )
        return files[0]
    if key not in files:
        raise ValueError(f"{path} has no array {key!r} (it holds {sorted(files)})")
    return key


def _npz_member_meta(path, key):
    """Shape and dtype of an ``.npz`` member from its header (values are not read)."""
    with zipfile.ZipFile(path) as zf:
        names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
        key = _npz_key(names, key, path)
        with zf.open(key + ".npy") as fh:
            version = np.lib.format.read_magic(fh)
            read = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read(fh)
    return tuple(shape), np.dtype(dtype)


class LazyArray(_Source):
    """Wrapper of a lazy array (dask, zarr, or anything with shape, dtype and slicing)."""

    def __init__(self, array):
        self.array = array
        self.shape = tuple(int(n) for n in array.shape)
        self.dtype = np.dtype(array.dtype)

    def __repr__(self) -> str:
        return f"LazyArray({type(self.array).__module__}.{type(self.array).__name__}{self.shape})"

    def load(self) -> np.ndarray:
        return _materialize(self.array)


class TensorArray(_Source):
    """A torch tensor (for instance already on a GPU).

    ``backend="torch"`` uses it where it is (nothing crosses the bus when it is on the
    backend's device); the other backends read it to host memory one subject at a time.
    """

    def __init__(self, tensor):
        self.tensor = tensor
        self.shape = tuple(int(n) for n in tensor.shape)
        name = str(tensor.dtype).removeprefix("torch.")
        try:
            self.dtype = np.dtype(name)
        except TypeError:
            self.dtype = np.dtype(object)  # e.g. bfloat16: rejected by the checks
        self.device = str(tensor.device)

    def __repr__(self) -> str:
        return f"TensorArray(torch.{self.dtype}{self.shape} on {self.device})"

    def load(self) -> np.ndarray:
        return self.tensor.detach().cpu().numpy()


def _is_tensor(x) -> bool:
    return type(x).__module__.startswith("torch") and all(
        hasattr(x, a) for a in ("detach", "device", "shape")
    )


def _materialize(a) -> np.ndarray:
    if hasattr(a, "compute") and hasattr(a, "dask"):  # a dask collection
        return np.asarray(a.compute(scheduler="synchronous"))
    if isinstance(a, np.ndarray):
        return a
    return np.asarray(a[...])


def _is_lazy_array(x) -> bool:
    if isinstance(x, np.ndarray) or not all(hasattr(x, a) for a in ("shape", "dtype")):
        return False
    if not (hasattr(x, "__getitem__") or hasattr(x, "compute")):
        return False
    try:
        np.dtype(x.dtype)
    except TypeError:  # e.g. a torch tensor: not a lazy array
        return False
    return True


def is_source(x) -> bool:
    """Whether ``x`` is a file path, a :class:`FileArray` or a lazy array."""
    return isinstance(x, str | os.PathLike | _Source) or _is_tensor(x) or _is_lazy_array(x)


def _deferred(a) -> bool:
    """Whether ``a`` is an in-memory array converted to float64 only in its subject's task.

    A plain ndarray of another real dtype (float32 from suite2p, integer spike counts):
    converting every subject up front would hold a float64 copy of all of them at once
    (twice the data for float32, eight times for uint8). Its shape and dtype are checked
    on the driver, its values (finite, converted) where the statistics are computed, one
    subject at a time: the same float64 values, so the same fit.
    """
    return type(a) is np.ndarray and a.dtype != np.float64 and a.dtype.kind in "biuf"


def defers_conversion(neural, behavior) -> bool:
    """Whether an entry of the per-subject ``neural`` or ``behavior`` lists is an in-memory
    array of another dtype than float64 (see :func:`check_sources`)."""
    return any(
        isinstance(data, list | tuple) and any(_deferred(x) for x in data)
        for data in (neural, behavior)
    )


def has_sources(*lists) -> bool:
    """Whether an entry of the per-subject lists is a source (path or lazy array).

    Only lists and tuples are looked into: anything else (a bare string, one array) is
    left to the in-memory validation and its messages.
    """
    for data in lists:
        if isinstance(data, list | tuple) and any(is_source(x) for x in data if x is not None):
            return True
    return False


def as_source(x):
    """A picklable :class:`FileArray` / :class:`LazyArray` for a source, else ``x``."""
    if isinstance(x, _Source):
        return x
    if isinstance(x, str | os.PathLike):
        return FileArray(x)
    if _is_tensor(x):
        return TensorArray(x)
    if not _is_lazy_array(x):
        return x
    mod = type(x).__module__
    if mod.startswith("h5py"):  # h5py datasets do not pickle: re-open by file and path
        return FileArray(x.file.filename, key=x.name)
    return LazyArray(x)


def _read_meta(src, name: str, subject) -> None:
    """Read a source's shape and dtype, errors naming the subject and the array."""
    try:
        _ = (src.shape, src.dtype)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"subject {subject}: {name}: {exc}") from None
    except ValueError as exc:
        raise ValueError(f"subject {subject}: {name}: {exc}") from None


def _check_meta(src, name: str, subject, ndim: int):
    _read_meta(src, name, subject)
    where = f"subject {subject}: {name}"
    if src.ndim != ndim:
        expected = {1: "(T,)", 2: "(T, n_units)" if name == "neural" else "(T, n_features)"}
        raise ValueError(
            f"{where} must be {ndim}-D with shape {expected[ndim]}; got shape {src.shape} "
            f"({src!r})"
        )
    dt = src.dtype
    if (
        name != "groups"
        and not (np.issubdtype(dt, np.number) or np.issubdtype(dt, np.bool_))
        or np.issubdtype(dt, np.complexfloating)
    ):
        raise TypeError(f"{where} must be real and numeric; got dtype {dt} ({src!r})")


def check_sources(neural, behavior, groups=None, *, nan_policy: str = "raise"):
    """Validate per-subject lists that contain file paths or lazy arrays.

    Shapes and dtypes are checked on the driver from metadata; values (NaN/inf) are
    checked when each subject is read. In-memory ndarrays of another real dtype than
    float64 (float32, integers) are checked the same way and converted to float64 when
    their subject is read (:func:`load`), so the float64 copies of all subjects are never
    held at once; other in-memory entries are validated (and converted) here. pandas
    inputs are checked for rows and columns that positional reading would misalign
    (:func:`sharedrep.utils.validation.check_pandas_alignment`).

    Returns
    -------
    neural, behavior : lists (S) of ndarray (T_s, N_s) and (T_s, p), or sources
        Per subject: a validated float64 ndarray; a source (``shape``, ``dtype``,
        ``load()``); or an ndarray of another real dtype, as given (converted and checked
        by :func:`load`).
    groups : list of ndarray, source or None
    """
    if nan_policy not in ("raise", "omit"):
        raise ValueError(f"nan_policy must be 'raise' or 'omit'; got {nan_policy!r}")
    allow = nan_policy == "omit"

    def as_list(data, name):
        if isinstance(data, list | tuple):
            if len(data) == 0:
                raise ValueError(f"{name} is an empty list: give one array per subject")
            return list(data)
        return [data]

    nl, bl = as_list(neural, "neural"), as_list(behavior, "behavior")
    if len(nl) != len(bl):
        raise ValueError(
            f"neural has {len(nl)} subjects but behavior has {len(bl)}: give one array of "
            "each per subject"
        )
    check_pandas_alignment(nl, bl, list(range(len(nl))))
    Xs, Ys = [], []
    for s, (x, y) in enumerate(zip(nl, bl, strict=True)):
        X, Y = (_check_entry(a, name, s, allow) for a, name in ((x, "neural"), (y, "behavior")))
        check_pair_shapes(X.shape, Y.shape, s)
        if s > 0:
            check_same_features(Y.shape[1], Ys[0].shape[1], s, 0)
        Xs.append(X)
        Ys.append(Y)
    return Xs, Ys, _check_source_groups(groups, Xs)


def _check_entry(a, name: str, s: int, allow: bool):
    """One subject's ``neural`` or ``behavior`` entry as :func:`check_sources` keeps it: a
    source (shape and dtype checked from metadata), a deferred ndarray (its shape
    checked; values when read), or a validated float64 ndarray."""
    if is_source(a):
        a = as_source(a)
        _check_meta(a, name, s, 2)
    elif _deferred(a):
        if a.ndim != 2:  # refused by check_array's message (values: when read)
            check_array(a, name, s)
    else:
        a = check_array(a, name, s, allow_nonfinite=allow)
    return a


def _check_source_groups(groups, Xs: list) -> list:
    """:func:`check_sources`'s trial ids: None, or one 1-D entry (or None) per subject of
    length ``T_s`` (``Xs[s].shape[0]``): a source (read later) or checked trial ids."""
    if groups is None:
        return [None] * len(Xs)
    gl = list(groups) if isinstance(groups, list | tuple) else [groups]
    if len(gl) != len(Xs):
        raise ValueError(
            f"groups has {len(gl)} entries but there are {len(Xs)} subjects: give "
            "one trial-id array (or None) per subject"
        )
    gs = []
    for s, (g, X) in enumerate(zip(gl, Xs, strict=True)):
        if g is not None:
            g = as_source(g) if is_source(g) else np.asarray(g)
            if g.ndim != 1 or g.shape[0] != X.shape[0]:
                raise ValueError(
                    f"subject {s}: groups must have shape ({X.shape[0]},) to match "
                    f"neural; got {tuple(g.shape)}"
                )
            if not isinstance(g, _Source):  # objects (e.g. from pandas); no NaN ids
                g = check_trial_ids(g, s)
        gs.append(g)
    return gs


def load(a, name: str, subject, *, nan_policy: str = "raise", expected_shape=None, keep=None):
    """Read and validate one source, or convert an in-memory array whose conversion was
    deferred (:func:`check_sources`); identity for validated in-memory arrays.

    ``keep`` (a dtype, e.g. float32 for a float32 data pass): an in-memory array of that
    dtype is checked (finite unless ``nan_policy="omit"``) but not converted to float64;
    the pass reads it as it is (the same values as the float64 copy, half the memory)."""
    if not isinstance(a, _Source):
        if name != "groups" and _deferred(a):
            if keep is not None and a.dtype == keep:
                if nan_policy != "omit" and not np.all(np.isfinite(a)):
                    raise nonfinite_error(f"subject {subject}: {name}", _first_nonfinite(a))
                return a
            return check_array(a, name, subject, allow_nonfinite=nan_policy == "omit")
        return a
    try:
        values = a.load()
    except (OSError, KeyError) as exc:
        raise ValueError(f"subject {subject}: {name} {a!r} could not be read: {exc}") from exc
    if name == "groups":
        values = np.asarray(values)
    else:
        values = check_array(values, name, subject, allow_nonfinite=nan_policy == "omit")
    if expected_shape is not None and tuple(values.shape) != tuple(expected_shape):
        raise ValueError(
            f"subject {subject}: {name} {a!r} has shape {values.shape} when read but "
            f"{tuple(expected_shape)} in its metadata"
        )
    if name == "groups":
        values = check_trial_ids(values, subject)
    return values


def _first_nonfinite(a: np.ndarray) -> np.ndarray:
    return np.argwhere(~np.isfinite(a))[0]


def read_source(a, name: str, subject, *, nan_policy: str = "raise"):
    """The values of a path, lazy array or tensor as an ndarray; anything else unchanged."""
    if a is None or not is_source(a):
        return a
    src = as_source(a)
    _read_meta(src, name, subject)  # unknown, missing or ambiguous files named as in fit
    return load(src, name, subject, nan_policy=nan_policy)


def subject_task(X, Y, g, subject, **opts) -> solver.SubjectData:
    """Read one subject where it lives and reduce it to its CV chunk statistics.

    ``opts`` are the data-pass options of
    :func:`sharedrep.core.data_pass.subject_statistics` (``lags``, ``n_folds``, ``gap``,
    ``folds_by_trial``, ``random_state``, ``nan_policy``, ``dtype``, ``form``),
    as :meth:`Backend.statistics` collects them.
    """
    nan_policy = opts["nan_policy"]
    # a float32 pass reads float32 activity as it is (it centres in float64 and rounds
    # once, as it does for float64 activity): no float64 copy of the subject
    keep = np.dtype(np.float32) if np.dtype(opts["dtype"]) == np.float32 else None
    X = load(X, "neural", subject, nan_policy=nan_policy, expected_shape=X.shape, keep=keep)
    Y = load(Y, "behavior", subject, nan_policy=nan_policy, expected_shape=Y.shape)
    if g is not None:
        g = load(g, "groups", subject, expected_shape=g.shape)
    return data_pass.subject_statistics(X, Y, g, subject=subject, **opts)
