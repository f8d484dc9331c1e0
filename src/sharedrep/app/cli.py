"""Command-line interface: ``sharedrep <command>`` (also ``python -m sharedrep``).

The Typer application :data:`app` is the single entry point; :func:`main` runs it (the
``sharedrep`` console script). Subcommands live here or are registered from other
modules with ``app.command()(function)`` or ``app.add_typer(sub_app, name=...)``.

Commands: ``demo`` (simulated data with a known answer, end to end, with a report),
``simulate`` (write a simulated learning study: NWB files + study.toml), ``validate``
(check a study file), ``run`` (every analysis of a study -> report), ``fit`` (one
population x stage), ``evaluate`` (does pooling animals help on a population x stage?
registered from :mod:`sharedrep.app.evaluate_cli`), ``report`` (rebuild report.html from a
results folder).

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
* Output directories are checked before any data are loaded or anything is computed:
  they must be creatable and writable, and are never written into when they already
  hold files unless ``--force`` is given (:func:`prepare_out_dir`, naming what is in the
  way); files are written atomically (:func:`sharedrep.utils.files.atomic_write`).
  Messages name options (``--force``), never the Python keywords behind them.
* ``demo`` and ``run --truth`` exit with :data:`EXIT_CLAIMS_FAILED` (3) when a
  ground-truth claim is not recovered or not testable, after writing everything;
  ``--no-check`` reports without failing.

Part of the ``app`` layer: may import every other layer. The shared console and error
helpers come from :mod:`sharedrep.app._console`; this module imports
:mod:`~sharedrep.app.demo` and :mod:`~sharedrep.app.report`, never the other way round.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console

from sharedrep._version import __version__
from sharedrep.app._console import (
    EXIT_CLAIMS_FAILED,
    EXIT_USER_ERROR,
    UserError,
    check_claims,
    check_out_dir,
    check_writable,
    console,
    done_mark,
    err_console,
    prepare_out_dir,
    print_truth_checks,
    session_progress,
    study_analysis,
    study_data_files,
    study_entries,
    study_output,
    titled_table,
    user_errors,
    write_study_with_progress,
)

__all__ = [
    "EXIT_CLAIMS_FAILED",
    "EXIT_USER_ERROR",
    "UserError",
    "app",
    "console",
    "err_console",
    "main",
    "prepare_out_dir",
    "user_errors",
]

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


_FORCE = Annotated[
    bool,
    typer.Option(
        "--force", help="Write into a non-empty --out (replaces files of the same name)."
    ),
]

_NO_CHECK = Annotated[
    bool,
    typer.Option(
        "--no-check",
        help=f"Report the ground-truth claims without failing: exit 0 even when a claim is "
        f"not recovered or not testable (otherwise the exit code is {EXIT_CLAIMS_FAILED}).",
    ),
]


@app.command()
def demo(
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Directory for the report, data and summary.json."),
    ] = Path("sharedrep-demo"),
    seed: Annotated[int, typer.Option(help="Random seed (simulation and folds).", min=0)] = 0,
    subjects: Annotated[
        int,
        typer.Option(
            "--subjects",
            help="Subjects of the recovery step (one more is simulated and held out).",
            min=2,
            max=100,
        ),
    ] = 8,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="A smaller learning study (6 mice, days 1 and 14, 40 trials per session).",
        ),
    ] = False,
    mice: Annotated[
        int | None,
        typer.Option(
            "--mice", help="Mice of the learning study (default 6, also with --quick).", min=2
        ),
    ] = None,
    no_study: Annotated[
        bool,
        typer.Option("--no-study", help="Only the recovery step (no learning study)."),
    ] = False,
    no_plots: Annotated[
        bool,
        typer.Option("--no-plots", help="Skip the report and figures (summary.json is written)."),
    ] = False,
    force: _FORCE = False,
    no_check: _NO_CHECK = False,
) -> None:
    """Simulate data with a known answer, run ShaReD and the study pipeline, check the truth.

    **1. Recovery.** Simulates SUBJECTS subjects with 10-20 units each plus one held-out
    subject (12 behaviour features, 2 shared dimensions, neural activity leading
    behaviour by 2 samples); fits ShaReD with alpha and k chosen by 5-fold
    cross-validation over trials; prints the principal angles between recovered and true
    axes and the held-out R^2; adds the held-out subject from 10% of its trials with the
    axes frozen and compares it with a per-subject ridge decoder.

    **2. Learning study.** Simulates the lever-push study (mice x days 1, 2, 13, 14 x
    thalamus / other input / M1), writes it as NWB files + study.toml to OUT/data, loads
    it back, runs every analysis (`sharedrep run`) and checks the ground truth: thalamus
    encodes best in experts, its peak lag shifts earlier, thalamus-driven units overlap
    movement-encoding units more in experts, silencing impairs movement.

    Writes report.html (self-contained), figures (PNG, SVG), tables (CSV), results.json
    and summary.json to OUT (checked first: writable, and empty unless `--force`).

    **Exit code** 0 when every ground-truth claim is recovered; 3 when one is not
    recovered or not testable (a statistic that is not a number, too few animals), so
    that a run in CI fails on a wrong answer; `--no-check` reports without failing.
    """
    from sharedrep.app.demo import run_demo

    with user_errors():
        summary = run_demo(
            out,
            seed=seed,
            n_subjects=subjects,
            plots=not no_plots,
            force=force,
            study=not no_study,
            quick=quick,
            n_mice=mice,
        )
    check_claims(summary.get("study", {}).get("truth_checks"), check=not no_check)


# ----------------------------------------------------------------------------- study


def _load(study: Path, con: Console, **select):
    """Load the study's sessions (only those of ``select``: population / stage) with a
    progress bar."""
    from sharedrep.data.studyfile import load_study

    if not study.is_file():
        raise FileNotFoundError(f"no study file at {study}")
    t0 = time.perf_counter()
    with session_progress(con, f"Loading the sessions of {study}") as progress:
        collection = load_study(study, progress=progress, **select)
    con.print(
        f"[green]{done_mark(con)}[/green] Loaded {len(collection)} sessions of "
        f"{len(collection.subjects)} subjects [dim]({time.perf_counter() - t0:.2f} s)[/dim]"
    )
    return collection


def _print_results(con: Console, results: dict) -> None:
    """One row per analysis: the question it answers and its one-sentence answer (the
    report's section title and opening sentence), so the terminal says what was found."""
    from sharedrep.app.report import answer, section_title

    t = titled_table("Analyses")
    t.add_column("question")
    t.add_column("answer")
    t.add_column("rows", justify="right")
    for name, r in results.items():
        t.add_row(section_title(name), answer(name, r.summary, r.description), str(len(r.table)))
    con.print(t)


@app.command()
def run(
    study: Annotated[
        Path, typer.Argument(help="The study description (.toml).", show_default=False)
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Results directory (default: [analysis] output of the study file).",
        ),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(
            "--truth",
            help="Ground truth of a simulated study (truth.json of `sharedrep simulate`): "
            "the report says whether the analyses recovered it.",
        ),
    ] = None,
    n_jobs: Annotated[
        int | None,
        typer.Option(
            "--n-jobs",
            help="Parallel jobs of the permutation and bootstrap refits (-1: all cores). "
            "Default: [analysis] n_jobs of the study file, else all cores.",
        ),
    ] = None,
    force: _FORCE = False,
    no_check: _NO_CHECK = False,
) -> None:
    """Run every analysis of a study and write the report.

    Loads the sessions listed in STUDY (as `sharedrep validate` checks them), runs the
    learning-study analyses with the file's `[analysis]` settings and writes to OUT:
    report.html (self-contained: figures, tables, settings, software versions, data
    files with SHA-256 checksums), figures/ (PNG, SVG), tables/ (CSV) and results.json
    (enough to rebuild the report with `sharedrep report OUT`). OUT is checked before
    anything is loaded: it must be writable, and empty unless `--force`.

    With `--truth` the **exit code** is 3 when a ground-truth claim is not recovered or
    not testable (the report is written first); `--no-check` reports without failing.
    """
    from sharedrep.app.report import write_report
    from sharedrep.study.pipeline import resolve_settings, run_study

    con = console()
    with user_errors():
        out = _run_out_dir(study, out, force)  # before the (slow) loading
        truth_doc = _read_truth(truth) if truth is not None else None
        if n_jobs == 0:
            raise UserError("--n-jobs must be a non-zero int (-1 = all cores)")
        collection = _load(study, con)
        if n_jobs is None:
            n_jobs = (collection.analysis or {}).get("n_jobs", -1)
        settings = resolve_settings(collection, {"n_jobs": n_jobs})
        out = prepare_out_dir(out, force, RUN_OUTPUTS)
        con.print(f"Running the analyses of {collection.name or study}")
        t0 = time.perf_counter()
        results = run_study(collection, settings={"n_jobs": n_jobs}, progress=True)
        con.print(
            f"[green]{done_mark(con)}[/green] {len(results)} analyses "
            f"[dim]({time.perf_counter() - t0:.2f} s)[/dim]"
        )
        from sharedrep.app.demo import ground_truth_checks

        checks = ground_truth_checks(results, truth_doc) if truth_doc is not None else None
        with con.status("Writing the report..."):
            report = write_report(
                results,
                out,
                settings=settings,
                data_files=study_data_files(study),
                title=f"sharedrep report: {collection.name or study.stem}",
                overwrite=force,
                truth_checks=checks,
                notes=[f"Study file: {study.resolve()}"],
            )
    _print_results(con, results)
    if checks is not None:
        print_truth_checks(con, checks)
    con.print(f"Report: [bold]{report}[/bold]")
    check_claims(checks, check=not no_check)


