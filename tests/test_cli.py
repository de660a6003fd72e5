"""The ``python -m workbench`` command line: argument parsing, parameter validation, compare."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import nbformat
import pytest
from notebook_helpers import make_notebook

from workbench.cli import _parse_param, build_parser, exit_status, main
from workbench.reports import SCHEMA, ParameterError, graded_verdict, plan_parameters, select_notebooks
from workbench.reports.pipeline import AuditRun, _absolutize
from workbench.reports.summary import results_from_verdicts


@pytest.fixture
def nbdir(tmp_path):
    """Two notebooks sharing model/data/seed; only A declares alpha, only B declares beta."""
    folder = tmp_path / "nbs"
    folder.mkdir()
    common = 'model = "m"  # RM\ndata = "golden"  # data\nseed = 0  # seed\n'
    make_notebook(folder / "01_alpha.ipynb", common + "alpha = 1  # only here", "print('alpha is', alpha)")
    make_notebook(folder / "02_beta.ipynb", common + 'beta = "b"  # only here', "print('beta is', beta)")
    return folder


def test_parse_param_literals_and_strings():
    assert _parse_param("n_boot=50") == ("n_boot", 50)
    assert _parse_param("band=0.25") == ("band", 0.25)
    assert _parse_param("flag=False") == ("flag", False)
    assert _parse_param("methods=ig,occlusion") == ("methods", "ig,occlusion")
    assert _parse_param("name='0012'") == ("name", "0012")
    assert _parse_param("expr=a=b") == ("expr", "a=b")
    with pytest.raises(Exception, match="name=value"):
        _parse_param("novalue")
    with pytest.raises(Exception, match="identifier"):
        _parse_param("bad name=1")


def test_parser_has_the_documented_options():
    args = build_parser().parse_args(
        [
            "audit",
            "--model",
            "m",
            "--out",
            "o",
            "--notebooks",
            "00",
            "01",
            "--param",
            "a=1",
            "--param",
            "b=x",
            "--show-code",
        ]
    )
    assert args.data is None  # each notebook's own default
    assert args.notebooks == ["00", "01"] and args.param == [("a", 1), ("b", "x")] and args.show_code
    assert args.kernel == "python3" and args.timeout == 1800
    assert args.fail_on is None
    for level in ("inconclusive", "warn", "fail"):
        assert build_parser().parse_args(["audit", "--model", "m", "--out", "o", "--fail-on", level]).fail_on == level
    with pytest.raises(SystemExit):
        build_parser().parse_args(["audit", "--model", "m", "--out", "o", "--fail-on", "pass"])
    cmp = build_parser().parse_args(["compare", "A", "B", "--fail-on-regression"])
    assert (cmp.a, cmp.b, cmp.fail_on_regression) == ("A", "B", True)


def test_select_notebooks_by_stem_prefix_and_file_name(nbdir):
    assert [p.name for p in select_notebooks(None, nbdir)] == ["01_alpha.ipynb", "02_beta.ipynb"]
    assert [p.name for p in select_notebooks(["02", "01_alpha.ipynb"], nbdir)] == ["02_beta.ipynb", "01_alpha.ipynb"]
    with pytest.raises(ParameterError, match=r"unknown notebook 'nope'; available: 01_alpha, 02_beta"):
        select_notebooks(["nope"], nbdir)
    with pytest.raises(ParameterError, match="ambiguous"):
        select_notebooks(["0"], nbdir)


def test_plan_passes_params_only_to_notebooks_that_declare_them(nbdir):
    nbs = select_notebooks(None, nbdir)
    plan = plan_parameters(nbs, {"model": "x", "seed": 4}, {"alpha": 7, "beta": "y"})
    by_name = {p.stem: params for p, params in plan.items()}
    assert by_name == {
        "01_alpha": {"model": "x", "seed": 4, "alpha": 7},
        "02_beta": {"model": "x", "seed": 4, "beta": "y"},
    }
    with pytest.raises(ParameterError, match=r"unknown parameter 'gamma': no selected notebook declares it"):
        plan_parameters(nbs, {"model": "x"}, {"gamma": 1})
    # beta exists, but not in the selected notebook
    with pytest.raises(ParameterError, match="'beta'"):
        plan_parameters(nbs[:1], {"model": "x"}, {"beta": 1})
    # model/data/seed must be declared by every selected notebook
    make_notebook(nbdir / "03_nomodel.ipynb", "data = 'golden'  # data", "print(data)")
    with pytest.raises(ParameterError, match=r"03_nomodel.ipynb: does not declare parameter\(s\) \['model'\]"):
        plan_parameters(select_notebooks(None, nbdir), {"model": "x"})
    make_notebook(nbdir / "04_noparams.ipynb", "", "print(1)")
    with pytest.raises(ParameterError, match="no cell tagged 'parameters'"):
        plan_parameters([nbdir / "04_noparams.ipynb"], {"model": "x"})


def test_parameters_papermill_cannot_parse_still_count_as_declared(tmp_path):
    from workbench.reports import notebook_parameters, parameter_defaults

    nb = make_notebook(
        tmp_path / "n.ipynb",
        'model = "m"  # RM\nsample_size = 0   # pairs (0 = all)\nmode: str = "a"  # typed',
        "print(1)",
    )
    assert set(notebook_parameters(nb)) == {"model", "sample_size", "mode"}
    assert parameter_defaults(nb) == {"model": "m", "sample_size": 0, "mode": "a"}
    plan = plan_parameters([nb], {"model": "x"}, {"sample_size": 5})
    assert plan[nb] == {"model": "x", "sample_size": 5}


def test_audit_rejects_bad_input_before_running_anything(nbdir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["audit", "--model", "m", "--out", str(out), "--notebook-dir", str(nbdir), "--param", "gamma=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown parameter 'gamma'" in err and "01_alpha: alpha, data, model, seed" in err
    assert not out.exists()
    assert main(["audit", "--model", "m", "--out", str(out), "--notebook-dir", str(nbdir), "--notebooks", "zz"]) == 2
    assert "available: 01_alpha, 02_beta" in capsys.readouterr().err
    assert not out.exists()


def test_demo_validates_before_training(capsys):
    # a typo must be reported at once, not after training the demo RMs
    assert main(["demo", "--param", "definitely_not_a_parameter=1", "--out", "/nonexistent/never-written"]) == 2
    assert "definitely_not_a_parameter" in capsys.readouterr().err


@pytest.mark.slow
def test_audit_runs_each_notebook_with_its_own_params(nbdir, tmp_path):
    out = tmp_path / "out"
    code = main(
        [
            "audit",
            "--model",
            "python:nothing:here",
            "--out",
            str(out),
            "--notebook-dir",
            str(nbdir),
            "--param",
            "alpha=42",
            "--param",
            "beta=hello",
        ]
    )
    assert code == 0
    a = nbformat.read(str(out / "01_alpha.ipynb"), as_version=4)
    b = nbformat.read(str(out / "02_beta.ipynb"), as_version=4)
    assert a.metadata.papermill.parameters == {"model": "python:nothing:here", "alpha": 42}
    assert b.metadata.papermill.parameters == {"model": "python:nothing:here", "beta": "hello"}
    assert "alpha is 42" in (out / "01_alpha.html").read_text()
    assert "beta is hello" in (out / "02_beta.html").read_text()
    summary = json.loads((out / "summary.json").read_text())
    # the model could not be loaded here: the fingerprint is missing, with the reason, and the run goes on
    assert summary["inputs"]["model_fingerprint"] is None
    assert "ModuleNotFoundError" in summary["run"]["model_fingerprint_error"]
    assert summary["inputs"]["notebooks"]["01_alpha"]["data"] == "golden"  # the notebook's own default
    assert summary["inputs"]["data_hashes"][0]["spec"] == "golden"


def test_absolutize_relative_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pairs.jsonl").write_text("{}\n")
    assert _absolutize("pairs.jsonl") == str(tmp_path / "pairs.jsonl")
    assert _absolutize("scores:pairs.jsonl") == "scores:" + str(tmp_path / "pairs.jsonl")
    assert _absolutize("golden") == "golden"  # not a file here: a shipped-data name
    assert _absolutize(5) == 5


def _summary(verdict: str, metric: float) -> dict:
    return {
        "schema": SCHEMA,
        "inputs": {
            "model": "m",
            "model_fingerprint": "abc",
            "data": None,
            "data_hashes": [],
            "seed": None,
            "notebooks": {},
        },
        "results": {
            "overall": verdict,
            "counts": {},
            "notebooks": {"01_calibration": {"status": "ok"}},
            "verdicts": [
                {
                    "notebook": "01_calibration",
                    "section": "calibration",
                    "check": "ECE",
                    "value": metric,
                    "threshold": "warn > 0.05, fail > 0.1",
                    "verdict": verdict,
                    "detail": "",
                }
            ],
            "metrics": {"01_calibration/calibration/ece": metric, "01_calibration/calibration/n": 100},
        },
        "run": {"started": "t0", "finished": "t1", "seconds": 1.0, "notebooks": {}},
    }


def test_compare_cli_table_and_exit_codes(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "summary.json").write_text(json.dumps(_summary("pass", 0.04)))
    (b / "summary.json").write_text(json.dumps(_summary("fail", 0.125)))
    assert main(["compare", str(a), str(b)]) == 0
    text = capsys.readouterr().out
    assert "overall verdict: pass -> fail" in text
    assert "01_calibration/calibration/ece" in text and "0.085" in text  # delta = 0.125 - 0.04
    assert "01_calibration/calibration/n" not in text  # unchanged metric not listed
    assert "worse" in text and "1 verdict(s) got worse." in text
    assert main(["compare", str(a), str(b / "summary.json"), "--fail-on-regression"]) == 1
    capsys.readouterr()
    assert main(["compare", str(b), str(a), "--fail-on-regression"]) == 0  # an improvement is not a regression
    assert "better" in capsys.readouterr().out
    assert main(["compare", str(a), str(tmp_path / "missing")]) == 2
    assert "no summary.json" in capsys.readouterr().err


def test_module_entry_point_help():
    out = subprocess.run(
        [sys.executable, "-m", "workbench", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("audit", "demo", "compare", "train-demo"):
        assert command in out


def test_cli_start_up_does_not_import_torch():
    """``python -m workbench --help`` stays quick: the pipeline imports torch only when a model is loaded."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "workbench", "--help"], capture_output=True, text=True, check=True
    )
    imported = {
        line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time")
    }
    assert "workbench.cli" in imported and "workbench.reports.pipeline" in imported
    assert not {name for name in imported if name == "torch" or name.startswith("torch.")}


