"""Command-line interface: ``sharedrep <command>`` (also ``python -m sharedrep``).

The Typer application :data:`app` is the single entry point; :func:`main` runs it (the
``sharedrep`` console script). Subcommands live here or are registered from other
modules with ``app.command()(function)`` or ``app.add_typer(sub_app, name=...)``.

Commands: ``demo`` (simulated data with a known answer, end to end, with a report),
``simulate`` (write a simulated learning study: NWB files + study.toml), ``validate``
(check a study file), ``run`` (every analysis of a study -> report), ``fit`` (one
population x stage), ``report`` (rebuild report.html from a results folder).

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
    _check_out_dir(out, force)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _check_out_dir(out: Path, force: bool) -> None:
    """The checks of :func:`prepare_out_dir`, without creating anything."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(
            f"output directory {out} is not empty; choose another --out or pass --force to "
            "write into it (files of the same name are replaced)"
        )


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


def _recovery_step(con: Console, seed: int, n_subjects: int, timings: dict):
    """Step 1 of the demo: generic ShaReD recovery on :func:`sharedrep.simulate` data.

    Returns ``(summary, model, data, latent_r2)``.
    """
    from scipy.linalg import subspace_angles

    from . import ShaReD, simulate

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
        "simulation": dict(DEMO_SIMULATION),
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
    }
    return summary, model, d, latent_r2


def _recovery_result(summary: dict, model, d, latent_r2):
    """The recovery step as an analysis result (table, figures, description)."""
    import pandas as pd

    from . import plots as P
    from .study._result import AnalysisResult

    k = summary["n_shared"]
    angles = summary["principal_angles_deg"]
    table = pd.DataFrame(
        {
            "dimension": np.arange(1, k + 1),
            "principal_angle_deg": [angles[j] if j < len(angles) else np.nan for j in range(k)],
            "cv_r2": summary["cv_r2_dim"],
            "new_subject_r2": summary["new_subject"]["latent_r2"],
        }
    )
    per_subject = pd.DataFrame(
        [
            {"subject": s, "dimension": j + 1, "cv_r2": r2}
            for s, row in enumerate(summary["cv_r2_subject_dim"])
            for j, r2 in enumerate(row)
        ]
    )
    ns = summary["new_subject"]
    decoders = pd.DataFrame(
        {
            "decoder": ["ShaReD (frozen shared axes)", "per-subject ridge"],
            "behaviour_r2": [ns["shared_r2"], ns["ridge_r2"]],
            "calibration_samples": [ns["calibration_samples"]] * 2,
            "test_samples": [ns["test_samples"]] * 2,
        }
    )
    description = (
        f"Generic check on data simulated with a known answer ({summary['n_subjects']} "
        f"subjects with {min(summary['units_per_subject'])}-"
        f"{max(summary['units_per_subject'])} units, {d.n_shared} true shared dimensions, "
        f"{DEMO_SIMULATION['n_behavior']} behaviour features). ShaReD selected k = {k} "
        f"and alpha = {summary['alpha']:.3g} by 5-fold cross-validation over trials; the "
        f"largest principal angle between the recovered and true shared axes is "
        f"{summary['max_angle_deg']:.2f} deg; held-out R^2 per shared dimension "
        + ", ".join(f"{r:.3f}" for r in summary["cv_r2_dim"])
        + f". A held-out subject calibrated on {ns['calibration_trials']} trials "
        f"(axes frozen) decodes behaviour with R^2 = {ns['shared_r2']:.3f}, against "
        f"{ns['ridge_r2']:.3f} for a per-subject ridge decoder trained on the same trials."
    )
    result = AnalysisResult(
        name="shared_recovery",
        table=table,
        figure=P.plot_axes(model, true_axes=d.shared_axes, feature_names=d.behavior_names),
        summary={
            k_: summary[k_]
            for k_ in ("alpha", "n_shared", "true_n_shared", "max_angle_deg", "cv_r2_dim")
        }
        | {"new_subject": ns},
        description=description,
        tables={"subjects": per_subject, "new_subject": decoders},
    )
    extra = {
        "cv_scores": P.plot_cv_scores(model),
        "heldout_r2": P.plot_heldout_r2(model, extra={"new subject (test)": latent_r2}),
    }
    return result, extra


# ----------------------------------------------------------------- learning-study demo

