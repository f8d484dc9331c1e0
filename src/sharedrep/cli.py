"""Command-line interface: ``sharedrep <command>`` (also ``python -m sharedrep``).

The Typer application :data:`app` is the single entry point; :func:`main` runs it (the
``sharedrep`` console script). Subcommands live here or are registered from other
modules with ``app.command()(function)`` or ``app.add_typer(sub_app, name=...)``.

Conventions every subcommand follows:

* ``--help`` on every command (help text is Markdown: ``rich_markup_mode="markdown"``,
  so docstring lines wrap into paragraphs); the results go to stdout through :func:`console`,
  messages about failures to stderr through :func:`err_console`.
* User errors (bad input, files that exist or are missing, invalid data) raise
  :class:`UserError` (or a ``ValueError``/``OSError`` from the library) inside
  ``with user_errors():``: the command then prints ``Error: <message>`` on stderr
  without a traceback and exits with :data:`EXIT_USER_ERROR`. Command-line usage errors
  (unknown option, bad value) exit with code 2 (Click's convention). Anything else is a
  bug and shows its traceback.
* Output directories are never written into when they already hold files unless
  ``--force`` is given (:func:`prepare_out_dir`); files are written atomically
  (:func:`atomic_write`).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from . import __version__

__all__ = [
    "EXIT_USER_ERROR",
    "UserError",
    "app",
    "atomic_write",
    "console",
    "err_console",
    "main",
    "prepare_out_dir",
    "user_errors",
]

EXIT_USER_ERROR = 1

app = typer.Typer(
    name="sharedrep",
    help=(
        "ShaReD: Shared Representation Discovery across subjects whose recorded neurons "
        "differ. Run `sharedrep demo` for a self-contained example on simulated data."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


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
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(
            f"output directory {out} is not empty; choose another --out or pass --force to "
            "write into it (files of the same name are replaced)"
        )
    out.mkdir(parents=True, exist_ok=True)
    return out


def atomic_write(path: Path, write: Callable[[Path], Any]) -> Path:
    """Write a file atomically: ``write(tmp)`` then rename ``tmp`` onto ``path``.

    Parameters
    ----------
    path : Path
        Final location.
    write : callable
        Called with a temporary path in the same directory; must create that file.

    Returns
    -------
    path : Path
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def _version_callback(value: bool) -> None:
    if value:
        console().print(f"sharedrep {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Show the version and exit.",
            callback=_version_callback,
            is_eager=True,
        ),
    ] = False,
) -> None:
    """ShaReD: one behavioural representation shared across subjects, a neural encoder
    per subject onto it, and what stays private to each subject."""


# ----------------------------------------------------------------------------- demo

#: Simulation used by ``sharedrep demo`` (besides --subjects and --seed).
DEMO_SIMULATION = dict(
    n_samples=3000,  # per subject; 60 trials of 50 samples
    n_units=(10, 20),  # units per subject, drawn uniformly
    n_behavior=12,
    n_shared=2,
    lag=2,  # neural activity leads behaviour by 2 samples
    trial_length=50,
    # Encoded directions carry as much behavioural variance as the largest unencoded
    # source (the simulator's default 0.2 makes them nearly invisible in raw behaviour R^2).
    shared_variance=1.0,
)
#: Estimator settings of the demo (plus random_state=seed).
DEMO_MODEL = dict(n_shared="auto", alpha=None, lags=3, cv=5)
#: Fraction of the held-out subject's samples (whole trials) used to calibrate it.
DEMO_CALIBRATION = 0.10

FIGURES = ("shared_axes", "cv_scores", "heldout_r2")


@contextlib.contextmanager
def _step(con: Console, description: str, timings: dict) -> Iterator[None]:
    t0 = time.perf_counter()
    with con.status(f"{description}..."):
        yield
    dt = time.perf_counter() - t0
    timings[description] = round(dt, 4)
    mark = "✓" if (con.encoding or "").lower().startswith("utf") else "done:"
    con.print(f"[green]{mark}[/green] {description} [dim]({dt:.2f} s)[/dim]")


