"""The notebook execution cache: nothing changed, nothing recomputed; one change re-runs only what depends on it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from notebook_helpers import make_notebook

from workbench.cli import main
from workbench.reports import run_audit
from workbench.reports.execution_cache import (
    ExecutionCache,
    execution_key,
    execution_key_parts,
    named_inputs,
)
from workbench.reports.pipeline import NOTEBOOK_SECONDS, longest_first
from workbench.reports.runner import run_notebook

RM_SOURCE = '''
def score(prompts, responses):
    """Longer responses score higher."""
    return [len(r) / 10.0 for r in responses]
'''

# Each notebook appends its stem to $WB_EXEC_LOG when a kernel really runs it, so the
# tests count executions independently of what the runner reports.
COUNT = """
import os, pathlib
with open(os.environ["WB_EXEC_LOG"], "a") as fh:
    fh.write(NAME + "\\n")
"""

PUBLISH = """
from workbench.reports import publish
rows = len(pathlib.Path(SOURCE).read_text().splitlines())
publish(NAME, [{"check": "rows", "value": rows * FACTOR, "threshold": "> 0", "verdict": "pass"}],
        {"rows": rows, "factor": FACTOR})
print(NAME, rows * FACTOR)
"""


def _notebook(path: Path, param_lines: str, name: str, source: str, factor: str) -> Path:
    code = PUBLISH.replace("NAME", repr(name)).replace("SOURCE", source).replace("FACTOR", factor)
    return make_notebook(path, param_lines, COUNT.replace("NAME", repr(name)), code)


@pytest.fixture
def env(tmp_path, monkeypatch):
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "wb_exec_rm.py").write_text(RM_SOURCE)
    monkeypatch.syspath_prepend(str(mods))
    monkeypatch.setenv("PYTHONPATH", str(mods))
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    log = tmp_path / "executions.log"
    monkeypatch.setenv("WB_EXEC_LOG", str(log))
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    a = _notebook(
        nbdir / "10_a.ipynb", 'model = ""  # RM spec\ntable = ""  # a file\nk = 1  # factor', "a", "table", "k"
    )
    b = _notebook(
        nbdir / "20_b.ipynb", 'model = ""  # RM spec\nother = ""  # a file\nm = 1  # factor', "b", "other", "m"
    )
    table, other = tmp_path / "table.txt", tmp_path / "other.txt"
    table.write_text("x\ny\nz\n")
    other.write_text("1\n2\n")
    return {
        "tmp": tmp_path,
        "log": log,
        "nbdir": nbdir,
        "a": a,
        "b": b,
        "table": table,
        "other": other,
        "model": "python:wb_exec_rm:score",
    }


def executed(env) -> list[str]:
    """Stems the kernels ran since the last call (and clear the log)."""
    log = env["log"]
    names = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return sorted(names)


def audit(env, out: str, force: bool = False, **params):
    chosen = {"table": str(env["table"]), "other": str(env["other"]), **params}
    return run_audit(env["model"], out=env["tmp"] / out, notebook_dir=env["nbdir"], params=chosen, force=force)


def reused(run) -> dict[str, bool]:
    return {name: info["reused"] for name, info in run.summary["run"]["notebooks"].items()}


@pytest.mark.slow
def test_nothing_changed_reuses_and_each_change_reruns_only_its_notebook(env):
    first = audit(env, "r1")
    assert first.ok and executed(env) == ["a", "b"]
    assert reused(first) == {"10_a": False, "20_b": False}
    assert first.summary["results"]["metrics"]["10_a/a/rows"] == 3
    assert first.summary["results"]["metrics"]["20_b/b/rows"] == 2

    # nothing changed: no kernel starts, every notebook is reused, results are byte-identical
    second = audit(env, "r2")
    assert executed(env) == []
    assert reused(second) == {"10_a": True, "20_b": True}
    as_json = [json.dumps(r.summary["results"], sort_keys=True) for r in (first, second)]
    assert as_json[0] == as_json[1]
    assert json.loads((env["tmp"] / "r2" / "summary.json").read_text())["results"] == first.summary["results"]
    for name in ("10_a.ipynb", "10_a.html", "20_b.ipynb", "20_b.html"):
        assert (env["tmp"] / "r2" / name).read_bytes() == (env["tmp"] / "r1" / name).read_bytes()
    index = (env["tmp"] / "r2" / "index.html").read_text()
    assert index.count("reused from the execution cache") == 2
    assert "reused from the execution cache" not in (env["tmp"] / "r1" / "index.html").read_text()

    # one parameter that only 10_a declares
    third = audit(env, "r3", k=2)
    assert executed(env) == ["a"]
    assert reused(third) == {"10_a": False, "20_b": True}
    assert third.summary["results"]["metrics"]["10_a/a/factor"] == 2

    # the notebook file of 20_b
    nb = nbformat.read(str(env["b"]), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("print('one more cell')"))
    nbformat.write(nb, str(env["b"]))
    fourth = audit(env, "r4", k=2)
    assert executed(env) == ["b"]
    assert reused(fourth) == {"10_a": True, "20_b": False}

    # the data file only 20_b reads (same path, new content)
    env["other"].write_text("1\n2\n3\n4\n")
    fifth = audit(env, "r5", k=2)
    assert executed(env) == ["b"]
    assert fifth.summary["results"]["metrics"]["20_b/b/rows"] == 4

    # --force re-runs everything, through the CLI
    out = env["tmp"] / "r6"
    args = ["audit", "--model", env["model"], "--out", str(out), "--notebook-dir", str(env["nbdir"])]
    args += ["--param", f"table={env['table']}", "--param", f"other={env['other']}", "--param", "k=2"]
    assert main([*args, "--force"]) == 0
    assert executed(env) == ["a", "b"]
    summary = json.loads((out / "summary.json").read_text())
    assert {n: i["reused"] for n, i in summary["run"]["notebooks"].items()} == {"10_a": False, "20_b": False}
    assert summary["results"] == fifth.summary["results"]
    # ... and without --force the CLI reuses both
    assert main(args) == 0
    assert executed(env) == []


@pytest.mark.slow
def test_failed_runs_are_not_stored(env, tmp_path):
    bad = make_notebook(tmp_path / "nbs" / "30_bad.ipynb", 'model = ""  # RM spec', "raise RuntimeError('boom')")
    cache = ExecutionCache(tmp_path / "store")
    for _ in range(2):
        run = run_notebook(bad, tmp_path / "out", {"model": "x"}, model_fingerprint="fp", cache=cache)
        assert not run.ok and not run.reused and "boom" in run.error
    assert cache.lookup(run.cache_key) is None


def test_key_follows_every_input(env):
    base = {"model": "m", "table": str(env["table"]), "k": 1}
    key = execution_key(env["a"], base, model_fingerprint="fp")
    assert key == execution_key(env["a"], dict(base), model_fingerprint="fp")
    assert key != execution_key(env["a"], {**base, "k": 2}, model_fingerprint="fp")
    assert key != execution_key(env["a"], base, model_fingerprint="other")
    assert key != execution_key(env["a"], base, model_fingerprint="fp", kernel_name="python3-other")
    assert key != execution_key(env["a"], base, model_fingerprint="fp", show_code=True)
    parts = execution_key_parts(env["a"], base, model_fingerprint="fp")
    assert list(parts["inputs"]) == [f"table={env['table']}"]
    assert {"notebook_sha256", "versions", "package_sources", "shipped_data"} <= set(parts)
    assert parts["versions"]["rm-audit-workbench"]
    env["table"].write_text("changed\n")
    os.utime(env["table"], ns=(1, 1))  # even with an old mtime, size changed: the digest is recomputed
    assert key != execution_key(env["a"], base, model_fingerprint="fp")
    env["a"].write_text(env["a"].read_text().replace("k = 1", "k = 3"))
    assert execution_key_parts(env["a"], base, model_fingerprint="fp")["notebook_sha256"] != parts["notebook_sha256"]


def test_named_inputs_reads_files_folders_scores_and_shipped_names(tmp_path):
    folder = tmp_path / "ds"
    (folder / "train").mkdir(parents=True)
    (folder / "train" / "data.arrow").write_bytes(b"abc")
    scores = tmp_path / "s.csv"
    scores.write_text("prompt,response,score\np,r,1\n")
    found = named_inputs(
        {"model": str(scores), "data": f"{folder}@train", "gold_model": f"scores:{scores}", "golden": "golden", "n": 3}
    )
    assert set(found) == {f"data={folder}@train", f"gold_model={scores}", "golden=golden"}
    before = found[f"data={folder}@train"]
    (folder / "train" / "data.arrow").write_bytes(b"abcd")
    assert named_inputs({"data": f"{folder}@train"})[f"data={folder}@train"] != before
    assert named_inputs({"data": "hf:some/set", "x": "not a file"}) == {}


def test_store_is_idempotent_and_restore_copies(tmp_path):
    nb, html = tmp_path / "n.ipynb", tmp_path / "n.html"
    nb.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    html.write_text("<p>report</p>")
    cache = ExecutionCache(tmp_path / "store")
    assert cache.restore("ab" * 32, tmp_path / "o.ipynb", tmp_path / "o.html") is None
    assert cache.store("ab" * 32, nb, html, {"notebook": "n.ipynb"}) == cache.entry("ab" * 32)
    assert cache.store("ab" * 32, nb, html, {"notebook": "n.ipynb"}) == cache.entry("ab" * 32)
    meta = cache.restore("ab" * 32, tmp_path / "o.ipynb", tmp_path / "o.html")
    assert meta["notebook"] == "n.ipynb"
    assert (tmp_path / "o.html").read_text() == "<p>report</p>"
    assert json.loads((cache.entry("ab" * 32) / ExecutionCache.VERDICTS).read_text()) == []
    assert [p.name for p in cache.entry("ab" * 32).parent.iterdir()] == ["ab" * 32]  # no temp folders left


@pytest.mark.slow
def test_force_replaces_the_stored_run(tmp_path, monkeypatch):
    # an input the key cannot see (here an environment variable, like a Hub dataset that changed): --force
    # re-runs, and what it computed is what later runs reuse, not the run from before the change
    nb = make_notebook(
        tmp_path / "unseen.ipynb", 'model = ""  # RM spec', "import os\nprint('seen:', os.environ['WB_UNSEEN'])"
    )
    cache = ExecutionCache(tmp_path / "store")

    def run(value, force=False):
        monkeypatch.setenv("WB_UNSEEN", value)
        out = tmp_path / f"out-{value}-{force}"
        result = run_notebook(nb, out, {}, model_fingerprint="fp", cache=cache, force=force, validate=False)
        assert result.ok, result.error
        return result.reused, "seen: " + value in result.output_html.read_text()

    assert run("one") == (False, True)
    assert run("two") == (True, False)  # the documented limit: the key did not change
    assert run("two", force=True) == (False, True)
    assert run("two") == (True, True)  # the forced run replaced the stored one
    assert len(list((cache.root).glob("*/*"))) == 1  # one entry, nothing left aside


def test_store_replace_swaps_the_entry(tmp_path):
    nb, html = tmp_path / "n.ipynb", tmp_path / "n.html"
    nb.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    cache = ExecutionCache(tmp_path / "store")
    html.write_text("<p>old</p>")
    cache.store("ab" * 32, nb, html, {"notebook": "n.ipynb", "seconds": 1.0})
    html.write_text("<p>new</p>")
    cache.store("ab" * 32, nb, html, {"notebook": "n.ipynb", "seconds": 2.0})  # kept: not a replacement
    assert (cache.entry("ab" * 32) / ExecutionCache.HTML).read_text() == "<p>old</p>"
    cache.store("ab" * 32, nb, html, {"notebook": "n.ipynb", "seconds": 2.0}, replace=True)
    assert (cache.entry("ab" * 32) / ExecutionCache.HTML).read_text() == "<p>new</p>"
    assert cache.timings() == {"n.ipynb": 2.0}
    assert [p.name for p in cache.entry("ab" * 32).parent.iterdir()] == ["ab" * 32]  # no temp folders left


def test_latest_run_times_order_notebooks_that_run_at_once(tmp_path):
    nb, html = tmp_path / "n.ipynb", tmp_path / "n.html"
    nb.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    html.write_text("<p>report</p>")
    cache = ExecutionCache(tmp_path / "store")
    assert cache.timings() == {}
    cache.store("ab" * 32, nb, html, {"notebook": "02_feature_probes.ipynb", "seconds": 5.0})
    cache.store("cd" * 32, nb, html, {"notebook": "00_overview.ipynb", "seconds": 40.0})
    cache.store("ef" * 32, nb, html, {"notebook": "02_feature_probes.ipynb", "seconds": 3.25})  # the latest counts
    cache.store("ef" * 32, nb, html, {"notebook": "02_feature_probes.ipynb", "seconds": 99.0})  # already stored
    assert cache.timings() == {"02_feature_probes.ipynb": 3.25, "00_overview.ipynb": 40.0}
    assert not list(cache.root.glob(".timings-*"))  # no temp files left

    names = ["00_overview", "01_calibration", "02_feature_probes", "03_attribution", "99_mine"]
    notebooks = [Path(f"{n}.ipynb") for n in names]
    # without a record: the demo's measured seconds, 10 for a notebook of one's own
    assert NOTEBOOK_SECONDS["03_attribution"] > NOTEBOOK_SECONDS["02_feature_probes"] > 10.0
    assert [p.stem for p in longest_first(notebooks)] == [
        "03_attribution",
        "02_feature_probes",
        "01_calibration",
        "99_mine",
        "00_overview",
    ]
    # this machine's record first: 00 took 40 s here, 02 only 3.25 s
    assert [p.stem for p in longest_first(notebooks, cache.timings())] == [
        "03_attribution",
        "00_overview",
        "01_calibration",
        "99_mine",
        "02_feature_probes",
    ]
    (cache.root / ExecutionCache.TIMINGS).write_text("not json")
    assert cache.timings() == {}


@pytest.mark.slow
def test_demo_audits_both_rms_in_parallel_processes(env):
    from workbench.reports import run_demo

    out = env["tmp"] / "demo"
    params = {"table": str(env["table"])}
    runs = run_demo(out, notebook_dir=env["nbdir"], notebooks=["10"], params=params, models_at_once=2)
    assert [r.out.name for r in runs] == ["demo-clean", "demo-biased"]
    assert [r.ok for r in runs] == [True, True], [r.runs for r in runs]
    assert executed(env) == ["a", "a"]
    assert (out / "index.html").is_file()
    # the same demo one RM at a time: every notebook is reused, with the same results
    again = run_demo(env["tmp"] / "demo2", notebook_dir=env["nbdir"], notebooks=["10"], params=params, models_at_once=1)
    assert executed(env) == []
    assert [r.summary["results"] for r in again] == [r.summary["results"] for r in runs]
    assert runs[0].summary["inputs"]["model_fingerprint"] != runs[1].summary["inputs"]["model_fingerprint"]


SPAN = """
import os, time
start = time.time()
time.sleep(1.5)
with open(os.environ["WB_SPAN_LOG"], "a") as fh:
    fh.write(f"{NAME} {start} {time.time()}\\n")