#: The simulated learning study of ``sharedrep demo`` (``--quick``: the second entry).
DEMO_STUDY = {
    "full": dict(n_mice=6, days=(1, 2, 13, 14), trials_per_session=50),
    "quick": dict(n_mice=5, days=(1, 2, 13, 14), trials_per_session=40),
}
#: Analysis settings written to the demo's study.toml (on top of the simulator's).
DEMO_STUDY_SETTINGS = {
    "full": dict(n_permutations=39, n_bootstrap=39),
    "quick": dict(n_permutations=24, n_bootstrap=9),
}


def _get(d, *keys):
    """``d[k1][k2]...``; KeyError/TypeError name the missing path."""
    for k in keys:
        d = d[k]
    return d


def _find(results: dict, name: str):
    """The result called ``name`` (dict key or ``AnalysisResult.name``)."""
    if name in results:
        return results[name]
    for r in results.values():
        if getattr(r, "name", None) == name:
            return r
    raise KeyError(f"no analysis {name!r} in the results (have {list(results)})")


def ground_truth_checks(results: dict, truth: dict, *, level: float = 0.05) -> list:
    """Compare the headline numbers of the study analyses with the simulator's truth.

    Four claims, each recovered when the analyses report the effect the simulator put in
    (or, for an effect switched off in the simulation, when they do not report it):

    1. the motor thalamus encodes the learned movement best in experts (best cell of
       ``encoding_by_population``, significant at ``level`` and better than every cell
       it is compared with: ``summary["best_significant"]``);
    2. its peak lag shifts earlier (more lead) with learning (``lag_profiles`` shift > 0
       with a bootstrap interval excluding 0);
    3. thalamus-driven M1 units overlap movement-encoding units more in experts than in
       novices (optogenetics analysis);
    4. silencing the thalamic inputs impairs expert movements (silencing analysis).

    Parameters
    ----------
    results : dict of str to AnalysisResult
        Output of ``run_study``.
    truth : dict
        ``SimulatedStudy.truth``.
    level : float, default 0.05

    Returns
    -------
    list of sharedrep.report.TruthCheck
    """
    from .report import TruthCheck

    exp = truth.get("expected", {})
    roles = truth.get("roles", {})
    thal = next((p for p, r in roles.items() if r == "thalamus"), "thalamus")
    checks = []

    def add(claim, fn, expected):
        try:
            detected, detail = fn()
        except (KeyError, TypeError, IndexError, ValueError, AttributeError) as exc:
            checks.append(TruthCheck(claim, False, f"not computable from the results ({exc!r})"))
            return
        if expected:
            checks.append(TruthCheck(claim, bool(detected), detail))
        else:
            checks.append(
                TruthCheck(
                    f"(effect switched off) not reported: {claim}",
                    not detected,
                    detail,
                )
            )

    # 1 ---------------------------------------------------------------- encoding
    def encoding():
        s = _find(results, "encoding_by_population").summary
        best = s["best"]
        cell = s["cells"][best]
        # the best cell must beat every cell it is compared with, not only its own null
        detected = best == f"{thal}/expert" and cell["p_value"] <= level and s["best_significant"]
        cells = ", ".join(f"{k} {v['score']:.3f}" for k, v in s["cells"].items())
        comps = "; ".join(
            f"{k}: {v['difference']:+.3f} (p = {v['p_value']:.3g})"
            for k, v in s.get("best_comparisons", {}).items()
        )
        return detected, (
            f"best: {best} (held-out R^2 {cell['score']:.3f}, permutation p = "
            f"{cell['p_value']:.3g}); all cells: {cells}"
            + (f"; comparisons (mice relabelled): {comps}" if comps else "")
        )

    add(
        f"{thal} encodes the learned movement best in experts",
        encoding,
        exp.get("best_encoding") is not None,
    )

    # 2 ---------------------------------------------------------------- timing
    def timing():
        s = _find(results, "lag_profiles").summary
        sh = s["shifts"][thal]
        ci = sh["ci"]
        detected = sh["shift"] > 0 and ci[0] > 0
        true_leads = truth.get("lead_frames", {}).get(thal, {})
        peaks = {
            k.split("/", 1)[1]: v["peak_lag"]
            for k, v in s["peaks"].items()
            if k.split("/", 1)[0] == thal
        }
        return detected, (
            f"peak lag {sh['stage_from']} -> {sh['stage_to']}: "
            + ", ".join(f"{st} {pk:+.0f}" for st, pk in peaks.items())
            + f" frames (shift {sh['shift']:+.0f}, 95% CI [{ci[0]:+.0f}, {ci[1]:+.0f}]); "
            "true lead: " + ", ".join(f"{st} {v}" for st, v in true_leads.items()) + " frames"
        )

    shift = exp.get("lag_shift_frames")
    add(f"{thal} peak lag shifts earlier with learning", timing, bool(shift and shift > 0))

    # 3 ---------------------------------------------------------------- optogenetics
    def overlap():
        s = _find(results, "encoding_overlap").summary
        diff = s["difference"]
        st = s["stages"]
        ror, p = diff["ratio_of_odds_ratios"], diff["p_pooled"]
        detected = ror > 1 and p <= level
        ors = ", ".join(f"{k} {v['odds_ratio']:.2f}" for k, v in st.items())
        true_or = ", ".join(f"{k} {v:.2f}" for k, v in truth.get("overlap_odds_ratio", {}).items())
        return detected, (
            f"Mantel-Haenszel odds ratio driven x encoding: {ors}; ratio "
            f"{diff['stage_to']}/{diff['stage_from']} {ror:.2f} (pooled permutation p = "
            f"{p:.3g}; per-mouse sign-flip p = {diff['p_mice']:.3g} over {diff['n_mice']} "
            f"mice); simulated selection odds multiplier: {true_or}"
        )

    add(
        "thalamus-driven M1 units overlap movement-encoding units more in experts",
        overlap,
        bool(exp.get("overlap_increases")),
    )

    # 4 ---------------------------------------------------------------- silencing
    def silencing():
        s = _find(results, "silencing_effects").summary
        m = s["metrics"]
        detected = bool(s["impairs"]) and m["success_rate"]["difference"] < 0
        parts = [
            f"{k} {v['laser_off']:.3g} -> {v['laser_on']:.3g} {v['unit']} (p = {v['p_value']:.3g})"
            for k, v in m.items()
        ]
        return detected, (
            f"laser off -> on, paired across {s['n_mice']} mice (one-sided sign-flip): "
            + "; ".join(parts)
        )

    add("silencing the thalamic inputs impairs movement", silencing, exp.get("silencing_impairs"))
    return checks


