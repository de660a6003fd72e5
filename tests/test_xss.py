"""Untrusted text never executes in the reports.

Prompts and responses (and verdict texts and error messages) carrying script and
HTML payloads go through a real ``workbench audit`` run; every generated HTML file
(index.html and each notebook's report) is then loaded in headless Chromium
(Debian packages ``chromium`` and ``chromium-driver``). From the DOM after the
page ran we check that no payload executed (each payload would set a
``data-xss`` attribute), that no payload element exists, and that the payload
text is shown as text.

Chromium missing: the test fails in CI (``CI`` or ``WORKBENCH_REQUIRE_CHROMIUM``
set, as ``.ci/run`` does) and is skipped elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from notebook_helpers import make_notebook

from workbench.cli import main
from workbench.reports import (
    NOTEBOOK_DIR,
    SCHEMA,
    available_notebooks,
    export_report,
    notebook_parameters,
    parameter_defaults,
    render_run_index,
    write_top_index,
)

pytestmark = pytest.mark.slow

SET = "document.body.setAttribute('data-xss','{}')"
PAYLOADS = {
    "script": f"<script>{SET.format(1)}</script>",
    "img": f'<img src=x onerror="{SET.format(2)}">',
    "svg": f'<svg onload="{SET.format(3)}"></svg>',
    "iframe": f'"><iframe srcdoc="<script>parent.{SET.format(4)}</script>"></iframe>',
    "js_link": f"[click me](javascript:{SET.format(5)})",
    "close_script": f"</script><script>{SET.format(6)}</script>",
    "template": "{{7*7}}",
    "math": f"$\\href{{javascript:{SET.format(7)}}}{{x}}$",
    "html_link": f'<a href="javascript:{SET.format(8)}">link</a>',
}
# A data path: backticks close a Markdown code span, after which a link, an image or a
# data: URL would go live; \u202e reverses how the rest of the name reads.
PATH_PAYLOAD = (
    f"x`[path link](javascript:{SET.format(9)})` "
    "![img](data:text;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==) [d](data:text;base64,PHNjcmlwdD4=) "
    "&lt;b&gt; \u202eldnj"
)  # no "/" in it: it is one folder name
# what must be visible, as text, where the payloads are shown
VISIBLE = [
    "<script>document.body.setAttribute('data-xss','1')</script>",
    "<img src=x onerror=",
    "{{7*7}}",
    "<svg onload=",
]

RM_SOURCE = """
def score(prompts, responses):
    return [len(r) / 10.0 for r in responses]


def score_b(prompts, responses):
    return [len(r) / 10.0 + (1.0 if "img" in r else 0.0) for r in responses]
