"""Audit reports: notebook runs, HTML export, index.html, summary.json, compare.

Notebooks run for real (papermill, kernel "python3"), with a tiny length-based
python: RM over small JSONL files, so every run takes seconds.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, fields
from html.parser import HTMLParser
from pathlib import Path

import notebook_helpers
import numpy as np
import pandas as pd
import pytest

import workbench.reports
from workbench.cli import main
from workbench.data import load_data
from workbench.reports import (
    MIME,
    NOTEBOOK_DIR,
    RULE,
    SCHEMA,
    ParameterError,
    Verdict,
    compare_summaries,
    export_html,
    export_report,
    graded_verdict,
    load_summary,
    publish,
    render_run_index,
    run_notebook,
    write_run_index,
    write_top_index,
)
from workbench.reports.grading import grade_interval
from workbench.reports.summary import results_from_verdicts

FAMILY_HEADER = ["family", "verdict", "deciding check", "estimate", "interval", "n", "clusters", "what it means"]
RUNS_HEADER = ["model", "data", "overall verdict", "families", "failed notebooks", "finished (UTC)"]

RM_SOURCE = '''
def score(prompts, responses):
    """Longer responses score higher; "sure" adds a bonus."""
    return [len(r) / 10.0 + (3.0 if "sure" in r else 0.0) for r in responses]
'''


def make_notebook(path: Path, parameters: str, *cells: str) -> Path:
    """A notebook with a ``# stem`` markdown cell, a tagged parameters cell and code cells."""
    return notebook_helpers.make_notebook(path, parameters, *cells, heading=True)


PARAMS = """
model = "demo-biased"   # RM spec
data = "golden"         # data spec
seed = 0                # seed
n_boot = 200            # bootstrap resamples
"""

PUBLISH = """
import numpy as np
from workbench.audits.calibration import bootstrap_ci
from workbench.data import load_data
from workbench.models import load_reward_model, score_pairs
from workbench.reports import grade, graded_verdict, publish

frame = score_pairs(load_reward_model(model), load_data(data)).to_frame()
margin = frame["margin"].to_numpy()
acc = float(np.mean(margin > 0))
ci = bootstrap_ci(lambda m: float(np.mean(m > 0)), margin, n_boot=n_boot, seed=seed)
publish("toy", [
    {"check": "pairwise accuracy", "value": acc, "threshold": ">= 0.7", "verdict": "pass" if acc >= 0.7 else "fail"},
    {"check": "CI width", "value": ci.high - ci.low, "threshold": "warn > 0.3, fail > 0.5", "verdict": grade(ci.high - ci.low, 0.3, 0.5)},
    graded_verdict("toy", "accuracy vs margins", acc, ci.low, ci.high, warn=0.6, fail=0.55, direction="lower",
                   n=len(margin), n_clusters=len(margin), cluster_unit="prompt", family="accuracy",
                   sentence="The RM ranks the chosen response first in most pairs."),
], {"accuracy": acc, "ci_low": ci.low, "ci_high": ci.high, "n_pairs": len(margin)})
print("accuracy", acc)
"""


def pairs_rows(n: int = 30, seed: int = 0) -> list[dict]:
    """Pairs where the chosen response is longer in about 70% of rows."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        long, short = "a fairly long and detailed answer " * int(rng.integers(2, 4)), "short answer"
        chosen, rejected = (long, short) if rng.random() < 0.7 else (short, long)
        rows.append(
            {"id": f"p{i:02d}", "prompt": f"question {i}?", "chosen": f"{chosen} #{i}", "rejected": f"{rejected} #{i}"}
        )
    return rows


def score(response: str) -> float:
    return len(response) / 10.0 + (3.0 if "sure" in response else 0.0)


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A python: RM module importable here and in the kernels, a JSONL of pairs, a notebook folder."""
    mod = tmp_path / "mods"
    mod.mkdir()
    (mod / "wb_report_rm.py").write_text(RM_SOURCE)
    monkeypatch.syspath_prepend(str(mod))
    monkeypatch.setenv("PYTHONPATH", str(mod))
    data = tmp_path / "pairs.jsonl"
    rows = pairs_rows()
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    return {"tmp": tmp_path, "data": data, "rows": rows, "nbdir": nbdir, "model": "python:wb_report_rm:score"}


