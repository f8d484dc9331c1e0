"""Read pickled ``.npy`` object arrays without running code from the file.

suite2p stores ``ops.npy`` (a dict in a 0-d object array) and ``stat.npy`` (an array
of dicts) as ``.npy`` files whose payload is a :mod:`pickle` stream. An ordinary
unpickler imports and calls whatever the stream names, so a crafted file can run any
code. :func:`load_object_npy` parses the ``.npy`` header with :mod:`numpy.lib.format`
and unpickles the payload with :class:`SafeUnpickler`, which admits only what NumPy
needs to rebuild arrays, scalars and dtypes, plus plain data types (containers,
numbers, strings, dates); any other global raises :class:`DataFormatError` naming the
file and the refused ``module.name``, before anything is called.

Imports only numpy and the standard library.
"""

from __future__ import annotations

import _compat_pickle
import collections
import datetime
import io
import pickle
from pathlib import Path

import numpy as np
import numpy.lib.format as npformat

from sharedrep.data.io._common import _NPY_MAGIC, DataFormatError, check_file

__all__ = ["SafeUnpickler", "load_object_npy", "ALLOWED_GLOBALS"]


def _numpy_attr(name: str):
    """``name`` from numpy's (private) multiarray / numeric module, whatever its path."""
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            mod = __import__(module, fromlist=[name])
        except ImportError:  # pragma: no cover - depends on the numpy version
            continue
        if hasattr(mod, name):
            return getattr(mod, name)
    raise ImportError(name)  # pragma: no cover


def _frombuffer_attr():
    for module in ("numpy._core.numeric", "numpy.core.numeric"):
        try:
            mod = __import__(module, fromlist=["_frombuffer"])
            return mod._frombuffer
        except (ImportError, AttributeError):  # pragma: no cover
            continue
    return None  # pragma: no cover


def _allowed_globals() -> dict[tuple[str, str], object]:
    """(module, name) -> object for every global a pickled numpy array may name.

    Both spellings of numpy's core module (``numpy.core`` before NumPy 2,
    ``numpy._core`` since) map to the objects of the installed NumPy.
    """
    reconstruct = _numpy_attr("_reconstruct")
    scalar = _numpy_attr("scalar")
    frombuffer = _frombuffer_attr()
    table: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("builtins", "complex"): complex,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "slice"): slice,
        ("builtins", "bytearray"): bytearray,
        ("_codecs", "encode"): __import__("_codecs").encode,  # bytes in protocol 2
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("datetime", "datetime"): datetime.datetime,  # e.g. suite2p's ops["date_proc"]
        ("datetime", "date"): datetime.date,
        ("datetime", "time"): datetime.time,
        ("datetime", "timedelta"): datetime.timedelta,
    }
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        table[(f"{core}.multiarray", "scalar")] = scalar
        if frombuffer is not None:
            table[(f"{core}.numeric", "_frombuffer")] = frombuffer
    return table


#: The globals a pickle stream read by :class:`SafeUnpickler` may name.
ALLOWED_GLOBALS = _allowed_globals()


class _Refused(Exception):
    """A global outside :data:`ALLOWED_GLOBALS` (carries ``module.name``)."""


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals of :data:`ALLOWED_GLOBALS`.

    Any other ``module.name`` (a function, a class with a ``__reduce__``, ``os.system``,
    ``builtins.eval``, ...) raises instead of being imported, so nothing from the file
    is ever called except NumPy's array, scalar and dtype constructors and plain data
    types. Persistent ids are refused as by :class:`pickle.Unpickler`.
    """

    def find_class(self, module: str, name: str):
        # Python 2 names, as written by pickle protocols < 3 (``__builtin__.set``)
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None


def _read_header(fh, p: Path) -> tuple[tuple, bool, np.dtype]:
    """The ``(shape, fortran_order, dtype)`` of the ``.npy`` stream ``fh``."""
    version = npformat.read_magic(fh)
    if version == (1, 0):
        return npformat.read_array_header_1_0(fh)
    if version == (2, 0):
        return npformat.read_array_header_2_0(fh)
    reader = getattr(npformat, "_read_array_header", None)  # 3.0: UTF-8 field names
    if version == (3, 0) and reader is not None:
        return reader(fh, version)
    raise DataFormatError(f"{p}: unsupported .npy format version {version}")


def load_object_npy(path, what: str = "array"):
    """Load a ``.npy`` file whose array may hold Python objects, running no code.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npy`` file (e.g. suite2p's ``ops.npy`` or ``stat.npy``).
    what : str
        Description for messages (e.g. ``"suite2p ops"``).

    Returns
    -------
    numpy.ndarray
        The array, exactly as :func:`numpy.load` with pickles allowed returns it for
        a legitimate file (an object array, or a plain array read without pickle).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    DataFormatError
        Not a ``.npy`` file, a truncated or corrupt one, or a pickle stream naming a
        global outside :data:`ALLOWED_GLOBALS` (the message names the file and the
        refused ``module.name``; nothing of the file has run).
    """
    p = check_file(path, f"{what} file")
    with open(p, "rb") as fh:
        if fh.read(6) != _NPY_MAGIC:
            raise DataFormatError(f"{p}: not a NumPy .npy file (bad magic bytes)")
        fh.seek(0)
        try:
            shape, _, dtype = _read_header(fh, p)
        except DataFormatError:
            raise
        except Exception as err:  # a damaged header: ValueError, SyntaxError, EOFError...
            raise DataFormatError(
                f"{p}: cannot read the {what} header ({type(err).__name__}: {err})"
            ) from None
        if not dtype.hasobject:
            return _load_plain(p, what)
        data = fh.read()
    return _unpickle(data, p, what, shape)


def _load_plain(p: Path, what: str) -> np.ndarray:
    try:
        return np.load(p, allow_pickle=False)
    except Exception as err:  # truncated / corrupt
        raise DataFormatError(f"{p}: cannot read {what} ({type(err).__name__}: {err})") from None


def _unpickle(data: bytes, p: Path, what: str, shape: tuple) -> np.ndarray:
    """Unpickle the payload ``data`` of the object array ``p`` with :class:`SafeUnpickler`."""
    try:
        array = SafeUnpickler(io.BytesIO(data), encoding="ASCII").load()
    except _Refused as err:
        raise DataFormatError(
            f"{p}: refused to load {what}: its pickle names {err}, which is not a NumPy "
            "array, scalar, dtype or plain data type (a file that could run code)"
        ) from None
    except Exception as err:  # truncated / corrupt stream, or a constructor refusing args
        raise DataFormatError(
            f"{p}: cannot read {what} (corrupt pickle: {type(err).__name__}: {err})"
        ) from None
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        got = getattr(array, "shape", type(array).__name__)
        raise DataFormatError(
            f"{p}: {what} holds {got}, not the array of shape {tuple(shape)} of its header"
        )
    return array
