"""Console, error and output-folder helpers shared by the command line and the demo.

Both :mod:`sharedrep.app.cli` and :mod:`sharedrep.app.demo` import from here, so the
command line depends on the demo one way only. The helpers print through rich consoles,
turn user errors into ``Error: <message>`` and exit code 1 (library messages reworded in
command-line terms: ``--force``, not ``overwrite=True``), check before any work that an
output folder can be created and written and refuse a non-empty one without ``--force``
(naming what is in the way), print the ground-truth claims and exit with code 3 when one
is not recovered or not testable, and write a simulated study with a progress bar. This
module may import every layer (it belongs to ``app``); it imports none of the other
``app`` modules.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sharedrep.utils.files import atomic_write

__all__ = [
    "EXIT_CLAIMS_FAILED",
    "EXIT_USER_ERROR",
    "UserError",
    "check_claims",
    "check_out_dir",
    "check_writable",
    "cli_message",
    "console",
    "done_mark",
    "err_console",
    "prepare_out_dir",
    "print_truth_checks",
    "study_data_files",
    "study_entries",
    "study_output",
    "titled_table",
    "user_errors",
    "write_study_with_progress",
]

#: Exit code of a user error (bad input, files in the way, invalid data).
EXIT_USER_ERROR = 1
#: Exit code of ``demo`` / ``run --truth`` when a ground-truth claim is not recovered or
#: not testable (everything ran; the answer is wrong or unknown).
EXIT_CLAIMS_FAILED = 3


class UserError(Exception):
    """An error caused by the user's input; reported without a traceback."""


def console() -> Console:
    """Rich console on the *current* ``sys.stdout`` (works under test runners)."""
    return Console(highlight=False)


def err_console() -> Console:
    """Rich console on the current ``sys.stderr``."""
    return Console(stderr=True, highlight=False)


#: Python keyword arguments in library messages -> the command-line option that sets them.
_PYTHON_TO_CLI = ((re.compile(r"overwrite=True(?:\s*\(CLI: --force\))?"), "--force"),)


def cli_message(message: str) -> str:
    """A library error message in command-line terms (``overwrite=True`` -> ``--force``)."""
    for pattern, option in _PYTHON_TO_CLI:
        message = pattern.sub(option, message)
    return message


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn user errors into ``Error: <message>`` on stderr and exit code 1.

    Catches :class:`UserError`, ``ValueError`` (the library's input validation,
    including data-format errors) and ``OSError`` (missing, unreadable or existing
    files). Other exceptions propagate with their traceback. Messages name command-line
    options, not the Python keywords behind them (:func:`cli_message`).
    """
    try:
        yield
    except (UserError, ValueError, OSError) as exc:
        msg = str(exc) or type(exc).__name__
        if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in msg:
            msg = f"{msg}: {exc.filename}"
        msg = cli_message(msg)
        # escaped: "[analysis] stages" in a message is text, not console markup
        err_console().print(
            f"[bold red]Error:[/bold red] {escape(msg)}", markup=True, soft_wrap=True
        )
        raise typer.Exit(code=EXIT_USER_ERROR) from None


def prepare_out_dir(out: Path, force: bool, outputs: Sequence[str] = ()) -> Path:
    """Create the output directory, refusing one that already holds files.

    Parameters
    ----------
    out : Path
        Directory to write into (created with its parents when missing).
    force : bool
        Allow writing into a non-empty directory (files of the same name are replaced;
        other files are left alone).
    outputs : sequence of str, optional
        Names of the files and folders the command writes into ``out`` (named first in
        the refusal).

    Returns
    -------
    out : Path

    Raises
    ------
    UserError
        If ``out`` exists and is not a directory, cannot be created or written, or is not
        empty and ``force`` is off.
    """
    out = Path(out)
    check_out_dir(out, force, outputs)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the output folder {out}: {exc.strerror or exc}") from None
    return out


def check_out_dir(out: Path, force: bool, outputs: Sequence[str] = ()) -> None:
    """The checks of :func:`prepare_out_dir`, leaving nothing behind.

    Run before any data are loaded or anything is computed: the folder must be a
    directory (or creatable), writable (:func:`check_writable`), and empty unless
    ``force``; the refusal lists what is in the way, the command's own outputs first.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    if out.is_dir() and not force:
        present = sorted(p.name + "/" * p.is_dir() for p in out.iterdir())
        if present:
            ours = [p for p in present if p.rstrip("/") in set(outputs)]
            listed = ours + [p for p in present if p not in ours]
            what = f"would replace {_names(ours)}" if ours else f"it holds {_names(listed)}"
            raise UserError(
                f"output directory {out} is not empty ({what}); choose another --out or pass "
                "--force to write into it (files of the same name are replaced)"
            )
    check_writable(out)


def _names(names: Iterable[str], limit: int = 6) -> str:
    names = list(names)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def check_writable(folder: Path) -> None:
    """Refuse a folder that cannot be created or written, leaving nothing behind.

    Creates ``folder`` (and missing parents) if needed, writes and deletes a probe file,
    then removes the folders it created.

    Raises
    ------
    UserError
        Naming the folder and the reason (permission denied, read-only file system...).
    """
    folder = Path(folder)
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".sharedrep-write-test-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(
            f"cannot write to the output folder {folder}: {exc.strerror or exc}"
        ) from None
    finally:
        for p in created:  # deepest first
            with contextlib.suppress(OSError):
                p.rmdir()


def done_mark(con: Console) -> str:
    """The "step done" mark: a check mark on UTF-8 consoles, ``done:`` elsewhere."""
    return "✓" if (con.encoding or "").lower().startswith("utf") else "done:"


def titled_table(title: str) -> Table:
    """A rich table with its title on the left, at least as wide as the title."""
    return Table(title=title, title_justify="left", min_width=len(title))


