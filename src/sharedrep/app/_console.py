"""Console, error and output-folder helpers shared by the command line and the demo.

Both :mod:`sharedrep.app.cli` and :mod:`sharedrep.app.demo` import from here, so the
command line depends on the demo one way only. The helpers print through rich consoles,
turn user errors into ``Error: <message>`` and exit code 1, refuse non-empty output
folders without ``--force``, and write a simulated study with a progress bar. This
module may import every layer (it belongs to ``app``); it imports none of the other
``app`` modules.
"""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from sharedrep.utils.files import atomic_write

__all__ = [
    "EXIT_USER_ERROR",
    "UserError",
    "check_out_dir",
    "console",
    "done_mark",
    "err_console",
    "prepare_out_dir",
    "print_truth_checks",
    "study_data_files",
    "study_entries",
    "titled_table",
    "user_errors",
    "write_study_with_progress",
]

EXIT_USER_ERROR = 1


class UserError(Exception):
    """An error caused by the user's input; reported without a traceback."""


def console() -> Console:
    """Rich console on the *current* ``sys.stdout`` (works under test runners)."""
    return Console(highlight=False)


def err_console() -> Console:
    """Rich console on the current ``sys.stderr``."""
    return Console(stderr=True, highlight=False)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn user errors into ``Error: <message>`` on stderr and exit code 1.

    Catches :class:`UserError`, ``ValueError`` (the library's input validation,
    including data-format errors) and ``OSError`` (missing, unreadable or existing
    files). Other exceptions propagate with their traceback.
    """
    try:
        yield
    except (UserError, ValueError, OSError) as exc:
        msg = str(exc) or type(exc).__name__
        if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in msg:
            msg = f"{msg}: {exc.filename}"
        err_console().print(f"[bold red]Error:[/bold red] {msg}", markup=True, soft_wrap=True)
        raise typer.Exit(code=EXIT_USER_ERROR) from None


def prepare_out_dir(out: Path, force: bool) -> Path:
    """Create the output directory, refusing one that already holds files.

    Parameters
    ----------
    out : Path
        Directory to write into (created with its parents when missing).
    force : bool
        Allow writing into a non-empty directory (files of the same name are replaced;
        other files are left alone).

    Returns
    -------
    out : Path

    Raises
    ------
    UserError
        If ``out`` exists and is not a directory, or is not empty and ``force`` is off.
    """
    out = Path(out)
    check_out_dir(out, force)
    out.mkdir(parents=True, exist_ok=True)
    return out


def check_out_dir(out: Path, force: bool) -> None:
    """The checks of :func:`prepare_out_dir`, without creating anything."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(
            f"output directory {out} is not empty; choose another --out or pass --force to "
            "write into it (files of the same name are replaced)"
        )


def done_mark(con: Console) -> str:
    """The "step done" mark: a check mark on UTF-8 consoles, ``done:`` elsewhere."""
    return "✓" if (con.encoding or "").lower().startswith("utf") else "done:"


def titled_table(title: str) -> Table:
    """A rich table with its title on the left, at least as wide as the title."""
    return Table(title=title, title_justify="left", min_width=len(title))


def print_truth_checks(con: Console, checks) -> None:
    """Print the ground-truth checks (``TruthCheck`` list) as a table."""
    table = titled_table("Ground truth of the simulated learning study")
    table.add_column("recovered")
    table.add_column("claim")
    table.add_column("detail")
    for check in checks:
        verdict = "[green]yes[/green]" if check.passed else "[bold red]NO[/bold red]"
        table.add_row(verdict, check.claim, check.detail)
    con.print(table)


# ----------------------------------------------------------------------------- study files


def study_entries(study: Path) -> list[dict]:
    """The ``[[sessions]]`` entries of a study file, merged with ``[defaults]``."""
    try:
        doc = tomllib.loads(study.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{study}: invalid TOML: {exc}") from None
    defaults = doc.get("defaults", {}) if isinstance(doc.get("defaults"), dict) else {}
    sessions = doc.get("sessions", [])
    if not isinstance(sessions, list):
        return []
    return [{**defaults, **entry} for entry in sessions if isinstance(entry, dict)]


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