def _pooled_r2(Y: np.ndarray, Y_hat: np.ndarray, scale: np.ndarray) -> float:
    """``1 - SSE/SST`` over all features in scaled units, SST about the mean of ``Y``."""
    Yc = (Y - Y.mean(axis=0)) / scale
    return float(1.0 - np.sum(((Y - Y_hat) / scale) ** 2) / np.sum(Yc**2))


def _r2_per_column(Z: np.ndarray, Z_hat: np.ndarray) -> np.ndarray:
    sst = np.sum((Z - Z.mean(axis=0)) ** 2, axis=0)
    return 1.0 - np.sum((Z - Z_hat) ** 2, axis=0) / sst


def _ridge_fit_predict(Xtr, Ytr, Xte_list, alphas):
    """Ridge (intercept, penalty ``a * n_train``) predictions for every alpha.

    Returns a list (one per test matrix) of arrays of shape (n_alphas, T_test, p).
    """
    x_mean, y_mean = Xtr.mean(axis=0), Ytr.mean(axis=0)
    U, sv, Vt = np.linalg.svd(Xtr - x_mean, full_matrices=False)
    UtY = U.T @ (Ytr - y_mean)
    out = []
    for Xte in Xte_list:
        XV = (Xte - x_mean) @ Vt.T
        shrink = sv[None, :] / (sv[None, :] ** 2 + np.asarray(alphas)[:, None] * Xtr.shape[0])
        out.append(np.einsum("tq,aq,qp->atp", XV, shrink, UtY) + y_mean)
    return out


def _ridge_decoder(X_cal, Y_cal, g_cal, X_test, lags, rows_test, alphas):
    """Per-subject baseline decoder: lagged standardised activity -> all behaviour features.

    Ridge regression with the ShaReD penalty convention (``a * n`` on unit-variance
    columns), ``a`` chosen from ``alphas`` by cross-validation over contiguous blocks of
    calibration trials (the same number of folds as the model).
    """
    from .design import lag_embed, valid_rows

    rows_cal = valid_rows(X_cal.shape[0], lags, g_cal)
    Xc = lag_embed(X_cal, lags, rows_cal)
    Yc = Y_cal[rows_cal]
    gc = g_cal[rows_cal]
    mu, sd = Xc.mean(axis=0), Xc.std(axis=0)
    sd[sd == 0] = 1.0
    Xc = (Xc - mu) / sd
    trials = np.unique(gc)
    n_splits = min(5, trials.size)
    sse = np.zeros(len(alphas))
    for held in np.array_split(trials, n_splits):
        te = np.isin(gc, held)
        (pred,) = _ridge_fit_predict(Xc[~te], Yc[~te], [Xc[te]], alphas)
        sse += np.sum((pred - Yc[te]) ** 2, axis=(1, 2))
    best = int(np.argmin(sse))
    Xt = (lag_embed(X_test, lags, rows_test) - mu) / sd
    (pred,) = _ridge_fit_predict(Xc, Yc, [Xt], [alphas[best]])
    return pred[0], float(alphas[best])


def _write_json(path: Path, data: dict) -> None:
    def write(tmp: Path) -> None:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")

    atomic_write(path, write)


def _save_figure(fig, out: Path, name: str) -> list[str]:
    written = []
    for fmt in ("png", "svg"):
        path = out / f"{name}.{fmt}"
        atomic_write(path, lambda tmp, fmt=fmt: fig.savefig(tmp, format=fmt, dpi=120))
        written.append(path.name)
    return written