#: What ``run`` writes into its output folder.
RUN_OUTPUTS = ("report.html", "results.json", "figures", "tables")


def _run_out_dir(study: Path, out: Path | None, force: bool) -> Path:
    """The output folder of ``run`` (``--out``, else the study file's ``[analysis]
    output``), checked from the study file alone: writable, nothing in the way."""
    if not study.is_file():
        raise FileNotFoundError(f"no study file at {study}")
    if out is None:
        out = study_output(study)
        if out is None:
            raise UserError(
                "no --out given and the study file has no [analysis] output = ... folder"
            )
    check_out_dir(out, force, RUN_OUTPUTS)
    return out


def _read_truth(truth: Path) -> dict:
    """The ground-truth file of ``sharedrep simulate`` (``--truth``)."""
    from sharedrep.data.io.results import read_json

    doc = read_json(truth)
    if not isinstance(doc, dict) or "expected" not in doc:
        raise UserError(f"{truth}: not a ground-truth file of `sharedrep simulate`")
    return doc


def _check_compute(backend: str, device: str, dtype: str, form: str) -> None:
    """Refuse unknown compute options before any data are loaded."""
    from sharedrep.core.backends import BACKENDS, check_dtype, get_backend
    from sharedrep.core.dual import FORMS

    if backend not in BACKENDS:
        raise UserError(f"--backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if form not in FORMS:
        raise UserError(f"--form must be one of {', '.join(FORMS)}; got {form!r}")
    check_dtype(dtype)
    if backend == "torch":
        try:
            get_backend("torch", device=device)  # torch installed, the device usable
        except ImportError as exc:
            raise UserError(str(exc)) from None
    elif device != "cpu":
        raise UserError(f"--device {device!r} needs backend='torch' (--backend torch)")


@app.command()
def fit(
    study: Annotated[
        Path, typer.Argument(help="The study description (.toml).", show_default=False)
    ],
    population: Annotated[
        str, typer.Option("--population", "-p", help="Population to fit.", show_default=False)
    ],
    stage: Annotated[
        str, typer.Option("--stage", "-s", help="Learning stage to fit.", show_default=False)
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Save the fitted model (.npz, portable, no pickle)."),
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            help="Where the data pass runs: numpy, dask (a dask.distributed cluster; "
            "SHAREDREP_DASK_SCHEDULER names one) or torch. Default: the study file's "
            "`[analysis] backend`, else numpy.",
            show_default=False,
        ),
    ] = None,
    device: Annotated[
        str, typer.Option(help="Torch device with --backend torch (cpu, cuda, cuda:1...).")
    ] = "cpu",
    dtype: Annotated[
        str, typer.Option(help="Precision of the data pass: float64 or float32.")
    ] = "float64",
    form: Annotated[
        str,
        typer.Option(
            help="Ridge solves: auto (kernel form for subjects with more lagged columns "
            "than samples), primal or dual."
        ),
    ] = "auto",
    force: _FORCE = False,
) -> None:
    """Fit ShaReD to one population and stage of a study and print the summary.

    Uses every session of POPULATION and STAGE (stimulation and silencing trials
    removed; samples inside trials when `[analysis] within_trials` is true, the default)
    with the model settings of the study file's `[analysis]` table (n_shared, alpha,
    lags, behavior_metric, cv, selection, random_state); `--backend`, `--device`,
    `--dtype` and `--form` choose how it is computed (same model). Prints the selected alpha and
    number of shared dimensions k, and the cross-validated held-out R^2 of each shared
    dimension, pooled and per subject.
    """
    con = console()
    with user_errors():
        _check_fit_request(study, out, force, population, stage, (backend, device, dtype, form))
        collection = _load(study, con, population=population, stage=stage)
        _check_fit_names(study, collection, population, stage)
        if backend is None:  # checked with the other options by _check_fit_request
            backend = str((collection.analysis or {}).get("backend", "numpy"))
        compute = dict(backend=backend, device=device, dtype=dtype, form=form)
        model, args = _fit_population(con, collection, population, stage, compute)
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            model.save(out, overwrite=force)
    _print_fit(con, model, args, f"{population} / {stage}")
    if out is not None:
        con.print(f"Model saved to [bold]{out}[/bold]")


