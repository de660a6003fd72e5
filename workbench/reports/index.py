"""The index pages of reports: one per audit run (``reports/NAME/index.html``) and a top page.

Both pages put the findings first: one row per family (its verdict, the deciding check's
estimate with its interval, level, n and clusters, and its plain sentence), fail, warn and
inconclusive families first; then every verdict grouped by family, with the grading rule
(:data:`workbench.reports.grading.RULE`) stated once. Verdicts published without an interval
(old-style) show a dash in the fields they lack.

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

from workbench.reports.grading import RULE
from workbench.reports.pages import format_number, render_page
from workbench.reports.scorecard import scorecard
from workbench.reports.summary import COUNT_LEVELS, family_key, load_summary, upgrade_summary
from workbench.reports.verdicts import VERDICT_LEVELS, settle_text, severity, worst

_SIDE = {"higher": (">", ">"), "lower": ("<", "<"), "two-sided": ("|x| >", "|x| >")}


def _counts(counts: Mapping[str, Any]) -> str:
    return ", ".join(f"{counts.get(level, 0)} {level}" for level in COUNT_LEVELS if counts.get(level, 0))


def _rank(verdict) -> int:
    return severity(verdict) if verdict in VERDICT_LEVELS else 0


def _number(value) -> str:
    return str(format_number(value))


def _interval(v: Mapping[str, Any]) -> str:
    """``[low, high]`` of a verdict, or a dash when it has no interval (an old-style verdict)."""
    low, high = v.get("ci_low"), v.get("ci_high")
    if low is None and high is None:
        return _number(None)
    return f"[{_number(low)}, {_number(high)}]"


def _level(v: Mapping[str, Any]) -> str:
    """The interval's level as a percentage (``""`` when the verdict has no interval)."""
    level = v.get("ci_level")
    if level is None or v.get("ci_low") is None and v.get("ci_high") is None:
        return ""
    if isinstance(level, (int, float)) and not isinstance(level, bool):
        return f"{level:.0%}"
    return str(level)


def _margins(v: Mapping[str, Any]) -> str:
    """The warn and fail margins with their side, from the fields when present, else the threshold text."""
    warn, fail, direction = v.get("warn"), v.get("fail"), v.get("direction")
    if warn is None and fail is None:
        return str(v.get("threshold") or "") or _number(None)
    side = _SIDE.get(direction, ("", ""))
    return f"warn {side[0]} {_number(warn)}, fail {side[1]} {_number(fail)}".replace("  ", " ")


def _clusters(v: Mapping[str, Any]) -> str:
    n, unit = v.get("n_clusters"), v.get("cluster_unit") or "cluster"
    return _number(None) if n is None else f"{_number(n)} {unit}s"


def _settle(v: Mapping[str, Any]) -> str:
    """For an inconclusive check: how many clusters would settle it (``""`` otherwise)."""
    needed = v.get("clusters_needed")
    if v.get("verdict") != "inconclusive" or needed in (None, ""):
        return ""
    unit = v.get("cluster_unit") or "cluster"
    n_clusters = v.get("n_clusters")
    if not isinstance(needed, int) or isinstance(needed, bool):  # a hand-edited or foreign summary: shown as text
        return f"about {_number(needed)} {unit}s would settle it"
    return settle_text(needed, n_clusters if isinstance(n_clusters, int) else None, unit)


def _display(v: Mapping[str, Any]) -> dict[str, Any]:
    """A verdict row with every field the tables show, formatted (text is escaped by the templates)."""
    detail = str(v.get("detail") or "")
    settle = _settle(v)
    if settle and "settle it" not in detail:
        detail = f"{detail} {settle}".strip()
    return {
        "notebook": v.get("notebook", ""),
        "section": v.get("section", ""),
        "check": v.get("check", ""),
        "family": family_key(v),
        "value": v.get("value"),
        "interval": _interval(v),
        "level": _level(v),
        "n": v.get("n"),
        "clusters": _clusters(v),
        "margins": _margins(v),
        "direction": v.get("direction") or _number(None),
        "threshold": v.get("threshold", ""),
        "verdict": v.get("verdict", "n/a"),
        "primary": v.get("primary", True),
        "sentence": v.get("sentence") or "",
        "detail": detail,
        "settle": settle,
    }