def _status(check) -> str:
    """The verdict of a ``TruthCheck`` or of its dict in ``summary.json``."""
    if isinstance(check, dict):
        return check.get("status") or ("recovered" if check["passed"] else "not recovered")
    return check.status


def print_truth_checks(con: Console, checks) -> None:
    """Print the ground-truth checks (``TruthCheck`` list) as a table."""
    table = titled_table("Ground truth of the simulated learning study")
    table.add_column("recovered")
    table.add_column("claim")
    table.add_column("detail")
    verdicts = {
        "recovered": "[green]yes[/green]",
        "not recovered": "[bold red]NO[/bold red]",
        "not testable": "[bold red]not testable[/bold red]",
    }
    for check in checks:
        table.add_row(verdicts[_status(check)], check.claim, check.detail)
    con.print(table)


def check_claims(checks, check: bool = True) -> None:
    """Exit with :data:`EXIT_CLAIMS_FAILED` when a claim is not recovered or not testable.

    Parameters
    ----------
    checks : list of TruthCheck (or their ``summary.json`` dicts), or None
        None (no ground truth): nothing to check.
    check : bool, default True
        False (``--no-check``): report only, never fail.

    Raises
    ------
    typer.Exit
        With code :data:`EXIT_CLAIMS_FAILED`, after one line on stderr naming how many
        claims failed and how to opt out.
    """
    if not checks or not check:
        return
    statuses = [_status(c) for c in checks]
    n_not, n_untestable = statuses.count("not recovered"), statuses.count("not testable")
    if n_not + n_untestable == 0:
        return
    parts = [
        f"{n} {what}"
        for n, what in ((n_not, "not recovered"), (n_untestable, "not testable"))
        if n
    ]
    err_console().print(
        f"[bold red]Ground truth:[/bold red] {' and '.join(parts)} of {len(checks)} claims "
        f"(exit code {EXIT_CLAIMS_FAILED}; --no-check reports without failing)",
        markup=True,
        soft_wrap=True,
    )
    raise typer.Exit(code=EXIT_CLAIMS_FAILED)


# ----------------------------------------------------------------------------- study files


def _study_doc(study: Path) -> dict:
    """The parsed TOML of a study file (no session is loaded)."""
    try:
        return tomllib.loads(study.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{study}: invalid TOML: {exc}") from None


def study_entries(study: Path) -> list[dict]:
    """The ``[[sessions]]`` entries of a study file, merged with ``[defaults]``."""
    doc = _study_doc(study)
    defaults = doc.get("defaults", {}) if isinstance(doc.get("defaults"), dict) else {}
    sessions = doc.get("sessions", [])
    if not isinstance(sessions, list):
        return []
    return [{**defaults, **entry} for entry in sessions if isinstance(entry, dict)]


def study_output(study: Path) -> Path | None:
    """The ``[analysis] output`` folder of a study file (relative to the file), or None.

    Read from the TOML alone (no session is loaded), so that ``run`` can check the
    folder before any work; :func:`sharedrep.data.studyfile.load_study` resolves it the
    same way.
    """
    value = study_analysis(study).get("output")
    if not isinstance(value, str) or not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else study.resolve().parent / path


def study_analysis(study: Path) -> dict:
    """The ``[analysis]`` table of a study file as written (empty when absent), read from
    the TOML alone so that options can be checked before any session is loaded."""
    analysis = _study_doc(study).get("analysis")
    return analysis if isinstance(analysis, dict) else {}


def study_data_files(study: Path) -> list[Path]:
    """The study file and every file it names (paths resolved; folders kept whole)."""
    from sharedrep.data.studyfile import _PATH_KEYS

    base = study.resolve().parent
    files = [study.resolve()]
    for merged in study_entries(study):
        for key in _PATH_KEYS:
            value = merged.get(key)
            if isinstance(value, str) and value:
                path = Path(value).expanduser()
                files.append(path if path.is_absolute() else base / path)
    return list(dict.fromkeys(files))


def write_study_with_progress(sim, out: Path, force: bool, con: Console) -> Path:
    """``sim.write(out)`` with a progress bar over the NWB files.

    Parameters
    ----------
    sim : sharedrep.sim.learning_study.SimulatedStudy
    out : Path
        Folder for ``study.toml`` and ``nwb/``.
    force : bool
        Replace existing files of the same names.
    con : rich Console

    Returns
    -------
    toml : Path
        The study file written.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from sharedrep.data.io import write_nwb
    from sharedrep.sim.learning_study import _study_toml

    toml = out / "study.toml"
    paths = [out / "nwb" / f"{s.session_id}.nwb" for s in sim.sessions]
    if not force:
        existing = [p for p in [toml, *paths] if p.exists()]
        if existing:
            raise FileExistsError(f"{existing[0]} already exists; pass --force to replace it")
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=con,
        transient=True,
    ) as bar:
        task = bar.add_task("Writing NWB files", total=len(paths))
        for session, path in zip(sim.sessions, paths, strict=True):
            write_nwb(session, path, overwrite=force, neural_unit="dF/F")
            bar.advance(task)
    text = _study_toml(sim, [p.relative_to(out) for p in paths])
    atomic_write(toml, lambda tmp: tmp.write_text(text, encoding="utf-8"), overwrite=force)
    con.print(
        f"[green]{done_mark(con)}[/green] Wrote {len(paths)} NWB files and study.toml to {out}"
    )
    return toml


@contextmanager
def session_progress(con: Console, description: str):
    """A transient progress bar over the sessions of a study; yields the callback
    ``progress(done, total, label)`` that :func:`sharedrep.data.studyfile.load_study` and
    ``validate_study`` call before each session."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=con,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def progress(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total, description=f"{description} {label}")

        yield progress