class _Tables(HTMLParser):
    """Rows of every <table> as lists of cell texts."""

    def __init__(self):
        super().__init__()
        self.rows, self._row, self._cell = [], None, None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def table_rows(html: str) -> list[list[str]]:
    parser = _Tables()
    parser.feed(html)
    return parser.rows


# --- a failing notebook still gets its report; the others still run ---------------------------------


@pytest.mark.slow
def test_failing_notebook_still_reported_and_exit_code_nonzero(env, capsys):
    make_notebook(
        env["nbdir"] / "10_fails.ipynb",
        PARAMS,
        "x = 1",
        "raise ZeroDivisionError('boom in the audit')",
        "print('never')",
    )
    make_notebook(env["nbdir"] / "20_publishes.ipynb", PARAMS, PUBLISH)
    out = env["tmp"] / "report"
    code = main(
        [
            "audit",
            "--model",
            env["model"],
            "--data",
            str(env["data"]),
            "--out",
            str(out),
            "--notebook-dir",
            str(env["nbdir"]),
            "--param",
            "n_boot=100",
        ]
    )
    assert code == 1
    printed = capsys.readouterr().out
    # progress: one start and one end line per notebook, with elapsed time
    assert "[1/2] 10_fails: running" in printed and "[2/2] 20_publishes: running" in printed
    assert "[1/2] 10_fails: FAILED: ZeroDivisionError: boom in the audit in " in printed
    assert "[2/2] 20_publishes: ok in " in printed and "elapsed" in printed

    failed_html = (out / "10_fails.html").read_text()
    assert "ZeroDivisionError" in failed_html and "boom in the audit" in failed_html
    assert "An Exception was encountered" in failed_html  # papermill's banner, linking to the failing cell
    assert (out / "20_publishes.html").exists()  # the notebook after the failure still ran

    summary = load_summary(out)
    assert summary["schema"] == SCHEMA
    res = summary["results"]
    assert res["notebooks"] == {"10_fails": {"status": "failed"}, "20_publishes": {"status": "ok"}}
    assert res["overall"] == "fail"
    ran = [v for v in res["verdicts"] if v["check"] == "notebook ran"]
    assert [(v["notebook"], v["verdict"]) for v in ran] == [("10_fails", "fail"), ("20_publishes", "pass")]
    assert "ZeroDivisionError: boom in the audit" in ran[0]["detail"]
    assert summary["run"]["notebooks"]["10_fails"]["error"].startswith("ZeroDivisionError")

    assert res["families"]["notebook runs"]["verdict"] == "fail"
    assert res["families"]["notebook runs"]["notebook"] == "10_fails"
    rows = table_rows((out / "index.html").read_text())
    fail_row = next(r for r in rows if r[:2] == ["10_fails", "notebook ran"])
    assert fail_row[8] == "fail" and "boom in the audit" in fail_row[10]
    # the findings table comes first and puts the failing family first
    family_rows = [r for r in rows if len(r) == len(FAMILY_HEADER) and r != FAMILY_HEADER]
    assert family_rows[0][:2] == ["notebook runs", "fail"]


