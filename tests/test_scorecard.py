"""The scorecard (workbench.reports.scorecard) on hand-made summary.json files, and the PDF of the index.

Every number the scorecard shows is checked against the summary it was built from; the
temperature, graded on log T, is checked against exp of the summary's log T.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from dataclasses import asdict
from html.parser import HTMLParser

import pytest

from workbench.reports.index import render_run_index, write_run_index, write_top_index
from workbench.reports.pdf import find_chromium, render_pdf
from workbench.reports.pipeline import PreflightError, run_audit
from workbench.reports.scorecard import (
    FAMILY_TEXT,
    HEADLINES,
    family_text,
    format_headline,
    headline_figure,
    headline_label,
    headline_metrics,
    scorecard,
)
from workbench.reports.summary import SCHEMA, results_from_verdicts
from workbench.reports.verdicts import graded_verdict

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _v(
    notebook,
    check,
    est,
    lo,
    hi,
    family,
    warn,
    fail,
    direction="higher",
    primary=True,
    sentence=None,
    n=(500, 57, "topic"),
):
    v = graded_verdict(
        family,
        check,
        est,
        lo,
        hi,
        warn=warn,
        fail=fail,
        direction=direction,
        n=n[0],
        n_clusters=n[1],
        cluster_unit=n[2],
        family=family,
        sentence=sentence or f"{family}: {check} is {est}.",
        primary=primary,
    )
    return {"notebook": notebook, **asdict(v)}


def _verdicts(biased: bool):
    s = 1.0 if biased else 0.0
    return [
        _v("00_overview", "accuracy", 0.81 - 0.1 * s, 0.77 - 0.1 * s, 0.85 - 0.1 * s, "accuracy", 0.7, 0.6, "lower"),
        _v("01_calibration", "ece_excess", 0.012 + 0.05 * s, 0.004, 0.03 + 0.07 * s, "calibration", 0.05, 0.1),
        _v(
            "01_calibration",
            "log_temperature",
            math.log(1.1 + s),
            math.log(1.02),
            math.log(1.2 + 1.5 * s),
            "calibration",
            math.log(1.5),
            math.log(2.0),
            "two-sided",
        ),
        _v(
            "02_feature_probes",
            "length preference",
            0.01 + 0.07 * s,
            -0.02 + 0.08 * s,
            0.03 + 0.07 * s,
            "length",
            0.05,
            0.1,
        ),
        _v("02_feature_probes", "length correlation", 0.3, 0.2, 0.4, "length", 0.05, 0.1, primary=False),
        _v("02_feature_probes", "agree_with_user vs placebo", 0.04, 0.0, 0.08, "agreement", 0.05, 0.2),
        _v("02_feature_probes", "add_flattering_opener vs placebo", 0.01, -0.05, 0.06, "flattery", 0.1, 0.2),
        _v("02_feature_probes", "hedging preference", 0.0, -0.03, 0.03, "hedging", 0.05, 0.1),
        _v(
            "04_sycophancy",
            "sycophancy index (S + C - 1)",
            0.02 + 0.3 * s,
            -0.03 + 0.3 * s,
            0.07 + 0.3 * s,
            "sycophancy",
            0.1,
            0.2,
            n=(840, 168, "item"),
        ),
        _v(
            "04_sycophancy",
            "control agreement (user right)",
            0.9,
            0.85,
            0.95,
            "sycophancy",
            0.7,
            0.6,
            "lower",
            primary=False,
        ),
    ]


def _summary(model: str, biased: bool) -> dict:
    results = results_from_verdicts(_verdicts(biased), {}, {"00_overview": {"status": "ok"}})
    run = {
        "seconds": 1.0,
        "notebooks": {"01_calibration": {"html": "01_calibration.html", "ipynb": "01_calibration.ipynb"}},
    }
    return {
        "schema": SCHEMA,
        "inputs": {"model": model, "data": None, "data_hashes": []},
        "results": results,
        "run": run,
    }


class _Cells(HTMLParser):
    """Rows of the scorecard table (class 'scorecard') as lists of cell texts, and every <img src>."""

    def __init__(self):
        super().__init__()
        self.rows, self.imgs, self._in, self._row, self._cell = [], [], False, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._in = a.get("class") == "scorecard"
        elif tag == "img":
            self.imgs.append(a.get("src", ""))
        elif self._in and tag == "tr":
            self._row = []
        elif self._in and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self._in = False
        elif self._cell is not None and tag in ("td", "th"):
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif self._row is not None and tag == "tr":
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _parse(page: str) -> _Cells:
    p = _Cells()
    p.feed(page)
    return p


#: each headline's unit as the verdict sentences name it: (scale, format)
_UNIT_FORMAT = {
    "accuracy": (100, "{:.0f}%"),
    "ece_excess": (1, "{:+.3f}"),
    "temperature": (1, "{:.3g}"),
    "length": (100, "{:+.0f}"),
    "agreement": (1, "{:+.2f}"),
    "flattery": (1, "{:+.2f}"),
    "sycophancy": (100, "{:+.0f}"),
    "drift": (1, "{:+.2f}"),
}


def _expected_cell(summary, h) -> str:
    """What a headline cell must show, computed from the summary's verdict rows directly."""
    rows = [
        v
        for v in summary["results"]["verdicts"]
        if v["family"] == h.family and v["primary"] and v["check"].startswith(h.check)
    ]
    if not rows:
        return "\u2014"
    v = rows[0]
    f = math.exp if h.exp else (lambda x: x)
    scale, fmt = _UNIT_FORMAT[h.key]
    est, lo, hi = (
        re.sub(r"^[+-](0(\.0+)?)$", r"\1", fmt.format(scale * f(v[k]))) for k in ("value", "ci_low", "ci_high")
    )
    cell = f"{est} [{lo}, {hi}] n = {v['n']}, {v['n_clusters']} {v['cluster_unit']}s {v['verdict']}"
    family = summary["results"]["families"][h.family]["verdict"]
    return cell + (f" {h.family} family: {family}" if family != v["verdict"] else "")