def _check_fit_request(
    study: Path, out: Path | None, force: bool, population: str, stage: str, compute: tuple
) -> None:
    """Refuse a bad ``fit`` request from the study file alone (fast), before loading."""
    if not study.is_file():
        raise FileNotFoundError(f"no study file at {study}")
    if out is not None and out.is_dir():
        raise UserError(f"--out {out} is a directory; give the model file's path (.npz)")
    if out is not None and out.exists() and not force:
        raise UserError(f"{out} exists; pass --force to replace it")
    if out is not None:
        check_writable(out.parent)  # the model can be saved once it is fitted
    backend, *options = compute
    if backend is None:  # the study file's choice, checked before any session is loaded
        backend = study_analysis(study).get("backend", "numpy")
        if not isinstance(backend, str):
            raise UserError(f"{study}: [analysis] backend must be a string, got {backend!r}")
    _check_compute(backend, *options)
    entries = study_entries(study)
    for what, value in (("population", population), ("stage", stage)):
        have = list(dict.fromkeys(e.get(what) for e in entries if e.get(what) is not None))
        if have and value not in have:
            raise UserError(f"{what} {value!r} not in {study} (available: {have})")


def _check_fit_names(study: Path, collection, population: str, stage: str) -> None:
    """Refuse a population or stage that none of the study's sessions has.

    ``collection`` holds only the sessions of ``population`` and ``stage``; when it is
    empty the labels the study file declares are listed.
    """
    if len(collection):
        return
    from sharedrep.data.studyfile import declared_labels

    labels = declared_labels(study)
    for what, value in (("population", population), ("stage", stage)):
        have = labels[f"{what}s"]
        if value not in have:
            raise UserError(f"{what} {value!r} not in {study} (available: {have})")
    raise UserError(f"no session of {study} has population {population!r} and stage {stage!r}")