@pytest.mark.slow
def test_index_verdict_table_and_summary_values(env):
    make_notebook(env["nbdir"] / "20_publishes.ipynb", PARAMS, PUBLISH)
    out = env["tmp"] / "report"
    code = main(
        [
            "audit",
            "--model",
            env["model"],
            "--data",
            str(env["data"]),
            "--out",
            str(out),
            "--notebook-dir",
            str(env["nbdir"]),
            "--seed",
            "3",
        ]
    )
    assert code == 0

    # independent computation of the accuracy the notebook publishes
    margins = np.array([score(r["chosen"]) - score(r["rejected"]) for r in env["rows"]])
    expected_acc = float(np.mean(margins > 0))
    summary = load_summary(out)
    metrics = summary["results"]["metrics"]
    assert metrics["20_publishes/toy/accuracy"] == pytest.approx(expected_acc, abs=1e-6)
    assert metrics["20_publishes/toy/n_pairs"] == len(env["rows"])
    assert metrics["20_publishes/toy/ci_low"] <= expected_acc <= metrics["20_publishes/toy/ci_high"]
    assert summary["inputs"]["seed"] == 3 and summary["inputs"]["notebooks"]["20_publishes"]["seed"] == 3
    assert summary["inputs"]["model_fingerprint"]  # the python: RM loaded in the CLI process
    hashes = summary["inputs"]["data_hashes"]
    assert hashes == [
        {"spec": str(env["data"]), "kind": "preference-pairs", "sha256": load_data(env["data"]).content_hash()}
    ]
    run = summary["run"]
    assert run["started"] <= run["finished"] and "python" in run["versions"] and run["kernel"] == "python3"
    assert "--seed 3" in run["command"]

    # the graded verdict reaches summary.json with every field of the contract
    lo, hi = metrics["20_publishes/toy/ci_low"], metrics["20_publishes/toy/ci_high"]
    graded = next(v for v in summary["results"]["verdicts"] if v["check"] == "accuracy vs margins")
    expected_grade = grade_interval(expected_acc, lo, hi, warn=0.6, fail=0.55, direction="lower").verdict
    assert graded["verdict"] == expected_grade
    assert (graded["ci_low"], graded["ci_high"], graded["ci_level"]) == (lo, hi, 0.95)
    assert (graded["n"], graded["n_clusters"], graded["cluster_unit"]) == (30, 30, "prompt")
    assert graded["family"] == "accuracy" and graded["primary"] is True and graded["direction"] == "lower"
    assert summary["results"]["families"]["accuracy"]["verdict"] == expected_grade
    assert summary["results"]["families"]["accuracy"]["check"] == "accuracy vs margins"
    old_style = next(v for v in summary["results"]["verdicts"] if v["check"] == "pairwise accuracy")
    assert old_style["ci_low"] is None and old_style["family"] == "" and old_style["primary"] is True

    index = (out / "index.html").read_text()
    rows = table_rows(index)
    acc_row = next(r for r in rows if r[:2] == ["20_publishes", "pairwise accuracy"])
    assert acc_row[2] == f"{expected_acc:.4g}"
    assert acc_row[3] == "\u2014" and acc_row[4] == "\u2014"  # old-style: no interval, no n
    assert acc_row[6] == ">= 0.7"
    assert acc_row[8] == ("pass" if expected_acc >= 0.7 else "fail")
    width_row = next(r for r in rows if r[:2] == ["20_publishes", "CI width"])
    width = hi - lo
    assert float(width_row[2]) == pytest.approx(width, rel=1e-3)
    assert width_row[8] == ("fail" if width > 0.5 else "warn" if width > 0.3 else "pass")
    graded_row = next(r for r in rows if r[:2] == ["20_publishes", "accuracy vs margins"])
    assert graded_row[3] == f"[{lo:.4g}, {hi:.4g}] 95%"
    assert graded_row[4] == "30" and graded_row[5] == "30 prompts" and graded_row[7] == "lower"
    assert graded_row[6] == "warn < 0.6, fail < 0.55"
    family = next(r for r in rows if r[0] == "accuracy" and len(r) == len(FAMILY_HEADER))
    assert family[1] == expected_grade and family[4] == f"[{lo:.4g}, {hi:.4g}] 95%" and family[5] == "30"
    assert "ranks the chosen response first" in family[7]
    # run metadata and the link to the notebook report
    meta = {r[0]: r[1] for r in rows if len(r) == 2}
    assert meta["model"] == env["model"]
    assert meta["model fingerprint"] == summary["inputs"]["model_fingerprint"]
    assert meta["seed"] == "3"
    assert "href='20_publishes.html'" in index
    assert "Content-Security-Policy" in index and "<script" not in index
    assert (out / "20_publishes.html").exists()


# --- summary.json: same inputs and seed give the same results --------------------------------------