"""


@pytest.mark.parametrize("jobs", [1, 2])
def test_notebooks_of_an_audit_run_at_once_and_come_back_in_plan_order(tmp_path, monkeypatch, jobs):
    """With jobs=2 two kernels run side by side (their sleeps overlap); with 1 they run one after the other."""
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    spans = tmp_path / "spans.log"
    monkeypatch.setenv("WB_SPAN_LOG", str(spans))
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    for stem in ("10_a", "20_b", "30_c"):
        make_notebook(nbdir / f"{stem}.ipynb", 'model = ""  # RM spec', SPAN.replace("NAME", repr(stem)))
    run = run_audit("python:wb_none:score", out=tmp_path / "out", notebook_dir=nbdir, jobs=jobs, force=True)
    assert [r.notebook for r in run.runs] == ["10_a.ipynb", "20_b.ipynb", "30_c.ipynb"] and run.ok
    assert run.summary["run"]["jobs"] == jobs
    rows = [line.split() for line in spans.read_text().splitlines()]
    assert sorted(r[0] for r in rows) == ["10_a", "20_b", "30_c"]
    intervals = sorted((float(a), float(b)) for _, a, b in rows)
    overlaps = sum(intervals[i + 1][0] < intervals[i][1] for i in range(len(intervals) - 1))
    assert (overlaps > 0) == (jobs == 2)


def test_jobs_must_be_a_positive_integer(monkeypatch):
    from workbench.reports.pipeline import PreflightError, notebook_jobs

    monkeypatch.setenv("WORKBENCH_JOBS", "many")
    with pytest.raises(PreflightError, match="WORKBENCH_JOBS must be a positive integer, got 'many'"):
        notebook_jobs()
    monkeypatch.setenv("WORKBENCH_JOBS", "1")
    assert notebook_jobs() == 1
    monkeypatch.delenv("WORKBENCH_JOBS")
    assert notebook_jobs() == 1
    with pytest.raises(PreflightError, match="jobs must be a positive integer, got 0"):
        notebook_jobs(0)
