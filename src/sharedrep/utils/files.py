"""Writing files atomically: a temporary file in the destination folder, then a rename.

The one writer of the package (results, reports, study files, saved models): a crash
never leaves a half-written file, and an existing file is never replaced unless the caller
says ``overwrite=True`` (the CLI's ``--force``). Files get the usual ``0666 & ~umask``
permissions, not the private mode of a temporary file.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "current_umask"]

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's file-creation mask, read without a window where it is changed.

    Linux reports it in ``/proc/self/status``; elsewhere it is read with
    ``os.umask(0)`` and restored at once, under a lock so that two writers of this
    module never see each other's temporary zero mask.

    Returns
    -------
    int
        The umask (e.g. ``0o022``).
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0)
        os.umask(mask)
    return mask


def _exists_error(p: Path) -> FileExistsError:
    return FileExistsError(f"{p} already exists; pass overwrite=True (CLI: --force) to replace it")


def atomic_write(
    path: str | os.PathLike, write: Callable[[Path], None], *, overwrite: bool = False
) -> Path:
    """Write a file atomically: temporary file in the same folder, then rename.

    Parameters
    ----------
    path : str or os.PathLike
        Destination; missing parent folders are created.
    write : callable
        ``write(tmp_path)`` writes the complete file at ``tmp_path`` (a path in the
        destination folder with the destination's suffix).
    overwrite : bool, default False
        Replace an existing file. Without it the final move refuses to replace a file
        even if one appears while writing (hard-link no-clobber where supported).

    Returns
    -------
    pathlib.Path
        The destination path.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise _exists_error(p)
    if p.is_dir():
        raise IsADirectoryError(f"{p} is a directory")
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=f".tmp{p.suffix}", dir=p.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        # mkstemp creates 0600; give the file the mode open() would (0666 & ~umask)
        os.chmod(tmp, 0o666 & ~current_umask())
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if overwrite:
            os.replace(tmp, p)
        else:
            try:
                os.link(tmp, p)
            except FileExistsError:
                raise _exists_error(p) from None
            except OSError:  # no hard links on this file system
                if p.exists():
                    raise _exists_error(p) from None
                os.replace(tmp, p)
            else:
                tmp.unlink()
    finally:
        if tmp.exists():
            tmp.unlink()
    return p
