"""Run every learning-study analysis in order: :func:`run_study`."""

from __future__ import annotations

import time

from sharedrep.data.session import SessionCollection
from sharedrep.study._common import (
    empty_figure,
    make_model,
    naming,
    single_blas,
)
from sharedrep.study._result import AnalysisResult
from sharedrep.study.activation import selective_activation
from sharedrep.study.behavior import learning_curves
from sharedrep.study.inactivation import silencing_effects
from sharedrep.study.optogenetics import (
    encoding_overlap,
    stimulation_responses,
    unit_encoding_table,
)
from sharedrep.study.populations import encoding_by_population
from sharedrep.study.representation import shared_representation
from sharedrep.study.timing import lag_profiles

__all__ = ["run_study", "DEFAULT_SETTINGS", "ANALYSES", "resolve_settings"]

#: Names of the analyses, in the order :func:`run_study` runs them.
ANALYSES = (
    "learning_curves",
    "encoding_by_population",
    "shared_representation",
    "lag_profiles",
    "stimulation_responses",
    "encoding_overlap",
    "selective_activation",
    "silencing_effects",
)

#: Default settings (small: the default simulated study runs in about a minute on 2 cores).
DEFAULT_SETTINGS: dict = {
    # ShaReD template (keys of the study file's [analysis] table)
    "n_shared": 1,
    "alpha": "auto",
    "alphas": None,
    "lags": [0, 2, 4],
    "behavior_metric": "correlation",
    "cv": 5,
    "selection": "best",
    "random_state": 0,
    # statistics
    "n_permutations": 29,
    "n_bootstrap": 29,
    "n_perm_groups": None,
    "n_perm_units": 99,
    "unit_whole_trials": False,
    "n_perm_overlap": 2000,
    "min_shift": None,
    "fdr": 0.05,
    # selection of data
    "populations": None,
    "stages": None,
    "within_trials": True,
    "days_per_stage": 2,
    "profile_lags": list(range(-2, 8)),
    "lever": None,
    "stim_population": None,
    "activation_population": None,
    "n_jobs": 1,
}
_IGNORED = {"output", "backend"}


def resolve_settings(collection: SessionCollection, settings: dict | None = None) -> dict:
    """Effective settings: defaults, then the collection's ``analysis``, then ``settings``.

    Parameters
    ----------
    collection : SessionCollection
        Its ``analysis`` dict (the study file's ``[analysis]`` table) is used.
    settings : dict, optional
        Overrides.

    Returns
    -------
    dict

    Raises
    ------
    ValueError
        Unknown keys (``output`` and ``backend`` are accepted and ignored here: the
        analyses compute in-process; ``backend`` is the default of ``sharedrep fit``).
    """
    if settings is not None and not isinstance(settings, dict):
        raise TypeError(f"settings must be a dict; got {type(settings).__name__}")
    merged = dict(DEFAULT_SETTINGS)
    for source in (collection.analysis or {}, settings or {}):
        unknown = sorted(k for k in source if k not in DEFAULT_SETTINGS and k not in _IGNORED)
        if unknown:
            raise ValueError(
                f"unknown analysis setting(s) {unknown}; allowed: {sorted(DEFAULT_SETTINGS)}"
            )
        merged.update({k: v for k, v in source.items() if k in DEFAULT_SETTINGS})
    if merged["n_perm_groups"] is None:
        merged["n_perm_groups"] = merged["n_permutations"]
    if isinstance(merged["min_shift"], float):
        merged["min_shift"] = int(round(merged["min_shift"]))
    return merged


def _skipped(name: str, why: str) -> AnalysisResult:
    import pandas as pd

    return AnalysisResult(
        name=name,
        table=pd.DataFrame(),
        figure=empty_figure(why),
        summary={"skipped": why},
        description=f"Not run: {why}.",
    )