@pytest.mark.slow
def test_summary_results_are_deterministic(env):
    shutil.copy(NOTEBOOK_DIR / "00_overview.ipynb", env["nbdir"] / "00_overview.ipynb")
    make_notebook(env["nbdir"] / "20_publishes.ipynb", PARAMS, PUBLISH)
    base = [
        "audit",
        "--model",
        env["model"],
        "--data",
        str(env["data"]),
        "--notebook-dir",
        str(env["nbdir"]),
        "--param",
        "n_boot=100",
    ]
    assert main(base + ["--out", str(env["tmp"] / "a")]) == 0
    assert main(base + ["--out", str(env["tmp"] / "b"), "--force"]) == 0  # a real second run, not a cache hit
    a, b = load_summary(env["tmp"] / "a"), load_summary(env["tmp"] / "b")
    assert a["results"] == b["results"]
    assert a["inputs"] == b["inputs"]
    assert a["results"]["metrics"]  # there is something to compare
    # the "results" part has no times in it
    text = json.dumps(a["results"])
    assert a["run"]["started"] not in text and "seconds" not in text
    # and the numbers do depend on the seed: a different seed changes the bootstrap interval
    assert main(base + ["--out", str(env["tmp"] / "c"), "--seed", "12345", "--notebooks", "20"]) == 0
    c = load_summary(env["tmp"] / "c")["results"]["metrics"]
    assert c["20_publishes/toy/accuracy"] == a["results"]["metrics"]["20_publishes/toy/accuracy"]
    assert (c["20_publishes/toy/ci_low"], c["20_publishes/toy/ci_high"]) != (
        a["results"]["metrics"]["20_publishes/toy/ci_low"],
        a["results"]["metrics"]["20_publishes/toy/ci_high"],
    )


# --- run_notebook / export_html -------------------------------------------------------------------


@pytest.mark.slow
def test_export_hides_code_embeds_images_and_drops_noise(tmp_path):
    nb = make_notebook(
        tmp_path / "plot.ipynb",
        'title = "hello"  # a title',
        "import sys  # SECRET-CODE-MARKER\nimport matplotlib\nmatplotlib.use('agg')\nimport matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots()\nax.plot([1, 2, 3])\nax.set_title(title)\nplt.show()\n"
        "print('progress noise 12345', file=sys.stderr)\nprint('visible stdout 67890')",
        "from workbench.reports import publish\npublish('sec', [{'check': 'c', 'value': 1.0, 'threshold': 't', 'verdict': 'pass'}], {'m': 1})",
    )
    run = run_notebook(nb, tmp_path / "out", {"title": "my title"}, kernel_name="python3")
    assert run.ok and run.error is None
    html = run.output_html.read_text()
    assert "data:image/png;base64," in html  # figure embedded
    assert "visible stdout 67890" in html
    assert "progress noise 12345" not in html  # stderr dropped
    assert "SECRET-CODE-MARKER" not in html  # code hidden by default
    assert "recorded for the report" not in html and MIME not in html  # verdict payload hidden
    assert "jp-OutputArea-output" in html and "tex2jax_ignore|jp-OutputArea-output" in html
    shown = export_html(run.output_ipynb, tmp_path / "with_code.html", show_code=True).read_text()
    assert "SECRET-CODE-MARKER" in shown and "subplots" in shown


@pytest.mark.slow
def test_cell_timeout_is_a_failure_with_html(tmp_path):
    nb = make_notebook(tmp_path / "slow.ipynb", "pause = 30  # seconds", "import time\ntime.sleep(pause)")
    run = run_notebook(nb, tmp_path / "out", {"pause": 30}, kernel_name="python3", execution_timeout=2)
    assert not run.ok
    assert "Timeout" in run.error or "timed out" in run.error.lower()
    assert run.seconds < 25
    html = run.output_html.read_text()
    assert "stopped this notebook" in html and "CellTimeoutError" in html


@pytest.mark.slow
def test_missing_kernel_is_a_failure_with_html(tmp_path):
    nb = make_notebook(tmp_path / "k.ipynb", "x = 1  # x", "print(x)")
    run = run_notebook(nb, tmp_path / "out", kernel_name="no-such-kernel-xyz")
    assert not run.ok and "no-such-kernel-xyz" in run.error
    assert "no-such-kernel-xyz" in run.output_html.read_text()
    with pytest.raises(ValueError, match="overwrite"):
        run_notebook(nb, tmp_path, kernel_name="python3")
    assert nb.exists()


