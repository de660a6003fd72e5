"""JupyterLab in a real browser: start ``jupyter lab`` on 127.0.0.1 with a token, open a notebook in
headless Chromium (Selenium + chromium-driver), run all cells, check that no cell shows an error and
that the calibration temperature slider responds (a new T redraws the diagram's T).

The fast test writes a notebook on the fly with the real :func:`temperature_slider` on 300 synthetic
pairs (about 25 s). The slow tests open each shipped notebook, parameterised as in
tests/test_notebooks.py (tiny BERT RM, small parameters), and in 01_calibration move the slider. Screenshots are saved under
``$WORKBENCH_SCREENSHOTS`` (default: the test's tmp folder). Selenium or Chromium missing: the test
skips, and fails instead under ``CI`` or ``WORKBENCH_REQUIRE_CHROMIUM`` (as tests/test_xss.py).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

SLIDER_CELL = """
import numpy as np
from IPython.display import display
from workbench.audits.calibration.interactive import temperature_slider

rng = np.random.default_rng(0)
margin = rng.normal(0.0, 2.0, 300)
label = (rng.random(300) < 1 / (1 + np.exp(-margin / 2))).astype(int)
box = temperature_slider(margin, label, value=1.0)
display(box)
"""


def _require(message: str):
    if os.environ.get("CI") or os.environ.get("WORKBENCH_REQUIRE_CHROMIUM"):
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on 127.0.0.1 with a random token, serving ``tmp_path/work``; stopped after the test."""
    jupyter = Path(sys.executable).with_name("jupyter")
    if not jupyter.exists():
        _require(f"jupyter lab is needed: {jupyter} is missing (pip install jupyterlab)")
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    token, port = secrets.token_hex(16), _free_port()
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "HF_HUB_OFFLINE": "1",
    }
    cmd = [
        str(jupyter),
        "lab",
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={work}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    log = (tmp_path / "lab.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"jupyter lab did not start on {base}: {(tmp_path / 'lab.log').read_text()[-2000:]}"
                )
            time.sleep(0.5)
        yield {"base": base, "token": token, "work": work, "log": tmp_path / "lab.log"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture
def browser(tmp_path):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _require("selenium is needed for the JupyterLab browser test: pip install selenium")
    chromium = next(
        (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
    )
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        _require("headless Chromium and its driver are needed: apt-get install -y chromium chromium-driver (Debian)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1400,1000",
        "--disable-dev-shm-usage",
    ):
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(condition)
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(_timeout(driver, f"timed out after {timeout} s waiting for {what}"))


def _timeout(driver, message: str) -> str:
    shot = Path(os.environ.get("WORKBENCH_SCREENSHOTS") or ".") / "jupyterlab_timeout.png"
    driver.save_screenshot(str(shot))
    return f"{message} (screenshot: {shot})"


def _run_all(browser, lab, name: str, marker: str) -> None:
    """Open ``name`` in Lab, run all cells until an output shows ``marker``; fail on any error output."""
    browser.get(f"{lab['base']}/lab/tree/{name}?token={lab['token']}")
    _wait(
        browser,
        "return !!window.jupyterapp && !!document.querySelector('.jp-NotebookPanel .jp-Cell') &&"
        " document.querySelector('.jp-Notebook-ExecutionIndicator')?.getAttribute('data-status') === 'idle'",
        90,
        "the notebook to open with an idle kernel",
    )
    # the kernel may report idle before its session is wired to the panel, and Lab may ask which kernel to
    # use: accept its dialog and run all again until the last cell has printed (rerunning is harmless)
    done = (
        "return [...document.querySelectorAll('.jp-OutputArea-output')].some(e => e.innerText.includes(arguments[0]))"
    )
    idle = "return document.querySelector('.jp-Notebook-ExecutionIndicator')?.getAttribute('data-status') === 'idle'"
    accept = "const b = document.querySelector('.jp-Dialog .jp-mod-accept'); if (b) { b.click(); } return !!b"
    deadline, last_run = time.monotonic() + 180, 0.0
    while not browser.execute_script(done, marker):
        if time.monotonic() > deadline:
            raise AssertionError(_timeout(browser, f"{name}: the last cell's output ({marker!r})"))
        browser.execute_script(accept)
        if browser.execute_script(idle) and time.monotonic() - last_run > 15:
            browser.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            last_run = time.monotonic()
        time.sleep(0.5)
    errors = browser.execute_script(
        "return [...document.querySelectorAll('.jp-OutputArea-output')]"
        ".filter(e => e.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr' || "
        "e.classList.contains('jp-OutputArea-executeResult') && /Traceback/.test(e.innerText))"
        ".map(e => e.innerText).filter(t => /Error|Traceback/.test(t))"
    )
    assert errors == [], f"{name}: error output in JupyterLab: {errors}"


def test_notebook_runs_in_jupyterlab_and_slider_redraws(lab, browser, tmp_path):
    shots = Path(os.environ.get("WORKBENCH_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(SLIDER_CELL.strip()), nbformat.v4.new_code_cell('print("all cells ran")')]
    nbformat.write(nb, str(lab["work"] / "slider.ipynb"))

    _run_all(browser, lab, "slider.ipynb", "all cells ran")
    info = _wait(
        browser,
        "const h = [...document.querySelectorAll('.widget-html-content')].find(e => e.innerText.includes('ECE'));"
        " return h && h.innerText",
        60,
        "the slider's metrics line",
    )
    assert "T = 1 " in info.replace("\xa0", " "), info
    errors = browser.execute_script(
        "return [...document.querySelectorAll('.jp-OutputArea-output[data-mime-type=\"application/vnd.jupyter.stderr\"]')]"
        ".map(e => e.innerText).filter(t => /Error|Traceback/.test(t))"
    )
    assert errors == [], errors
    browser.save_screenshot(str(shots / "jupyterlab_slider_T1.png"))
    diagram = "return [...document.querySelectorAll('.widget-output img')].map(i => i.src).join(' ')"
    before = browser.execute_script(diagram)
    assert before.startswith("data:image/png"), "the slider shows no reliability diagram"

    # move the slider: type a new T into its readout; the diagram's title and the metrics line follow
    readout = browser.find_element("css selector", ".widget-slider .widget-readout")
    readout.click()
    browser.execute_script("arguments[0].innerText = '3';", readout)
    from selenium.webdriver.common.keys import Keys

    readout.send_keys(Keys.ENTER)
    info = _wait(
        browser,
        "const h = [...document.querySelectorAll('.widget-html-content')].find(e => e.innerText.includes('ECE'));"
        " return h && h.innerText.replace(/\\u00a0/g, ' ').includes('T = 3 ') && h.innerText",
        60,
        "the metrics line to show T = 3 after moving the slider",
    )
    assert "T = 3 " in info.replace("\xa0", " ")
    # the metrics line and the diagram are two widgets updated one after the other: wait for the image
    deadline = time.monotonic() + 30
    while browser.execute_script(diagram) == before and time.monotonic() < deadline:
        time.sleep(0.5)
    imgs = browser.execute_script(
        "return [...document.querySelectorAll('.widget-output img')].map(i => i.naturalWidth)"
    )
    assert imgs and all(w > 0 for w in imgs), imgs
    assert browser.execute_script(diagram) != before, "moving the slider did not redraw the diagram"
    browser.save_screenshot(str(shots / "jupyterlab_slider_T3.png"))


SHIPPED = sorted(p for p in (Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("ipynb", SHIPPED, ids=lambda p: p.stem)
def test_shipped_notebook_runs_in_jupyterlab(ipynb, lab, browser, tiny_models, tmp_path):
    """Each shipped notebook, on the tiny BERT RM with the small parameters of tests/test_notebooks.py,
    runs in JupyterLab without error output; in 01_calibration the temperature slider redraws."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook
    from test_notebooks import SMALL

    from workbench.reports.runner import notebook_parameters

    shots = Path(os.environ.get("WORKBENCH_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    declared = notebook_parameters(ipynb)
    params = {k: v for k, v in SMALL.items() if k in declared} | {"model": str(tiny_models["bert"])}
    if "models" in declared:
        params["models"] = f"{tiny_models['bert']},{tiny_models['deberta']}"
    if "output_dir" in declared:
        params["output_dir"] = str(tmp_path / "queue")
    if ipynb.stem.startswith(("04", "05")):
        params["sample_size"] = 6 if ipynb.stem.startswith("04") else 8
    nb = parameterize_notebook(load_notebook_node(str(ipynb)), params)
    nb.cells.append(nbformat.v4.new_code_cell('print("all cells ran")'))
    nbformat.write(nb, str(lab["work"] / ipynb.name))
    _run_all(browser, lab, ipynb.name, "all cells ran")
    browser.save_screenshot(str(shots / f"jupyterlab_{ipynb.stem}.png"))
    if ipynb.stem.startswith("01"):
        readout = browser.find_element("css selector", ".widget-slider .widget-readout")
        before = browser.execute_script(
            "return [...document.querySelectorAll('.widget-output img')].map(i => i.src).join(' ')"
        )
        readout.click()
        browser.execute_script("arguments[0].innerText = '3';", readout)
        from selenium.webdriver.common.keys import Keys

        readout.send_keys(Keys.ENTER)
        _wait(
            browser,
            "return [...document.querySelectorAll('.widget-html-content')]"
            ".some(e => e.innerText.replace(/\\u00a0/g, ' ').includes('T = 3 '))",
            60,
            "01_calibration's slider to redraw at T = 3",
        )
        images = "return [...document.querySelectorAll('.widget-output img')].map(i => i.src).join(' ')"
        deadline = time.monotonic() + 30  # the metrics line and the diagram are updated one after the other
        while browser.execute_script(images) == before and time.monotonic() < deadline:
            time.sleep(0.5)
        after = browser.execute_script(images)
        assert before and after != before, "moving the slider did not redraw the reliability diagram"
        browser.save_screenshot(str(shots / "jupyterlab_01_calibration_T3.png"))