def _study_step(
    con: Console,
    out: Path,
    seed: int,
    size: str,
    n_mice: int | None,
    force: bool,
    timings: dict,
):
    """Step 2 of the demo: simulate the learning study, write NWB, load, analyse."""
    from .io.results import write_json
    from .simulate_study import simulate_study
    from .study.pipeline import run_study
    from .studyfile import load_study

    cfg = dict(DEMO_STUDY[size])
    if n_mice is not None:
        cfg["n_mice"] = n_mice
    n_pop = 3
    with _step(
        con,
        f"Simulating the learning study: {cfg['n_mice']} mice x {len(cfg['days'])} days x "
        f"{n_pop} populations (seed {seed})",
        timings,
    ):
        sim = simulate_study(seed=seed, **cfg)
        sim.settings.update(DEMO_STUDY_SETTINGS[size])
    data = out / "data"
    t0 = time.perf_counter()
    toml = _write_study_with_progress(sim, data, force, con)
    write_json(sim.truth, data / "truth.json", overwrite=force)
    timings["Writing NWB files and study.toml"] = round(time.perf_counter() - t0, 4)
    with _step(con, "Loading the study back from the NWB files (load_study)", timings):
        collection = load_study(toml)
    con.print("Running the study analyses (run_study)")
    t0 = time.perf_counter()
    results = run_study(collection, settings=None, progress=True)
    dt = time.perf_counter() - t0
    timings["Running the study analyses"] = round(dt, 4)
    con.print(f"[green]{_mark(con)}[/green] Study analyses [dim]({dt:.2f} s)[/dim]")
    checks = ground_truth_checks(results, sim.truth)
    return sim, toml, collection, results, checks


def _effective_settings(collection) -> dict:
    from .study.pipeline import resolve_settings

    return resolve_settings(collection)


def _mark(con: Console) -> str:
    return "✓" if (con.encoding or "").lower().startswith("utf") else "done:"