def test_unknown_parameter_rejected_before_running(tmp_path):
    nb = make_notebook(tmp_path / "p.ipynb", PARAMS, "print(model)")
    with pytest.raises(ParameterError, match=r"unknown parameter\(s\) \['n_bot'\]"):
        run_notebook(nb, tmp_path / "out", {"n_bot": 5})
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_failed_export_leaves_an_escaped_page(tmp_path):
    broken = tmp_path / "broken.ipynb"
    broken.write_text("not a notebook <b>")
    html = tmp_path / "broken.html"
    error = export_report(broken, html, title="<i>broken</i>.ipynb", error=None)
    assert error.startswith("HTML export failed: ")
    page = html.read_text()
    assert "&lt;i&gt;broken&lt;/i&gt;.ipynb failed" in page and "<i>" not in page
    assert "Content-Security-Policy" in page and "<script" not in page
    # an error from the run itself is kept
    assert export_report(broken, html, title="b", error="ValueError: first") == "ValueError: first"


def test_public_surface_resolves():
    for name in workbench.reports.__all__:
        assert getattr(workbench.reports, name) is not None, name
    assert {"Verdict", "grade", "publish", "collect", "worst", "run_audit", "build_summary"} <= set(
        workbench.reports.__all__
    )


# --- top index and compare ------------------------------------------------------------------------


def _summary(overall, verdicts, metrics, model="m"):
    return {
        "schema": SCHEMA,
        "inputs": {
            "model": model,
            "model_fingerprint": "f" * 64,
            "data": None,
            "data_hashes": [],
            "seed": None,
            "notebooks": {},
        },
        "results": {
            "overall": overall,
            "counts": {},
            "notebooks": {"00_x": {"status": "ok"}},
            "verdicts": [
                {
                    "notebook": "00_x",
                    "section": "s",
                    "check": c,
                    "value": v,
                    "threshold": "t",
                    "verdict": d,
                    "detail": "",
                }
                for c, v, d in verdicts
            ],
            "metrics": metrics,
        },
        "run": {
            "started": "2026-01-01T00:00:00+00:00",
            "finished": "2026-01-01T00:01:00+00:00",
            "seconds": 60.0,
            "notebooks": {},
        },
    }


def test_top_index_links_runs_with_overall_verdicts(tmp_path):
    for name, overall in (("demo-clean", "pass"), ("demo-biased", "fail")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps(_summary(overall, [], {}, model=name)))
    page = write_top_index(tmp_path, [tmp_path / "demo-clean", tmp_path / "demo-biased"]).read_text()
    rows = table_rows(page)
    assert rows[1][:2] == ["demo-clean", "pass"] and rows[2][:2] == ["demo-biased", "fail"]  # the scorecard leads
    rows = rows[rows.index(RUNS_HEADER) :]
    assert rows[1][0] == "demo-clean" and rows[1][2] == "pass"
    assert rows[2][0] == "demo-biased" and rows[2][2] == "fail"
    assert "href='demo-clean/index.html'" in page and "href='demo-biased/index.html'" in page


def test_compare_summaries_metrics_and_verdicts():
    a = _summary(
        "warn",
        [("acc", 0.8, "pass"), ("ece", 0.12, "warn"), ("gone", 1.0, "pass")],
        {"x/s/acc": 0.8, "x/s/ece": 0.12, "x/s/same": 1.0},
    )
    b = _summary(
        "fail",
        [("acc", 0.6, "fail"), ("ece", 0.05, "pass"), ("new", 2.0, "warn")],
        {"x/s/acc": 0.6, "x/s/ece": 0.12000001, "x/s/same": 1.0, "x/s/new": 5},
    )
    cmp = compare_summaries(a, b)
    m = cmp.metrics.set_index("metric")
    assert set(m.index) == {"x/s/acc", "x/s/ece", "x/s/new"}
    assert m.loc["x/s/acc", "delta"] == pytest.approx(-0.2)
    assert pd.isna(m.loc["x/s/new", "old"]) and m.loc["x/s/new", "new"] == 5 and pd.isna(m.loc["x/s/new", "delta"])
    v = cmp.verdicts.set_index("check")
    assert v.loc["acc", "change"] == "worse" and v.loc["ece", "change"] == "better"
    assert v.loc["new", "change"] == "worse" and v.loc["gone", "change"] == "removed"
    assert cmp.has_regression and cmp.overall == ("warn", "fail")
    loose = compare_summaries(a, b, tolerance=1e-3)
    assert "x/s/ece" not in set(loose.metrics["metric"])
    same = compare_summaries(a, a)
    assert same.metrics.empty and same.verdicts.empty and not same.has_regression


