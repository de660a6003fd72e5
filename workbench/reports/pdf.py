"""A PDF of a report page, printed by headless Chromium (``workbench audit --pdf``, ``workbench demo --pdf``).

The page is self-contained (inlined stylesheet, ``data:`` figures, a Content-Security-Policy
that allows no script and no network), so Chromium prints it from the file with networking
off; the print stylesheet in ``static/report.css`` lays it out for paper.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

#: Browsers tried in order (Debian's ``chromium`` first).
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = "install headless Chromium (Debian: apt-get install -y --no-install-recommends chromium)"


def find_chromium() -> str | None:
    """The path of a Chromium-family browser, or ``None``."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def render_pdf(
    html: str | Path, pdf: str | Path | None = None, *, browser: str | None = None, timeout: int = 120
) -> Path:
    """Print ``html`` (a file) to ``pdf`` (default: the same name with ``.pdf``) with headless Chromium.

    Raises ``FileNotFoundError`` when the page or the browser is missing and ``RuntimeError``
    (naming the page and Chromium's last output) when printing fails.
    """
    html = Path(html)
    if not html.is_file():
        raise FileNotFoundError(f"no report page to print at {html}: run the audit first")
    pdf = Path(pdf) if pdf is not None else html.with_suffix(".pdf")
    browser = browser or find_chromium()
    if browser is None:
        raise FileNotFoundError(f"no Chromium found to print {html} to PDF: {INSTALL_HINT}")
    with tempfile.TemporaryDirectory(prefix="workbench-pdf-") as profile:
        cmd = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf.resolve()}",
            html.resolve().as_uri(),
        ]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"Chromium did not print {html} to PDF within {timeout} s") from exc
    if result.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
        raise RuntimeError(
            f"Chromium ({browser}) could not print {html} to {pdf} (exit {result.returncode}): "
            f"{(result.stderr or result.stdout)[-1500:].strip()}"
        )
    return pdf
