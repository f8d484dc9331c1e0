"""The learning-study analyses (cued lever push; inputs to M1; optogenetics; silencing).

Every analysis takes a :class:`sharedrep.SessionCollection` and returns an
:class:`AnalysisResult` (tidy table, figure, headline numbers with p-values / intervals,
a paragraph of text). :func:`run_study` runs them all in order. Each analysis computes
tables in private steps, draws them with :mod:`sharedrep.study.figures` and summarises and
describes them; the package may import ``sharedrep.utils``, ``sharedrep.data``,
``sharedrep.core`` and ``sharedrep.inference`` (never ``sharedrep.app``).

========================  ==========================================================
function                  question
========================  ==========================================================
learning_curves           does behaviour get faster and more stereotyped with days?
encoding_by_population    which input encodes the learned movement (per stage)?
shared_representation     what are the shared axes, and the latents around movement?
lag_profiles              when, relative to movement, do inputs carry it?
stimulation_responses     which M1 units are driven by thalamic stimulation?
encoding_overlap          do driven units encode the movement (more in experts)?
selective_activation      are encoding units kept active and others suppressed?
silencing_effects         does silencing the inputs impair the learned movement?
========================  ==========================================================
"""

from sharedrep.study._result import AnalysisResult
from sharedrep.study.activation import selective_activation, unit_activity
from sharedrep.study.behavior import learning_curves, trajectory_reproducibility, trial_measures
from sharedrep.study.inactivation import silencing_effects
from sharedrep.study.optogenetics import (
    encoding_overlap,
    overlap_counts,
    stimulation_responses,
    unit_encoding_table,
)
from sharedrep.study.pipeline import (
    ANALYSES,
    DEFAULT_SETTINGS,
    resolve_settings,
    run_study,
)
from sharedrep.study.populations import encoding_by_population, fit_cells
from sharedrep.study.representation import shared_representation
from sharedrep.study.timing import lag_profiles

__all__ = [
    "ANALYSES",
    "AnalysisResult",
    "DEFAULT_SETTINGS",
    "encoding_by_population",
    "encoding_overlap",
    "fit_cells",
    "shared_representation",
    "lag_profiles",
    "learning_curves",
    "overlap_counts",
    "resolve_settings",
    "run_study",
    "selective_activation",
    "silencing_effects",
    "stimulation_responses",
    "trajectory_reproducibility",
    "trial_measures",
    "unit_activity",
    "unit_encoding_table",
]
