"""The application layer: command line, demo, report and figures.

:mod:`~sharedrep.app.cli` (the ``sharedrep`` commands) calls :mod:`~sharedrep.app.demo`,
:mod:`~sharedrep.app.report` and :mod:`~sharedrep.app.plots`; the helpers both the
command line and the demo need (consoles, user errors, output folders) live in
:mod:`~sharedrep.app._console`, so the command line depends on the demo one way only.
This layer is the last of the flow ``files -> sessions -> model -> inference ->
analyses -> report`` and may import every other layer; no layer imports it.
"""