def _fit_population(con: Console, collection, population: str, stage: str, compute: dict):
    """Fit ShaReD to one population x stage with the study's settings.

    Returns ``(model, args)``: the fitted model and the fit arguments (subjects,
    neural and behaviour arrays, behaviour names).
    """
    from sharedrep.study._common import encoding_sessions, make_model
    from sharedrep.study.pipeline import resolve_settings

    cfg = resolve_settings(collection)
    keys = ("n_shared", "alpha", "alphas", "lags", "behavior_metric", "cv", "selection")
    model = make_model(**{k: cfg[k] for k in keys}, random_state=cfg["random_state"])
    model.set_params(**compute)
    subset = collection.filter(population=population, stage=stage)
    args = encoding_sessions(subset).to_fit_args(within_trials=cfg["within_trials"])
    with con.status(
        f"Fitting ShaReD to {population} / {stage}: {len(args)} subjects, "
        f"{sum(x.shape[0] for x in args.neural)} samples..."
    ):
        t0 = time.perf_counter()
        try:
            model.fit(args.neural, args.behavior, groups=args.groups)
        except ImportError as exc:  # an optional backend is not installed
            raise UserError(str(exc)) from None
    con.print(
        f"[green]{done_mark(con)}[/green] Fitted [dim]({time.perf_counter() - t0:.2f} s)[/dim]"
    )
    return model, args