"""

PAIR_DATA = {"golden", "demo-eval", "demo-train-clean", "demo-train-biased"}


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


@pytest.fixture(scope="module")
def chromium():
    path = _chromium()
    if path is None:
        message = (
            "headless Chromium is needed for the XSS test: apt-get install -y --no-install-recommends "
            "chromium chromium-driver (Debian)"
        )
        if os.environ.get("CI") or os.environ.get("WORKBENCH_REQUIRE_CHROMIUM"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def dump_dom(chromium: str, html: Path, profile: Path) -> str:
    """The DOM of ``html`` after its scripts ran (3 s of virtual time), serialised by Chromium."""
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=3000",
        "--dump-dom",
        html.resolve().as_uri(),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "<body" in result.stdout, f"chromium failed on {html}: {result.stderr[-2000:]}"
    return result.stdout


class DomCheck(HTMLParser):
    """Collects what would show that a payload turned into markup or ran."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.text: list[str] = []
        self._skip = 0
        self._script: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "data-xss" in attrs:
            self.problems.append(f"<{tag}> got data-xss={attrs['data-xss']!r}: a payload ran")
        for name, value in attrs.items():
            value = value or ""
            if name.startswith("on") and "data-xss" in value:
                self.problems.append(f"<{tag} {name}=...> from a payload")
            if name in ("href", "src", "action", "formaction") and value.strip().lower().startswith("javascript:"):
                self.problems.append(f"<{tag} {name}={value[:60]!r}>: javascript: URL")
            if name in ("href", "action", "formaction") and value.strip().lower().startswith("data:"):
                self.problems.append(f"<{tag} {name}={value[:60]!r}>: data: URL")
            if name == "src" and value.strip().lower().startswith("data:text"):
                self.problems.append(f"<{tag} src={value[:60]!r}>: data: text URL")
            if name == "srcdoc":
                self.problems.append(f"<{tag} srcdoc=...>: payload iframe")
        if tag == "iframe" or (tag == "svg" and "onload" in attrs):
            self.problems.append(f"<{tag}> element from a payload")
        if tag == "script":
            self._script = []
        if tag in ("script", "style", "template"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style", "template") and self._skip:
            self._skip -= 1
        if tag == "script" and self._script is not None:
            if "data-xss" in "".join(self._script):
                self.problems.append("a <script> element holds payload code")
            self._script = None

    def handle_data(self, data):
        if self._script is not None:
            self._script.append(data)
        if not self._skip:
            self.text.append(data)


def check_dom(dom: str) -> tuple[list[str], str]:
    parser = DomCheck()
    parser.feed(dom)
    parser.close()
    return parser.problems, "".join(parser.text)


def payload_rows(n: int = 8) -> list[dict]:
    p = PAYLOADS
    rows = []
    for i in range(n):
        rows.append(
            {
                "id": f"xss-{i}",
                "prompt": f"{p['script']} {p['js_link']} q{i}",
                "chosen": f"{p['img']} {p['template']} {p['math']} {'long ' * (i % 3)}c{i}",
                "rejected": f"{p['svg']} {p['iframe']} {p['close_script']} {p['html_link']} {'more ' * (i % 4)}r{i}",
            }
        )
    return rows


def test_checker_detects_live_payloads(chromium, tmp_path):
    """The check can fail: the same payloads written raw into a page are caught."""
    for name, payload in PAYLOADS.items():
        if name in ("template", "math", "js_link", "html_link"):
            continue  # these only run on a click or with a template engine
        page = tmp_path / f"raw_{name}.html"
        page.write_text(f"<!DOCTYPE html><html><body><p>x</p>{payload}</body></html>")
        problems, _ = check_dom(dump_dom(chromium, page, tmp_path / "profile"))
        assert any("data-xss" in p for p in problems), f"{name}: payload did not run in a raw page ({problems})"
    page = tmp_path / "raw_link.html"
    page.write_text(f"<!DOCTYPE html><html><body>{PAYLOADS['html_link']}</body></html>")
    assert any("javascript: URL" in p for p in check_dom(dump_dom(chromium, page, tmp_path / "profile"))[0])


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """One ``workbench audit`` over payload data with every pair-data notebook plus two payload notebooks."""
    tmp = tmp_path_factory.mktemp("xss")
    mods = tmp / "mods"
    mods.mkdir()
    (mods / "wb_xss_rm.py").write_text(RM_SOURCE)
    data_dir = tmp / PATH_PAYLOAD
    data_dir.mkdir()
    data = data_dir / "payload_pairs`[x](javascript:alert(1))`.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in payload_rows()))
    nbdir = tmp / "nbs"
    nbdir.mkdir()
    copied = []
    for nb in available_notebooks(NOTEBOOK_DIR):
        declared = notebook_parameters(nb)
        if {"model", "data"} <= set(declared) and parameter_defaults(nb).get("data") in PAIR_DATA:
            shutil.copy(nb, nbdir / nb.name)
            copied.append(nb.stem)
    assert "00_overview" in copied
    payload = " ".join(PAYLOADS.values())
    params = 'model = "m"  # RM\ndata = "golden"  # data\nseed = 0  # seed\n'
    make_notebook(
        nbdir / "90_payload_verdicts.ipynb",
        params,
        "from workbench.reports import graded_verdict, publish\n"
        f"P = {payload!r}\n"
        "row = {'check': P, 'value': 0.5, 'threshold': P, 'verdict': 'warn', 'detail': P, 'family': P, 'sentence': P}\n"
        "graded = graded_verdict(P, P + ' graded', 0.04, 0.0, 0.08, warn=0.05, fail=0.1, n=80, n_clusters=40,\n"
        "                        cluster_unit=P, family=P + ' 2', sentence=P, detail=P)\n"
        "_ = publish(P, [row, graded], {P: 1.0})",
    )
    make_notebook(nbdir / "91_payload_error.ipynb", params, f"raise ValueError({payload!r})")
    wishes = {
        "n_boot": 20,
        "compare_smoothing": False,
        "bootstrap_k": 0,
        "methods": "occlusion",
        "n_random": 2,
        "models": "python:wb_xss_rm:score,python:wb_xss_rm:score_b",
        "output_dir": str(tmp / f"queue {PATH_PAYLOAD}"),  # a payload string parameter (06)
    }
    declared_any = set().union(*(notebook_parameters(nb) for nb in nbdir.glob("*.ipynb")))
    extra = [f"--param={k}={v}" for k, v in wishes.items() if k in declared_any]
    out = tmp / "report"
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(mods))
        mp.setenv("PYTHONPATH", str(mods))
        code = main(
            [
                "audit",
                "--model",
                "python:wb_xss_rm:score",
                "--data",
                str(data),
                "--out",
                str(out),
                "--notebook-dir",
                str(nbdir),
                "--timeout",
                "300",
                *extra,
            ]
        )
    return {"out": out, "code": code, "copied": copied, "tmp": tmp, "data": data, "queue_dir": wishes["output_dir"]}


