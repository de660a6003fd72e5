"""The index pages of a report folder: run metadata and links to each notebook's HTML."""

from __future__ import annotations

import datetime as _dt
import json
import platform
from pathlib import Path

from .render import escape_text

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:60rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
.ok{color:#17622d}.fail{color:#a01010;font-weight:bold}code{background:#f4f4f4;padding:0 .2rem}
"""


def _versions() -> dict:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("rm-audit-workbench", "torch", "transformers", "numpy", "pandas", "scikit-learn", "papermill", "nbconvert"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
        f"<title>{escape_text(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )


def write_run_index(out: Path, *, model, data, runs) -> Path:
    """Write ``out/index.html`` and ``out/run.json`` for one model's audit run."""
    out = Path(out)
    meta = {
        "model": str(model),
        "data": str(data),
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(),
        "notebooks": [
            {"notebook": r.notebook, "ok": r.ok, "error": r.error, "seconds": round(r.seconds, 1),
             "html": r.output_html.name if r.output_html else None}
            for r in runs
        ],
    }
    (out / "run.json").write_text(json.dumps(meta, indent=2))
    def link(n):
        name = escape_text(n["notebook"])
        return f"<a href='{escape_text(n['html'])}'>{name}</a>" if n["html"] else name

    def status(n):
        return "<td class='ok'>ok</td>" if n["ok"] else f"<td class='fail'>failed: {escape_text(n['error'])}</td>"

    rows = "".join(f"<tr><td>{link(n)}</td>{status(n)}<td>{n['seconds']}</td></tr>" for n in meta["notebooks"])
    versions = "".join(f"<tr><td>{escape_text(k)}</td><td>{escape_text(v)}</td></tr>" for k, v in meta["versions"].items())
    body = (
        f"<h1>RM audit: <code>{escape_text(model)}</code></h1>"
        f"<p>data <code>{escape_text(data)}</code>, finished {escape_text(meta['finished'])}</p>"
        f"<h2>Notebooks</h2><table><tr><th>notebook</th><th>status</th><th>seconds</th></tr>{rows}</table>"
        f"<h2>Environment</h2><table>{versions}</table>"
    )
    path = out / "index.html"
    path.write_text(_page(f"RM audit: {model}", body), encoding="utf-8")
    return path


def write_top_index(root: Path, folders) -> Path:
    """``reports/index.html`` linking every run folder."""
    root = Path(root)
    items = []
    for folder in folders:
        meta = json.loads((Path(folder) / "run.json").read_text())
        ok = all(n["ok"] for n in meta["notebooks"])
        rel = Path(folder).relative_to(root).as_posix()
        items.append(
            f"<tr><td><a href='{escape_text(rel)}/index.html'>{escape_text(meta['model'])}</a></td>"
            f"<td>{escape_text(meta['data'])}</td><td class='{'ok' if ok else 'fail'}'>{'ok' if ok else 'failed'}</td>"
            f"<td>{escape_text(meta['finished'])}</td></tr>"
        )
    body = (
        "<h1>RM Audit Workbench reports</h1>"
        "<table><tr><th>model</th><th>data</th><th>status</th><th>finished</th></tr>" + "".join(items) + "</table>"
    )
    path = root / "index.html"
    path.write_text(_page("RM Audit Workbench reports", body), encoding="utf-8")
    return path