def _print_fit(con: Console, model, args, label: str) -> None:
    """Print the fitted model: held-out R^2 per dimension first, then settings and axes."""
    k = int(model.n_shared_)
    _print_fit_heldout(con, model, args, k)
    t = titled_table(f"ShaReD fit: {label}")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_row("subjects", f"{len(args)} ({', '.join(args.subjects)})")
    t.add_row("units per subject", ", ".join(str(x.shape[1]) for x in args.neural))
    t.add_row("lags (samples)", ", ".join(str(int(v)) for v in model.lags_))
    t.add_row("alpha", f"{model.alpha_:.3g}")
    t.add_row("behaviour-metric shrinkage", f"{model.shrinkage_:.3g}")
    t.add_row("k (shared dimensions)", f"{k} of {model.n_features_} behaviour features")
    t.add_row(
        "explained (in-sample, not cross-validated)",
        ", ".join(f"{v:.3f}" for v in model.explained_),
    )
    con.print(t)
    for message in model.diagnostics_.get("messages", []):
        con.print(f"[yellow]Note:[/yellow] {message}")
    loadings = model.shared_axes_ / np.linalg.norm(model.shared_axes_, axis=0)
    t = titled_table("Shared axes (unit-length loadings on the behaviour features)")
    t.add_column("feature")
    for j in range(k):
        t.add_column(f"dim {j + 1}", justify="right")
    for name, row in zip(args.behavior_names, loadings, strict=True):
        t.add_row(name, *(f"{v:+.3f}" for v in row))
    con.print(t)


def _print_fit_heldout(con: Console, model, args, k: int) -> None:
    """The cross-validated held-out R^2 of each shared dimension, pooled and per subject."""
    cv_results = model.cv_results_
    if cv_results is None:
        con.print("No cross-validation (cv is off): no held-out scores.")
        return
    best = int(cv_results["best_index"][0])
    t = titled_table("Held-out R^2 of each shared dimension (cross-validated over trials)")
    t.add_column("subject")
    for j in range(k):
        t.add_column(f"dim {j + 1}", justify="right")
    t.add_row("pooled", *(f"{v:.3f}" for v in cv_results["r2_dim"][best, :k]))
    for s, name in enumerate(args.subjects):
        t.add_row(name, *(f"{v:.3f}" for v in cv_results["r2_subject_dim"][best, s, :k]))
    con.print(t)