def test_reports_render_payloads_as_text(chromium, audited):
    out = audited["out"]
    assert audited["code"] == 1  # 91_payload_error fails on purpose
    summary = json.loads((out / "summary.json").read_text())
    assert summary["results"]["notebooks"]["00_overview"]["status"] == "ok"
    assert summary["results"]["notebooks"]["91_payload_error"]["status"] == "failed"
    pages = sorted(out.glob("*.html"))
    assert {p.stem for p in pages} >= {"index", "00_overview", "90_payload_verdicts", "91_payload_error"}
    assert len(pages) == len(audited["copied"]) + 3
    texts = {}
    for page in pages:
        problems, text = check_dom(dump_dom(chromium, page, audited["tmp"] / "profile"))
        assert not problems, f"{page.name}: {problems}"
        texts[page.stem] = text
    # the payloads are there, shown as text
    for stem in ("00_overview", "index"):
        for snippet in VISIBLE:
            assert snippet in texts[stem], f"{stem}.html does not show {snippet!r} as text"
    assert "ValueError" in texts["91_payload_error"] and "<svg onload=" in texts["91_payload_error"]
    # the data path, backticks and link syntax included, is shown as text where the notebooks name their data
    shown_path = str(audited["data"]).replace("\u202e", "\\u202e")
    for stem in audited["copied"]:
        if stem in ("00_overview", "02_feature_probes", "03_attribution", "06_ensemble"):
            assert shown_path in texts[stem], f"{stem}.html does not show the data path as text"
    if "06_ensemble" in texts:  # the relabel queue's folder, a payload string parameter, is named as text
        shown_dir = audited["queue_dir"].replace("\u202e", "\\u202e")
        assert shown_dir in texts["06_ensemble"], "06_ensemble.html does not show output_dir as text"
    # the payload verdicts' family and sentence are on the index, as text
    payload = " ".join(PAYLOADS.values())
    families = summary["results"]["families"]
    assert payload in families and f"{payload} 2" in families
    assert families[f"{payload} 2"]["verdict"] == "inconclusive"
    assert f"{payload} 2" in texts["index"] and "settle it" in texts["index"]