def test_scorecard_shows_each_models_headlines_as_in_the_summary(tmp_path):
    summaries = {"demo-clean": _summary("demo-clean", False), "demo-biased": _summary("demo-biased", True)}
    for name, s in summaries.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps(s))
    page = write_top_index(tmp_path, [tmp_path / n for n in summaries]).read_text()
    parsed = _parse(page)
    header, *rows = parsed.rows
    assert header == ["model", "overall", *[headline_label(h) for h in HEADLINES]]
    assert header[2:5] == ["accuracy (%)", "calibration excess (ECE)", "temperature T"]
    assert header[5:7] == ["length preference over annotators (points)", "agreement effect (SD)"]
    assert [r[0] for r in rows] == ["demo-clean", "demo-biased"]
    for row, (name, s) in zip(rows, summaries.items(), strict=True):
        assert row[1] == s["results"]["overall"]
        for cell, h in zip(row[2:], HEADLINES, strict=True):
            assert cell == _expected_cell(s, h), (name, h.key)
    # hand-checked: biased T = 2.1 from log T, interval exp(log 1.02) .. exp(log 2.7); drift was not audited
    cells = dict(zip([h.key for h in HEADLINES], rows[1][2:], strict=True))
    assert cells["temperature"].startswith("2.1 [1.02, 2.7] ")
    assert rows[1][-1] == "\u2014"
    # hand-checked units: accuracy 0.71 [0.67, 0.75] in percent, length 0.08 [0.06, 0.10] in points,
    # agreement 0.04 [0.0, 0.08] in SD (a zero bound without a sign), sycophancy 0.32 [0.27, 0.37] in points
    assert cells["accuracy"].startswith("71% [67%, 75%] ")
    assert cells["length"].startswith("+8 [+6, +10] ")
    assert cells["agreement"].startswith("+0.04 [0.00, +0.08] ")
    assert cells["flattery"].startswith("+0.01 [-0.05, +0.06] ")
    assert cells["sycophancy"].startswith("+32 [+27, +37] ")
    assert cells["ece_excess"].startswith("+0.062 [+0.004, +0.100] ")
    # hand-checked: the sycophancy cell names its 840 pairs and the 168 items the interval resamples
    assert " n = 840, 168 items " in rows[1][2 + [h.key for h in HEADLINES].index("sycophancy")]
    # one small headline figure per model, a real PNG
    pngs = [base64.b64decode(src.split(",", 1)[1]) for src in parsed.imgs]
    assert len(pngs) == 2 and all(p.startswith(PNG_MAGIC) for p in pngs)
    assert all(src.startswith("data:image/png;base64,") for src in parsed.imgs)