@app.command()
def simulate(
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder for study.toml, nwb/ and truth.json."),
    ],
    mice: Annotated[int, typer.Option("--mice", help="Number of mice.", min=2, max=100)] = 6,
    days: Annotated[
        str, typer.Option("--days", help="Imaging days, comma-separated.")
    ] = "1,2,3,7,10,14",
    trials: Annotated[
        int, typer.Option("--trials", help="Trials per session.", min=10, max=10000)
    ] = 60,
    seed: Annotated[int, typer.Option(help="Random seed.", min=0)] = 0,
    null: Annotated[
        bool,
        typer.Option("--null", help="Switch every effect off (no learning, no encoding change)."),
    ] = False,
    force: _FORCE = False,
) -> None:
    """Simulate a lever-push learning study and write it as NWB files + study.toml.

    Mice x days x populations (motor thalamus, another input, M1 L2/3) with learning,
    optogenetic stimulation and silencing sessions and the ground truth
    (`sharedrep.sim.learning_study`). Writes OUT/study.toml (analyse it with
    `sharedrep run OUT/study.toml --out RESULTS`), OUT/nwb/*.nwb and OUT/truth.json.
    """
    from sharedrep.data.io.results import write_json
    from sharedrep.sim.learning_study import StudyEffects, simulate_study

    con = console()
    with user_errors():
        try:
            day_list = tuple(int(x) for x in days.split(",") if x.strip())
        except ValueError:
            raise UserError(f"--days must be comma-separated integers; got {days!r}") from None
        check_out_dir(out, force, ("study.toml", "nwb", "truth.json"))  # before simulating
        effects = StudyEffects.null() if null else None
        with con.status("Simulating..."):
            sim = simulate_study(
                n_mice=mice,
                days=day_list,
                trials_per_session=trials,
                effects=effects,
                seed=seed,
            )
        out = prepare_out_dir(out, force)
        con.print(
            f"[green]{done_mark(con)}[/green] Simulated {len(sim.sessions)} sessions "
            f"({mice} mice, days {list(sim.truth['days'])}, {len(sim.truth['populations'])} "
            f"populations{', effects off' if null else ''})"
        )
        toml = write_study_with_progress(sim, out, force, con)
        write_json(sim.truth, out / "truth.json", overwrite=force)
    con.print(f"Study file: [bold]{toml}[/bold]  (ground truth: {out / 'truth.json'})")


@app.command()
def report(
    results_dir: Annotated[
        Path,
        typer.Argument(
            help="A results folder written by `sharedrep run` or `sharedrep demo`.",
            show_default=False,
        ),
    ],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace a report.html that is not the report of this results folder "
            "(the one `run` or `demo` wrote is rebuilt without it).",
        ),
    ] = False,
) -> None:
    """(Re)build report.html from the tables, figures and results.json of a results folder.

    Reads RESULTS_DIR/results.json, tables/*.csv and figures/*.png (edited or
    re-rendered files are picked up) and writes RESULTS_DIR/report.html, replacing the
    report that `sharedrep run` or `sharedrep demo` (or an earlier `report`) wrote from
    the same results.json; any other file of that name is replaced only with `--force`.
    """
    from sharedrep.app.report import rebuild_report

    con = console()
    with user_errors():
        if results_dir.is_dir():
            check_writable(results_dir)  # before reading the tables and figures
        path = rebuild_report(results_dir, overwrite=force or _own_report(results_dir))
    con.print(f"Report: [bold]{path}[/bold]")


def _own_report(results_dir: Path) -> bool:
    """Whether ``report.html`` of a results folder was written from its results.json.

    ``run``, ``demo`` and ``report`` write the creation time of ``results.json`` into the
    report they render from it; a report carrying it is this folder's own and may be
    rebuilt. Anything else (no results.json, another file) is False.
    """
    from sharedrep.app.report import REPORT_NAME, RESULTS_JSON
    from sharedrep.data.io.results import read_json

    report, meta_path = results_dir / REPORT_NAME, results_dir / RESULTS_JSON
    if not (report.is_file() and meta_path.is_file()):
        return False
    try:
        created = read_json(meta_path).get("created")
        text = report.read_text(encoding="utf-8")
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(created, str) and bool(created) and created in text


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
    from sharedrep.data.studyfile import validate_study

    with user_errors():
        if not study.is_file():
            raise FileNotFoundError(f"no study file at {study}")
        with session_progress(err_console(), f"Checking the sessions of {study}") as progress:
            problems = validate_study(study, deep=not shallow, progress=progress)
    con, err = console(), err_console()
    if not problems:
        con.print(f"[green]OK[/green]: {study} is a valid study description")
        return
    err.print(f"[bold red]{len(problems)} problem(s)[/bold red] in {study}:", markup=True)
    for problem in problems:
        err.print(f"  - {problem}", markup=False, soft_wrap=True)
    raise typer.Exit(code=EXIT_USER_ERROR)


from sharedrep.app.evaluate_cli import evaluate_command  # noqa: E402

app.command(name="evaluate")(evaluate_command)


def main(prog_name: str = "sharedrep") -> None:
    """Run the command-line application (the ``sharedrep`` console script)."""
    app(prog_name=prog_name)


if __name__ == "__main__":  # pragma: no cover
    main()
