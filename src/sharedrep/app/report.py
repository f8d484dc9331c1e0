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
#: Tables longer than this are collapsed (``<details>``) in the HTML.
COLLAPSE_ROWS = 15

#: The question each analysis answers: the title of its section in the report (analyses
#: not listed here are titled by their name in words).
SECTION_TITLES = {
    "shared_recovery": "Does ShaReD recover a known shared representation?",
    "learning_curves": "Did the mice learn the task?",
    "encoding_by_population": "Which input encodes the learned movement?",
    "shared_representation": "What does the shared movement representation look like?",
    "lag_profiles": "Does the input lead the movement by more after learning?",
    "stimulation_responses": "Which M1 units does stimulating the input drive?",
    "encoding_overlap": "Do input-driven M1 units become movement-encoding units?",
    "selective_activation": "Does learning selectively activate movement-encoding units?",
    "silencing_effects": "Does silencing the input impair the learned movement?",
}
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
    data_root: str | os.PathLike | None = None,
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
    data_root : path, optional
        Folder the report shows the data files' paths relative to (e.g. the folder of
        the study file). By default the folder of the first ``.toml`` file among
        ``data_files`` (the study file), else the files' common folder; no absolute
        path of the machine that ran the analyses is shown (``results.json`` keeps
        them).
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
        **({"data_root": str(Path(data_root).resolve())} if data_root is not None else {}),
        "truth_checks": checks,
        "analyses": meta_sections,
    }
    write_json(meta, out / RESULTS_JSON, overwrite=overwrite)
    sections = [
        _section_of(section_meta, result, png)
        for section_meta, result in zip(meta_sections, results.values(), strict=True)
    ]
    text = _with_evaluate(_render(meta, sections), out, meta, sections)
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
    text = _with_evaluate(_render(meta, sections), d, meta, sections)
    return atomic_write(
        target, lambda tmp: tmp.write_text(text, encoding="utf-8"), overwrite=overwrite
    )