def run_demo(
    out: Path,
    seed: int = 0,
    n_subjects: int = 8,
    plots: bool = True,
    force: bool = False,
    con: Console | None = None,
) -> dict:
    """Simulate, fit, add a held-out subject, report, and write figures + summary.

    Parameters
    ----------
    out : Path
        Output directory (must be empty or missing unless ``force``).
    seed : int
        Seed of the simulation and of the fold assignment.
    n_subjects : int
        Subjects used to fit; one more is simulated and held out.
    plots : bool
        Write the figures (PNG and SVG).
    force : bool
        Write into a non-empty ``out``.
    con : rich Console, optional

    Returns
    -------
    summary : dict
        Everything written to ``out / "summary.json"``.
    """
    from scipy.linalg import subspace_angles

    from . import ShaReD, simulate

    con = con or console()
    out = prepare_out_dir(out, force)
    timings: dict[str, float] = {}

    with _step(con, f"Simulating {n_subjects} + 1 held-out subjects (seed {seed})", timings):
        d = simulate(n_subjects=n_subjects + 1, seed=seed, **DEMO_SIMULATION)
        train, new = d.subset(range(n_subjects)), d.subset(n_subjects)

    model = ShaReD(random_state=seed, **DEMO_MODEL)
    with _step(con, "Fitting ShaReD with cross-validated alpha and k", timings):
        model.fit(train.neural, train.behavior, groups=train.groups)

    X, Y, g = new.neural[0], new.behavior[0], new.groups[0]
    trials = np.unique(g)
    n_cal_trials = max(model.cv, int(round(DEMO_CALIBRATION * trials.size)))
    cal = np.isin(g, trials[:n_cal_trials])
    test = ~cal
    with _step(
        con, f"Adding the held-out subject from {n_cal_trials} calibration trials", timings
    ):
        s_new = model.add_subject(X[cal], Y[cal], groups=g[cal])
        Y_hat, rows = model.predict(X[test], subject=s_new, groups=g[test], return_rows=True)
        Y_test = Y[test][rows]
        Z_hat = model.transform(X[test], subject=s_new, groups=g[test])
        Z_test = model.transform_behavior(Y_test, subject=s_new)
        r2_shared = _pooled_r2(Y_test, Y_hat, model.behavior_scale_)
        latent_r2 = _r2_per_column(Z_test, Z_hat)

    cvr = model.cv_results_
    with _step(con, "Per-subject ridge decoder on the same calibration trials", timings):
        Y_ridge, ridge_alpha = _ridge_decoder(
            X[cal], Y[cal], g[cal], X[test], model.lags_, rows, cvr["alphas"]
        )
        r2_ridge = _pooled_r2(Y_test, Y_ridge, model.behavior_scale_)

    i_alpha, k = (int(i) for i in cvr["best_index"])
    angles = np.sort(np.degrees(subspace_angles(model.shared_axes_, d.shared_axes)))[::-1]
    summary: dict[str, Any] = {
        "sharedrep_version": __version__,
        "seed": seed,
        "n_subjects": n_subjects,
        "units_per_subject": train.n_units,
        "simulation": {k_: v for k_, v in DEMO_SIMULATION.items()},
        "model": {**DEMO_MODEL, "random_state": seed},
        "alpha": model.alpha_,
        "n_shared": model.n_shared_,
        "true_n_shared": d.n_shared,
        "principal_angles_deg": angles.tolist(),
        "max_angle_deg": float(angles.max()),
        "cv_r2_dim": cvr["r2_dim"][i_alpha, :k].tolist(),
        "cv_r2_subject_dim": cvr["r2_subject_dim"][i_alpha, :, :k].tolist(),
        "new_subject": {
            "units": int(X.shape[1]),
            "calibration_trials": int(n_cal_trials),
            "calibration_samples": int(cal.sum()),
            "test_samples": int(rows.size),
            "alpha": float(model.subject_alphas_[s_new]),
            "shared_r2": r2_shared,
            "ridge_r2": r2_ridge,
            "ridge_alpha": ridge_alpha,
            "latent_r2": latent_r2.tolist(),
        },
        "figures": [],
        "timings_s": timings,
    }

    _print_report(con, model, summary)

    if plots:
        from . import plots as P

        with _step(con, f"Writing figures to {out}", timings):
            figs = {
                "shared_axes": P.plot_axes(
                    model, true_axes=d.shared_axes, feature_names=d.behavior_names
                ),
                "cv_scores": P.plot_cv_scores(model),
                "heldout_r2": P.plot_heldout_r2(
                    model,
                    extra={"new subject (test)": latent_r2},
                ),
            }
            for name in FIGURES:
                summary["figures"] += _save_figure(figs[name], out, name)
    _write_json(out / "summary.json", summary)
    con.print(
        f"Results in [bold]{out}[/bold]: " + ", ".join([*summary["figures"], "summary.json"])
    )
    return summary


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", min_width=len(title))