def test_index_pages_escape_every_field(chromium, tmp_path):
    """Payloads in every string field of a summary: model, data, checks, details, errors, parameters, metrics."""
    p = " ".join(PAYLOADS.values())
    summary = {
        "schema": SCHEMA,
        "inputs": {
            "model": p,
            "model_fingerprint": p,
            "data": p,
            "seed": p,
            "data_hashes": [{"spec": p, "kind": p, "sha256": p, "note": p}],
            "notebooks": {p: {"parameters": {"model": p, "x": p}, "data": p, "seed": p}},
        },
        "results": {
            "overall": "fail",
            "counts": {"pass": 0, "warn": 0, "fail": 1, "n/a": 0},
            "notebooks": {p: {"status": "failed"}},
            "verdicts": [
                {"notebook": p, "section": p, "check": p, "value": p, "threshold": p, "verdict": "fail", "detail": p},
                {  # every field of the verdict contract carries a payload
                    "notebook": p,
                    "section": p,
                    "check": p + " graded",
                    "value": p,
                    "threshold": p,
                    "verdict": "inconclusive",
                    "detail": p,
                    "family": p + " family",
                    "ci_low": p,
                    "ci_high": p,
                    "ci_level": p,
                    "direction": p,
                    "warn": p,
                    "fail": p,
                    "n": p,
                    "n_clusters": p,
                    "cluster_unit": p,
                    "clusters_needed": p,
                    "sentence": p,
                    "primary": True,
                },
            ],
            "metrics": {p: p},
        },
        "run": {
            "started": p,
            "finished": p,
            "seconds": 1.0,
            "git_commit": p,
            "command": p,
            "kernel": p,
            "model_fingerprint_error": p,
            "versions": {p: p},
            "platform": {p: p},
            "notebooks": {p: {"seconds": 1.0, "error": p, "html": p + ".html", "ipynb": p}},
        },
    }
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "index.html").write_text(render_run_index(summary))
    (run_dir / "summary.json").write_text(json.dumps(summary))
    top = write_top_index(tmp_path, [run_dir])
    for page in (run_dir / "index.html", top):
        problems, text = check_dom(dump_dom(chromium, page, tmp_path / "profile"))
        assert not problems, f"{page}: {problems}"
        for snippet in VISIBLE:
            assert snippet in text, f"{page.name} does not show {snippet!r}"
        # the family name and the sentence reach the findings table as text
        assert f"{p} family" in text and "settle it" in text, page.name


def test_failure_page_escapes_name_and_error(chromium, tmp_path):
    """The page left when a notebook's HTML export fails shows its name and error as text."""
    p = " ".join(PAYLOADS.values())
    broken = tmp_path / "broken.ipynb"
    broken.write_text(p)  # not JSON: the export fails, with the payload in the traceback
    page = tmp_path / "broken.html"
    export_report(broken, page, title=p, error=f"ValueError: {p}")
    problems, text = check_dom(dump_dom(chromium, page, tmp_path / "profile"))
    assert not problems, problems
    for snippet in VISIBLE:
        assert snippet in text, f"the failure page does not show {snippet!r}"


#: the CLI flag that carries each kind of data to its notebook (preference pairs go by --data)
DATA_FLAGS = {"04_sycophancy": "--sycophancy-data", "05_drift": "--samples"}


def _audit(tmp: Path, name: str, notebooks: list[str], data: Path, params: dict) -> dict:
    """``workbench audit`` of copies of ``notebooks`` (stems) over ``data`` with the payload RM."""
    flag = DATA_FLAGS.get(notebooks[0], "--data") if len(notebooks) == 1 else "--data"
    mods = tmp / "mods"
    mods.mkdir(exist_ok=True)
    (mods / "wb_xss_rm.py").write_text(RM_SOURCE)
    nbdir = tmp / f"nbs-{name}"
    nbdir.mkdir()
    for nb in available_notebooks(NOTEBOOK_DIR):
        if nb.stem in notebooks:
            shutil.copy(nb, nbdir / nb.name)
    out = tmp / f"report-{name}"
    extra = [f"--param={k}={v!r}" if isinstance(v, str) else f"--param={k}={v}" for k, v in params.items()]
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(mods))
        mp.setenv("PYTHONPATH", str(mods))
        code = main(
            ["audit", "--model", "python:wb_xss_rm:score", flag, str(data), "--out", str(out)]
            + ["--notebook-dir", str(nbdir), "--timeout", "300", *extra]
        )
    return {"out": out, "code": code, "notebooks": notebooks}


# payloads that must not contain "," (trigger phrases are comma-separated) and name no folder ("/")
NAMES = [PAYLOADS["script"], PAYLOADS["img"], PATH_PAYLOAD.split(" ")[0]]


