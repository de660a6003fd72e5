"""``pip install .`` (not editable) gives a working ``workbench`` from any folder (issue 13, item 7).

A wheel is built from a copy of the sources, installed with ``--no-deps`` into a fresh
virtual environment (torch and the other dependencies come from this test's
environment through a ``.pth`` line, so nothing is downloaded), and run from a folder
outside the repository with ``PYTHONPATH`` unset: the notebooks, the shipped data and
the report templates must come from the installed package, and the caches from the
user cache directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ["pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "workbench", "notebooks", "data"]
SHIPPED_DATA = ["golden/golden.jsonl", "sycophancy/items.jsonl", "demo/content.json", "demo/build_demo_data.py"]

PROBE = """
import json, workbench
from workbench import paths
from workbench.reports.pages import template_source
from workbench.reports.runner import NOTEBOOK_DIR, notebook_parameters, select_notebooks
print(json.dumps({
    "package": workbench.__file__,
    "checkout": paths.in_source_checkout(),
    "notebooks": str(paths.notebook_dir()),
    "runner_notebooks": str(NOTEBOOK_DIR),
    "selected": [p.name for p in select_notebooks(None)],
    "parameters_00": sorted(notebook_parameters(paths.notebook_dir() / "00_overview.ipynb")),
    "data": str(paths.data_dir()),
    "cache": str(paths.cache_dir()),
    "models": str(paths.model_dir()),
    "template": len(template_source("run_index.html.j2")),
}))
"""


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{cmd} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    wheels = tmp / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels)])
    (wheel,) = wheels.glob("rm_audit_workbench-*.whl")

    venv = tmp / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    purelib = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    )
    # this environment's packages (torch, transformers, pip ...) after the new one's own, not the repository
    (purelib / "_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)])

    elsewhere = tmp / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("WORKBENCH_")}
    env |= {"HOME": str(tmp / "home"), "XDG_CACHE_HOME": str(tmp / "xdg"), "HF_HUB_OFFLINE": "1"}
    return {
        "wheel": wheel,
        "venv": venv,
        "python": python,
        "purelib": purelib,
        "cwd": elsewhere,
        "env": env,
        "tmp": tmp,
    }


def test_the_wheel_carries_notebooks_data_and_templates(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks and all(f"workbench/_bundled/notebooks/{n}" in names for n in notebooks)
    assert all(f"workbench/_bundled/notebooks/{Path(n).stem}.py" in names for n in notebooks)  # jupytext twins
    assert all(f"workbench/_bundled/data/{rel}" in names for rel in SHIPPED_DATA)
    assert "workbench/reports/templates/run_index.html.j2" in names and "workbench/reports/static/report.css" in names
    assert not any(n.startswith(("notebooks/", "data/", "tests/")) for n in names)  # nothing at the top level


@pytest.mark.slow
def test_the_installed_package_runs_from_any_folder(installed):
    python, cwd, env, purelib = installed["python"], installed["cwd"], installed["env"], installed["purelib"]
    bundled = purelib / "workbench" / "_bundled"

    for cmd in ([str(installed["venv"] / "bin" / "workbench"), "--help"], [str(python), "-m", "workbench", "--help"]):
        assert "audit" in _run(cmd, cwd=cwd, env=env).stdout

    found = json.loads(_run([str(python), "-c", PROBE], cwd=cwd, env=env).stdout.strip().splitlines()[-1])
    assert Path(found["package"]).resolve() == (purelib / "workbench" / "__init__.py").resolve()  # not the checkout
    assert found["checkout"] is False
    assert Path(found["notebooks"]) == Path(found["runner_notebooks"]) == bundled / "notebooks"
    assert found["selected"] == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert {"model", "data"} <= set(found["parameters_00"])
    assert Path(found["data"]) == bundled / "data"
    for rel in SHIPPED_DATA:  # the installed copies are the repository's files, byte for byte
        assert (bundled / "data" / rel).read_bytes() == (ROOT / "data" / rel).read_bytes()
    xdg = installed["tmp"] / "xdg" / "rm-audit-workbench"
    assert Path(found["cache"]) == xdg and Path(found["models"]) == xdg and xdg.is_dir()
    assert found["template"] > 0

    # a real command on the shipped data, through the console script
    doctor = _run(
        [str(installed["venv"] / "bin" / "workbench"), "doctor", "--data", "golden", "--json"], cwd=cwd, env=env
    )
    report = json.loads(doctor.stdout)
    assert Path(report["source"]) == bundled / "data" / "golden" / "golden.jsonl"
    assert report["rows_loaded"] == sum(1 for line in (ROOT / "data/golden/golden.jsonl").open() if line.strip())
    assert report["clean"] is True
    assert sorted(p.name for p in cwd.iterdir()) == []  # nothing written where it ran