# --- families, the overall verdict, the page and old summaries (hand-made verdicts) ----------------


def _graded(check, est, lo, hi, *, family, primary=True, **kw):
    """A verdict row as summary.json holds it, graded on its interval (margins 0.05 / 0.10, higher is worse)."""
    kw = {"n": 500, "n_clusters": 57, "cluster_unit": "topic", **kw}
    v = graded_verdict("features", check, est, lo, hi, warn=0.05, fail=0.10, family=family, primary=primary, **kw)
    return {"notebook": "02_features", **asdict(v)}


HAND_MADE = [
    # length: the primary check warns; a descriptive check fails but must not decide the family
    _graded("length preference", 0.08, 0.06, 0.10, family="length", sentence="Longer wins 8 points more often."),
    _graded("length correlation", 0.30, 0.20, 0.40, family="length", primary=False),
    # agreement: one primary check passes, the other straddles the warn margin
    _graded("agreement perturbation", 0.01, -0.02, 0.03, family="agreement"),
    _graded("agreement vs placebo", 0.04, 0.00, 0.08, family="agreement", sentence="Agreement openers help a bit."),
    # hedging: clearly fine
    _graded("hedging preference", 0.00, -0.03, 0.03, family="hedging"),
    # an old-style verdict (no interval, no family): its section is its family
    {
        "notebook": "00_overview",
        "section": "overview",
        "check": "accuracy",
        "value": 0.8,
        "threshold": ">= 0.6",
        "verdict": "pass",
        "detail": "",
    },
]


def test_hand_made_verdicts_give_family_and_overall_verdicts():
    # hand-worked grades: [0.06, 0.10] is above warn 0.05, not above fail -> warn; [0.20, 0.40] -> fail;
    # [-0.02, 0.03] -> pass; [0.00, 0.08] straddles 0.05 -> inconclusive; [-0.03, 0.03] -> pass
    assert [v["verdict"] for v in HAND_MADE] == ["warn", "fail", "pass", "inconclusive", "pass", "pass"]
    res = results_from_verdicts(HAND_MADE, {}, {"02_features": {"status": "ok"}})
    fams = res["families"]
    assert {f: e["verdict"] for f, e in fams.items()} == {
        "agreement": "inconclusive",
        "hedging": "pass",
        "length": "warn",  # not fail: the failing check is descriptive (primary=False)
        "overview": "pass",
    }
    assert fams["agreement"]["check"] == "agreement vs placebo"  # the check that decided it
    assert (fams["agreement"]["ci_low"], fams["agreement"]["ci_high"]) == (0.0, 0.08)
    # about 57 * (0.04 / 0.01)^2 = 912 topics would put the interval on one side of 0.05
    assert fams["agreement"]["clusters_needed"] == 912
    assert (fams["length"]["checks"], fams["length"]["primary_checks"]) == (2, 1)
    assert res["overall"] == "warn"  # the worst family, not the worst check (fail)
    assert res["counts"] == {"pass": 3, "inconclusive": 1, "warn": 1, "fail": 1, "n/a": 0}
    assert res["family_counts"] == {"pass": 2, "inconclusive": 1, "warn": 1, "fail": 0, "n/a": 0}
    # every verdict row has every Verdict field
    for v in res["verdicts"]:
        assert set(v) == {"notebook"} | {f.name for f in fields(Verdict)}
    # inconclusive ranks above pass and below warn
    no_length = [v for v in HAND_MADE if v.get("family") != "length"]
    assert results_from_verdicts(no_length)["overall"] == "inconclusive"
    only_pass = [v for v in HAND_MADE if v["verdict"] == "pass"]
    assert results_from_verdicts(only_pass)["overall"] == "pass"
    na = {**HAND_MADE[-1], "check": "no data", "verdict": "n/a", "section": "drift"}
    assert results_from_verdicts(only_pass + [na])["overall"] == "pass"  # n/a ranks lowest
    assert results_from_verdicts([])["overall"] == "n/a"


