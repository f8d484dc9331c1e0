"""The HTML report: self-contained, complete, atomic and never clobbering."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from sharedrep.app.report import rebuild_report, software_versions, write_report
from sharedrep.study._result import AnalysisResult


def _result(name: str, n: int = 5) -> AnalysisResult:
    fig = Figure(figsize=(3, 2))
    ax = fig.subplots()
    ax.plot(np.arange(n), np.arange(n) ** 2)
    ax.set_title(name)
    table = pd.DataFrame({"subject": [f"m{i}" for i in range(n)], "score": np.linspace(0, 1, n)})
    return AnalysisResult(
        name=name,
        table=table,
        figure=fig,
        summary={"score": 0.5, "p_value": float("nan"), "ci": [0.1, 0.9]},
        description=f"Description of {name} <with markup & symbols>.",
        tables={"comparisons": pd.DataFrame({"a": ["x"], "difference": [0.25]})},
    )


@pytest.fixture()
def results():
    return {"learning_curves": _result("learning_curves"), "encoding": _result("encoding", 7)}


@pytest.fixture()
def data_file(tmp_path):
    p = tmp_path / "data" / "session.nwb"
    p.parent.mkdir()
    p.write_bytes(b"not really an NWB file" * 10)
    return p


def test_report_is_self_contained_and_complete(tmp_path, results, data_file):
    out = tmp_path / "res"
    path = write_report(
        results,
        out,
        settings={"lags": [0, 2, 4], "cv": 5},
        data_files=[data_file],
        title="My study",
        truth_checks=[("thalamus encodes best", True, "R^2 0.4"), ("lag shifts", False, "no")],
    )
    assert path == out / "report.html"
    text = path.read_text(encoding="utf-8")
    # no external resources: every image is a data URI, no href/src to files or the web
    srcs = re.findall(r'src="([^"]*)"', text)
    assert len(srcs) == 2 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'(href|src)="(?!#|data:)', text)
    assert "<link" not in text and "<script" not in text
    for name in results:
        assert name in text
        assert f"Description of {name} &lt;with markup &amp; symbols&gt;." in text
    versions = software_versions()
    for pkg in ("python", "numpy", "scipy", "scikit-learn", "pandas", "sharedrep"):
        assert pkg in text and versions[pkg] in text
    digest = hashlib.sha256(data_file.read_bytes()).hexdigest()
    assert digest in text
    # the data table shows paths relative to the data folder, not the machine's paths
    assert '<td class="l">session.nwb</td>' in text and str(data_file.parent) not in text
    assert "My study" in text and "&quot;cv&quot;" not in text and "lags" in text
    assert "Ground truth" in text and "NOT recovered" in text and "1 of 2" in text

    for name in results:
        for ext in ("png", "svg"):
            assert (out / "figures" / f"{name}.{ext}").stat().st_size > 1000
        table = pd.read_csv(out / "tables" / f"{name}.csv")
        pd.testing.assert_frame_equal(table, results[name].table)
        assert (out / "tables" / f"{name}-comparisons.csv").is_file()
    assert (out / "figures" / "learning_curves.svg").read_text().lstrip().startswith("<?xml")
    meta = json.loads((out / "results.json").read_text())
    assert [a["name"] for a in meta["analyses"]] == list(results)
    assert meta["data_files"][0]["sha256"] == digest
    assert meta["analyses"][0]["summary"]["p_value"] is None  # NaN -> null
    assert [c["passed"] for c in meta["truth_checks"]] == [True, False]
    assert not list(out.rglob(".*"))  # no temporary files left behind


def test_report_refuses_to_overwrite(tmp_path, results):
    out = tmp_path / "res"
    write_report(results, out, settings={})
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    with pytest.raises(FileExistsError, match="overwrite"):
        write_report(results, out, settings={})
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == before
    write_report(results, out, settings={"cv": 3}, overwrite=True)
    assert "cv" in json.loads((out / "results.json").read_text())["settings"]


def test_rebuild_report_from_saved_files(tmp_path, results, data_file):
    out = tmp_path / "res"
    first = write_report(results, out, settings={"cv": 5}, data_files=[data_file]).read_text()
    with pytest.raises(FileExistsError):
        rebuild_report(out)
    rebuilt = rebuild_report(out, overwrite=True).read_text()
    assert rebuilt == first
    (out / "figures" / "encoding.png").unlink()
    with pytest.raises(FileNotFoundError, match="encoding.png"):
        rebuild_report(out, overwrite=True)
    with pytest.raises(FileNotFoundError, match="results.json"):
        rebuild_report(tmp_path)


def test_report_bad_input(tmp_path, results):
    with pytest.raises(ValueError, match="non-empty"):
        write_report({}, tmp_path / "a", settings={})
    with pytest.raises(TypeError, match="AnalysisResult"):
        write_report({"x": object()}, tmp_path / "b", settings={})
    with pytest.raises(FileNotFoundError, match="missing.nwb"):
        write_report(results, tmp_path / "c", settings={}, data_files=[tmp_path / "missing.nwb"])
    assert not (tmp_path / "c").exists()


def _cells(text: str) -> list[str]:
    return re.findall(r"<td[^>]*>[^<]*</td>", text)


def _one(name: str, table: pd.DataFrame, tables: dict | None = None) -> dict:
    fig = Figure(figsize=(2, 1))
    fig.subplots().axis("off")
    summary = {"skipped": "no silencing trials"} if table.empty else {"n": len(table)}
    return {name: AnalysisResult(name, table, fig, summary, "Not run.", tables=tables or {})}


def test_rebuild_report_with_skipped_analysis(tmp_path):
    # A skipped analysis (study without silencing) has an empty table, saved as "\n".
    tables = {"no_rows": pd.DataFrame(columns=["a", "b"]), "no_cols": pd.DataFrame(index=range(3))}
    out = tmp_path / "res"
    first = write_report(
        _one("silencing_effects", pd.DataFrame(), tables), out, settings=None
    ).read_text()
    assert (out / "tables" / "silencing_effects.csv").read_text().strip() == ""
    assert rebuild_report(out, overwrite=True).read_text() == first


def test_rebuild_report_keeps_table_values(tmp_path):
    table = pd.DataFrame(
        {
            "subject": ["001", "002", "010", "abc"],
            "unit_id": ["0042", "7", "True", "NA"],  # strings that look like other types
            "label": ["x", np.nan, "nan", "y"],
            "score": [0.5, np.nan, np.inf, 1e-05],
            "whole": [1.0, 2.0, -3.0, 1e16],
            "n": np.array([1, 2, 3, 2**60], dtype=np.int64),
            "small": np.array([1, 2, 3, 4], dtype=np.int8),
            "flag": [True, False, True, False],
            "maybe": pd.array([1, None, 3, 4], dtype="Int64"),
            "mixed": pd.Series([1, "001", 2.5, np.nan], dtype=object),
            "when": pd.to_datetime(
                ["2024-01-01", "2024-01-02 12:00", None, "2024-03-01"], format="ISO8601"
            ),
            "cat": pd.Categorical([1, 2, 1, 2]),
        }
    )
    out = tmp_path / "res"
    first = write_report(_one("encoding_by_population", table), out, settings=None).read_text()
    rebuilt = rebuild_report(out, output=out / "rebuilt.html").read_text()
    assert '<td class="l">001</td>' in rebuilt and '<td class="l">0042</td>' in rebuilt
    assert _cells(rebuilt) == _cells(first)
    assert rebuilt == first


def test_rebuild_report_reads_previous_format(tmp_path):
    # results.json written before column dtypes were recorded: still readable, and values
    # are read without lossy type inference (zero-padded ids stay strings).
    table = pd.DataFrame({"subject": ["001", "002"], "score": [0.5, np.nan], "n": [3, 4]})
    out = tmp_path / "res"
    first = write_report(
        {**_one("encoding", table), **_one("silencing", pd.DataFrame())}, out, settings=None
    ).read_text()
    meta = json.loads((out / "results.json").read_text())
    for a in meta["analyses"]:
        a["tables"] = [{"label": t["label"], "file": t["file"]} for t in a["tables"]]
    (out / "results.json").write_text(json.dumps(meta))
    assert rebuild_report(out, overwrite=True).read_text() == first


def test_rebuild_report_picks_up_edited_tables(tmp_path):
    table = pd.DataFrame({"subject": ["001", "002"], "score": [0.5, 0.25]})
    out = tmp_path / "res"
    write_report(_one("encoding", table), out, settings=None)
    csv = out / "tables" / "encoding.csv"
    csv.write_text("subject,score,note\n001,oops,007\n002,0.75,\n", encoding="utf-8")
    cells = _cells(rebuild_report(out, overwrite=True).read_text())[:6]
    assert cells[:3] == [
        '<td class="l">001</td>',
        '<td class="l">oops</td>',
        '<td class="l">007</td>',
    ]
    # a missing value in a text column is left blank, not printed as "NaN"
    assert cells[3:] == ['<td class="l">002</td>', '<td class="l">0.75</td>', "<td></td>"]
    csv.write_bytes(b'subject,score\n"001,0.5\n')
    with pytest.raises(ValueError, match="encoding.csv"):
        rebuild_report(out, overwrite=True)


# ------------------------------------------------------------------ readable sections
def _learning(n_rows: int = 40, p=float("nan")) -> AnalysisResult:
    fig = Figure(figsize=(3, 2))
    fig.subplots().plot([1, 2], [1, 2])
    summary = {
        "n_mice": 3,
        "stages": ["novice", "expert"],
        "metrics": {
            "success_rate": {
                "unit": "fraction",
                "slope_per_day": 0.03,
                "ci": [0.02, 0.04],
                "p_value": p,
                "p_holm": p,
                "novice": 0.5,
                "expert": 0.9,
            }
        },
    }
    table = pd.DataFrame({"day": np.arange(n_rows), "success_rate": np.linspace(0, 1, n_rows)})
    description = "Slopes over mice: success rate +0.03/day, p = nan (Holm nan)."
    return AnalysisResult("learning_curves", table, fig, summary, description)


def test_sections_are_questions_opening_with_answer_numbers_and_figure(tmp_path):
    study = tmp_path / "study" / "study.toml"
    nwb = study.parent / "nwb" / "a.nwb"
    nwb.parent.mkdir(parents=True)
    study.write_text("[study]\n")
    nwb.write_bytes(b"x" * 10)
    text = write_report(
        {"learning_curves": _learning()},
        tmp_path / "res",
        settings=None,
        data_files=[study, nwb],
        notes=["Made by `sharedrep demo` on simulated data."],
    ).read_text()
    assert '<h2 id="a-learning_curves">Did the mice learn the task?</h2>' in text
    assert ">Did the mice learn the task?</a></li>" in text  # contents, in words too
    assert "learning_curves</h2>" not in text
    # answer, key numbers, figure, then the details collapsed, in this order
    i_answer = text.index('<p class="answer">')
    i_key = text.index('<table class="key">')
    i_fig = text.index("<img")
    i_more = text.index('<details class="more">')
    assert i_answer < i_key < i_fig < i_more
    assert text.index("Slopes over mice") > i_more  # the method paragraph is in the details
    key = text[i_key : text.index("</table>", i_key)]
    assert "0.03" in key and "[0.02, 0.04]" in key and "not testable: n = 3 mice" in key
    # no statistic printed as nan, anywhere
    assert not re.search(r"\bnan\b", text, flags=re.IGNORECASE)
    assert "p not testable (n = 3 mice)" in text
    # Markdown code in the notes becomes <code>
    assert "<code>sharedrep demo</code>" in text and "`" not in text
    # the 40-row table is collapsed
    assert re.search(r"<details><summary>main table <span[^>]*>\(tables/[^)]*40 rows\)", text)
    # data paths relative to the study file, no path of this machine
    assert '<td class="l">nwb/a.nwb</td>' in text and '<td class="l">study.toml</td>' in text
    assert str(tmp_path) not in text
    # print: collapsed content printed, each section on a new page, figures fit the page
    css = text[text.index("@media print") :]
    assert "details::details-content{content-visibility:visible" in css
    assert "section.analysis" in css and "break-before:page" in css
    assert "img{max-width:100%" in css


def test_short_tables_stay_open_and_testable_p_is_shown(tmp_path):
    text = write_report(
        {"learning_curves": _learning(n_rows=5, p=0.004)}, tmp_path / "r", settings=None
    ).read_text()
    assert re.search(r"<h3>main table <span[^>]*>\(tables/[^)]*5 rows\)</span></h3>", text)
    key = text[text.index('<table class="key">') :]
    assert "<td>0.004</td>" in key[: key.index("</table>")]
    assert "Yes: 1 of 1 behavioural measures changed" in text


def test_every_analysis_of_the_pipeline_has_a_question():
    from sharedrep.app.report import SECTION_TITLES, answer, key_numbers, section_title
    from sharedrep.study.pipeline import ANALYSES

    assert set(ANALYSES) <= set(SECTION_TITLES)
    assert all(t.endswith("?") for t in SECTION_TITLES.values())
    assert section_title("my_new_analysis") == "My new analysis"
    # unknown analyses: the first sentence of their description, rows with a p-value
    assert answer("other", {}, "First sentence. Second one.") == "First sentence."
    assert answer("x", {"skipped": "no silencing trials"}) == "Not run: no silencing trials."
    rows = key_numbers("other", {"n_mice": 4, "a_vs_b": {"difference": 0.5, "p_value": 0.01}})
    assert rows == [
        {"quantity": "a vs b", "effect": 0.5, "ci": None, "p": 0.01, "has_p": True, "n": 4}
    ]


def test_untestable_p_names_the_animals_in_words():
    from sharedrep.app.report import _p_words

    assert _p_words(0.0312, 3) == "p = 0.031"
    assert _p_words(float("nan"), 3) == "not testable: n = 3 mice"
    assert _p_words(None, 1) == "not testable: n = 1 mouse"
    assert _p_words(float("nan")) == "not testable"


# ------------------------------------------------------------------ answers that must not mislead
def _shift(shift_s, ci_s, *, shift=None, ci=None, testable=True, reason="", p=0.03, n=6):
    excl = ci_s[0] > 0 or ci_s[1] < 0
    return {
        "stage_from": "novice",
        "stage_to": "expert",
        "shift": float("nan") if shift is None else shift,
        "shift_s": shift_s,
        "ci": [float("nan")] * 2 if ci is None else ci,
        "ci_s": ci_s,
        "p_signflip": p,
        "p_min": 2 / 2**n,
        "testable": testable,
        "reason": reason,
        "n_subjects": n,
        "excludes_zero": excl,
    }


def _lags(shifts: dict, stages=("novice", "expert")) -> dict:
    peaks = {f"{p}/{s}": {"peak_lag": 1.0} for p in shifts or {"thalamus": 0} for s in stages}
    return {"shifts": shifts, "peaks": peaks, "frame_rate": 10.0, "frame_rates": {}}


def test_lag_answer_reports_a_later_shift_in_milliseconds():
    from sharedrep.app.report import answer

    s = _lags({"thalamus": _shift(-0.3, [-0.4, -0.2], shift=-3.0, ci=[-4.0, -2.0], p=0.016)})
    text = answer("lag_profiles", s)
    assert text.startswith("No, it shifts later: thalamus leads the movement by 300 ms less")
    assert "peak lag later" in text and "[-400, -200] ms" in text
    assert "no population" not in text
    # an earlier shift is a Yes, with the interval in the same units
    s = _lags({"thalamus": _shift(0.2, [0.1, 0.3], shift=2.0, ci=[1.0, 3.0])})
    text = answer("lag_profiles", s)
    assert text.startswith("Yes: thalamus leads the movement by 200 ms more in the expert")
    assert "peak lag earlier" in text and "[+100, +300] ms" in text and "n = 6 mice" in text


def test_lag_answer_uses_seconds_when_stages_have_different_frame_rates():
    from sharedrep.app.report import answer

    # frames are NaN (two frame durations), the shift in seconds excludes 0
    s = _lags({"thalamus": _shift(0.1, [0.05, 0.3])}) | {"frame_rate": float("nan")}
    text = answer("lag_profiles", s)
    assert text.startswith("Yes: thalamus leads the movement by 100 ms more")
    assert "[+50, +300] ms" in text


def test_lag_answer_is_not_testable_without_a_shift_or_a_testable_test():
    from sharedrep.app.report import answer

    # one stage: no shift can be computed
    one = _lags({}, stages=("expert",))
    assert answer("lag_profiles", one).startswith("Not testable: only the expert stage")
    # two stages but no mouse in both
    assert answer("lag_profiles", _lags({})).startswith("Not testable: no population has")
    # 2 mice: the sign-flip test cannot reach 0.05 although the bootstrap CI excludes 0
    why = "not testable at the 5% level: n = 2 mice allow 4 sign patterns"
    s = _lags({"thalamus": _shift(0.1, [0.1, 0.2], testable=False, reason=why, p=0.5, n=2)})
    text = answer("lag_profiles", s)
    assert text.startswith("Not testable: thalamus leads the movement by an estimated 100 ms")
    assert why in text and not re.search(r"\b(Yes|No)\b", text)
    # one testable population, one not: the verdict is about the testable one only
    s = _lags(
        {
            "thalamus": _shift(0.2, [0.1, 0.3]),
            "m1": _shift(0.1, [0.1, 0.2], testable=False, reason=why),
        }
    )
    text = answer("lag_profiles", s)
    assert text.startswith("Yes: thalamus") and "Not testable: m1 leads" in text


def test_lag_answer_on_real_lag_results_with_two_mice_is_not_testable(two_mouse_null_lags):
    from sharedrep.app.report import answer

    r = two_mouse_null_lags
    assert r.summary["shifts"]["thalamus"]["testable"] is False
    assert answer("lag_profiles", r.summary, r.description).startswith("Not testable:")


def test_stimulation_answer_without_stimulation_sessions():
    from sharedrep.app.report import answer

    empty = {"fdr": 0.05, "stages": {}, "not_analysed": [], "sessions": {"n_given": 8}}
    text = answer("stimulation_responses", empty)
    assert text == (
        "Not run: the study has no stimulation sessions (no session of 8 has stimulation trials)."
    )
    assert "drives" not in text
    bad = empty | {"not_analysed": ["s1: 1 stimulation and 0 control trials (needs 2)"]}
    text = answer("stimulation_responses", bad)
    assert text.startswith("Not testable: no stimulation session could be analysed (s1: ")


def test_overlap_key_numbers_name_the_zero_count_not_zero_mice():
    from sharedrep.app.report import _key_table, answer, key_numbers

    nan = float("nan")
    stage = {
        "odds_ratio": nan,
        "p_pooled": nan,
        "mean_log_or": nan,
        "p_mice": nan,
        "n_informative": 0,
        "n_driven": 10,
        "n_encoding": 0,
        "n_units": 135,
    }
    why = "m1: no encoding unit in novice; no encoding unit in expert"
    summary = {
        "population": "m1",
        "stages": {"novice": stage, "expert": stage | {"n_driven": 13}},
        "difference": {
            "stage_from": "novice",
            "stage_to": "expert",
            "ratio_of_odds_ratios": nan,
            "p_mice": nan,
            "n_mice": 0,
        },
        "testable": False,
        "untestable_reason": why,
    }
    table = re.sub(r"<[^>]+>", " ", _key_table(key_numbers("encoding_overlap", summary)))
    assert "n = 0 mice" not in table
    assert table.count("not testable: no encoding unit of 135 units") == 2
    assert f"not testable: {why}" in table and "0 informative" in table
    assert answer("encoding_overlap", summary) == f"Not testable: {why}."


def test_evaluation_of_another_study_is_left_out_of_the_report(tmp_path, results):
    studies = {}
    for name in ("A", "B"):
        studies[name] = tmp_path / name / "study.toml"
        studies[name].parent.mkdir()
        studies[name].write_text(f'[study]\nname = "{name}"\n')
    out = tmp_path / "res"
    (out / "evaluate").mkdir(parents=True)
    doc = {
        "verdict": "pooling helps on these data, over 3 animals",
        "settings": {
            "study": str(studies["A"].resolve()),
            "population": "thalamus",
            "stage": "expert",
            "sessions": {"s1": "m1", "s2": "m2", "s3": "m3"},
        },
    }
    (out / "evaluate" / "evaluation.json").write_text(json.dumps(doc))
    # a run of study B into the folder that holds A's evaluation: left out, with a note
    text = write_report(results, out, settings=None, data_files=[studies["B"]]).read_text()
    assert 'id="evaluate"' not in text and "over 3 animals" not in text
    assert 'id="evaluate-left-out"' in text and "A/study.toml" in text
    assert str(tmp_path) not in text
    assert 'id="evaluate"' not in rebuild_report(out, overwrite=True).read_text()
    # study A's own report shows it (and says what was evaluated)
    text = write_report(
        results, out, settings=None, data_files=[studies["A"]], overwrite=True
    ).read_text()
    assert '<h2 id="evaluate">Does pooling animals help?</h2>' in text
    assert "over 3 animals" in text and "thalamus / expert (3 sessions)" in text
    # ... unless its sessions are not those of the run (the study file was rewritten)
    results["learning_curves"].summary["sessions"] = {"used": ["s1", "s2"], "left_out": {}}
    text = write_report(
        results, out, settings=None, data_files=[studies["A"]], overwrite=True
    ).read_text()
    assert 'id="evaluate"' not in text and "s3 are not sessions of this report" in text
    # an evaluation that names no study file cannot be tied to a study's run
    del doc["settings"]["study"]
    (out / "evaluate" / "evaluation.json").write_text(json.dumps(doc))
    text = rebuild_report(out, overwrite=True).read_text()
    assert 'id="evaluate"' not in text and "does not name the study file" in text


def test_silencing_answer_is_holm_corrected_and_says_when_it_is_not_testable():
    from sharedrep.app.report import answer

    metric = {"laser_off": 0.9, "laser_on": 0.6, "unit": "fraction", "p_value": 1 / 32}
    metric["n_mice"] = 5
    s = {"metrics": {"success_rate": {**metric, "p_holm": 2 / 32}}, "impairs": False}
    text = answer("silencing_effects", {**s, "testable": True})
    assert text.startswith("No:") and "Holm-corrected p = 0.062" in text
    why = "not testable at the 5% level: the smallest Holm-corrected p ... is 0.0625"
    text = answer("silencing_effects", {**s, "testable": False, "reason": why, "n_mice": 5})
    # the reason, then the estimate (never a verdict)
    assert text == (
        f"Not testable: {why}; with the laser on, success rate goes from an estimated 0.9 "
        "to 0.6 fraction."
    )