@single_blas
def run_study(
    collection: SessionCollection, settings: dict | None = None, progress=True
) -> dict[str, AnalysisResult]:
    """Run every analysis of the learning study, in order, with a progress bar.

    Order (keys of the result, see :data:`ANALYSES`): learning curves
    (:func:`~sharedrep.study.learning_curves`), encoding by population x stage
    (:func:`~sharedrep.study.encoding_by_population`), shared-axes loadings and latents
    around movement onset per population x stage
    (:func:`~sharedrep.study.representation.shared_representation`), lag profiles
    (:func:`~sharedrep.study.lag_profiles`), stimulation responses
    (:func:`~sharedrep.study.stimulation_responses`), overlap of driven and encoding
    units (:func:`~sharedrep.study.encoding_overlap`), selective activation
    (:func:`~sharedrep.study.selective_activation`) and silencing effects
    (:func:`~sharedrep.study.silencing_effects`). Analyses whose data are missing (no
    stimulation or silencing trials) give a result whose ``summary`` is
    ``{"skipped": reason}``. Each result's ``summary["runtime_s"]`` is its wall time.

    Parameters
    ----------
    collection : SessionCollection
        The study (e.g. :func:`sharedrep.load_study` or ``simulate_study().collection``).
    settings : dict, optional
        Overrides of :data:`DEFAULT_SETTINGS` (after the collection's ``analysis``
        table). Model: ``n_shared``, ``alpha`` (number, list or "auto"), ``alphas``,
        ``lags``, ``behavior_metric``, ``cv``, ``selection`` ("best"/"1se"),
        ``random_state``. Statistics: ``n_permutations`` (per population x stage),
        ``n_bootstrap``, ``n_perm_groups`` (group comparisons; default
        ``n_permutations``), ``n_perm_units`` (unit encoding), ``unit_whole_trials``
        (whole-trial shifts in the unit encoding null; default False), ``n_perm_overlap``,
        ``min_shift``, ``fdr``. Data: ``populations``, ``stages``, ``within_trials``,
        ``days_per_stage``, ``profile_lags`` (lags scanned by the lag profiles),
        ``lever`` (lever-position feature), ``stim_population`` (population of the
        stimulation sessions; default all), ``activation_population`` (population for
        the selective activation when there is no stimulation), ``n_jobs``.
    progress : bool, default True
        Show rich progress bars.

    Returns
    -------
    dict of str to AnalysisResult
        In the order of :data:`ANALYSES`.
    """
    cfg = resolve_settings(collection, settings)
    model = make_model(
        n_shared=cfg["n_shared"],
        alpha=cfg["alpha"],
        alphas=cfg["alphas"],
        lags=cfg["lags"],
        behavior_metric=cfg["behavior_metric"],
        cv=cfg["cv"],
        selection=cfg["selection"],
        random_state=cfg["random_state"],
    )
    seed = int(cfg["random_state"] or 0)
    common = dict(days_per_stage=cfg["days_per_stage"], random_state=seed)
    bar = None
    if progress:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        bar = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=True,
        )
        bar.start()
    results: dict[str, AnalysisResult] = {}
    try:
        top = bar.add_task("study", total=len(ANALYSES)) if bar is not None else None
        sub = bar if bar is not None else False

        def run(name, fn):
            if bar is not None:
                bar.update(top, description=f"study: {name}")
            t0 = time.perf_counter()
            with naming(f"analysis {name}"):
                res = fn()
            res.summary["runtime_s"] = round(time.perf_counter() - t0, 3)
            results[name] = res
            if bar is not None:
                bar.advance(top)
            return res

        run(
            "learning_curves",
            lambda: learning_curves(collection, lever=cfg["lever"], random_state=seed),
        )
        run(
            "encoding_by_population",
            lambda: encoding_by_population(
                collection,
                n_perm=cfg["n_permutations"],
                n_boot=cfg["n_bootstrap"],
                populations=cfg["populations"],
                stages=cfg["stages"],
                model=model,
                n_perm_groups=cfg["n_perm_groups"],
                within_trials=cfg["within_trials"],
                min_shift=cfg["min_shift"],
                n_jobs=cfg["n_jobs"],
                progress=sub,
                **common,
            ),
        )
        run(
            "shared_representation",
            lambda: shared_representation(
                collection,
                populations=cfg["populations"],
                stages=cfg["stages"],
                model=model,
                within_trials=cfg["within_trials"],
                progress=sub,
                **common,
            ),
        )
        run(
            "lag_profiles",
            lambda: lag_profiles(
                collection,
                cfg["profile_lags"],
                populations=cfg["populations"],
                stages=cfg["stages"],
                model=model,
                within_trials=cfg["within_trials"],
                progress=sub,
                **common,
            ),
        )
        stim = run(
            "stimulation_responses",
            lambda: stimulation_responses(
                collection, fdr=cfg["fdr"], population=cfg["stim_population"]
            ),
        )
        if len(stim.table):
            ov = run(
                "encoding_overlap",
                lambda: encoding_overlap(
                    collection,
                    stim.table,
                    model=model,
                    n_perm_units=cfg["n_perm_units"],
                    fdr=cfg["fdr"],
                    n_perm=cfg["n_perm_overlap"],
                    whole_trials=cfg["unit_whole_trials"],
                    progress=sub,
                    **common,
                ),
            )
            enc_table = ov.tables["unit_encoding"]
        else:
            run("encoding_overlap", lambda: _skipped("encoding_overlap", "no stimulation trials"))
            enc_table = None
            pop = cfg["activation_population"]
            if pop is not None:
                enc_table = unit_encoding_table(
                    collection,
                    populations=[pop],
                    stages=cfg["stages"],
                    model=model,
                    n_perm=cfg["n_perm_units"],
                    fdr=cfg["fdr"],
                    whole_trials=cfg["unit_whole_trials"],
                    progress=sub,
                    **common,
                )
        if enc_table is not None and len(enc_table):
            run(
                "selective_activation",
                lambda: selective_activation(collection, enc_table, **common),
            )
        else:
            run(
                "selective_activation",
                lambda: _skipped(
                    "selective_activation",
                    "no unit-encoding table (no stimulation sessions and no "
                    "activation_population setting)",
                ),
            )
        run(
            "silencing_effects",
            lambda: silencing_effects(collection, lever=cfg["lever"], random_state=seed),
        )
    finally:
        if bar is not None:
            bar.stop()
    return results