def _print_checks(con: Console, checks) -> None:
    t = _table("Ground truth of the simulated learning study")
    t.add_column("recovered")
    t.add_column("claim")
    t.add_column("detail")
    for c in checks:
        t.add_row(
            "[green]yes[/green]" if c.passed else "[bold red]NO[/bold red]", c.claim, c.detail
        )
    con.print(t)


def run_demo(
    out: Path,
    seed: int = 0,
    n_subjects: int = 8,
    plots: bool = True,
    force: bool = False,
    con: Console | None = None,
    *,
    study: bool = True,
    quick: bool = False,
    n_mice: int | None = None,
) -> dict:
    """The demo: generic recovery, then the simulated learning study end to end.

    Step 1 simulates ``n_subjects`` subjects (plus one held out) with a known shared
    representation, fits ShaReD, compares the axes with the truth and decodes the
    held-out subject. Step 2 (``study``) simulates the lever-push learning study,
    writes it as NWB files plus ``study.toml`` under ``out / "data"``, loads it back
    with :func:`sharedrep.studyfile.load_study`, runs every analysis
    (:func:`sharedrep.study.pipeline.run_study`) and checks the results against the
    simulator's ground truth. With ``plots`` the report (``report.html``, figures,
    tables, ``results.json``) is written to ``out``; ``summary.json`` always.

    Parameters
    ----------
    out : Path
        Output directory (must be empty or missing unless ``force``).
    seed : int
        Seed of the simulations and of the fold assignment.
    n_subjects : int
        Subjects of step 1 (one more is simulated and held out).
    plots : bool
        Write the report with its figures and tables.
    force : bool
        Write into a non-empty ``out`` (replacing files of the same names).
    con : rich Console, optional
    study : bool
        Run step 2.
    quick : bool
        A smaller study (for tests; less statistical power).
    n_mice : int, optional
        Mice of the study (default 6; 5 with ``quick``).

    Returns
    -------
    summary : dict
        Everything written to ``out / "summary.json"``.
    """
    from .report import REPORT_NAME, write_report

    con = con or console()
    if study:
        import importlib.util

        missing = [m for m in ("pynwb", "ndx_pose") if importlib.util.find_spec(m) is None]
        if missing:
            raise UserError(
                f"the demo's study step writes and reads NWB files but {', '.join(missing)} "
                "is not installed: pip install 'sharedrep[nwb]' (or run with --no-study)"
            )
    out = prepare_out_dir(out, force)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()

    con.rule("[bold]1. ShaReD recovers a known shared representation")
    summary, model, d, latent_r2 = _recovery_step(con, seed, n_subjects, timings)
    _print_report(con, model, summary)

    results: dict = {}
    extra: dict = {}
    data_files: list[Path] = []
    settings: dict = {"shared_recovery": {**DEMO_MODEL, "random_state": seed}}
    checks = None
    if study:
        size = "quick" if quick else "full"
        con.rule("[bold]2. The learning study: simulate -> NWB -> study.toml -> analyses")
        sim, toml, collection, study_results, checks = _study_step(
            con, out, seed, size, n_mice, force, timings
        )
        results.update(study_results)
        data_files = _study_data_files(toml)
        settings["study"] = _effective_settings(collection)
        summary["study"] = {
            "size": size,
            "simulation": {**DEMO_STUDY[size], **({"n_mice": n_mice} if n_mice else {})},
            "n_sessions": len(collection),
            "study_file": str(toml.relative_to(out)),
            "settings": settings["study"],
            "analyses": list(study_results),
            "expected": sim.truth["expected"],
            "truth_checks": [
                {"claim": c.claim, "passed": c.passed, "detail": c.detail} for c in checks
            ],
            "all_recovered": all(c.passed for c in checks),
            "headline": {k: r.summary for k, r in study_results.items()},
        }
        _print_checks(con, checks)

    summary["figures"] = []
    if plots:
        with _step(con, f"Writing the report, figures and tables to {out}", timings):
            rec, rec_extra = _recovery_result(summary, model, d, latent_r2)
            results = {"shared_recovery": rec, **results}
            extra = {"shared_recovery": rec_extra}
            report = write_report(
                results,
                out,
                settings=settings,
                data_files=data_files,
                title="sharedrep demo: ShaReD on simulated data with known ground truth",
                overwrite=force,
                truth_checks=checks,
                extra_figures=extra,
                notes=[
                    "Everything in this report was computed from simulated data by "
                    "`sharedrep demo`. Section 'shared_recovery' checks ShaReD itself on "
                    "generic simulated subjects; the other sections are the analyses of a "
                    "simulated lever-push learning study, written as NWB files with a "
                    "study.toml (data/) and loaded back, exactly as `sharedrep run` would "
                    "process a real study."
                ],
            )
        summary["report"] = report.name
        summary["figures"] = sorted(
            str(p.relative_to(out)) for p in (out / "figures").iterdir() if p.is_file()
        )
        assert report.name == REPORT_NAME
    timings["total"] = round(time.perf_counter() - t_start, 4)
    summary["timings_s"] = timings
    _write_json(out / "summary.json", _jsonable(summary))
    written = ["summary.json"] + (["report.html", "figures/", "tables/"] if plots else [])
    if study:
        written.append("data/")
    con.print(f"Results in [bold]{out}[/bold]: " + ", ".join(written))
    if checks is not None:
        n_ok = sum(c.passed for c in checks)
        colour = "green" if n_ok == len(checks) else "red"
        con.print(
            f"[{colour}]{n_ok} of {len(checks)} ground-truth claims recovered[/{colour}] "
            f"in {timings['total']:.0f} s."
        )
    return summary


