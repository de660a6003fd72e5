"""The index pages of reports: one per audit run (``reports/NAME/index.html``) and a top page.

Both pages are built from ``summary.json`` (see :mod:`workbench.reports.summary`).
Every value that came from outside the code (model and data specs, check names,
details, errors, parameters) is HTML-escaped, and the pages carry a
Content-Security-Policy that allows no script at all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from workbench.reports.render import escape_text
from workbench.reports.summary import load_summary
from workbench.reports.verdicts import worst

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:72rem;color:#222;padding:0 1rem}
table{border-collapse:collapse;margin:.6rem 0 1.2rem}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
code{background:#f4f4f4;padding:0 .2rem;word-break:break-all}
.v{font-weight:bold;text-transform:uppercase;font-size:.85em;padding:.1rem .4rem;border-radius:.2rem}
.v-pass{color:#fff;background:#2e7d32}.v-warn{color:#222;background:#f9c74f}.v-fail{color:#fff;background:#c62828}.v-na{color:#222;background:#ddd}
.banner{font-size:1.2em;margin:1rem 0}.muted{color:#666}.detail{max-width:28rem;white-space:pre-wrap;word-break:break-word}
details{margin:.5rem 0}summary{cursor:pointer;font-weight:bold}
"""

_VERDICT_CLASS = {"pass": "v-pass", "warn": "v-warn", "fail": "v-fail", "n/a": "v-na"}


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{escape_text(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )


def _badge(verdict: str, label: str | None = None) -> str:
    return f"<span class='v {_VERDICT_CLASS.get(verdict, 'v-na')}'>{escape_text(label or verdict)}</span>"


def _fmt(value) -> str:
    if value is None:
        return "&ndash;"
    if isinstance(value, bool):
        return escape_text(value)
    if isinstance(value, float):
        return "&ndash;" if math.isnan(value) else escape_text(f"{value:.4g}")
    return escape_text(value)


def _code(value) -> str:
    return f"<code>{escape_text(value)}</code>" if value not in (None, "") else "<span class='muted'>&ndash;</span>"


def _rows(pairs: Iterable[tuple[str, str]]) -> str:
    """Two-column table rows; the *values* must already be HTML (escaped by the caller)."""
    return "".join(f"<tr><th>{escape_text(k)}</th><td>{v}</td></tr>" for k, v in pairs)


def _href(name: str) -> str:
    return escape_text(quote(str(name)))


def _counts(results: Mapping[str, Any]) -> str:
    counts = results.get("counts", {})
    return ", ".join(f"{counts.get(level, 0)} {level}" for level in ("pass", "warn", "fail", "n/a"))


def render_run_index(summary: Mapping[str, Any]) -> str:
    """The HTML of one run's ``index.html``."""
    inputs, results, run = summary["inputs"], summary["results"], summary["run"]
    model = inputs.get("model")
    data = inputs.get("data")
    seed = inputs.get("seed")
    per_nb = inputs.get("notebooks", {})
    seeds = sorted({repr(v.get("seed")) for v in per_nb.values()})
    seed_html = (
        _code(seed)
        if seed is not None
        else (escape_text("notebook defaults: " + ", ".join(seeds)) if seeds else "<span class='muted'>&ndash;</span>")
    )
    hashes = "".join(
        f"<tr><td>{_code(h.get('spec'))}</td><td>{escape_text(h.get('kind') or '')}</td>"
        f"<td>{_code(h.get('sha256'))}{(' <span class=muted>' + escape_text(h['note']) + '</span>') if h.get('note') else ''}</td></tr>"
        for h in inputs.get("data_hashes", [])
    )
    fingerprint = inputs.get("model_fingerprint")
    fp_html = (
        _code(fingerprint)
        if fingerprint
        else (f"<span class='muted'>unavailable: {escape_text(run.get('model_fingerprint_error') or '')}</span>")
    )
    meta = _rows(
        [
            ("model", _code(model)),
            ("model fingerprint", fp_html),
            (
                "data",
                _code(data) if data is not None else "<span class='muted'>each notebook's default (see below)</span>",
            ),
            ("seed", seed_html),
            ("started (UTC)", escape_text(run.get("started", ""))),
            ("finished (UTC)", escape_text(run.get("finished", ""))),
            ("duration", escape_text(f"{run.get('seconds', 0):.1f} s")),
            ("git commit", _code(run.get("git_commit"))),
            ("command", _code(run.get("command"))),
            ("kernel", _code(run.get("kernel"))),
        ]
    )

    def verdict_table(rows) -> str:
        body = "".join(
            f"<tr><td>{escape_text(v['notebook'])}</td><td>{escape_text(v['section'])}</td><td>{escape_text(v['check'])}</td>"
            f"<td class='num'>{_fmt(v.get('value'))}</td><td>{escape_text(v.get('threshold', ''))}</td>"
            f"<td>{_badge(v['verdict'])}</td><td class='detail'>{escape_text(v.get('detail', ''))}</td></tr>"
            for v in rows
        )
        return (
            "<table><tr><th>notebook</th><th>section</th><th>check</th><th>measured</th>"
            f"<th>threshold</th><th>verdict</th><th>detail</th></tr>{body}</table>"
        )

    all_verdicts = results.get("verdicts", [])
    attention = [v for v in all_verdicts if v["verdict"] in ("warn", "fail")]
    nb_rows = []
    for name, info in results.get("notebooks", {}).items():
        r = run.get("notebooks", {}).get(name, {})
        link = f"<a href='{_href(r['html'])}'>{escape_text(name)}</a>" if r.get("html") else escape_text(name)
        status = _badge("pass", "ok") if info["status"] == "ok" else _badge("fail", "failed")
        nb_verdicts = [v["verdict"] for v in results.get("verdicts", []) if v["notebook"] == name]
        seconds = f"{r.get('seconds', 0):.1f}"
        nb_rows.append(
            f"<tr><td>{link}</td><td>{status}</td><td>{_badge(worst(nb_verdicts))}</td>"
            f"<td class='num'>{escape_text(seconds)}</td>"
            f"<td class='detail'>{escape_text(r.get('error') or '')}</td></tr>"
        )
    metric_rows = "".join(
        f"<tr><td>{escape_text(k)}</td><td class='num'>{_fmt(v)}</td></tr>"
        for k, v in results.get("metrics", {}).items()
    )
    params_rows = "".join(
        f"<tr><td>{escape_text(name)}</td><td>{_code(info.get('data'))}</td><td>{escape_text(repr(info.get('seed')))}</td>"
        f"<td>{_code(', '.join(f'{k}={v!r}' for k, v in info.get('parameters', {}).items()))}</td></tr>"
        for name, info in per_nb.items()
    )
    versions = _rows((k, escape_text(v)) for k, v in run.get("versions", {}).items())
    platform_rows = _rows((k, escape_text(v)) for k, v in run.get("platform", {}).items())
    body = (
        f"<h1>RM audit: <code>{escape_text(model)}</code></h1>"
        f"<p class='banner'>Overall verdict: {_badge(results.get('overall', 'n/a'))} "
        f"<span class='muted'>({escape_text(_counts(results))})</span></p>"
        "<p class='muted'>Open a notebook report for the figures and tables behind each check. "
        "<code>summary.json</code> holds the same verdicts and metrics for CI and "
        "<code>python -m workbench compare</code>.</p>"
        f"<h2>Run</h2><table>{meta}</table>"
        "<h2>Notebook reports</h2><table><tr><th>notebook</th><th>ran</th><th>worst verdict</th><th>seconds</th>"
        f"<th>error</th></tr>{''.join(nb_rows)}</table>"
        + (f"<h2>Needs attention ({len(attention)})</h2>{verdict_table(attention)}" if attention else "")
        + f"<h2>All verdicts ({len(all_verdicts)})</h2>{verdict_table(all_verdicts)}"
        f"<details><summary>Headline metrics ({len(results.get('metrics', {}))})</summary>"
        f"<table><tr><th>metric</th><th>value</th></tr>{metric_rows}</table></details>"
        f"<details><summary>Data hashes</summary><table><tr><th>data spec</th><th>kind</th><th>sha256</th></tr>{hashes}</table></details>"
        "<details><summary>Parameters per notebook</summary><table><tr><th>notebook</th><th>data</th><th>seed</th>"
        f"<th>parameters passed</th></tr>{params_rows}</table></details>"
        f"<details><summary>Environment</summary><table>{versions}{platform_rows}</table></details>"
    )
    return _page(f"RM audit: {model}", body)


def write_run_index(out: str | Path, summary: Mapping[str, Any] | None = None) -> Path:
    """Write ``out/index.html`` for one audit run (from ``summary``, or ``out/summary.json``)."""
    out = Path(out)
    summary = summary if summary is not None else load_summary(out)
    path = out / "index.html"
    path.write_text(render_run_index(summary), encoding="utf-8")
    return path


def write_top_index(root: str | Path, folders: Iterable[str | Path]) -> Path:
    """``root/index.html`` linking every run folder with its overall verdict."""
    root = Path(root)
    items = []
    for folder in folders:
        folder = Path(folder)
        summary = load_summary(folder)
        inputs, results, run = summary["inputs"], summary["results"], summary["run"]
        try:
            rel = folder.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            rel = folder.resolve().as_uri()
        failed = [n for n, info in results.get("notebooks", {}).items() if info["status"] != "ok"]
        items.append(
            f"<tr><td><a href='{_href(rel)}/index.html'>{escape_text(inputs.get('model'))}</a></td>"
            f"<td>{_code(inputs.get('data')) if inputs.get('data') is not None else 'notebook defaults'}</td>"
            f"<td>{_badge(results.get('overall', 'n/a'))}</td><td>{escape_text(_counts(results))}</td>"
            f"<td>{escape_text(', '.join(failed) or 'none')}</td><td>{escape_text(run.get('finished', ''))}</td></tr>"
        )
    body = (
        "<h1>RM Audit Workbench reports</h1>"
        "<table><tr><th>model</th><th>data</th><th>overall verdict</th><th>verdicts</th><th>failed notebooks</th>"
        "<th>finished (UTC)</th></tr>" + "".join(items) + "</table>"
    )
    path = root / "index.html"
    path.write_text(_page("RM Audit Workbench reports", body), encoding="utf-8")
    return path