@pytest.fixture(scope="module")
def audited_04_05(tmp_path_factory):
    """Sycophancy items (04) and policy samples (05) whose names, ids, domains and categories are payloads."""
    tmp = tmp_path_factory.mktemp("xss45")
    items = tmp / "items`[x](javascript:alert(4))`.jsonl"
    with items.open("w") as fh:
        for i in range(6):
            item = {
                "id": f"{PAYLOADS['svg']} item-{i}",
                "domain": f"{NAMES[i % 3]} domain-{i % 2}",
                "claim": f"{PAYLOADS['js_link']} claim {i}",
                "claim_is_true": bool(i % 2),
                "truth": f"{PAYLOADS['html_link']} truth {i}",
                "agree_response": f"Yes. {PAYLOADS['iframe']} agree {i}",
                "disagree_response": f"No. {PAYLOADS['close_script']} disagree {i}",
            }
            fh.write(json.dumps(item) + "\n")
    samples = tmp / "samples`[x](javascript:alert(5))`.jsonl"
    with samples.open("w") as fh:
        for k, step in enumerate((0, 10, 20)):
            for i in range(10):
                row = {
                    "id": f"s{k}-{i}",
                    "prompt_id": f"{PAYLOADS['math']} pp-{i}",
                    "prompt": f"{PAYLOADS['script']} question {i}",
                    "response": f"{PAYLOADS['img']} {'long ' * (k * 3 + i % 4)}answer {i}",
                    "checkpoint": f"{NAMES[k]} ck{k}",
                    "step": step,
                    "category": f"{PAYLOADS['template']} {NAMES[i % 3]} cat{i % 2}",
                    "gold": float((i * 7 + k) % 5) / 5,
                }
                fh.write(json.dumps(row) + "\n")
    out_dir = tmp / f"queue {PATH_PAYLOAD}"
    common = {"n_boot": 20, "seed": 0}
    drift = {"golden": "", "bon": "", "min_samples": 5, "queue_size": 5}
    drift |= {"trigger_phrases": ",".join(NAMES), "output_dir": str(out_dir)}
    return {
        "04": _audit(tmp, "04", ["04_sycophancy"], items, common),
        "05": _audit(tmp, "05", ["05_drift"], samples, common | drift),
        "tmp": tmp,
        "queue_dir": out_dir,
    }


def test_sycophancy_and_drift_reports_render_payload_names_as_text(chromium, audited_04_05):
    """Payload item ids, domains, claims (04), checkpoint names, prompt ids, categories and string
    parameters (05: trigger phrases, output folder) never run and show as text."""
    texts = {}
    for key in ("04", "05"):
        run = audited_04_05[key]
        summary = json.loads((run["out"] / "summary.json").read_text())
        stem = run["notebooks"][0]
        status = summary["results"]["notebooks"][stem]
        assert run["code"] == 0 and status["status"] == "ok", (stem, summary["run"]["notebooks"])
        for page in sorted(run["out"].glob("*.html")):
            problems, text = check_dom(dump_dom(chromium, page, audited_04_05["tmp"] / "profile"))
            assert not problems, f"{key}/{page.name}: {problems}"
            texts[f"{key}/{page.stem}"] = text
    syc, drift = texts["04/04_sycophancy"], texts["05/05_drift"]
    assert f"{NAMES[0]} domain-0" in syc and f"{NAMES[1]} domain-1" in syc  # by-domain table
    assert "[click me](javascript:" in syc  # the claims, as text
    for k in range(3):
        assert f"{NAMES[k]} ck{k}" in drift, f"checkpoint {k} is not shown as text"
    assert all(name in drift for name in NAMES)  # trigger phrases (a string parameter) in the phrase tables
    assert PAYLOADS["script"] in drift and PAYLOADS["img"] in drift  # prompts and responses
    # the relabel queue's folder (a string parameter) is named as text
    shown_dir = str(audited_04_05["queue_dir"]).replace("\u202e", "\\u202e")
    assert f"{shown_dir}/relabel_queue_drift.csv" in drift
    for name in ("svg", "iframe", "close_script", "js_link"):  # item ids, responses, claims
        assert PAYLOADS[name] in syc, f"04 does not show the {name} payload as text"