def _jsonable(obj):
    from .io.results import to_jsonable

    return to_jsonable(obj)


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


_FORCE = Annotated[
    bool,
    typer.Option(
        "--force", help="Write into a non-empty --out (replaces files of the same name)."
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
            "--quick", help="A smaller learning study (5 mice, 40 trials per session; for tests)."
        ),
    ] = False,
    mice: Annotated[
        int | None,
        typer.Option("--mice", help="Mice of the learning study (default 6, --quick 5).", min=2),
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
    and summary.json to OUT.
    """
    with user_errors():
        run_demo(
            out,
            seed=seed,
            n_subjects=subjects,
            plots=not no_plots,
            force=force,
            study=not no_study,
            quick=quick,
            n_mice=mice,
        )


# ----------------------------------------------------------------------------- study


def _study_entries(study: Path) -> list[dict]:
    """The ``[[sessions]]`` entries of a study file, merged with ``[defaults]``."""
    import tomllib

    try:
        doc = tomllib.loads(study.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{study}: invalid TOML: {exc}") from None
    defaults = doc.get("defaults", {}) if isinstance(doc.get("defaults"), dict) else {}
    sessions = doc.get("sessions", [])
    if not isinstance(sessions, list):
        return []
    return [{**defaults, **e} for e in sessions if isinstance(e, dict)]


def _study_data_files(study: Path) -> list[Path]:
    """The study file and every file it names (paths resolved; folders kept whole)."""
    from .studyfile import _PATH_KEYS

    base = study.resolve().parent
    files = [study.resolve()]
    for merged in _study_entries(study):
        for key in _PATH_KEYS:
            v = merged.get(key)
            if isinstance(v, str) and v:
                p = Path(v).expanduser()
                files.append(p if p.is_absolute() else base / p)
    return list(dict.fromkeys(files))


def _load(study: Path, con: Console):
    from .studyfile import load_study

    if not study.is_file():
        raise FileNotFoundError(f"no study file at {study}")
    with con.status(f"Loading the sessions of {study}..."):
        t0 = time.perf_counter()
        collection = load_study(study)
    con.print(
        f"[green]{_mark(con)}[/green] Loaded {len(collection)} sessions of "
        f"{len(collection.subjects)} subjects [dim]({time.perf_counter() - t0:.2f} s)[/dim]"
    )
    return collection


def _print_results(con: Console, results: dict) -> None:
    t = _table("Analyses")
    t.add_column("analysis")
    t.add_column("rows", justify="right")
    t.add_column("headline")
    for name, r in results.items():
        head = r.description.split(". ")
        t.add_row(name, str(len(r.table)), (head[0] + ".")[:160])
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
    force: _FORCE = False,
) -> None:
    """Run every analysis of a study and write the report.

    Loads the sessions listed in STUDY (as `sharedrep validate` checks them), runs the
    learning-study analyses with the file's `[analysis]` settings and writes to OUT:
    report.html (self-contained: figures, tables, settings, software versions, data
    files with SHA-256 checksums), figures/ (PNG, SVG), tables/ (CSV) and results.json
    (enough to rebuild the report with `sharedrep report OUT`).
    """
    from .report import write_report
    from .study.pipeline import resolve_settings, run_study

    con = console()
    with user_errors():
        if out is not None:
            _check_out_dir(out, force)  # before the (slow) loading
        truth_doc = None
        if truth is not None:
            from .io.results import read_json

            truth_doc = read_json(truth)
            if not isinstance(truth_doc, dict) or "expected" not in truth_doc:
                raise UserError(f"{truth}: not a ground-truth file of `sharedrep simulate`")
        collection = _load(study, con)
        if out is None:
            if "output" not in collection.analysis:
                raise UserError(
                    "no --out given and the study file has no [analysis] output = ... folder"
                )
            out = Path(collection.analysis["output"])
        settings = resolve_settings(collection)
        out = prepare_out_dir(out, force)
        con.print(f"Running the analyses of {collection.name or study}")
        t0 = time.perf_counter()
        results = run_study(collection, settings=None, progress=True)
        con.print(
            f"[green]{_mark(con)}[/green] {len(results)} analyses "
            f"[dim]({time.perf_counter() - t0:.2f} s)[/dim]"
        )
        checks = ground_truth_checks(results, truth_doc) if truth_doc is not None else None
        with con.status("Writing the report..."):
            report = write_report(
                results,
                out,
                settings=settings,
                data_files=_study_data_files(study),
                title=f"sharedrep report: {collection.name or study.stem}",
                overwrite=force,
                truth_checks=checks,
                notes=[f"Study file: {study.resolve()}"],
            )
    _print_results(con, results)
    if checks is not None:
        _print_checks(con, checks)
    con.print(f"Report: [bold]{report}[/bold]")


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
    force: _FORCE = False,
) -> None:
    """Fit ShaReD to one population and stage of a study and print the summary.

    Uses every session of POPULATION and STAGE (stimulation and silencing trials
    removed; samples inside trials when `[analysis] within_trials` is true, the default)
    with the model settings of the study file's `[analysis]` table (n_shared, alpha,
    lags, behavior_metric, cv, selection, random_state). Prints the selected alpha and
    number of shared dimensions k, and the cross-validated held-out R^2 of each shared
    dimension, pooled and per subject.
    """
    from .study._common import encoding_sessions, make_model
    from .study.pipeline import resolve_settings

    con = console()
    with user_errors():
        if not study.is_file():
            raise FileNotFoundError(f"no study file at {study}")
        if out is not None and out.exists() and not force:
            raise UserError(f"{out} exists; pass --force to replace it")
        # names first, from the file itself (fast), then again on the loaded sessions
        entries = _study_entries(study)
        for what, value in (("population", population), ("stage", stage)):
            have = list(dict.fromkeys(e.get(what) for e in entries if e.get(what) is not None))
            if have and value not in have:
                raise UserError(f"{what} {value!r} not in {study} (available: {have})")
        collection = _load(study, con)
        for what, value, have in (
            ("population", population, collection.populations),
            ("stage", stage, collection.stages),
        ):
            if value not in have:
                raise UserError(f"{what} {value!r} not in {study} (available: {list(have)})")
        cfg = resolve_settings(collection)
        keys = ("n_shared", "alpha", "alphas", "lags", "behavior_metric", "cv", "selection")
        model = make_model(**{k: cfg[k] for k in keys}, random_state=cfg["random_state"])
        sub = collection.filter(population=population, stage=stage)
        args = encoding_sessions(sub).to_fit_args(within_trials=cfg["within_trials"])
        with con.status(
            f"Fitting ShaReD to {population} / {stage}: {len(args)} subjects, "
            f"{sum(x.shape[0] for x in args.neural)} samples..."
        ):
            t0 = time.perf_counter()
            model.fit(args.neural, args.behavior, groups=args.groups)
        con.print(
            f"[green]{_mark(con)}[/green] Fitted [dim]({time.perf_counter() - t0:.2f} s)[/dim]"
        )
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            model.save(out, overwrite=force)

    k = int(model.n_shared_)
    t = _table(f"ShaReD fit: {population} / {stage}")
    t.add_column("quantity")
    t.add_column("value", justify="right")
    t.add_row("subjects", f"{len(args)} ({', '.join(args.subjects)})")
    t.add_row("units per subject", ", ".join(str(x.shape[1]) for x in args.neural))
    t.add_row("lags (samples)", ", ".join(str(int(v)) for v in model.lags_))
    t.add_row("alpha", f"{model.alpha_:.3g}")
    t.add_row("k (shared dimensions)", str(k))
    t.add_row("in-sample explained", ", ".join(f"{v:.3f}" for v in model.explained_))
    con.print(t)
    cvr = model.cv_results_
    if cvr is not None:
        ia = int(cvr["best_index"][0])
        t = _table("Held-out R^2 of each shared dimension (cross-validated over trials)")
        t.add_column("subject")
        for j in range(k):
            t.add_column(f"dim {j + 1}", justify="right")
        t.add_row("pooled", *(f"{v:.3f}" for v in cvr["r2_dim"][ia, :k]))
        for s, name in enumerate(args.subjects):
            t.add_row(name, *(f"{v:.3f}" for v in cvr["r2_subject_dim"][ia, s, :k]))
        con.print(t)
    else:
        con.print("No cross-validation (cv is off): no held-out scores.")
    loadings = model.shared_axes_ / np.linalg.norm(model.shared_axes_, axis=0)
    t = _table("Shared axes (unit-length loadings on the behaviour features)")
    t.add_column("feature")
    for j in range(k):
        t.add_column(f"dim {j + 1}", justify="right")
    for name, row in zip(args.behavior_names, loadings, strict=True):
        t.add_row(name, *(f"{v:+.3f}" for v in row))
    con.print(t)
    if out is not None:
        con.print(f"Model saved to [bold]{out}[/bold]")


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
    (`sharedrep.simulate_study`). Writes OUT/study.toml (analyse it with
    `sharedrep run OUT/study.toml --out RESULTS`), OUT/nwb/*.nwb and OUT/truth.json.
    """
    from .io.results import write_json
    from .simulate_study import StudyEffects, simulate_study

    con = console()
    with user_errors():
        try:
            day_list = tuple(int(x) for x in days.split(",") if x.strip())
        except ValueError:
            raise UserError(f"--days must be comma-separated integers; got {days!r}") from None
        out = prepare_out_dir(out, force)
        effects = StudyEffects.null() if null else None
        with con.status("Simulating..."):
            sim = simulate_study(
                n_mice=mice,
                days=day_list,
                trials_per_session=trials,
                effects=effects,
                seed=seed,
            )
        con.print(
            f"[green]{_mark(con)}[/green] Simulated {len(sim.sessions)} sessions "
            f"({mice} mice, days {list(sim.truth['days'])}, {len(sim.truth['populations'])} "
            f"populations{', effects off' if null else ''})"
        )
        toml = _write_study_with_progress(sim, out, force, con)
        write_json(sim.truth, out / "truth.json", overwrite=force)
    con.print(f"Study file: [bold]{toml}[/bold]  (ground truth: {out / 'truth.json'})")