def test_a_headline_names_its_family_verdict_when_another_check_decided_it():
    s = _summary("demo-biased", True)
    for v in s["results"]["verdicts"]:  # the temperature fails; the ECE excess stays inconclusive
        if v["check"] == "log_temperature":
            v["value"], v["ci_low"], v["ci_high"], v["verdict"] = math.log(2.9), math.log(2.05), math.log(5.0), "fail"
        if v["check"] == "ece_excess":
            v["verdict"] = "inconclusive"
    s["results"]["families"]["calibration"]["verdict"] = "fail"
    heads = {h["key"]: h for h in headline_metrics(s["results"])}
    assert heads["ece_excess"]["verdict"] == "inconclusive" and heads["ece_excess"]["family_verdict"] == "fail"
    assert heads["temperature"]["verdict"] == "fail" and heads["temperature"]["family_verdict"] is None
    assert heads["accuracy"]["family_verdict"] is None
    cells = _parse(render_run_index(s)).rows[1][2:]
    assert cells[1].endswith("inconclusive calibration family: fail")
    assert cells[2] == "2.9 [2.05, 5] n = 500, 57 topics fail"


def test_headline_numbers_are_rounded_in_their_unit():
    assert format_headline(0.6075, "percent") == "61%"
    assert format_headline(0.088907, "points") == "+9"
    assert format_headline(-0.004, "points") == "0"  # no "-0"
    assert format_headline(0.530443, "SD") == "+0.53"
    assert format_headline(-0.0012, "SD") == "0.00"
    assert format_headline(0.106188, "excess") == "+0.106"
    assert format_headline(2.8700, "number") == "2.87"
    assert format_headline(None, "SD") == "\u2014"


def test_headline_figure_draws_in_the_cells_unit(monkeypatch):
    import matplotlib.axes

    drawn = []
    real = matplotlib.axes.Axes.plot

    def spy(self, *args, **kwargs):
        drawn.append(args[:2])
        return real(self, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "plot", spy)
    heads = [
        h for h in headline_metrics(_summary("demo-biased", True)["results"]) if h["key"] in ("accuracy", "agreement")
    ]
    assert headline_figure(heads).startswith("data:image/png;base64,")
    # accuracy 0.71 [0.67, 0.75] drawn in percent, agreement 0.04 [0.0, 0.08] in SD
    assert drawn[0][0] == pytest.approx([67, 75]) and drawn[1][0] == pytest.approx([71])
    assert drawn[2][0] == pytest.approx([0.0, 0.08]) and drawn[3][0] == pytest.approx([0.04])


def test_findings_lead_with_meaning_and_next_step():
    s = _summary("demo-biased", True)
    card = scorecard(s)
    levels = [f["verdict"] for f in card["families"]]
    assert levels == sorted(levels, key=["fail", "warn", "inconclusive", "pass", "n/a"].index)
    fams = s["results"]["families"]
    assert [f["family"] for f in card["findings"]] == [
        f["family"] for f in card["families"] if fams[f["family"]]["verdict"] != "pass"
    ]
    assert {f["family"] for f in card["findings"]} == {"accuracy", "calibration", "length", "agreement", "sycophancy"}
    page = render_run_index(s)
    text = html.unescape(" ".join(page.split()))
    for f in card["findings"]:
        assert FAMILY_TEXT[f["family"]][0] in text and FAMILY_TEXT[f["family"]][1] in text
        assert fams[f["family"]]["sentence"] in text  # the chip's reason is the deciding check's sentence
    # the agreement family is inconclusive: the finding says what would settle it
    assert "about 912 topics would settle it" in text or "more than 10x the current 57 topics" in text
    # the scorecard opens the page; the verdict table follows with passing families collapsed
    assert page.index("class='scorecard'") < page.index("Findings by family") < page.index("All verdicts by family")
    groups = re.findall(r"<details class='group'( open)?><summary>(\w+) ", page)
    assert {fam: bool(op) for op, fam in groups} == {f: fams[f]["verdict"] != "pass" for f in fams}
    assert family_text("no such family")["next"].startswith("Open the notebook report")