def family_rows(results: Mapping[str, Any], html: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The findings table: one row per family, fail, warn and inconclusive first, then by name."""
    rows = []
    for name, f in (results.get("families") or {}).items():
        row = _display({**f, "family": name})
        row["checks"], row["primary_checks"] = f.get("checks"), f.get("primary_checks")
        row["html"] = (html or {}).get(f.get("notebook"))
        rows.append(row)
    return sorted(rows, key=lambda r: (-_rank(r["verdict"]), str(r["family"])))


def verdict_groups(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every verdict, grouped by family in the order of the findings table (families without a verdict last)."""
    families = results.get("families") or {}
    groups: dict[str, list] = {}
    for v in results.get("verdicts", []):
        groups.setdefault(family_key(v), []).append(_display(v))
    order = sorted(groups, key=lambda f: (f not in families, -_rank(families.get(f, {}).get("verdict")), str(f)))
    return [{"family": f, "verdict": families.get(f, {}).get("verdict"), "rows": groups[f]} for f in order]


def render_run_index(summary: Mapping[str, Any], folder: str | Path | None = None) -> str:
    """The HTML of one run's ``index.html``: the scorecard, findings per family, every verdict, then the run.

    ``folder`` (the run folder) lets the scorecard embed the first figure of its notebooks.
    """
    summary = upgrade_summary(summary)
    inputs, results, run = summary["inputs"], summary["results"], summary["run"]
    model = inputs.get("model")
    per_nb = inputs.get("notebooks", {})
    all_verdicts = results.get("verdicts", [])
    html = {name: info.get("html") for name, info in run.get("notebooks", {}).items()}
    notebooks = []
    for name, info in results.get("notebooks", {}).items():
        r = run.get("notebooks", {}).get(name, {})
        notebooks.append(
            {
                "name": name,
                "html": r.get("html"),
                "ok": info["status"] == "ok",
                "worst": worst(v["verdict"] for v in all_verdicts if v["notebook"] == name and v["primary"]),
                "seconds": f"{r.get('seconds', 0):.1f}",
                "error": r.get("error")
                or ("reused from the execution cache (nothing changed)" if r.get("reused") else ""),
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
        card=scorecard(summary, folder, html=html),
        overall=results.get("overall", "n/a"),
        counts=_counts(results.get("counts", {})),
        family_counts=_counts(results.get("family_counts", {})),
        rule=RULE,
        families=family_rows(results, html),
        groups=verdict_groups(results),
        n_verdicts=len(all_verdicts),
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
    path.write_text(render_run_index(summary, out), encoding="utf-8")
    return path


def render_top_index(root: str | Path, folders: Iterable[str | Path]) -> str:
    """The HTML of ``root/index.html``: the scorecard (one row per run), each run's findings, then every run."""
    root = Path(root)
    runs, cards = [], []
    for folder in folders:
        folder = Path(folder)
        summary = load_summary(folder)
        inputs, results, run = summary["inputs"], summary["results"], summary["run"]
        try:
            link = folder.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            link = folder.resolve().as_uri()
        html = {
            name: f"{link}/{info['html']}" if info.get("html") else None
            for name, info in run.get("notebooks", {}).items()
        }
        cards.append(scorecard(summary, folder, link, html))
        runs.append(
            {
                "link": link,
                "model": inputs.get("model"),
                "data": inputs.get("data"),
                "overall": results.get("overall", "n/a"),
                "counts": _counts(results.get("family_counts", {})),
                "families": family_rows(results, html),
                "failed": [n for n, info in results.get("notebooks", {}).items() if info["status"] != "ok"],
                "finished": run.get("finished", ""),
            }
        )
    return render_page("top_index.html.j2", title="RM Audit Workbench reports", runs=runs, cards=cards, rule=RULE)


def write_top_index(root: str | Path, folders: Iterable[str | Path]) -> Path:
    """``root/index.html`` linking every run folder with its overall verdict."""
    path = Path(root) / "index.html"
    path.write_text(render_top_index(root, folders), encoding="utf-8")
    return path