def _print_report(con: Console, model, summary: dict) -> None:
    k = summary["n_shared"]
    t = _table("Model selection (cross-validation over trials)")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_row("selected alpha", f"{summary['alpha']:.3g}")
    t.add_row("selected k (shared dimensions)", f"{k}  (true: {summary['true_n_shared']})")
    t.add_row(
        "principal angles to true axes (deg)",
        ", ".join(f"{a:.2f}" for a in summary["principal_angles_deg"]),
    )
    t.add_row("max principal angle (deg)", f"{summary['max_angle_deg']:.2f}")
    con.print(t)

    t = _table("Held-out R^2 per shared dimension (CV, pooled over subjects)")
    t.add_column("dimension")
    t.add_column("held-out R^2", justify="right")
    for j, r2 in enumerate(summary["cv_r2_dim"]):
        t.add_row(str(j + 1), f"{r2:.3f}")
    con.print(t)

    ns = summary["new_subject"]
    con.print(
        f"Held-out subject ({ns['units']} units): calibrated on {ns['calibration_samples']} "
        f"samples ({ns['calibration_trials']} trials), scored on {ns['test_samples']} others."
    )
    t = _table("New-subject decoding")
    t.add_column("decoder")
    t.add_column("behaviour R^2", justify="right")
    t.add_row("ShaReD (frozen shared axes, add_subject)", f"{ns['shared_r2']:.3f}")
    t.add_row("per-subject ridge decoder (same calibration)", f"{ns['ridge_r2']:.3f}")
    con.print(t)
    con.print(
        "Held-out subject, R^2 of each shared latent: "
        + ", ".join(f"dim {j + 1}: {r:.3f}" for j, r in enumerate(ns["latent_r2"]))
    )


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Directory for the figures and summary.json.")
    ] = Path("sharedrep-demo"),
    seed: Annotated[int, typer.Option(help="Random seed (simulation and folds).", min=0)] = 0,
    subjects: Annotated[
        int,
        typer.Option(
            "--subjects",
            help="Subjects to fit (one more is simulated and held out).",
            min=2,
            max=100,
        ),
    ] = 8,
    no_plots: Annotated[
        bool, typer.Option("--no-plots", help="Skip the figures (summary.json is written).")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Write into a non-empty --out directory.")
    ] = False,
) -> None:
    """Simulate subjects with different neurons, fit ShaReD, and compare with the truth.

    Simulates SUBJECTS subjects with 10-20 units each plus one held-out subject (12
    behaviour features, 2 shared dimensions, neural activity leading behaviour by 2
    samples, trials of 50 samples); fits ShaReD with alpha and k chosen by 5-fold
    cross-validation over trials and lags 0..3; adds the held-out subject from 10% of
    its trials with the shared axes frozen and compares its decoding with a
    per-subject ridge decoder trained on the same trials. Prints the selection, the
    principal angles between recovered and true axes and the held-out R^2; writes
    figures (PNG, SVG) and summary.json to --out.
    """
    with user_errors():
        run_demo(out, seed=seed, n_subjects=subjects, plots=not no_plots, force=force)


@app.command()
def validate(
    study: Annotated[
        Path, typer.Argument(help="The study description (.toml) to check.", show_default=False)
    ],
    shallow: Annotated[
        bool,
        typer.Option("--shallow", help="Check the file and paths only; do not load sessions."),
    ] = False,
) -> None:
    """Check a study file and every session it lists; report every problem at once.

    Exit code 0 when the study is valid, 1 when problems were found (one line each on
    stderr, naming the session entry and file).
    """
    from .studyfile import validate_study

    with user_errors():
        if not study.is_file():
            raise FileNotFoundError(f"no study file at {study}")
        problems = validate_study(study, deep=not shallow)
    con, err = console(), err_console()
    if not problems:
        con.print(f"[green]OK[/green]: {study} is a valid study description")
        return
    err.print(f"[bold red]{len(problems)} problem(s)[/bold red] in {study}:", markup=True)
    for problem in problems:
        err.print(f"  - {problem}", markup=False, soft_wrap=True)
    raise typer.Exit(code=EXIT_USER_ERROR)


def main(prog_name: str = "sharedrep") -> None:
    """Run the command-line application (the ``sharedrep`` console script)."""
    app(prog_name=prog_name)


if __name__ == "__main__":  # pragma: no cover
    main()
