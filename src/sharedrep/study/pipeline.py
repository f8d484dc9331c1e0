"""Run every learning-study analysis in order: :func:`run_study`.

The study is a declarative plan (``_PLAN``: name, analysis, arguments drawn from the
settings and the results so far, or the reason it is skipped) run by a short loop. It may
import ``sharedrep.data`` and the other ``sharedrep.study`` modules (never
``sharedrep.app``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sharedrep.data.session import SessionCollection
from sharedrep.study._common import (
    empty_figure,
    make_model,
    naming,
    session_provenance,
    single_blas,
)
from sharedrep.study._result import AnalysisResult
from sharedrep.study.activation import selective_activation
from sharedrep.study.behavior import learning_curves
from sharedrep.study.inactivation import silencing_effects
from sharedrep.study.optogenetics import (
    check_populations,
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


def _skipped(name: str, why: str, collection: SessionCollection) -> AnalysisResult:
    """The result of an analysis that could not run: every session left out, with why."""
    import pandas as pd

    sessions = session_provenance(collection, (), {s.session_id: why for s in collection})
    return AnalysisResult(
        name=name,
        table=pd.DataFrame(),
        figure=empty_figure(why),
        summary={"skipped": why, "sessions": sessions},
        description=f"Not run: {why}.",
    )


@dataclass
class _Run:
    """What the analyses of one :func:`run_study` call share.

    Attributes
    ----------
    collection : SessionCollection
    cfg : dict
        Resolved settings (:func:`resolve_settings`).
    model : ShaReD
        Template of every fit (cloned by the analyses).
    progress : rich.progress.Progress or False
        Where the analyses show their own progress.
    results : dict of str to AnalysisResult
        The analyses run so far, in order.
    """

    collection: SessionCollection
    cfg: dict
    model: object
    progress: object = False
    results: dict = field(default_factory=dict)

    @property
    def seed(self) -> int:
        """Seed of the analyses (``random_state``; 0 when unset)."""
        return int(self.cfg["random_state"] or 0)

    @property
    def common(self) -> dict:
        """Keyword arguments every stage-wise analysis takes."""
        return dict(days_per_stage=self.cfg["days_per_stage"], random_state=self.seed)

    def cells(self) -> dict:
        """Selection and fitting keywords of the population x stage analyses."""
        return dict(
            populations=self.cfg["populations"],
            stages=self.cfg["stages"],
            model=self.model,
            within_trials=self.cfg["within_trials"],
            progress=self.progress,
            **self.common,
        )


def _model_of(cfg: dict):
    """The ShaReD template described by the settings' model keys."""
    keys = ("n_shared", "alpha", "alphas", "lags", "behavior_metric", "cv", "selection")
    return make_model(**{k: cfg[k] for k in keys}, random_state=cfg["random_state"])


def _behaviour_args(r: _Run):
    """Arguments of the behavioural analyses (learning curves, silencing)."""
    return (r.collection,), dict(lever=r.cfg["lever"], random_state=r.seed, stages=r.cfg["stages"])


def _encoding_args(r: _Run):
    """Arguments of :func:`~sharedrep.study.encoding_by_population`."""
    cfg = r.cfg
    kw = dict(
        n_perm=cfg["n_permutations"],
        n_boot=cfg["n_bootstrap"],
        n_perm_groups=cfg["n_perm_groups"],
        min_shift=cfg["min_shift"],
        n_jobs=cfg["n_jobs"],
    )
    return (r.collection,), {**kw, **r.cells()}


def _representation_args(r: _Run):
    """Arguments of :func:`~sharedrep.study.shared_representation`."""
    return (r.collection,), r.cells()


def _lag_args(r: _Run):
    """Arguments of :func:`~sharedrep.study.lag_profiles`."""
    return (r.collection, r.cfg["profile_lags"]), r.cells()


def _stimulation_args(r: _Run):
    """Arguments of :func:`~sharedrep.study.stimulation_responses`.

    Raises
    ------
    ValueError
        ``stim_population`` is not a population of the study.
    """
    pop = r.cfg["stim_population"]
    if pop is not None:
        check_populations(r.collection, pop, "stim_population")
    return (r.collection,), dict(fdr=r.cfg["fdr"], population=pop, stages=r.cfg["stages"])


def _unit_args(r: _Run) -> dict:
    """Keywords of the unit-level encoding classification."""
    return dict(
        model=r.model,
        fdr=r.cfg["fdr"],
        whole_trials=r.cfg["unit_whole_trials"],
        progress=r.progress,
        **r.common,
    )