def test_missing_and_malformed_numbers_show_dashes():
    s = _summary("m", False)
    s["results"]["verdicts"] = [v for v in s["results"]["verdicts"] if v["family"] != "accuracy"]
    for v in s["results"]["verdicts"]:
        if v["check"] == "ece_excess":
            v["value"], v["ci_low"], v["ci_high"] = "<b>x</b>", None, None
    heads = {h["key"]: h for h in headline_metrics(s["results"])}
    assert heads["accuracy"]["verdict"] is None and heads["accuracy"]["shown"] == "\u2014"
    assert heads["ece_excess"]["shown"] == "\u2014" and heads["ece_excess"]["interval"] == ""


def test_notebook_figure_is_embedded_and_bad_base64_is_skipped(tmp_path):
    s = _summary("m", True)
    png = base64.b64encode(PNG_MAGIC + b"fake-but-valid-base64").decode()
    cells = [
        {"cell_type": "code", "outputs": [{"output_type": "display_data", "data": {"image/png": "'><script>x"}}]},
        {"cell_type": "code", "outputs": [{"output_type": "display_data", "data": {"image/png": png}}]},
    ]
    (tmp_path / "01_calibration.ipynb").write_text(json.dumps({"cells": cells}))
    page = write_run_index(tmp_path, s).read_text()
    srcs = _parse(page).imgs
    assert f"data:image/png;base64,{png}" in srcs and "<script>x" not in page
    assert "reliability diagram" in page


@pytest.mark.skipif(find_chromium() is None, reason="headless Chromium is not installed")
def test_index_prints_to_pdf(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "summary.json").write_text(json.dumps(_summary("m", True)))
    index = write_top_index(tmp_path, [tmp_path / "m"])
    pdf = render_pdf(index)
    data = pdf.read_bytes()
    assert (
        pdf == tmp_path / "index.pdf"
        and data.startswith(b"%PDF")
        and data.count(b"/Type /Page\n") + data.count(b"/Type /Page ") + data.count(b"/Type /Page>") >= 1
    )


def test_pdf_errors_name_the_page_and_what_to_do(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=r"no report page to print at .*nowhere\.html: run the audit first"):
        render_pdf(tmp_path / "nowhere.html")
    page = tmp_path / "index.html"
    page.write_text("<p>x</p>")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"index\.html to PDF: install headless Chromium"):
        render_pdf(page)
    # --pdf is checked before the audit runs anything
    with pytest.raises(PreflightError, match="--pdf needs headless Chromium"):
        run_audit("demo-clean", out=tmp_path / "out", pdf=True)
    assert not (tmp_path / "out" / "summary.json").exists()


def test_family_text_hedges_an_inconclusive_finding():
    from workbench.reports.scorecard import FAMILY_TEXT, family_text

    confirmed = family_text("length", "warn")
    assert confirmed["meaning"] == FAMILY_TEXT["length"][0]
    open_question = family_text("length", "inconclusive")
    assert open_question["meaning"].startswith("Not settled") and FAMILY_TEXT["length"][0] in open_question["meaning"]
    assert open_question["next"] == confirmed["next"]


def test_every_graded_family_has_its_own_explanation():
    """No family of the feature audit (nor the other sections) falls back to the generic text."""
    from workbench.audits.features.families import FAMILIES

    families = set(FAMILIES) | {"accuracy", "calibration", "sycophancy", "drift", "attribution"}
    families |= {"best_of_n", "goodhart", "ensemble", "notebook runs"}
    missing = sorted(f for f in families if f not in FAMILY_TEXT)
    assert not missing, missing