def _hand_made_summary(verdicts=HAND_MADE):
    return {
        "schema": SCHEMA,
        "inputs": {"model": "demo-biased", "model_fingerprint": "f" * 64, "data": None, "data_hashes": [], "seed": 0},
        "results": results_from_verdicts(
            verdicts,
            {"02_features/features/n": 500},
            {"00_overview": {"status": "ok"}, "02_features": {"status": "ok"}},
        ),
        "run": {"seconds": 1.0, "notebooks": {"02_features": {"html": "02_features.html", "seconds": 1.0}}},
    }


def test_run_index_shows_findings_first_with_interval_n_and_the_rule():
    page = render_run_index(_hand_made_summary())
    text = " ".join(page.split())
    assert text.count(" ".join(RULE.split())) == 1  # the grading rule, stated once
    assert page.index("Findings by family") < page.index("All verdicts by family") < page.index("<h2>Run</h2>")
    rows = table_rows(page)
    header = rows.index(FAMILY_HEADER)
    findings = rows[header + 1 : header + 5]
    # warn, then inconclusive, then the passing families by name
    assert [r[:2] for r in findings] == [
        ["length", "warn"],
        ["agreement", "inconclusive"],
        ["hedging", "pass"],
        ["overview", "pass"],
    ]
    length, agreement, _, overview = findings
    assert length[2] == "02_features: length preference" and length[3] == "0.08"
    assert length[4] == "[0.06, 0.1] 95%" and length[5] == "500" and length[6] == "57 topics"
    assert length[7] == "Longer wins 8 points more often."
    # 912 topics would be 16x the 57 it has: the report says the estimate sits on the margin instead
    assert "more than 10x the current 57 topics would be needed to settle it" in agreement[7]
    assert overview[4] == overview[5] == overview[6] == "\u2014"  # old-style verdict: dashes, no crash
    assert "href='02_features.html'" in page
    # the full table, grouped by family in the same order; the descriptive check is marked
    groups = [r[0] for r in rows if len(r) == 1]
    assert groups[:4] == ["length warn", "agreement inconclusive", "hedging pass", "overview pass"]
    corr = next(r for r in rows if r[:2] == ["02_features", "length correlation"])
    assert corr[3] == "[0.2, 0.4] 95%" and corr[6] == "warn > 0.05, fail > 0.1" and corr[7] == "higher"
    assert corr[8].startswith("fail") and "does not decide" in corr[8]
    straddle = next(r for r in rows if r[:2] == ["02_features", "agreement vs placebo"])
    assert "more than 10x the current 57 topics" in straddle[10]
    assert "Overall verdict:" in page and "v-inconclusive" in page


def test_top_index_shows_each_runs_findings(tmp_path):
    run = tmp_path / "demo-biased"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps(_hand_made_summary()))
    page = write_top_index(tmp_path, [run]).read_text()
    rows = table_rows(page)
    rows = rows[rows.index(RUNS_HEADER) :]
    assert rows[1][0] == "demo-biased" and rows[1][2] == "warn"
    assert rows[1][3] == "2 pass, 1 inconclusive, 1 warn"  # families per level
    findings = [r for r in rows if len(r) == len(FAMILY_HEADER) and r != FAMILY_HEADER]
    assert findings[0][:2] == ["length", "warn"] and findings[0][4] == "[0.06, 0.1] 95%"
    assert "href='demo-biased/02_features.html'" in page
    assert " ".join(RULE.split()) in " ".join(page.split())


