"""Audit reports: notebook runs, HTML export, index.html, summary.json, compare.

Notebooks run for real (papermill, kernel "python3"), with a tiny length-based
python: RM over small JSONL files, so every run takes seconds.
"""

from __future__ import annotations

import json
import shutil
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
    SCHEMA,
    ParameterError,
    compare_summaries,
    export_html,
    export_report,
    load_summary,
    run_notebook,
    write_top_index,
)

pytestmark = pytest.mark.slow

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
from workbench.reports import grade, publish

frame = score_pairs(load_reward_model(model), load_data(data)).to_frame()
margin = frame["margin"].to_numpy()
acc = float(np.mean(margin > 0))
ci = bootstrap_ci(lambda m: float(np.mean(m > 0)), margin, n_boot=n_boot, seed=seed)
publish("toy", [
    {"check": "pairwise accuracy", "value": acc, "threshold": ">= 0.7", "verdict": "pass" if acc >= 0.7 else "fail"},
    {"check": "CI width", "value": ci.high - ci.low, "threshold": "warn > 0.3, fail > 0.5", "verdict": grade(ci.high - ci.low, 0.3, 0.5)},
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

    rows = table_rows((out / "index.html").read_text())
    fail_row = next(r for r in rows if r[:3] == ["10_fails", "runner", "notebook ran"])
    assert fail_row[5] == "fail" and "boom in the audit" in fail_row[6]


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

    index = (out / "index.html").read_text()
    rows = table_rows(index)
    acc_row = next(r for r in rows if r[:3] == ["20_publishes", "toy", "pairwise accuracy"])
    assert acc_row[3] == f"{expected_acc:.4g}"
    assert acc_row[4] == ">= 0.7"
    assert acc_row[5] == ("pass" if expected_acc >= 0.7 else "fail")
    width_row = next(r for r in rows if r[:3] == ["20_publishes", "toy", "CI width"])
    width = metrics["20_publishes/toy/ci_high"] - metrics["20_publishes/toy/ci_low"]
    assert float(width_row[3]) == pytest.approx(width, rel=1e-3)
    assert width_row[5] == ("fail" if width > 0.5 else "warn" if width > 0.3 else "pass")
    # run metadata and the link to the notebook report
    meta = {r[0]: r[1] for r in rows if len(r) == 2}
    assert meta["model"] == env["model"]
    assert meta["model fingerprint"] == summary["inputs"]["model_fingerprint"]
    assert meta["seed"] == "3"
    assert "href='20_publishes.html'" in index
    assert "Content-Security-Policy" in index and "<script" not in index
    assert (out / "20_publishes.html").exists()


# --- summary.json: same inputs and seed give the same results --------------------------------------


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
    assert main(base + ["--out", str(env["tmp"] / "b")]) == 0
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


def test_cell_timeout_is_a_failure_with_html(tmp_path):
    nb = make_notebook(tmp_path / "slow.ipynb", "pause = 30  # seconds", "import time\ntime.sleep(pause)")
    run = run_notebook(nb, tmp_path / "out", {"pause": 30}, kernel_name="python3", execution_timeout=2)
    assert not run.ok
    assert "Timeout" in run.error or "timed out" in run.error.lower()
    assert run.seconds < 25
    html = run.output_html.read_text()
    assert "stopped this notebook" in html and "CellTimeoutError" in html


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