def _run_with(*rows: tuple[str, str, float, float, bool]) -> AuditRun:
    """An audit run whose summary holds graded checks ``(family, check, low, high, primary)`` (margins 0.05 / 0.10)."""
    verdicts = [
        {
            "notebook": "02_features",
            **asdict(
                graded_verdict(
                    "features", check, (lo + hi) / 2, lo, hi, warn=0.05, fail=0.1, family=fam, primary=primary
                )
            ),
        }
        for fam, check, lo, hi, primary in rows
    ]
    return AuditRun(Path("reports/x"), [], {"results": results_from_verdicts(verdicts)}, Path("reports/x/index.html"))


def test_fail_on_uses_the_family_verdicts_and_ranks_inconclusive(capsys):
    # agreement straddles the warn margin (inconclusive); length passes on its primary check although a
    # descriptive check fails
    run = _run_with(
        ("agreement", "vs placebo", 0.0, 0.08, True),
        ("length", "preference", -0.02, 0.03, True),
        ("length", "raw correlation", 0.2, 0.4, False),
    )
    assert run.overall == "inconclusive"
    assert exit_status([run], None) == 0
    assert exit_status([run], "fail") == 0  # the failing check is descriptive: no family fails
    assert exit_status([run], "warn") == 0
    assert capsys.readouterr().err == ""
    assert exit_status([run], "inconclusive") == 3
    err = capsys.readouterr().err
    assert "--fail-on inconclusive" in err and "agreement inconclusive" in err and "length" not in err
    warned = _run_with(("agreement", "vs placebo", 0.06, 0.09, True), ("length", "preference", 0.0, 0.08, True))
    assert warned.overall == "warn"
    assert [exit_status([warned], level) for level in ("inconclusive", "warn", "fail")] == [3, 3, 0]
    assert "agreement warn, length inconclusive" in capsys.readouterr().err  # worst first
    failed = _run_with(("length", "preference", 0.12, 0.2, True))
    assert [exit_status([run, failed], level) for level in ("inconclusive", "warn", "fail")] == [3, 3, 3]
    broken = AuditRun(Path("r"), [type("R", (), {"ok": False})()], failed.summary, Path("r/index.html"))
    assert exit_status([broken], "fail") == 1  # a notebook that failed wins over --fail-on


PUBLISH_INCONCLUSIVE = """
from workbench.reports import graded_verdict, publish
publish("features", [graded_verdict("features", "agreement vs placebo", 0.04, 0.0, 0.08, warn=0.05, fail=0.1,
                                    n=200, n_clusters=40, family="agreement")])
"""


@pytest.mark.slow
def test_audit_fail_on_exit_codes_end_to_end(tmp_path, capsys):
    folder = tmp_path / "nbs"
    folder.mkdir()
    make_notebook(folder / "01_inc.ipynb", 'model = "m"  # RM', PUBLISH_INCONCLUSIVE)
    base = ["audit", "--model", "python:nothing:here", "--notebook-dir", str(folder)]
    assert main([*base, "--out", str(tmp_path / "a"), "--fail-on", "warn"]) == 0
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["schema"] == SCHEMA and summary["results"]["overall"] == "inconclusive"
    # 40 clusters * (half-width 0.04 / distance to the warn margin 0.01)^2
    assert summary["results"]["families"]["agreement"]["clusters_needed"] == 640
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "b"), "--fail-on", "inconclusive"]) == 3
    assert "agreement inconclusive" in capsys.readouterr().err
