"""The data layer: from files on disk to validated sessions.

:mod:`~sharedrep.data.session` holds the data model (one session, a collection of
sessions), :mod:`~sharedrep.data.preprocess` the signal preprocessing (dF/F, resampling,
movement onsets, exclusion masks), :mod:`~sharedrep.data.studyfile` the TOML study files
and :mod:`sharedrep.data.io` the file readers and writers. Modules of this layer may
import only ``sharedrep.utils`` and ``sharedrep.data``, never the model, inference,
simulation, study or application layers.
"""
