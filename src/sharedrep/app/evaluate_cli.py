"""``sharedrep evaluate``: does pooling animals help on the sessions of a study?

Loads a study file, takes the sessions of one population and stage (cleaned as for
``sharedrep fit``: stimulation and silencing trials removed, samples inside trials when
``[analysis] within_trials`` is true), keeps every session as its own recording and
labels it with its animal (the session's subject id), and runs
:func:`sharedrep.inference.evaluate.evaluate` with the model settings of the study file.
Writes the tables (CSV), ``evaluation.json`` (verdict, notes, warnings, settings) and
``calibration_curves.png`` into ``--out`` and prints the verdict and a short table.

Registered on the Typer application of :mod:`sharedrep.app.cli` (which imports this
module; this module imports no other ``app`` module but :mod:`sharedrep.app._console`
and :mod:`sharedrep.app.plots`).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sharedrep.app._console import (
    UserError,
    check_out_dir,
    console,
    done_mark,
    err_console,
    prepare_out_dir,
    session_progress,
    study_entries,
    titled_table,
    user_errors,
)
from sharedrep.utils.files import atomic_write

__all__ = ["evaluate_command", "FIGURE_NAME", "OUTPUTS", "collect_recordings"]

#: File name of the calibration-curve figure in the output folder.
FIGURE_NAME = "calibration_curves.png"
#: Files written into ``--out`` (named first when the folder is refused): the tables of
#: :data:`sharedrep.inference.evaluate.TABLES` (not imported here: the command line starts
#: without loading the numerics), evaluation.json and the figure.
OUTPUTS = (
    "scores.csv",
    "animal_scores.csv",
    "summary.csv",
    "comparisons.csv",
    "reproducibility.csv",
    "folds.csv",
    "evaluation.json",
    FIGURE_NAME,
)
#: Settings of ``--quick`` (small studies, tests): fewer blocks and split-half fits.
_QUICK = dict(n_blocks=6, calibration_fractions=(0.2, 0.5), n_splits=2)


def _check_request(study: Path, out: Path, force: bool, population: str, stage: str) -> None:
    """Refuse a bad request from the study file alone (fast), before loading."""
    if not study.is_file():
        raise FileNotFoundError(f"no study file at {study}")
    check_out_dir(out, force, OUTPUTS)
    entries = study_entries(study)
    for what, value in (("population", population), ("stage", stage)):
        have = list(dict.fromkeys(e.get(what) for e in entries if e.get(what) is not None))
        if have and value not in have:
            raise UserError(f"{what} {value!r} not in {study} (available: {have})")


def collect_recordings(collection, population: str, stage: str, within_trials: bool) -> dict:
    """One recording per session of ``population`` x ``stage``, labelled by animal.

    Parameters
    ----------
    collection : SessionCollection
    population, stage : str
    within_trials : bool
        Keep only samples inside trials (as ``sharedrep fit``).

    Returns
    -------
    dict
        ``neural``, ``behavior``, ``groups`` (lists, one entry per session),
        ``animals`` (the session's subject), ``sessions`` (ids) and ``behavior_names``.
    """
    from sharedrep.data.session import SessionCollection
    from sharedrep.study._common import encoding_sessions

    subset = encoding_sessions(collection.filter(population=population, stage=stage))
    if len(subset) == 0:
        raise UserError(f"no usable sessions of population {population!r} and stage {stage!r}")
    out = dict(neural=[], behavior=[], groups=[], animals=[], sessions=[], behavior_names=None)
    for session in subset:
        args = SessionCollection([session]).to_fit_args(within_trials=within_trials)
        out["neural"].append(args.neural[0])
        out["behavior"].append(args.behavior[0])
        out["groups"].append(args.groups[0])
        out["animals"].append(str(session.subject))
        out["sessions"].append(session.session_id)
        if out["behavior_names"] is None:
            out["behavior_names"] = list(args.behavior_names)
        elif list(args.behavior_names) != out["behavior_names"]:
            raise UserError(
                f"session {session.session_id!r} has behaviour features "
                f"{list(args.behavior_names)}; expected {out['behavior_names']}"
            )
    if len(set(out["animals"])) < 2:
        raise UserError(
            f"population {population!r} / stage {stage!r} has sessions of "
            f"{len(set(out['animals']))} animal(s); evaluate needs at least 2"
        )
    return out


def _model(collection):
    from sharedrep.study._common import make_model
    from sharedrep.study.pipeline import resolve_settings

    cfg = resolve_settings(collection)
    keys = ("n_shared", "alpha", "alphas", "lags", "behavior_metric", "cv", "selection")
    return make_model(**{k: cfg[k] for k in keys}, random_state=cfg["random_state"]), cfg


def _write_outputs(result, out: Path, force: bool) -> list[Path]:
    from sharedrep.app.plots import plot_calibration_curves

    paths = result.to_csv(out, overwrite=force)
    fig = plot_calibration_curves(result)
    paths.append(
        atomic_write(out / FIGURE_NAME, lambda tmp: fig.savefig(tmp, dpi=110), overwrite=force)
    )
    return paths


def _print_result(con: Console, result, n_warnings: int) -> None:
    t = titled_table("Mean held-out R^2 over animals (all behaviour features)")
    wide = result.summary.pivot_table(index="fraction", columns="method", values="mean_r2")
    methods = [m for m in ("constant", "ridge", "shared", "combined", "own") if m in wide]
    t.add_column("calibration fraction")
    for m in methods:
        t.add_column(m, justify="right")
    for f, row in wide.iterrows():
        t.add_row(f"{f:g}", *(f"{row[m]:.3f}" for m in methods))
    con.print(t)
    t = titled_table("Combined decoder vs per-animal ridge (animals as the unit)")
    for col in ("fraction", "wins/ties/losses", "mean diff", "t-test p", "Wilcoxon p"):
        t.add_column(col, justify="right")
    comp = result.comparisons
    main = comp[(comp["method"] == "combined") & (comp["baseline"] == "ridge")]
    for r in main.itertuples():
        t.add_row(
            f"{r.fraction:g}",
            f"{r.wins}/{r.ties}/{r.losses}",
            f"{r.mean_diff:+.3f}",
            "n/a" if r.ttest_p != r.ttest_p else f"{r.ttest_p:.3g}",
            "n/a" if r.wilcoxon_p != r.wilcoxon_p else f"{r.wilcoxon_p:.3g}",
        )
    con.print(t)
    if n_warnings:
        err_console().print(
            f"{n_warnings} warning(s) about calibration sets (see evaluation.json)",
            markup=False,
            soft_wrap=True,
        )
    con.print(f"[bold]Verdict:[/bold] {result.verdict}", soft_wrap=True)


_FORCE = Annotated[
    bool,
    typer.Option(
        "--force", help="Write into a non-empty --out (replaces files of the same name)."
    ),
]


def evaluate_command(
    study: Annotated[
        Path, typer.Argument(help="The study description (.toml).", show_default=False)
    ],
    population: Annotated[
        str, typer.Option("--population", "-p", help="Population.", show_default=False)
    ],
    stage: Annotated[
        str, typer.Option("--stage", "-s", help="Learning stage.", show_default=False)
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Folder for the tables, evaluation.json and the figure (RESULTS/evaluate "
            "adds a section to the report of a results folder).",
            show_default=False,
        ),
    ],
    force: _FORCE = False,
    n_jobs: Annotated[
        int, typer.Option("--n-jobs", help="Parallel held-out animals (-1: all cores).")
    ] = -1,
    quick: Annotated[
        bool, typer.Option("--quick", help="6 blocks, fractions 0.2 and 0.5, 2 split halves.")
    ] = False,
) -> None:
    """Does pooling animals help on this study? Leave-one-animal-out evaluation.

    Every session of POPULATION and STAGE is a recording labelled by its animal. Each
    animal is held out in turn: the model (the study file's `[analysis]` settings) is
    fitted on the other animals, each held-out recording is cut into 10 blocks of whole
    trials, calibration and test blocks alternate, and a constant prediction, a
    per-animal ridge, the pure shared read-out and the combined decoder are scored on the
    same test rows at calibration fractions 0.1, 0.2 and 0.5. Writes the CSV tables,
    evaluation.json and calibration_curves.png to OUT and prints the verdict.
    """
    from sharedrep.data.studyfile import load_study
    from sharedrep.inference.evaluate import evaluate

    con = console()
    with user_errors():
        if n_jobs == 0:
            raise UserError("--n-jobs must be a non-zero int (-1 = all cores)")
        _check_request(study, out, force, population, stage)
        with session_progress(con, f"Loading the sessions of {study}") as progress:
            collection = load_study(study, population=population, stage=stage, progress=progress)
        model, cfg = _model(collection)
        rec = collect_recordings(collection, population, stage, bool(cfg["within_trials"]))
        con.print(
            f"[green]{done_mark(con)}[/green] {len(rec['neural'])} sessions of "
            f"{len(set(rec['animals']))} animals ({population} / {stage})"
        )
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = evaluate(
                model,
                rec["neural"],
                rec["behavior"],
                rec["groups"],
                animals=rec["animals"],
                behavior_names=rec["behavior_names"],
                random_state=cfg["random_state"],
                n_jobs=n_jobs,
                progress=True,
                **(_QUICK if quick else {}),
            )
        result.settings.update(study=str(study.resolve()), population=population, stage=stage)
        result.settings["sessions"] = dict(zip(rec["sessions"], rec["animals"], strict=True))
        out = prepare_out_dir(out, force, OUTPUTS)
        _write_outputs(result, out, force)
    con.print(
        f"[green]{done_mark(con)}[/green] Evaluated [dim]({time.perf_counter() - t0:.1f} s)"
        f"[/dim]; tables and {FIGURE_NAME} in [bold]{out}[/bold]"
    )
    _print_result(con, result, len(caught))