# --------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1000px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;
margin-top:2em}h3{font-size:1.05em;margin-bottom:.3em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:2px 6px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}
.pass{color:#1a7f37;font-weight:bold}.fail{color:#b42318;font-weight:bold}
.meta{color:#666;font-size:.9em}pre{background:#f7f7f7;padding:.6em;overflow-x:auto;
font-size:.8em}img{max-width:100%;height:auto;border:1px solid #eee}
figure{margin:1em 0}
p.answer{font-size:1.1em;margin:.6em 0}
table.key td.na{color:#8a5a00}
details{margin:.4em 0}summary{cursor:pointer}details.more>summary{font-weight:bold}
nav ul{columns:2}code{font-size:.9em;background:#f3f3f3;padding:0 .2em}
.scroll{overflow-x:auto;max-width:100%}
@media print{
body{max-width:none;margin:0;padding:0;font-size:10pt}
section.analysis,#ground-truth-section,#settings{break-before:page}
figure,table.key,tr{break-inside:avoid}
img{max-width:100%;border:none}
details::details-content{content-visibility:visible;display:contents}
details>summary{list-style:none}
.scroll,pre{overflow:visible;white-space:pre-wrap;word-break:break-all}
nav{break-after:page}
}
"""


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _text(x) -> str:
    """Escaped text in which Markdown-style ``code`` spans become ``<code>`` elements."""
    return re.sub(r"`([^`<>]+)`", r"<code>\1</code>", _e(x))


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        return f"{v:.4g}"
    return str(v)


def _is_missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _df_html(df: pd.DataFrame) -> str:
    shown = df.head(MAX_HTML_ROWS)
    cols = list(shown.columns)
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    # a missing value in a text column (e.g. no ``reason`` for a testable row) is blank
    text = [not pd.api.types.is_numeric_dtype(dt) for dt in shown.dtypes]
    body = []
    for row in shown.itertuples(index=False):
        cells = []
        for v, is_text in zip(row, text, strict=True):
            cls = "" if isinstance(v, (int, float)) and not isinstance(v, bool) else ' class="l"'
            shown_v = "" if is_text and _is_missing(v) else _fmt(v)
            cells.append(f"<td{cls}>{_e(shown_v)}</td>")
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
    return f'<div class="scroll"><table><tbody>{rows}</tbody></table></div>'


def _anchor(s: _Section) -> str:
    return f"a-{_safe_name(s.key)}"


def section_title(name: str) -> str:
    """The title of an analysis' section: the question it answers (:data:`SECTION_TITLES`),
    or its name in words (``"my_analysis"`` -> ``"My analysis"``)."""
    if name in SECTION_TITLES:
        return SECTION_TITLES[name]
    words = str(name).replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:] if words else "Analysis"


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
    return parts + [f"<p>{_note(n)}</p>" for n in meta.get("notes", [])]


def _note(text: str) -> str:
    """A note under the title; a quoted analysis name (``'shared_recovery'``) is shown
    as the title of its section."""
    out = _text(text)
    for name, title in SECTION_TITLES.items():
        out = out.replace(f"&#x27;{name}&#x27;", f"&ldquo;{_e(title)}&rdquo;")
    return out


def _render_contents(sections: list[_Section], with_truth: bool) -> list[str]:
    """The table of contents (links to every section)."""
    nav = ["<nav><h2>Contents</h2><ul>"]
    if with_truth:
        nav.append('<li><a href="#ground-truth">Ground truth</a></li>')
    for s in sections:
        nav.append(f'<li><a href="#{_e(_anchor(s))}">{_e(section_title(s.name))}</a></li>')
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
        f'<td class="l">{_text(c["claim"])}</td><td class="l">{_text(_denan(c["detail"]))}'
        "</td></tr>"
        for c, st in zip(checks, statuses, strict=True)
    )
    return (
        '<section id="ground-truth-section"><h2 id="ground-truth">Ground truth</h2><p>The '
        "data are simulated; the simulator knows the true effects. Each claim compares the "
        "analyses' headline numbers with the simulator's ground truth; a claim the results "
        "cannot answer (a statistic that is not a number, too few animals) is not testable, "
        "never recovered.</p>"
        + verdict
        + '<div class="scroll"><table><thead><tr><th>result</th><th class="l">claim</th>'
        f'<th class="l">detail</th></tr></thead><tbody>{rows}</tbody></table></div></section>'
    )


def _img(stem: str, blob: bytes) -> str:
    b64 = base64.b64encode(blob).decode("ascii")
    return (
        f'<figure><img alt="{_e(stem)}" src="data:image/png;base64,{b64}">'
        f'<figcaption class="meta">figures/{_e(stem)}.png, figures/{_e(stem)}.svg'
        "</figcaption></figure>"
    )


def _table_block(label: str, fname: str, df: pd.DataFrame) -> str:
    """One table: inline when short, collapsed when longer than :data:`COLLAPSE_ROWS`."""
    head = f"{_e(label)} <span class='meta'>(tables/{_e(fname)}, {len(df)} rows)</span>"
    if len(df) > COLLAPSE_ROWS:
        return f"<details><summary>{head}</summary>{_df_html(df)}</details>"
    return f"<h3>{head}</h3>{_df_html(df)}"


def _render_section(s: _Section) -> list[str]:
    """One analysis: the question, its answer, the key numbers, the figure, and the
    details (method, further figures, all headline numbers, tables) collapsed."""
    n_mice = _n_animals(s.summary)
    parts = [
        f'<section class="analysis" id="{_e(_anchor(s))}-section">',
        f'<h2 id="{_e(_anchor(s))}">{_e(section_title(s.name))}</h2>',
        f'<p class="answer"><b>{_text(_denan(answer(s.name, s.summary, s.description), n_mice))}'
        "</b></p>",
        _key_table(
            key_numbers(s.name, s.summary), getattr(_KEY_SPECS.get(s.name), "p_label", "p")
        ),
    ]
    if s.figures:
        parts.append(_img(*s.figures[0]))
    inner = [
        f'<p class="meta">Analysis <code>{_e(s.name)}</code>.</p>',
        f"<p>{_text(_denan(s.description, n_mice))}</p>",
    ]
    inner += [_img(stem, blob) for stem, blob in s.figures[1:]]
    if s.summary:
        inner.append(
            "<details><summary>All headline numbers (summary)</summary><pre>"
            + _e(json.dumps(s.summary, indent=2))
            + "</pre></details>"
        )
    inner += [_table_block(label, fname, df) for label, fname, df in s.tables]
    parts.append(
        '<details class="more"><summary>Details: method, further figures, numbers and '
        "tables</summary>" + "\n".join(inner) + "</details></section>"
    )
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
    root, what = _data_root(meta)
    rows = "".join(
        f'<tr><td class="l">{_e(_shown_path(f["path"], root))}</td><td>{_e(f["bytes"])}</td>'
        f'<td class="l"><code>{_e(f["sha256"])}</code></td></tr>'
        for f in data
    )
    table = (
        '<div class="scroll"><table><thead><tr><th class="l">file</th><th>bytes</th>'
        f'<th class="l">SHA-256</th></tr></thead><tbody>{rows}</tbody></table></div>'
    )
    where = f" Paths are relative to {what} ({_e(Path(root).name)}/)." if root else ""
    parts.append(f'<p class="meta">{len(data)} files.{where}</p>')
    if len(data) > COLLAPSE_ROWS:
        table = f"<details><summary>The {len(data)} files and their checksums</summary>{table}"
        table += "</details>"
    parts.append(table)
    return parts


def _data_root(meta: dict) -> tuple[str | None, str]:
    """The folder data paths are shown relative to, and what it is: ``data_root``, else
    the folder of the first study file (``.toml``), else the files' common folder."""
    if meta.get("data_root"):
        return str(meta["data_root"]), "the data folder"
    paths = [str(f["path"]) for f in meta.get("data_files") or []]
    tomls = [p for p in paths if p.endswith(".toml")]
    if tomls:
        return os.path.dirname(tomls[0]), "the folder of the study file"
    try:
        common = os.path.commonpath([os.path.dirname(p) for p in paths]) if paths else None
    except ValueError:  # different drives, or a mix of absolute and relative paths
        common = None
    return common, "the files' common folder"


def _shown_path(path: str, root: str | None) -> str:
    """``path`` relative to ``root`` (with ``/``); the file name when that fails."""
    if root is None:
        return Path(path).name
    try:
        rel = os.path.relpath(path, root)
    except ValueError:
        return Path(path).name
    return rel.replace(os.sep, "/")


# ------------------------------------------------------------------ answers, key numbers
def _num(v, fmt: str = ".3g") -> str | None:
    """A finite number formatted, else None."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return format(f, fmt) if math.isfinite(f) else None


def _n_animals(summary) -> int | None:
    """The number of animals of an analysis (``n_mice`` / ``n_subjects`` in its summary)."""
    if not isinstance(summary, Mapping):
        return None
    for key in ("n_mice", "n_subjects", "n_animals"):
        if isinstance(summary.get(key), int):
            return summary[key]
    return None


def _denan(text: str, n_mice: int | None = None) -> str:
    """``text`` with every statistic printed as ``nan`` replaced by "not testable"
    (with the number of mice when known): ``"p = nan (Holm nan)"`` ->
    ``"p not testable (n = 3 mice)"``."""
    why = f" (n = {n_mice} mice)" if n_mice is not None else ""
    text = re.sub(r"\b(p(?:_\w+)?) = nan(?: \(Holm nan\))?", rf"\1 not testable{why}", str(text))
    return re.sub(r"(?<![\w.])nan(?![\w])", "not testable", text, flags=re.IGNORECASE)


@dataclass(frozen=True)
class _KeySpec:
    """Where an analysis' key numbers are in its summary: ``summary[path]`` holds one
    dict per row, with the effect under ``effect``, its interval under ``ci`` and its
    p-value under ``p`` (None: the analysis reports no p-value)."""

    path: str
    effect: str
    label: str
    p: str | None = "p_value"
    ci: str = "ci"
    p_label: str = "p"


_KEY_SPECS = {
    "learning_curves": _KeySpec(
        "metrics", "slope_per_day", "slope per day", "p_holm", "ci", "p (Holm)"
    ),
    "encoding_by_population": _KeySpec("cells", "score", "held-out R²"),
    "shared_representation": _KeySpec("angles", "max_angle_deg", "axis change (deg)", None),
    "lag_profiles": _KeySpec(
        "shifts", "shift_s", "peak-lag shift (s)", "p_signflip", "ci_s", "p (sign-flip)"
    ),
    "stimulation_responses": _KeySpec(
        "stages", "fraction_driven", "fraction driven", None, "fraction_driven_ci"
    ),
    "encoding_overlap": _KeySpec("stages", "odds_ratio", "odds ratio", "p_pooled"),
    "selective_activation": _KeySpec("changes", "change", "change with learning"),
    "silencing_effects": _KeySpec("metrics", "difference", "laser on - off"),
}
_N_KEYS = ("n_mice", "n_subjects", "n_paired", "n_informative")


def key_numbers(name: str, summary) -> list[dict]:
    """The key numbers of an analysis: one ``{"quantity", "effect", "ci", "p", "n"}``
    per row (values as floats, ints or None), read from its summary; optionally
    ``"n_what"`` (what ``n`` counts, e.g. ``"informative"`` mice) and ``"reason"`` (why
    ``p`` is not a number, shown instead of the number of mice)."""
    if not isinstance(summary, Mapping) or "skipped" in summary:
        return []
    if name == "shared_recovery":
        return _recovery_key_numbers(summary)
    spec = _KEY_SPECS.get(name)
    if spec is None:
        return _generic_key_numbers(summary)
    rows = summary.get(spec.path)
    if not isinstance(rows, Mapping):
        return []
    out = []
    for label, row in rows.items():
        if not isinstance(row, Mapping):
            continue
        n = next((row[k] for k in _N_KEYS if isinstance(row.get(k), int)), _n_animals(summary))
        ci = row.get(spec.ci)
        unit = f" ({row['unit']})" if isinstance(row.get("unit"), str) else ""
        out.append(
            {
                "quantity": f"{_words(label)}: {spec.label}{unit}",
                "effect": row.get(spec.effect),
                "ci": ci if isinstance(ci, (list, tuple)) and len(ci) == 2 else None,
                "p": row.get(spec.p) if spec.p else None,
                "has_p": spec.p is not None,
                "n": n,
                **_testability(row),
                **_overlap_counts(name, row),
            }
        )
    return out + _extra_key_numbers(name, summary)


def _testability(row: Mapping) -> dict:
    """``{"testable": False, "why": ..., "p_min": ...}`` of a row whose test the analysis
    marks as not testable (``testable`` false; or a smallest achievable p, ``p_min``,
    above 0.05); ``{}`` otherwise. The key table then shows the p-value as not testable,
    never as a plain number."""
    p_min = _finite(row.get("p_min"))
    if row.get("testable", True) is not False and not (p_min is not None and p_min > 0.05):
        return {}
    out = {"testable": False, "why": str(row.get("reason") or "")}
    return out | ({"p_min": p_min} if p_min is not None else {})


def _not_testable_p(r: Mapping) -> str:
    """The p cell of a key-number row that is not testable: the reason, else the smallest
    achievable p."""
    why = str(r.get("why") or "").strip()
    if why:
        return why if why.lower().startswith("not testable") else f"not testable: {why}"
    p_min = _num(r.get("p_min"), ".2g")
    if p_min is not None:
        return f"not testable: smallest achievable p = {p_min} > 0.05"
    return "not testable"


def _overlap_counts(name: str, row: Mapping) -> dict:
    """Why the p of an overlap stage is not a number when a count of units is zero, and
    what its n counts when it is the informative mice (those with driven and encoding
    units): ``{"n_what": "informative", "reason": "no encoding unit of 135 units"}``."""
    if name != "encoding_overlap":
        return {}
    out = {} if isinstance(row.get("n_mice"), int) else {"n_what": "informative"}
    zero = [w for w in ("driven", "encoding") if row.get(f"n_{w}") == 0]
    reasons = []
    if zero:
        of = f" of {row['n_units']} units" if isinstance(row.get("n_units"), int) else ""
        reasons.append(f"no {' and no '.join(zero)} unit{of}")
    why = row.get("reason")
    if isinstance(why, str) and why and not any(why in r for r in reasons):  # said once
        reasons.append(why)
    if reasons:
        out["reason"] = "; ".join(reasons)
    return out


def _words(label) -> str:
    """A summary key in words: ``"reaction_time_s"`` -> ``"reaction time"``."""
    return re.sub(r"_s$", "", str(label)).replace("_", " ")


def _row(quantity: str, effect, n=None, ci=None, p=None, has_p: bool = False) -> dict:
    return {"quantity": quantity, "effect": effect, "ci": ci, "p": p, "has_p": has_p, "n": n}


def _recovery_key_numbers(summary: Mapping) -> list[dict]:
    """Key numbers of the demo's recovery check (no p-values: a known answer)."""
    rows = [_row("largest angle to the true axes (deg)", summary.get("max_angle_deg"))]
    for j, r2 in enumerate(summary.get("cv_r2_dim") or [], start=1):
        rows.append(_row(f"held-out R² of shared dimension {j}", r2))
    new = summary.get("new_subject")
    if isinstance(new, Mapping):
        rows.append(_row("new animal: behaviour R², shared read-out", new.get("shared_r2")))
        rows.append(_row("new animal: behaviour R², own ridge decoder", new.get("ridge_r2")))
    return rows


def _extra_key_numbers(name: str, summary: Mapping) -> list[dict]:
    """Rows beyond the per-cell ones (the change of the overlap with learning, one row per
    population when ``populations`` holds several)."""
    if name != "encoding_overlap":
        return []
    pops = summary.get("populations")
    if isinstance(pops, Mapping) and len(pops) > 1:
        return [r for pop, p in pops.items() for r in _difference_rows(p, f"{pop}: ")]
    return _difference_rows(summary)


def _difference_rows(summary: Mapping, label: str = "") -> list[dict]:
    """The key-number row of one population's overlap change (``difference``; none when
    the summary has none; ``{}``, not computed: the change, with why it was not)."""
    d = summary.get("difference")
    if not isinstance(d, Mapping):
        return []
    why = "" if summary.get("testable", True) else str(summary.get("untestable_reason") or "")
    testability = {} if why else _testability(d)
    change = f"{d.get('stage_from')} -> {d.get('stage_to')}" if d else "change with learning"
    return [
        {
            "quantity": f"{label}{change}: ratio of odds ratios",
            "effect": d.get("ratio_of_odds_ratios"),
            "ci": None,
            "p": d.get("p_mice"),
            "has_p": True,
            "n": d.get("n_mice"),
            "n_what": "informative",
            **({"reason": why} if why else {}),
            **testability,
        }
    ]


def _generic_key_numbers(summary: Mapping) -> list[dict]:
    """Key numbers of an analysis without a :data:`_KEY_SPECS` entry: every dict of the
    summary (one level down) that holds a ``p_value``."""
    out = []
    for label, row in summary.items():
        if isinstance(row, Mapping) and "p_value" in row:
            effect = next(
                (row[k] for k in ("effect", "difference", "change", "score") if k in row), None
            )
            n = next((row[k] for k in _N_KEYS if isinstance(row.get(k), int)), None)
            ci = row.get("ci")
            out.append(
                {
                    "quantity": str(label).replace("_", " "),
                    "effect": effect,
                    "ci": ci if isinstance(ci, (list, tuple)) and len(ci) == 2 else None,
                    "p": row["p_value"],
                    "has_p": True,
                    "n": n if n is not None else _n_animals(summary),
                }
            )
    return out


def _key_table(rows: list[dict], p_label: str = "p") -> str:
    """The small table of key numbers (effect, 95% CI, p, n animals)."""
    if not rows:
        return ""
    body = []
    for r in rows:
        n = r.get("n")
        effect = _num(r.get("effect")) or "not testable"
        low, high = r["ci"] if r.get("ci") else (None, None)
        ci = f"[{_num(low)}, {_num(high)}]" if _num(low) and _num(high) else "-"
        if not r.get("has_p"):
            p = "-"
        elif r.get("testable") is False:
            p = _not_testable_p(r)
        elif r.get("reason"):
            p = _num(r.get("p"), ".2g") or f"not testable: {r['reason']}"
        else:
            p = _num(r.get("p"), ".2g") or _untestable(n)
        cls = ' class="na"' if "not testable" in p else ""
        shown_n = "-" if n is None else f"{n} {r['n_what']}" if r.get("n_what") else n
        body.append(
            f'<tr><td class="l">{_e(r["quantity"])}</td><td>{_e(effect)}</td>'
            f"<td>{_e(ci)}</td><td{cls}>{_e(p)}</td><td>{_e(shown_n)}</td></tr>"
        )
    return (
        '<div class="scroll"><table class="key"><thead><tr><th class="l">key numbers</th>'
        f"<th>effect</th><th>95% CI</th><th>{_e(p_label)}</th><th>n animals</th></tr></thead>"
        "<tbody>" + "".join(body) + "</tbody></table></div>"
    )


def _p_words(p, n=None) -> str:
    """``"p = 0.031"`` or ``"not testable: n = 3 mice"``."""
    v = _num(p, ".2g")
    if v is not None:
        return f"p = {v}"
    return _untestable(n)


def _untestable(n=None) -> str:
    """``"not testable: n = 3 mice"`` (``"n = 1 mouse"``), or ``"not testable"``."""
    from sharedrep.study._common import mice_text

    if n is None:
        return "not testable"
    return f"not testable: {mice_text(n)}"


def _req(v, fmt: str = ".3g") -> str:
    """A finite number formatted; ValueError otherwise (the answer then falls back on
    the description)."""
    out = _num(v, fmt)
    if out is None:
        raise ValueError(f"not a number: {v!r}")
    return out


def _answer_learning(s: Mapping) -> str:
    """The number of mice is the one the trend tests used (each metric's ``n_mice``,
    without the mice left out of it), not the mice of the study; the change of the first
    metric is over the mice in both stages (:func:`_stage_change`). With one stage,
    learning is not testable (:func:`_one_stage_learning`)."""
    rows = s["metrics"]
    counts = _mice_counts(rows)
    n = _tested_mice(counts, s.get("n_mice"))
    name, r = next(iter(rows.items()))
    change = f"{name.replace('_', ' ')} {_stage_change(r, *s['stages'])}"
    ps = [_num(v.get("p_holm")) for v in rows.values()]
    k = sum(p is not None and float(p) <= 0.05 for p in ps)
    caveat = _normality_caveat(counts[0]) if k and counts else ""
    trending = f"{k} of {len(rows)}" if any(p is not None for p in ps) else None
    why = _learning_reason(s)
    if why:
        return _one_stage_learning(s, why, trending, f"n = {n} mice{caveat}", change)
    if trending is None:
        return f"Not testable with n = {n} mice (no trend p-value is a number); {change}."
    verdict = "Yes" if k else "No clear change"
    return (
        f"{verdict}: {k} of {len(rows)} behavioural measures changed with training "
        f"(Holm p <= 0.05, n = {n} mice{caveat}); {change}."
    )


def _learning_reason(s: Mapping) -> str:
    """Why the learning curves cannot show learning across stages (their
    ``learning_reason``; for a summary written before it existed, from its ``stages``:
    :func:`sharedrep.study.behavior.one_stage_reason`); ``""`` when they can."""
    from sharedrep.study.behavior import one_stage_reason

    why = s.get("learning_reason")
    return why if isinstance(why, str) else one_stage_reason(*s["stages"])


def _one_stage_learning(s: Mapping, why: str, trending: str | None, mice: str, change: str) -> str:
    """The learning answer of curves with one stage: not testable (``why``:
    :func:`_learning_reason`), and the trend over the days of that stage as a description
    (``trending``: ``"1 of 4"`` measures with Holm p <= 0.05 over ``mice``, None when no
    trend p-value is a number; the first metric's mean slope), never a "Yes"."""
    stage = s["stages"][0]
    name, r = next(iter(s["metrics"].items()))
    slope = _num(r.get("slope_per_day"), "+.3g")
    slope = f"mean {name.replace('_', ' ')} slope {slope} {r['unit']}/day; " if slope else ""
    trend = (
        f"{trending} behavioural measures trended over its days (Holm p <= 0.05, {mice})"
        if trending is not None
        else f"no trend p-value over its days is a number ({mice})"
    )
    return (
        f"{_not_testable_words(why, '')}. Descriptive, within the {stage} "
        f"stage only: {trend}; {slope}{change}."
    )


#: Fewest mice from which an exact sign-flip test (no distributional assumption) can
#: reach p <= 0.05 (two-sided: 2 / 2^n).
_SIGN_FLIP_MICE = 6


def _normality_caveat(n) -> str:
    """``"; a t-test over 3 mice: ..."`` when a significant t-test rests on so few mice
    that no distribution-free test could reach 5% (its normality assumption carries the
    result); ``""`` otherwise."""
    if not _is_int(n) or n >= _SIGN_FLIP_MICE:
        return ""
    return (
        f"; a t-test over {n} mice, valid only if per-mouse values are normally "
        "distributed: no distribution-free test can reach 5% with so few"
    )


def _stage_change(r: Mapping, first: str, last: str) -> str:
    """``"went from 0.2 to 0.3 fraction (novice to expert)"``: one learning-curve metric's
    first and last stage means, over the mice in both stages (named when some are left
    out). A summary written before ``first_stage_mean`` existed gives its ``novice`` and
    ``expert`` means, over different mice, without that note."""
    from sharedrep.study._common import mice_text

    paired = "first_stage_mean" in r
    a, b = (r["first_stage_mean"], r["last_stage_mean"]) if paired else (r["novice"], r["expert"])
    left_out = r.get("mice_left_out_stage") if paired else None
    over = f", over {mice_text(r['n_mice_stage'], left_out)}" if left_out else ""
    if first == last:  # one stage: no change between stages to give
        return f"was {_req(a)} {r['unit']} in the {first} stage (the only stage{over})"
    return f"went from {_req(a)} to {_req(b)} {r['unit']} ({first} to {last}{over})"


def _mice_counts(rows: Mapping) -> list[int]:
    """The distinct numbers of mice (``n_mice``) of the metrics' trend tests, ascending."""
    return sorted(
        {v["n_mice"] for v in rows.values() if isinstance(v, Mapping) and _is_int(v.get("n_mice"))}
    )


def _tested_mice(counts: list[int], n_study) -> str:
    """``"5 of 6"`` (the mice of the trend tests, :func:`_mice_counts`, of the study's),
    ``"4-5 of 6"`` when the metrics used different numbers, ``"6"`` when all mice were
    used."""
    if not counts:
        return str(n_study)
    shown = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    if _is_int(n_study) and (len(counts) > 1 or counts[0] != n_study):
        return f"{shown} of {n_study}"
    return shown


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _answer_encoding(s: Mapping) -> str:
    """Which cell encodes best and whether it beats every cell it was compared with: a
    finding only when it does ("Not clearly", naming the cells it does not beat,
    otherwise); "not testable" (with the reasons) when its own permutation test or a
    comparison's test (:func:`sharedrep.study.populations.comparison_testable`) cannot
    reach 5%, or when there is nothing to compare it with; the test named when it is the
    paired t-test over mice rather than the relabelling p-values the comparisons list
    first (with the caveat of a t-test over few mice)."""
    from sharedrep.study.populations import comparison_testable

    best, cells = s["best"], s["cells"]
    pop, _, stage = best.partition("/")
    cell = cells[best]
    who, r2 = f"{pop} in the {stage} stage", _req(cell["score"], ".2f")
    comparisons = s.get("best_comparisons") or {}
    if not comparisons:
        if len(cells) == 1:
            return (
                f"Not testable: {who} is the only cell (held-out R² = {r2}), so there was "
                "nothing to compare it with."
            )
        return (
            f"Not testable: {who} has the highest held-out R² ({r2}), but no comparison "
            "with another cell was computed."
        )
    untestable = []
    if _testability(cell):
        untestable.append(
            f"{best}: {cell.get('reason') or 'its permutation test cannot reach the 5% level'}"
        )
    untestable += [
        f"{k}: {v.get('reason') or 'its test cannot reach the 5% level'}"
        for k, v in comparisons.items()
        if not comparison_testable(dict(v))
    ]
    if untestable:
        return (
            f"Not testable: {who} has the highest held-out R² ({r2}); whether it is "
            "significantly better than every cell it was compared with is not testable "
            f"({'; '.join(untestable)})."
        )
    if not s.get("best_significant"):
        return (
            f"Not clearly: {who} has the highest held-out R² ({r2}), but it is not "
            f"significantly better than {_not_beaten(best, cell, comparisons)}."
        )
    return (
        f"{who} encodes the learned movement best (held-out R² = {r2}), significantly "
        "better than every cell it was compared with"
        f"{_comparison_test_words(comparisons)}."
    )


def _not_beaten(best: str, cell: Mapping, comparisons: Mapping) -> str:
    """``"m1/expert (paired t-test over mice, p = 0.29), thalamus/novice (relabelling
    test, p = 0.15)"``: the cells ``best`` is not significantly better than, each with the
    test of its comparison's headline; when it beats them all, its own permutation
    p-value (above 0.05)."""
    from sharedrep.study.populations import beats, comparison_test, uses_paired_ttest

    lost = []
    for key, v in comparisons.items():
        if not beats(best, key, v):
            a, _, b = str(key).partition(" vs ")
            test = "paired t-test over mice" if uses_paired_ttest(v) else "relabelling test"
            lost.append(f"{b if a == best else a} ({test}, {_p_words(comparison_test(v)[0])})")
    if lost:
        return ", ".join(lost)
    return f"chance (its own permutation test, {_p_words(cell.get('p_value'))})"


def _not_testable_words(reason, default: str) -> str:
    """``"Not testable: REASON"``, without saying "not testable" twice when the reason
    already starts with it."""
    why = str(reason or "").strip() or default
    if why.lower().startswith("not testable"):
        return "N" + why[1:]
    return f"Not testable: {why}"


def _comparison_test_words(comparisons: Mapping) -> str:
    """``" (for every comparison by the paired t-test over mice, largest p = 0.0017, not
    by the relabelling p-values listed first with the comparisons)"`` when the headline
    rests on a test other than the relabelling test whose p-values the comparisons list
    first, with the caveat of a t-test over too few mice for a distribution-free test
    (:func:`_normality_caveat`); ``""`` otherwise."""
    from sharedrep.study.populations import uses_paired_ttest

    paired = [c for c in comparisons.values() if uses_paired_ttest(c)]
    if not paired:
        return ""
    p_max = _num(max(float(c["p_paired"]) for c in paired), ".2g")
    k = len(paired)
    of = "every comparison" if k == len(comparisons) else f"{k} of {len(comparisons)} comparisons"
    caveat = _normality_caveat(min(c["n_paired"] for c in paired))
    return (
        f" (for {of} by the paired t-test over mice, largest p = {p_max}, not by the "
        f"relabelling p-values listed first with the comparisons{caveat})"
    )


def _answer_representation(s: Mapping) -> str:
    """The population whose shared axis changes most with learning ("changes in" when
    only one population has an angle: there is nothing to compare it with), said to be
    descriptive (the angle is not tested), with the mice that only one stage's fit holds;
    with one stage fitted, that no change can be measured."""
    angles = {p: a for p, a in s["angles"].items() if _num(a.get("max_angle_deg"))}
    ref = f"loadings are aligned to the reference cell {s['reference']}"
    if not angles:
        return f"Not testable: {_one_stage_representation(s)}; {ref}."
    pop = max(angles, key=lambda p: float(angles[p]["max_angle_deg"]))
    a = angles[pop]
    most = "most in" if len(angles) > 1 else "in"
    fits = _one_stage_mice(a.get("mice_in_one_stage"))
    return (
        f"Descriptive, not tested: the shared movement axis changes {most} {pop} "
        f"({_req(a['max_angle_deg'], '.0f')} deg between {a['stages'][0]} and "
        f"{a['stages'][-1]}{fits}); {ref}."
    )


def _one_stage_mice(mice) -> str:
    """``"; the two stages were fitted on different mice (mouse01, no novice session of
    m1)"``: the mice (``{mouse: reason}``) in one of the two fits only; ``""`` when none."""
    from sharedrep.study._common import left_out_names

    if not isinstance(mice, Mapping) or not mice:
        return ""
    return f"; the two stages were fitted on different mice ({left_out_names(mice)})"


def _stages_of(cells) -> list[str]:
    """The stages of ``"<population>/<stage>"`` keys, once each, in their order."""
    return list(dict.fromkeys(str(k).partition("/")[2] for k in cells or {}))


def _one_stage_representation(s: Mapping) -> str:
    """Why no population has an axis change: the stages fitted (``cells``)."""
    stages = _stages_of(s.get("cells"))
    if len(stages) == 1:
        return (
            f"only the {stages[0]} stage was fitted, so no change of the shared movement "
            "axis with learning can be measured"
        )
    return "no population was fitted in two stages, so no change of its axis can be measured"


def _answer_lag(s: Mapping) -> str:
    """Does a population's peak lag shift, in which direction (in seconds, so that stages
    imaged at different frame rates compare)? "Not testable" (with the reason and the
    estimate) when no shift was computed or the lag analysis marks its test not testable;
    never a definite Yes / No then."""
    shifts = s["shifts"]
    if not shifts:
        return f"Not testable: {_no_shift_reason(s)}."
    moved, still, untestable = [], [], []
    for pop, v in shifts.items():
        sec = _shift_seconds(v, s.get("frame_rate"))
        if sec is None:
            why = v.get("reason") or "the peak-lag shift is not a number"
            untestable.append(f"{pop}: {why}")
        elif not v.get("testable", True):
            why = v.get("reason") or "the lag analysis marks its test as not testable"
            untestable.append(_lag_clause(pop, v, *sec, untestable=why))
        else:
            shift, ci = sec
            excludes = (ci[0] > 0 or ci[1] < 0) if ci else bool(v.get("excludes_zero"))
            (moved if excludes and _ms(shift) else still).append((pop, v, shift, ci))
    tail = f" Not testable: {'; '.join(untestable)}." if untestable else ""
    if not moved and not still:
        return f"Not testable: {'; '.join(untestable)}."
    if not moved:
        pops = ", ".join(pop for pop, *_ in still)
        return (
            f"No: the peak lag of {pops} does not shift with a 95% interval that excludes 0.{tail}"
        )
    earlier = any(shift > 0 for _, _, shift, _ in moved)
    verdict = "Yes" if earlier else "No, it shifts later"
    clauses = "; ".join(_lag_clause(pop, v, shift, ci) for pop, v, shift, ci in moved)
    return f"{verdict}: {clauses}.{tail}"


def _ms(seconds: float) -> int:
    """Seconds as whole milliseconds (the resolution of the answer)."""
    return round(1000 * seconds)


def _shift_seconds(v: Mapping, frame_rate=None) -> tuple[float, list | None] | None:
    """A population's peak-lag shift and its 95% interval in seconds (``shift_s`` /
    ``ci_s``; from frames and the common frame rate for summaries without them), or None
    when the shift is not a number."""
    shift, ci = _finite(v.get("shift_s")), v.get("ci_s")
    if "shift_s" not in v:  # results.json of a version without the seconds fields
        frames, rate = _finite(v.get("shift")), _finite(frame_rate)
        if frames is None or rate is None or rate <= 0:
            return None
        shift = frames / rate
        ci = [float(c) / rate for c in v["ci"]] if _pair(v.get("ci")) else None
    if shift is None:
        return None
    return shift, ([float(c) for c in ci] if _pair(ci) else None)


def _finite(v) -> float | None:
    """``v`` as a finite float, else None."""
    return float(v) if _num(v) is not None else None


def _pair(ci) -> bool:
    """A 2-element interval of finite numbers."""
    return (
        isinstance(ci, (list, tuple)) and len(ci) == 2 and all(_finite(c) is not None for c in ci)
    )


def _lag_clause(pop: str, v: Mapping, shift: float, ci, untestable: str = "") -> str:
    """``"thalamus leads the movement by 100 ms more in the expert than in the novice
    stage (peak lag earlier; 95% CI [+50, +300] ms, per-mouse sign-flip p = 0.03, n = 4
    mice)"``; with ``untestable`` (the reason) the shift is an estimate."""
    interval = (
        f"95% CI [{_req(1000 * ci[0], '+.0f')}, {_req(1000 * ci[1], '+.0f')}] ms" if ci else ""
    )
    p = _num(v.get("p_signflip"), ".2g")
    stats = [interval] + (
        [untestable]
        if untestable
        else [f"per-mouse sign-flip p = {p}" if p else "", _mice_words(v.get("n_subjects"))]
    )
    stages = f"in the {v['stage_to']} than in the {v['stage_from']} stage"
    if not _ms(shift):
        head = f"the peak lag of {pop} does not move from the {v['stage_from']} to the "
        head += f"{v['stage_to']} stage (estimated shift 0 ms"
    else:
        more, when = ("more", "earlier") if shift > 0 else ("less", "later")
        est = "an estimated " if untestable else ""
        head = (
            f"{pop} leads the movement by {est}{abs(_ms(shift))} ms {more} {stages} "
            f"(peak lag {when}"
        )
    return head + "".join(f"; {x}" for x in stats if x) + ")"


def _mice_words(n, left_out=None) -> str:
    """``"n = 3 mice"`` (naming the mice ``left_out``, ``{mouse: reason}``, when there are
    any), or ``""`` when ``n`` is not an int."""
    from sharedrep.study._common import mice_text

    left_out = left_out if isinstance(left_out, Mapping) else None
    return mice_text(n, left_out) if _is_int(n) else ""


def _no_shift_reason(s: Mapping) -> str:
    """Why :func:`lag_profiles` computed no peak-lag shift (from the stages it fitted, in
    the order of its ``peaks``: learning order, whatever the stages are called)."""
    stages = _stages_of(s.get("peaks"))
    if len(stages) < 2:
        what = f"only the {stages[0]} stage was" if stages else "no stage was"
        return f"{what} fitted, and a peak-lag shift needs two stages with the same mice"
    return (
        f"no population has the same 2 or more mice in both the {stages[0]} and the "
        f"{stages[-1]} stage, so no peak-lag shift could be computed"
    )


def _answer_stimulation(s: Mapping) -> str:
    stages = s["stages"]
    if not stages:
        bad = [str(x) for x in s.get("not_analysed") or []]
        if bad:
            shown = "; ".join(bad[:3]) + ("; ..." if len(bad) > 3 else "")
            return f"Not testable: no stimulation session could be analysed ({shown})."
        n = (s.get("sessions") or {}).get("n_given")
        of = f" (no session of {n} has stimulation trials)" if isinstance(n, int) else ""
        return f"Not run: the study has no stimulation sessions{of}."
    pops = s.get("populations")
    if isinstance(pops, Mapping) and pops:  # each population alone, named, never pooled
        parts = [
            _driven_text(p["stages"], f"{pop} units") for pop, p in pops.items() if p["stages"]
        ]
        return f"Stimulation drives {'; '.join(parts)} (BH-FDR {s['fdr']:g} per session)."
    return f"Stimulation drives {_driven_text(stages)} (BH-FDR {s['fdr']:g} per session)."


def _driven_text(stages: Mapping, units: str = "units") -> str:
    """``"3.5% of m1 units in the novice stage, 2.5% of m1 units in the expert stage"``."""
    return ", ".join(
        f"{_req(100 * v['fraction_driven'], '.1f')}% of {units} in the {st} stage"
        for st, v in stages.items()
    )


def _answer_overlap(s: Mapping) -> str:
    """With several populations (``populations``), one sentence per population."""
    pops = s.get("populations")
    if isinstance(pops, Mapping) and len(pops) > 1:
        return " ".join(_named(pop, _answer_overlap(p)) for pop, p in pops.items())
    if not s.get("testable", True):
        return f"Not testable: {s.get('untestable_reason') or 'too few informative mice'}."
    d = s["difference"]
    ratio = _req(d["ratio_of_odds_ratios"], ".2g")
    change = (
        f"in {d['population']}, the odds that a driven unit also encodes the movement are "
        f"multiplied by"
    )
    stages = f"from the {d['stage_from']} to the {d['stage_to']} stage"
    if _testability(d):
        why = _not_testable_words(d.get("reason"), "the per-mouse test cannot reach 5%")
        n = d.get("n_mice")
        return (
            f"{why} ({change} an estimated {ratio} {stages}, over {n} informative "
            f"{'mouse' if n == 1 else 'mice'})."
        )
    p = _num(d["p_mice"])
    significant = p is not None and float(p) <= 0.05
    more = float(d["ratio_of_odds_ratios"]) > 1
    verdict = ("Yes" if more else "No: it decreases") if significant else "Not clearly"
    return (
        f"{verdict}: {change} {ratio} {stages} "
        f"({_p_words(d['p_mice'], d.get('n_mice'))} over {d.get('n_mice')} mice)."
    )


def _named(pop, sentence: str) -> str:
    """``sentence`` led by ``"<pop>: "`` unless it names the population already."""
    if re.search(rf"(?<!\w){re.escape(str(pop))}(?!\w)", sentence):
        return sentence
    return f"{pop}: {sentence}"


def _answer_activation(s: Mapping) -> str:
    """The selectivity change of every population analysed (one sentence each, led by
    the population's name when there are several and the sentence does not name it);
    "not testable" when no change was computed (units classified in one stage only)."""
    keys = [k for k in s["changes"] if k.endswith("/selectivity")]
    if not keys:
        return f"Not testable: {_one_stage_activation(s)}."
    if len(keys) == 1:
        return _activation_words(keys[0], s["changes"][keys[0]])
    return " ".join(_named(k.split("/")[0], _activation_words(k, s["changes"][k])) for k in keys)


def _one_stage_activation(s: Mapping) -> str:
    """Why :func:`~sharedrep.study.selective_activation` computed no change: the stage
    and populations whose units were classified (``stages``, ``populations``; a summary
    written before they existed gives the reason without them)."""
    stages, pops = list(s.get("stages") or []), ", ".join(map(str, s.get("populations") or []))
    units = f"the {pops} units" if pops else "the units"
    where = f"in the {stages[0]} stage only" if len(stages) == 1 else "in fewer than two stages"
    return (
        f"{units} were classified as encoding or not {where}, and a change with learning "
        "needs two stages"
    )


def _activation_words(key: str, c: Mapping) -> str:
    """The answer for one population's ``changes["<population>/selectivity"]`` row, with
    the mice its test used (those it left out named, unless its reason names them)."""
    n = c.get("n_mice")
    mice = _mice_words(n, c.get("mice_left_out")) or f"n = {n} mice"
    if _num(c["change"]) is None:
        return (
            f"Not testable: the change of selectivity in {key.split('/')[0]} is not a number "
            f"(mice with encoding units in both stages: {mice})."
        )
    what = (
        f"in {key.split('/')[0]}, the activity of movement-encoding minus other units changes by"
    )
    stages = f"from the {c['stage_from']} to the {c['stage_to']} stage"
    change = _req(c["change"], "+.2g")
    if _testability(c):  # its reason names the mice left out
        why = _not_testable_words(c.get("reason"), "its test cannot reach the 5% level")
        return f"{why} ({what} an estimated {change} {stages}, {_mice_words(n) or mice})."
    p = _num(c["p_value"])
    if p is not None and float(p) <= 0.05:
        # a significant decrease is the opposite of selective activation
        verdict = "Yes" if float(c["change"]) > 0 else "No: the selectivity decreases"
    else:
        verdict = "Not clearly"
    caveat = _normality_caveat(n) if verdict != "Not clearly" else ""
    return f"{verdict}: {what} {change} {stages} ({_p_words(c['p_value'], n)}, {mice}{caveat})."


def _answer_silencing(s: Mapping) -> str:
    """The headline is Holm-corrected over success rate and reaction time (``p_holm``)."""
    if not s.get("testable", True):
        why = s.get("reason") or _untestable(s.get("n_mice"))
        return f"Not testable: {why}{_silencing_estimate(s.get('metrics') or {})}."
    name, r = next(iter(s["metrics"].items()))
    verdict = "Yes" if s.get("impairs") else "No"
    p = r.get("p_holm", r["p_value"])
    label = "Holm-corrected " if "p_holm" in r else ""
    return (
        f"{verdict}: with the laser on, {name.replace('_', ' ')} goes from "
        f"{_req(r['laser_off'])} to {_req(r['laser_on'])} {r['unit']} "
        f"({label}{_p_words(p, r.get('n_mice'))}, n = {r.get('n_mice')} mice)."
    )


def _silencing_estimate(metrics: Mapping) -> str:
    """``" (success rate: not testable at the 5% level: n = 3 mice ...); with the laser
    on, success rate goes from an estimated 0.95 to 0.74 fraction"``: why the first
    metric cannot be tested, and its estimates; ``""`` without a metric with numbers."""
    if not metrics:
        return ""
    name, r = next(iter(metrics.items()))
    words = name.replace("_", " ")
    why = f" ({words}: {r['reason']})" if r.get("reason") else ""
    off, on = _num(r.get("laser_off")), _num(r.get("laser_on"))
    if off is None or on is None:
        return why
    return (
        f"{why}; with the laser on, {words} goes from an estimated {off} to {on} "
        f"{r.get('unit', '')}".rstrip()
    )


def _answer_recovery(s: Mapping) -> str:
    return (
        f"ShaReD selected k = {s['n_shared']} shared dimensions (truth: {s['true_n_shared']}); "
        f"the largest angle between recovered and true axes is "
        f"{_req(s['max_angle_deg'], '.1f')} deg."
    )


_ANSWERS = {
    "shared_recovery": _answer_recovery,
    "learning_curves": _answer_learning,
    "encoding_by_population": _answer_encoding,
    "shared_representation": _answer_representation,
    "lag_profiles": _answer_lag,
    "stimulation_responses": _answer_stimulation,
    "encoding_overlap": _answer_overlap,
    "selective_activation": _answer_activation,
    "silencing_effects": _answer_silencing,
}


def answer(name: str, summary, description: str = "") -> str:
    """The one-sentence answer of an analysis' section, from its summary; the first
    sentence of its description when the summary does not hold what the sentence needs
    (an analysis this module does not know, a skipped one)."""
    if isinstance(summary, Mapping) and "skipped" in summary:
        return f"Not run: {summary['skipped']}."
    try:
        return _ANSWERS[name](summary)
    except (KeyError, TypeError, ValueError, IndexError, StopIteration, AttributeError):
        first = re.split(r"(?<=[.!?])\s+", str(description).strip(), maxsplit=1)[0]
        return first or "No summary."


# --------------------------------------------------------------------------- evaluate
#: Sub-folder of a results folder holding the output of ``sharedrep evaluate``.
EVALUATE_DIR = "evaluate"


def _with_evaluate(text: str, folder: Path, meta: Mapping, sections: Sequence[_Section]) -> str:
    """Add the "Does pooling animals help?" section (before the settings) when
    ``folder/evaluate/evaluation.json`` exists (``sharedrep evaluate ... --out
    RESULTS/evaluate``) and belongs to this report (:func:`_evaluate_mismatch`): the
    verdict, the calibration curves and the comparison table. An evaluation of another
    study (e.g. left over in a results folder reused with ``--force``) is left out, with
    a note saying why."""
    d = Path(folder) / EVALUATE_DIR
    if not (d / "evaluation.json").is_file():
        return text
    doc = read_json(d / "evaluation.json")
    doc = doc if isinstance(doc, Mapping) else {}
    why = _evaluate_mismatch(doc, meta, sections)
    if why:
        note = (
            '<p class="meta" id="evaluate-left-out">The evaluation in evaluate/ '
            f"(<code>sharedrep evaluate</code>) was left out of this report: {_e(why)}. Run "
            "<code>sharedrep evaluate STUDY -p POPULATION -s STAGE --out RESULTS/evaluate "
            "--force</code> on this study to add it.</p>\n"
        )
        return text.replace('<h2 id="settings">', note + '<h2 id="settings">', 1)
    settings = doc.get("settings") if isinstance(doc.get("settings"), Mapping) else {}
    parts = [
        '<h2 id="evaluate">Does pooling animals help?</h2>',
        f"<p><b>{_e(doc.get('verdict', ''))}</b></p>",
    ]
    if settings.get("population") and settings.get("stage"):
        n = len(settings["sessions"]) if isinstance(settings.get("sessions"), Mapping) else None
        parts.append(
            f'<p class="meta">Evaluated on {_e(settings["population"])} / '
            f"{_e(settings['stage'])}" + (f" ({n} sessions)" if n else "") + ".</p>"
        )
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


def _evaluate_mismatch(doc, meta: Mapping, sections: Sequence[_Section]) -> str:
    """Why an ``evaluation.json`` does not belong to this report ("" when it does).

    A report of a study file (the first ``.toml`` among its data files, as ``sharedrep
    run`` writes it) takes only an evaluation computed from the same study file
    (``settings["study"]``, written by ``sharedrep evaluate``) whose sessions are all
    sessions this report's analyses were given. A report without a study file has
    nothing to compare with and takes the evaluation as it is.
    """
    settings = doc.get("settings") if isinstance(doc, Mapping) else None
    settings = settings if isinstance(settings, Mapping) else {}
    paths = [
        str(f.get("path", "")) for f in meta.get("data_files") or [] if isinstance(f, Mapping)
    ]
    study = next((p for p in paths if p.endswith(".toml")), None)
    if study is None:
        return ""
    theirs = settings.get("study")
    if not isinstance(theirs, str) or not theirs:
        return "it does not name the study file it was computed from"
    if os.path.normcase(os.path.normpath(theirs)) != os.path.normcase(os.path.normpath(study)):
        return (
            f"it was computed from another study file ({_short_path(theirs)}), not from "
            f"this report's {_short_path(study)}"
        )
    known = _report_sessions(sections)
    evaluated = settings.get("sessions")
    if known and isinstance(evaluated, Mapping):
        missing = [str(sid) for sid in evaluated if str(sid) not in known]
        if missing:
            shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
            return (
                f"its sessions {shown} are not sessions of this report (the study file "
                "changed since the evaluation)"
            )
    return ""


def _short_path(path: str) -> str:
    """The last folder and the name of a path (no absolute path of the machine)."""
    p = Path(path)
    return f"{p.parent.name}/{p.name}" if p.parent.name else p.name


def _report_sessions(sections: Sequence[_Section]) -> set[str]:
    """Ids of every session the report's analyses were given (used or left out)."""
    out: set[str] = set()
    for s in sections:
        prov = s.summary.get("sessions") if isinstance(s.summary, Mapping) else None
        if isinstance(prov, Mapping):
            out.update(str(x) for x in prov.get("used") or [])
            out.update(str(x) for x in prov.get("left_out") or {})
    return out