def _write_study_with_progress(sim, out: Path, force: bool, con: Console) -> Path:
    """``sim.write(out)`` with a progress bar over the NWB files."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from . import simulate_study as ss
    from .io import write_nwb
    from .io.results import atomic_write as write_atomically

    make_toml = getattr(ss, "_study_toml", None)
    if make_toml is None:  # no access to the TOML writer: write everything at once
        with con.status(f"Writing {len(sim.sessions)} NWB files and study.toml..."):
            return sim.write(out, overwrite=force)
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
        for s, p in zip(sim.sessions, paths, strict=True):
            write_nwb(s, p, overwrite=force, neural_unit="dF/F")
            bar.advance(task)
    text = make_toml(sim, [p.relative_to(out) for p in paths])
    write_atomically(toml, lambda tmp: tmp.write_text(text, encoding="utf-8"), overwrite=force)
    con.print(f"[green]{_mark(con)}[/green] Wrote {len(paths)} NWB files and study.toml to {out}")
    return toml


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
        bool, typer.Option("--force", help="Replace an existing report.html.")
    ] = False,
) -> None:
    """(Re)build report.html from the tables, figures and results.json of a results folder.

    Reads RESULTS_DIR/results.json, tables/*.csv and figures/*.png (edited or
    re-rendered files are picked up) and writes RESULTS_DIR/report.html.
    """
    from .report import rebuild_report

    con = console()
    with user_errors():
        path = rebuild_report(results_dir, overwrite=force)
    con.print(f"Report: [bold]{path}[/bold]")


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
