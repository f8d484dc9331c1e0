"""Self-contained HTML reports of the learning-study analyses.

:func:`write_report` turns the results of :func:`sharedrep.study.pipeline.run_study`
(a dict of :class:`~sharedrep.study._result.AnalysisResult`) into a results folder::

    out_dir/
      report.html          one self-contained file: figures embedded as base64 PNG,
                           tables, each analysis's description and headline numbers,
                           the settings, software versions, data files + SHA-256
      results.json         everything needed to rebuild report.html (rebuild_report)
      figures/<name>.png   every figure as PNG ...
      figures/<name>.svg   ... and SVG
      tables/<name>.csv    every table (supplementary tables: <name>-<key>.csv)

``results.json`` records, for every table, its number of rows and the name and dtype of
each column, so that :func:`rebuild_report` reads the CSV back with the types it was
written with (zero-padded ids such as ``"001"`` stay strings; an empty table stays
empty). Tables of results folders without these records, and columns added to a CSV by
hand, are read without lossy type inference: a column becomes numeric or boolean only
when every value is written exactly as that number or boolean would be.

:func:`rebuild_report` rebuilds ``report.html`` from ``results.json`` and the saved
tables and PNG figures (``sharedrep report RESULTS_DIR``), so the report can be
regenerated without re-running the analyses.

Every file is written atomically (:func:`sharedrep.utils.files.atomic_write`); existing
files are never replaced unless ``overwrite=True`` (checked for every file before the
first one is written). Part of the ``app`` layer: may import every other layer.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html
import importlib.metadata
import io
import json
import math
import os
import platform
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sharedrep.data.io.results import (
    atomic_write,
    read_json,
    read_table,
    table_layout,
    to_jsonable,
    write_json,
    write_table,
)

__all__ = [
    "CLAIM_STATUSES",
    "REPORT_NAME",
    "RESULTS_JSON",
    "TruthCheck",
    "file_checksums",
    "rebuild_report",
    "sha256sum",
    "software_versions",
    "write_report",
]

REPORT_NAME = "report.html"
RESULTS_JSON = "results.json"
#: Rows of a table shown in the HTML (the CSV always has all of them).
MAX_HTML_ROWS = 60
#: Resolution of the PNG figures.
PNG_DPI = 110
_FORMAT_VERSION = 1

#: Distributions whose versions the report lists (missing ones are skipped).
VERSION_PACKAGES = (
    "sharedrep",
    "numpy",
    "scipy",
    "scikit-learn",
    "pandas",
    "matplotlib",
    "pynwb",
    "hdmf",
    "ndx-pose",
    "typer",
    "rich",
)


#: The verdicts of a ground-truth claim (``TruthCheck.status``).
CLAIM_STATUSES = ("recovered", "not recovered", "not testable")


@dataclass(frozen=True)
class TruthCheck:
    """A claim about the simulator's ground truth and whether the analyses recovered it.

    Attributes
    ----------
    claim : str
    passed : bool
        Recovered. Always False for a claim that is not testable.
    detail : str
        The numbers behind the verdict.
    testable : bool, default True
        False when the results cannot answer the claim (a NaN statistic, too few
        animals, a skipped analysis); such a claim is never counted as recovered.
    """

    claim: str
    passed: bool
    detail: str = ""
    testable: bool = True

    def __post_init__(self) -> None:
        if self.passed and not self.testable:
            raise ValueError(f"claim {self.claim!r}: a claim that is not testable cannot pass")

    @property
    def status(self) -> str:
        """``"recovered"``, ``"not recovered"`` or ``"not testable"``."""
        if not self.testable:
            return "not testable"
        return "recovered" if self.passed else "not recovered"


# --------------------------------------------------------------------------- helpers
def software_versions() -> dict[str, str]:
    """Versions of Python, the platform and the scientific packages in use.

    Returns
    -------
    dict
        ``{"python": "3.12.1", "platform": ..., "numpy": ..., ...}``; packages that are
        not installed are left out.
    """
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in VERSION_PACKAGES:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            if dist == "sharedrep":
                from sharedrep._version import __version__

                out[dist] = __version__
    return out


def sha256sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file (read in chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_checksums(paths: Iterable[str | os.PathLike]) -> list[dict]:
    """Path, size and SHA-256 of every file; folders are expanded to their files.

    Parameters
    ----------
    paths : iterable of path
        Files or folders (e.g. a suite2p plane folder); duplicates are listed once.

    Returns
    -------
    list of dict
        ``{"path": str (absolute), "bytes": int, "sha256": str}`` in the order given.

    Raises
    ------
    FileNotFoundError
        A path does not exist.
    """
    seen: dict[str, dict] = {}
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise FileNotFoundError(f"data file not found: {p}")
        files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
        for f in files:
            key = str(f.resolve())
            if key not in seen:
                seen[key] = {"path": key, "bytes": f.stat().st_size, "sha256": sha256sum(f)}
    return list(seen.values())


def _command_line() -> str:
    """The command that is running (``python -m sharedrep`` shown as ``sharedrep``)."""
    if not sys.argv or not sys.argv[0]:
        return ""
    prog = Path(sys.argv[0]).name
    if prog == "__main__.py" and Path(sys.argv[0]).parent.name == "sharedrep":
        prog = "sharedrep"
    return " ".join([prog, *sys.argv[1:]])


def _safe_name(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._")
    return s or "analysis"


def _check_results(results) -> None:
    if not isinstance(results, Mapping) or not results:
        raise ValueError("results must be a non-empty dict of analysis name -> AnalysisResult")
    for key, r in results.items():
        missing = [
            a for a in ("name", "table", "figure", "summary", "description") if not hasattr(r, a)
        ]
        if missing:
            raise TypeError(
                f"results[{key!r}] is a {type(r).__name__}, not an AnalysisResult "
                f"(missing {missing})"
            )
        if not isinstance(r.table, pd.DataFrame):
            raise TypeError(f"results[{key!r}].table must be a pandas DataFrame")


def _normalise_checks(truth_checks) -> list[dict] | None:
    """Claims as ``{"claim", "passed", "status", "detail"}`` dicts (``results.json``).

    Accepts :class:`TruthCheck`, dicts (``status`` optional) and ``(claim, passed,
    detail)`` tuples. A claim that is not testable never passes.
    """
    if truth_checks is None:
        return None
    out = []
    for c in truth_checks:
        if isinstance(c, TruthCheck):
            check = c
        elif isinstance(c, Mapping):
            status = c.get("status")
            if status is not None and status not in CLAIM_STATUSES:
                raise ValueError(
                    f"truth check {c.get('claim')!r}: status {status!r} is not one of "
                    f"{CLAIM_STATUSES}"
                )
            testable = status != "not testable"
            passed = bool(c["passed"]) and testable and status in (None, "recovered")
            check = TruthCheck(str(c["claim"]), passed, str(c.get("detail", "")), testable)
        else:
            claim, passed, detail = c
            check = TruthCheck(str(claim), bool(passed), str(detail))
        out.append(
            {
                "claim": str(check.claim),
                "passed": bool(check.passed),
                "status": check.status,
                "detail": str(check.detail),
            }
        )
    return out


def _figure_bytes(fig, fmt: str) -> bytes:
    buf = io.BytesIO()
    kw = {"dpi": PNG_DPI} if fmt == "png" else {}
    fig.savefig(buf, format=fmt, bbox_inches="tight", **kw)
    return buf.getvalue()


# --------------------------------------------------------------------------- sections
@dataclass
class _Section:
    key: str
    name: str
    description: str
    summary: dict
    figures: list[tuple[str, bytes]]  # (file stem, PNG bytes)
    tables: list[tuple[str, str, pd.DataFrame]]  # (label, CSV file name, table)
    meta: dict = field(default_factory=dict)


def write_report(
    results: Mapping,
    out_dir: str | os.PathLike,
    *,
    settings: Mapping | None,
    data_files: Sequence[str | os.PathLike] = (),
    title: str = "sharedrep learning-study report",
    overwrite: bool = False,
    truth_checks: Sequence | None = None,
    extra_figures: Mapping[str, Mapping] | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """Write the HTML report, the figures (PNG, SVG), the tables (CSV) and results.json.

    Parameters
    ----------
    results : dict of str to AnalysisResult
        Analyses in report order (e.g. the output of ``run_study``).
    out_dir : path
        Results folder (created if missing).
    settings : dict or None
        Analysis settings shown in the report (e.g. the study file's ``[analysis]``).
    data_files : sequence of path, default ()
        Input files (or folders) listed with their size and SHA-256 checksum.
    title : str
    overwrite : bool, default False
        Replace existing files of the same names. Without it nothing is written when
        any of them exists.
    truth_checks : sequence of (claim, passed, detail), optional
        Claims about a simulation's ground truth (``TruthCheck``, tuples or dicts);
        shown in a "Ground truth" section at the top of the report.
    extra_figures : dict of analysis name to {figure name: Figure}, optional
        Additional figures of an analysis (saved as ``<analysis>-<figure name>``).
    notes : sequence of str
        Paragraphs shown under the title (e.g. how the data were produced).

    Returns
    -------
    pathlib.Path
        Path of ``report.html``.

    Raises
    ------
    FileExistsError
        A file to write exists and ``overwrite`` is False.
    FileNotFoundError
        A data file does not exist.
    ValueError, TypeError
        ``results`` is empty or holds objects that are not analysis results.
    """
    _check_results(results)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} exists and is not a directory")
    checks = _normalise_checks(truth_checks)
    extra_figures = dict(extra_figures or {})
    unknown = sorted(set(extra_figures) - set(results))
    if unknown:
        raise ValueError(f"extra_figures for analyses not in results: {unknown}")
    plan, meta_sections = _plan_files(results, extra_figures)
    if not overwrite:
        _refuse_existing(out, plan)  # before the checksums and figures (slow)
    data = file_checksums(data_files)
    png = _write_files(out, plan, overwrite)
    meta = {
        "format_version": _FORMAT_VERSION,
        "title": str(title),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": _command_line(),
        "notes": [str(n) for n in notes],
        "settings": to_jsonable(dict(settings or {})),
        "versions": software_versions(),
        "data_files": data,
        "truth_checks": checks,
        "analyses": meta_sections,
    }
    write_json(meta, out / RESULTS_JSON, overwrite=overwrite)
    sections = [
        _section_of(section_meta, result, png)
        for section_meta, result in zip(meta_sections, results.values(), strict=True)
    ]
    text = _with_evaluate(_render(meta, sections), out)
    return atomic_write(
        out / REPORT_NAME, lambda tmp: tmp.write_text(text, encoding="utf-8"), overwrite=overwrite
    )


def _plan_files(results: Mapping, extra_figures: Mapping) -> tuple[list, list[dict]]:
    """Which files the report writes, and the ``results.json`` entry of each analysis.

    Returns ``(plan, meta_sections)``: ``plan`` lists ``(relative path, object, kind)``
    with kind ``"png"``, ``"svg"`` or ``"csv"``; file stems are made unique across the
    analyses (``name``, ``name_2``, ...).
    """
    plan: list[tuple[str, object, str]] = []
    meta_sections = []
    used: set[str] = set()

    def unique(stem: str) -> str:
        s, i = stem, 2
        while s in used:
            s, i = f"{stem}_{i}", i + 1
        used.add(s)
        return s

    for key, r in results.items():
        stem = unique(_safe_name(getattr(r, "name", None) or key))
        figs = [(stem, r.figure)] + [
            (unique(f"{stem}-{_safe_name(n)}"), f) for n, f in extra_figures.get(key, {}).items()
        ]
        tabs = [("main table", f"{stem}.csv", r.table)]
        for tkey, t in (getattr(r, "tables", None) or {}).items():
            if not isinstance(t, pd.DataFrame):
                raise TypeError(f"results[{key!r}].tables[{tkey!r}] must be a DataFrame")
            tabs.append((str(tkey), f"{unique(f'{stem}-{_safe_name(tkey)}')}.csv", t))
        for fstem, fig in figs:
            if fig is not None:
                plan.append((f"figures/{fstem}.png", fig, "png"))
                plan.append((f"figures/{fstem}.svg", fig, "svg"))
        plan += [(f"tables/{fname}", t, "csv") for _, fname, t in tabs]
        meta_sections.append(_section_meta(key, r, figs, tabs))
    return plan, meta_sections


def _section_meta(key, result, figs: list, tabs: list) -> dict:
    """The ``results.json`` entry of one analysis."""
    return {
        "key": str(key),
        "name": str(getattr(result, "name", key)),
        "description": str(result.description),
        "summary": to_jsonable(result.summary),
        "figures": [fstem for fstem, fig in figs if fig is not None],
        "tables": [{"label": label, "file": fname, **table_layout(t)} for label, fname, t in tabs],
    }


def _refuse_existing(out: Path, plan: list) -> None:
    """Raise FileExistsError when any file of the report already exists."""
    targets = [out / rel for rel, _, _ in plan] + [out / RESULTS_JSON, out / REPORT_NAME]
    existing = [p for p in targets if p.exists()]
    if existing:
        names = [str(p.relative_to(out)) for p in existing]
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise FileExistsError(
            f"{out}: {len(existing)} file(s) of the report already exist ({shown}); pass "
            "overwrite=True (CLI: --force) to replace them"
        )


def _write_files(out: Path, plan: list, overwrite: bool) -> dict[str, bytes]:
    """Write the planned figures and tables; return the PNG bytes by file stem."""
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    png: dict[str, bytes] = {}
    for rel, obj, kind in plan:
        path = out / rel
        if kind in ("png", "svg"):
            blob = _figure_bytes(obj, kind)
            if kind == "png":
                png[Path(rel).stem] = blob
            atomic_write(path, lambda tmp, b=blob: tmp.write_bytes(b), overwrite=overwrite)
        else:
            write_table(obj, path, overwrite=overwrite)
    return png


def _section_of(section_meta: dict, result, png: dict[str, bytes]) -> _Section:
    """One analysis as rendered: its metadata, PNG figures and tables."""
    tabs = [
        (t["label"], t["file"], tab)
        for t, tab in zip(section_meta["tables"], _tables_of(result), strict=True)
    ]
    return _Section(
        key=section_meta["key"],
        name=section_meta["name"],
        description=section_meta["description"],
        summary=section_meta["summary"],
        figures=[(f, png[f]) for f in section_meta["figures"]],
        tables=tabs,
    )


def _tables_of(r) -> list[pd.DataFrame]:
    return [r.table, *(getattr(r, "tables", None) or {}).values()]


def rebuild_report(
    results_dir: str | os.PathLike,
    *,
    overwrite: bool = False,
    output: str | os.PathLike | None = None,
) -> Path:
    """Rebuild ``report.html`` from a results folder written by :func:`write_report`.

    Reads ``results.json``, the tables (``tables/*.csv``) and the PNG figures
    (``figures/*.png``); the saved files may have been edited or re-rendered.

    Parameters
    ----------
    results_dir : path
        The results folder.
    overwrite : bool, default False
        Replace an existing report file.
    output : path, optional
        Report file to write (default ``results_dir / "report.html"``).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    NotADirectoryError
        ``results_dir`` is a file.
    FileNotFoundError
        No ``results.json``, or a table / figure it lists is missing.
    FileExistsError
        The report exists and ``overwrite`` is False.
    ValueError
        ``results.json`` is not a results file of this package.
    """
    d = Path(results_dir)
    if d.is_file():
        raise NotADirectoryError(f"{d} is a file, not a results folder")
    if not d.is_dir():
        raise FileNotFoundError(f"results folder not found: {d}")
    meta_path = d / RESULTS_JSON
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"{meta_path} not found: {d} is not a results folder written by "
            "`sharedrep run` / `sharedrep demo`"
        )
    meta = read_json(meta_path)
    if not isinstance(meta, dict) or not isinstance(meta.get("analyses"), list):
        raise ValueError(f"{meta_path}: not a sharedrep results file (no 'analyses' list)")
    target = Path(output) if output is not None else d / REPORT_NAME
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; pass overwrite=True (CLI: --force)")
    sections = []
    for ms in meta["analyses"]:
        figs = []
        for stem in ms.get("figures", []):
            p = d / "figures" / f"{stem}.png"
            if not p.is_file():
                raise FileNotFoundError(f"figure listed in {meta_path} is missing: {p}")
            figs.append((stem, p.read_bytes()))
        tabs = []
        for t in ms.get("tables", []):
            p = d / "tables" / t["file"]
            if not p.is_file():
                raise FileNotFoundError(f"table listed in {meta_path} is missing: {p}")
            tabs.append((t["label"], t["file"], read_table(p, layout=t)))
        sections.append(
            _Section(
                key=ms["key"],
                name=ms["name"],
                description=ms.get("description", ""),
                summary=ms.get("summary", {}),
                figures=figs,
                tables=tabs,
            )
        )
    text = _with_evaluate(_render(meta, sections), d)
    return atomic_write(
        target, lambda tmp: tmp.write_text(text, encoding="utf-8"), overwrite=overwrite
    )


# --------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;
margin-top:2em}h3{font-size:1.05em;margin-bottom:.3em}
table{border-collapse:collapse;font-size:.82em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:2px 6px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
.pass{color:#1a7f37;font-weight:bold}.fail{color:#b42318;font-weight:bold}
.meta{color:#666;font-size:.9em}pre{background:#f7f7f7;padding:.6em;overflow-x:auto;
font-size:.8em}img{max-width:100%;height:auto;border:1px solid #eee}
details{margin:.4em 0}summary{cursor:pointer}nav ul{columns:2}code{font-size:.9em}
.scroll{overflow-x:auto}
"""


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        return f"{v:.4g}"
    return str(v)


def _df_html(df: pd.DataFrame) -> str:
    shown = df.head(MAX_HTML_ROWS)
    cols = list(shown.columns)
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    body = []
    for row in shown.itertuples(index=False):
        cells = []
        for v in row:
            cls = "" if isinstance(v, (int, float)) and not isinstance(v, bool) else ' class="l"'
            cells.append(f"<td{cls}>{_e(_fmt(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    note = ""
    if len(df) > len(shown):
        note = f'<p class="meta">First {len(shown)} of {len(df)} rows.</p>'
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>'
        + "".join(body)
        + "</tbody></table></div>"
        + note
    )


def _kv_table(items: Iterable[tuple[str, str]]) -> str:
    rows = "".join(
        f'<tr><td class="l">{_e(k)}</td><td class="l">{_e(v)}</td></tr>' for k, v in items
    )
    return f"<table><tbody>{rows}</tbody></table>"


def _render(meta: dict, sections: list[_Section]) -> str:
    """The whole ``report.html``: head, contents, ground truth, sections, appendix."""
    checks = meta.get("truth_checks")
    parts = _render_head(meta) + _render_contents(sections, checks is not None)
    if checks is not None:
        parts.append(_render_truth_checks(checks))
    for section in sections:
        parts += _render_section(section)
    parts += _render_appendix(meta)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _render_head(meta: dict) -> list[str]:
    """HTML head, title, creation line and notes."""
    title = meta.get("title", "sharedrep report")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">Created {_e(meta.get("created", ""))} by sharedrep '
        f"{_e(meta.get('versions', {}).get('sharedrep', ''))}"
        + (f" (<code>{_e(meta['command'])}</code>)" if meta.get("command") else "")
        + "</p>",
    ]
    return parts + [f"<p>{_e(n)}</p>" for n in meta.get("notes", [])]


def _render_contents(sections: list[_Section], with_truth: bool) -> list[str]:
    """The table of contents (links to every section)."""
    nav = ["<nav><h2>Contents</h2><ul>"]
    if with_truth:
        nav.append('<li><a href="#ground-truth">Ground truth</a></li>')
    for s in sections:
        nav.append(f'<li><a href="#a-{_e(_safe_name(s.key))}">{_e(s.name)}</a></li>')
    nav.append(
        '<li><a href="#settings">Settings</a></li><li><a href="#versions">Software '
        'versions</a></li><li><a href="#data">Data files</a></li></ul></nav>'
    )
    return nav


def _claim_status(check: Mapping) -> str:
    """The verdict of a claim dict (``results.json`` written before statuses existed:
    from ``passed``)."""
    return check.get("status") or ("recovered" if check["passed"] else "not recovered")


def _render_truth_checks(checks: list[dict]) -> str:
    """The "Ground truth" section: a verdict and one row per claim."""
    statuses = [_claim_status(c) for c in checks]
    n_ok, n_untestable = statuses.count("recovered"), statuses.count("not testable")
    if n_ok == len(checks):
        verdict = f'<p class="pass">All {len(checks)} ground-truth claims were recovered.</p>'
    else:
        n_not = len(checks) - n_ok - n_untestable
        parts = []
        if n_not:
            parts.append(f"{n_not} of {len(checks)} ground-truth claims were NOT recovered")
        if n_untestable:
            parts.append(f"{n_untestable} of {len(checks)} ground-truth claims are not testable")
        verdict = f'<p class="fail">{"; ".join(parts)}.</p>'
    label = {"recovered": "recovered", "not recovered": "NOT recovered"}
    rows = "".join(
        f'<tr><td class="{"pass" if st == "recovered" else "fail"}">'
        f"{label.get(st, st)}</td>"
        f'<td class="l">{_e(c["claim"])}</td><td class="l">{_e(c["detail"])}</td></tr>'
        for c, st in zip(checks, statuses, strict=True)
    )
    return (
        '<h2 id="ground-truth">Ground truth</h2><p>The data are simulated; the simulator '
        "knows the true effects. Each claim compares the analyses' headline numbers with "
        "the simulator's ground truth; a claim the results cannot answer (a statistic that "
        "is not a number, too few animals) is not testable, never recovered.</p>"
        + verdict
        + '<table><thead><tr><th>result</th><th class="l">claim</th><th class="l">detail'
        f"</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _render_section(s: _Section) -> list[str]:
    """One analysis: description, embedded figures, headline numbers, tables."""
    parts = [
        f'<h2 id="a-{_e(_safe_name(s.key))}">{_e(s.name)}</h2>',
        f"<p>{_e(s.description)}</p>",
    ]
    for stem, blob in s.figures:
        b64 = base64.b64encode(blob).decode("ascii")
        parts.append(
            f'<figure><img alt="{_e(stem)}" src="data:image/png;base64,{b64}">'
            f'<figcaption class="meta">figures/{_e(stem)}.png, figures/{_e(stem)}.svg'
            "</figcaption></figure>"
        )
    if s.summary:
        parts.append(
            "<details><summary>Headline numbers (summary)</summary><pre>"
            + _e(json.dumps(s.summary, indent=2))
            + "</pre></details>"
        )
    for i, (label, fname, df) in enumerate(s.tables):
        inner = f"<h3>{_e(label)} <span class='meta'>(tables/{_e(fname)})</span></h3>"
        inner += _df_html(df)
        if i == 0:
            parts.append(inner)
        else:
            parts.append(f"<details><summary>{_e(label)}</summary>{inner}</details>")
    return parts


def _render_appendix(meta: dict) -> list[str]:
    """Settings, software versions and data files (with checksums)."""
    settings = meta.get("settings") or {}
    parts = ['<h2 id="settings">Settings</h2>']
    if settings:
        parts.append(_kv_table((k, json.dumps(v)) for k, v in settings.items()))
    else:
        parts.append("<p>Defaults of every analysis.</p>")
    parts.append('<h2 id="versions">Software versions</h2>')
    parts.append(_kv_table(meta.get("versions", {}).items()))
    parts.append('<h2 id="data">Data files</h2>')
    data = meta.get("data_files") or []
    if not data:
        return parts + ["<p>No data files were listed.</p>"]
    rows = "".join(
        f'<tr><td class="l">{_e(f["path"])}</td><td>{_e(f["bytes"])}</td>'
        f'<td class="l"><code>{_e(f["sha256"])}</code></td></tr>'
        for f in data
    )
    parts.append(
        '<table><thead><tr><th class="l">file</th><th>bytes</th><th class="l">SHA-256'
        f"</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    return parts


# --------------------------------------------------------------------------- evaluate
#: Sub-folder of a results folder holding the output of ``sharedrep evaluate``.
EVALUATE_DIR = "evaluate"


def _with_evaluate(text: str, folder: Path) -> str:
    """Add the "Does pooling animals help?" section (before the settings) when
    ``folder/evaluate/evaluation.json`` exists (``sharedrep evaluate ... --out
    RESULTS/evaluate``): the verdict, the calibration curves and the comparison table."""
    d = Path(folder) / EVALUATE_DIR
    if not (d / "evaluation.json").is_file():
        return text
    doc = read_json(d / "evaluation.json")
    parts = [
        '<h2 id="evaluate">Does pooling animals help?</h2>',
        f"<p><b>{_e(doc.get('verdict', ''))}</b></p>",
    ]
    png = d / "calibration_curves.png"
    if png.is_file():
        b64 = base64.b64encode(png.read_bytes()).decode("ascii")
        parts.append(
            f'<figure><img alt="calibration curves" src="data:image/png;base64,{b64}">'
            '<figcaption class="meta">evaluate/calibration_curves.png</figcaption></figure>'
        )
    if (d / "comparisons.csv").is_file():
        parts.append(
            "<h3>Decoders against their baselines, over animals "
            "<span class='meta'>(evaluate/comparisons.csv)</span></h3>"
        )
        parts.append(_df_html(pd.read_csv(d / "comparisons.csv")))
    section = "\n".join(parts) + "\n"
    text = text.replace('<h2 id="settings">', section + '<h2 id="settings">', 1)
    link = '<li><a href="#evaluate">Does pooling animals help?</a></li>'
    return text.replace('<li><a href="#settings">', link + '<li><a href="#settings">', 1)
