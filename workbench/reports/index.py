"""The index pages of reports: one per audit run (``reports/NAME/index.html``) and a top page.

Both pages are built from ``summary.json`` (see :mod:`workbench.reports.summary`) with
the Jinja2 templates ``run_index.html.j2`` and ``top_index.html.j2``
(:mod:`workbench.reports.pages`). Autoescaping HTML-escapes every value that came
from outside the code (model and data specs, check names, details, errors,
parameters), and the pages carry a Content-Security-Policy that allows no script at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from workbench.reports.pages import render_page
from workbench.reports.summary import load_summary
from workbench.reports.verdicts import worst


def _counts(results: Mapping[str, Any]) -> str:
    counts = results.get("counts", {})
    return ", ".join(f"{counts.get(level, 0)} {level}" for level in ("pass", "warn", "fail", "n/a"))


def _verdict_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Verdict rows with the optional fields filled in as the table shows them."""
    return [
        {
            "notebook": v["notebook"],
            "section": v["section"],
            "check": v["check"],
            "value": v.get("value"),
            "threshold": v.get("threshold", ""),
            "verdict": v["verdict"],
            "detail": v.get("detail", ""),
        }
        for v in rows
    ]


def render_run_index(summary: Mapping[str, Any]) -> str:
    """The HTML of one run's ``index.html``."""
    inputs, results, run = summary["inputs"], summary["results"], summary["run"]
    model = inputs.get("model")
    per_nb = inputs.get("notebooks", {})
    all_verdicts = _verdict_rows(results.get("verdicts", []))
    notebooks = []
    for name, info in results.get("notebooks", {}).items():
        r = run.get("notebooks", {}).get(name, {})
        notebooks.append(
            {
                "name": name,
                "html": r.get("html"),
                "ok": info["status"] == "ok",
                "worst": worst(v["verdict"] for v in all_verdicts if v["notebook"] == name),
                "seconds": f"{r.get('seconds', 0):.1f}",
                "error": r.get("error") or "",
            }
        )
    parameters = [
        {
            "name": name,
            "data": info.get("data"),
            "seed": repr(info.get("seed")),
            "passed": ", ".join(f"{k}={v!r}" for k, v in info.get("parameters", {}).items()),
        }
        for name, info in per_nb.items()
    ]
    return render_page(
        "run_index.html.j2",
        title=f"RM audit: {model}",
        model=model,
        overall=results.get("overall", "n/a"),
        counts=_counts(results),
        fingerprint=inputs.get("model_fingerprint"),
        fingerprint_error=run.get("model_fingerprint_error") or "",
        data=inputs.get("data"),
        seed=inputs.get("seed"),
        notebook_seeds=sorted({repr(v.get("seed")) for v in per_nb.values()}),
        started=run.get("started", ""),
        finished=run.get("finished", ""),
        duration=f"{run.get('seconds', 0):.1f} s",
        git_commit=run.get("git_commit"),
        command=run.get("command"),
        kernel=run.get("kernel"),
        notebooks=notebooks,
        attention=[v for v in all_verdicts if v["verdict"] in ("warn", "fail")],
        verdicts=all_verdicts,
        metrics=results.get("metrics", {}),
        data_hashes=inputs.get("data_hashes", []),
        parameters=parameters,
        versions=run.get("versions", {}),
        platform=run.get("platform", {}),
    )


def write_run_index(out: str | Path, summary: Mapping[str, Any] | None = None) -> Path:
    """Write ``out/index.html`` for one audit run (from ``summary``, or ``out/summary.json``)."""
    out = Path(out)
    summary = summary if summary is not None else load_summary(out)
    path = out / "index.html"
    path.write_text(render_run_index(summary), encoding="utf-8")
    return path


def render_top_index(root: str | Path, folders: Iterable[str | Path]) -> str:
    """The HTML of ``root/index.html``: every run folder with its overall verdict."""
    root = Path(root)
    runs = []
    for folder in folders:
        folder = Path(folder)
        summary = load_summary(folder)
        inputs, results, run = summary["inputs"], summary["results"], summary["run"]
        try:
            link = folder.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            link = folder.resolve().as_uri()
        runs.append(
            {
                "link": link,
                "model": inputs.get("model"),
                "data": inputs.get("data"),
                "overall": results.get("overall", "n/a"),
                "counts": _counts(results),
                "failed": [n for n, info in results.get("notebooks", {}).items() if info["status"] != "ok"],
                "finished": run.get("finished", ""),
            }
        )
    return render_page("top_index.html.j2", title="RM Audit Workbench reports", runs=runs)


def write_top_index(root: str | Path, folders: Iterable[str | Path]) -> Path:
    """``root/index.html`` linking every run folder with its overall verdict."""
    path = Path(root) / "index.html"
    path.write_text(render_top_index(root, folders), encoding="utf-8")
    return path