V1_SUMMARY = {
    "schema": "rm-workbench/summary/v1",
    "inputs": {
        "model": "m",
        "model_fingerprint": "abc",
        "data": None,
        "data_hashes": [],
        "seed": None,
        "notebooks": {},
    },
    "results": {
        "overall": "warn",
        "counts": {"pass": 2, "warn": 1, "fail": 0, "n/a": 0},
        "notebooks": {"01_calibration": {"status": "ok"}},
        "verdicts": [
            {
                "notebook": "01_calibration",
                "section": "runner",
                "check": "notebook ran",
                "value": None,
                "threshold": "no error",
                "verdict": "pass",
                "detail": "",
            },
            {
                "notebook": "01_calibration",
                "section": "calibration",
                "check": "ECE",
                "value": 0.07,
                "threshold": "warn > 0.05, fail > 0.1",
                "verdict": "warn",
                "detail": "",
            },
            {
                "notebook": "01_calibration",
                "section": "calibration",
                "check": "Brier",
                "value": 0.2,
                "threshold": "warn > 0.25",
                "verdict": "pass",
                "detail": "",
            },
        ],
        "metrics": {"01_calibration/calibration/ece": 0.07},
    },
    "run": {"started": "t0", "finished": "t1", "seconds": 1.0, "notebooks": {}},
}


def test_old_summaries_still_load_render_and_compare(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "summary.json").write_text(json.dumps(V1_SUMMARY))
    s = load_summary(old)
    assert s["schema"] == SCHEMA and s["upgraded_from"] == "rm-workbench/summary/v1"
    res = s["results"]
    assert res["overall"] == "warn"
    assert {f: e["verdict"] for f, e in res["families"].items()} == {"calibration": "warn", "runner": "pass"}
    assert res["counts"]["inconclusive"] == 0 and res["counts"]["warn"] == 1
    ece = res["verdicts"][1]
    assert ece["ci_low"] is None and ece["primary"] is True and ece["sentence"] == ""
    assert V1_SUMMARY["results"]["verdicts"][1].keys() == {  # the input is not changed
        "notebook",
        "section",
        "check",
        "value",
        "threshold",
        "verdict",
        "detail",
    }
    page = write_run_index(old, s).read_text()
    assert "ECE" in page and "Findings by family" in page
    new = tmp_path / "new"
    new.mkdir()
    (new / "summary.json").write_text(json.dumps(_hand_made_summary()))
    cmp = compare_summaries(old, new)
    assert cmp.overall == ("warn", "warn")
    assert set(cmp.families["family"]) >= {"calibration", "length", "agreement"}
    with pytest.raises(ValueError, match="not a workbench summary"):
        (old / "summary.json").write_text(json.dumps({**V1_SUMMARY, "schema": "other"}))
        load_summary(old)


def test_compare_ranks_inconclusive_between_pass_and_warn():
    def one(level, lo, hi):
        row = _graded("agreement vs placebo", (lo + hi) / 2, lo, hi, family="agreement")
        assert row["verdict"] == level
        return _hand_made_summary([row])

    passing, inconclusive, warning = one("pass", 0.0, 0.04), one("inconclusive", 0.02, 0.08), one("warn", 0.06, 0.09)
    up = compare_summaries(passing, inconclusive)
    assert up.overall == ("pass", "inconclusive") and up.has_regression
    assert up.verdicts.iloc[0]["change"] == "worse"
    fam = up.families.iloc[0]
    assert (fam["family"], fam["change"], fam["old"], fam["new"]) == ("agreement", "worse", "pass", "inconclusive")
    assert (fam["old_ci"], fam["new_ci"]) == ("[0, 0.04]", "[0.02, 0.08]")
    assert "1 family verdict(s) got worse." in up.to_text()
    assert compare_summaries(inconclusive, warning).has_regression
    down = compare_summaries(warning, inconclusive)
    assert not down.has_regression and down.families.iloc[0]["change"] == "better"
    # a check that is new in B and inconclusive counts as worse
    added = compare_summaries(
        _hand_made_summary(HAND_MADE[-1:]),
        _hand_made_summary(HAND_MADE[-1:] + [inconclusive["results"]["verdicts"][0]]),
    )
    assert list(added.verdicts["change"]) == ["worse"] and added.has_regression


def test_publish_keeps_every_verdict_field():
    v = graded_verdict("s", "c", 0.04, 0.0, 0.08, warn=0.05, fail=0.1, n=10, n_clusters=5, family="f", sentence="x")
    as_dict = {k: val for k, val in asdict(v).items()}
    assert publish("s", [as_dict])["verdicts"][0] == asdict(v)  # a dict row keeps the contract fields
    assert publish("s", [v])["verdicts"][0] == asdict(v)