def _overlap_args(r: _Run):
    """Arguments of :func:`~sharedrep.study.encoding_overlap`; why not, without stimulation."""
    stim = r.results["stimulation_responses"]
    if not len(stim.table):
        return stim.summary.get("skipped") or "no stimulation trials"
    kw = dict(
        n_perm_units=r.cfg["n_perm_units"],
        n_perm=r.cfg["n_perm_overlap"],
        stages=r.cfg["stages"],
    )
    return (r.collection, stim.table), {**kw, **_unit_args(r)}


def _encoding_units(r: _Run):
    """Unit-encoding table of the selective activation.

    With ``activation_population`` set: that population's units (the overlap's rows of it
    when the overlap classified them, else classified here), never another population's.
    Without it: the overlap's table (the stimulated populations), else None.
    """
    pop = r.cfg["activation_population"]
    if len(r.results["stimulation_responses"].table):
        table = r.results["encoding_overlap"].tables["unit_encoding"]
        if pop is None:
            return table
        mine = table["population"] == pop
        if mine.any():
            return table[mine].reset_index(drop=True)
    if pop is None:
        return None
    return unit_encoding_table(
        r.collection,
        populations=[pop],
        stages=r.cfg["stages"],
        n_perm=r.cfg["n_perm_units"],
        **_unit_args(r),
    )


def _activation_args(r: _Run):
    """Arguments of :func:`~sharedrep.study.selective_activation`; why not, without units."""
    enc_table = _encoding_units(r)
    if enc_table is None or not len(enc_table):
        return (
            "no unit-encoding table (no stimulation sessions and no activation_population setting)"
        )
    return (r.collection, enc_table), {**r.common, "stages": r.cfg["stages"]}


#: The study, in order: (name, analysis, arguments from the run so far or why it is skipped).
_PLAN = (
    ("learning_curves", learning_curves, _behaviour_args),
    ("encoding_by_population", encoding_by_population, _encoding_args),
    ("shared_representation", shared_representation, _representation_args),
    ("lag_profiles", lag_profiles, _lag_args),
    ("stimulation_responses", stimulation_responses, _stimulation_args),
    ("encoding_overlap", encoding_overlap, _overlap_args),
    ("selective_activation", selective_activation, _activation_args),
    ("silencing_effects", silencing_effects, _behaviour_args),
)


def _progress_bar():
    """A started, transient rich progress bar (description, bar, count, elapsed time)."""
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
    return bar


def _run_one(name: str, func, arguments, run: _Run) -> AnalysisResult:
    """Prepare and run one analysis (or make its skipped result); records its wall time (s).

    Preparing the arguments may already compute (e.g. the unit-encoding table of the
    selective activation): errors there are named after the analysis as well.
    """
    t0 = time.perf_counter()
    with naming(f"analysis {name}"):
        arguments = arguments(run)
        if isinstance(arguments, str):
            res = _skipped(name, arguments, run.collection)
        else:
            res = func(*arguments[0], **arguments[1])
    res.summary["runtime_s"] = round(time.perf_counter() - t0, 3)
    return res


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
    ``{"skipped": reason}`` (with the sessions left out, and for the stimulation and
    silencing analyses their usual keys, empty), e.g. ``"no stimulation sessions in the
    study"``: data that are absent, distinct from an analysis that ran but is not
    testable with few mice. Each result's ``summary["runtime_s"]`` is its wall time.

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
        stimulation sessions; default all; a population the study does not have raises
        ValueError before any analysis runs), ``activation_population`` (population of
        the selective activation; default: the stimulated populations, whose units the
        overlap classified; without stimulation sessions the activation runs only when it
        is set), ``n_jobs``.
    progress : bool, default True
        Show rich progress bars.

    Returns
    -------
    dict of str to AnalysisResult
        In the order of :data:`ANALYSES`.

    Raises
    ------
    ValueError
        Unknown settings (:func:`resolve_settings`), or a ``stim_population`` or
        ``activation_population`` that no session of the study has (the message lists the
        populations that exist).
    """
    cfg = resolve_settings(collection, settings)
    for setting in ("stim_population", "activation_population"):  # before the long run
        if cfg[setting] is not None:
            check_populations(collection, cfg[setting], setting)
    bar = _progress_bar() if progress else None
    run = _Run(collection, cfg, _model_of(cfg), bar if bar is not None else False)
    try:
        top = bar.add_task("study", total=len(ANALYSES)) if bar is not None else None
        for name, func, arguments in _PLAN:
            if bar is not None:
                bar.update(top, description=f"study: {name}")
            run.results[name] = _run_one(name, func, arguments, run)
            if bar is not None:
                bar.advance(top)
    finally:
        if bar is not None:
            bar.stop()
    return run.results
