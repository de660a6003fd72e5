"""``summary.json`` of an audit run: every verdict and headline metric, for CI gating and comparison.

Layout (``schema`` ``rm-workbench/summary/v2``)::

    {
      "schema": "rm-workbench/summary/v2",
      "inputs":  {model, model_fingerprint, data, data_hashes, seed, notebooks: {name: {parameters, data, seed}}},
      "results": {overall, counts, family_counts, families: {family: {...}}, notebooks: {name: {status}},
                  verdicts: [...], metrics: {key: value}},
      "run":     {started, finished, seconds, notebooks: {name: {seconds, error, html, ipynb, reused}},
                  versions, git_commit, command, kernel, platform}
    }

``inputs`` and ``results`` hold no timings or timestamps: the same inputs and seed
give byte-identical ``results``. Everything that changes from run to run (times,
host, versions) is under ``run``.

* A verdict is ``notebook`` plus every field of :class:`~workbench.reports.verdicts.Verdict`:
  ``section, check, value, threshold, verdict, detail`` and the interval-grading contract
  ``family, ci_low, ci_high, ci_level, direction, warn, fail, n, n_clusters, cluster_unit,
  clusters_needed, sentence, primary`` (defaults where a notebook published an old-style
  verdict without them). Every notebook contributes a ``"notebook ran"`` check (section
  ``runner``, family ``notebook runs``): ``pass``, or ``fail`` with the error as detail.
* ``families`` has one entry per family (a verdict's ``family``, or its section when it has
  none): the worst of the family's *primary* checks
  (:func:`~workbench.reports.verdicts.family_verdicts`), with that check's fields
  (``notebook, section, check, value, ci_low, ci_high, ...``) and ``checks``/``primary_checks``
  counts. A family whose checks are all non-primary has no entry.
* ``overall`` is the worst *family* verdict (``n/a`` when there is none); levels rank
  ``n/a < pass < inconclusive < warn < fail``. ``counts`` counts checks per level,
  ``family_counts`` families per level.
* Metric keys are ``"<notebook>/<section>/<metric>"`` (nested dicts flattened with ``.``).

:func:`load_summary` also reads ``rm-workbench/summary/v1`` files (verdicts with only the
first seven fields, ``overall`` = worst check) and returns them in the v2 layout
(:func:`upgrade_summary`).
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as md
import json
import os
import platform
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from workbench.data.shipped import load_data, resolve_data_spec
from workbench.models.fingerprint import file_digest
from workbench.paths import REPO_DIR
from workbench.reports.verdicts import VERDICT_LEVELS, collect, family_verdicts, verdict_defaults, worst

SCHEMA = "rm-workbench/summary/v2"
OLD_SCHEMAS = ("rm-workbench/summary/v1",)  # still read by load_summary (upgraded to the v2 layout)
RUNNER_SECTION = "runner"
RUNNER_FAMILY = "notebook runs"
RAN_CHECK = "notebook ran"
COUNT_LEVELS = ("pass", "inconclusive", "warn", "fail", "n/a")
PACKAGES = (
    "rm-audit-workbench",
    "torch",
    "transformers",
    "tokenizers",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "matplotlib",
    "captum",
    "shap",
    "papermill",
    "nbconvert",
    "nbformat",
    "ipykernel",
)


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Python and installed package versions (packages that are not installed are left out)."""
    out = {"python": platform.python_version()}
    for pkg in packages:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def git_commit(repo: str | Path | None = None) -> str | None:
    """The checked-out commit of the project (read from ``.git``; ``None`` outside a checkout)."""
    git = Path(repo or REPO_DIR) / ".git"
    try:
        if git.is_file():  # worktree or submodule: "gitdir: PATH"
            target = git.read_text().strip().partition("gitdir:")[2].strip()
            git = (git.parent / target).resolve()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head or None
        ref = head.partition("ref:")[2].strip()
        common = git
        if (git / "commondir").exists():
            common = (git / (git / "commondir").read_text().strip()).resolve()
        for base in (git, common):
            if (base / ref).exists():
                return (base / ref).read_text().strip()
            packed = base / "packed-refs"
            if packed.exists():
                for line in packed.read_text().splitlines():
                    if line.endswith(" " + ref):
                        return line.split(" ", 1)[0]
    except OSError:
        return None
    return None


def data_hash(spec) -> dict[str, Any]:
    """Content hash of a data spec.

    Preference pairs that :func:`workbench.data.shipped.load_data` can read get their
    canonical content hash (independent of file format and extra columns); any
    other existing file gets the sha256 of its bytes; anything else is ``None``.
    """
    try:
        return {"spec": str(spec), "kind": "preference-pairs", "sha256": load_data(spec).content_hash()}
    except Exception as exc:
        path = Path(str(resolve_data_spec(spec)))
        if path.is_file():
            return {"spec": str(spec), "kind": "file", "sha256": file_digest(path)}
        return {
            "spec": str(spec),
            "kind": None,
            "sha256": None,
            "note": f"not readable as preference pairs ({type(exc).__name__}); the notebook resolves it",
        }


def _flatten(prefix: str, value, out: dict) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}", inner, out)
    else:
        out[prefix] = value


def verdict_row(notebook: str, v: Mapping[str, Any], section: str = "") -> dict[str, Any]:
    """One verdict of ``summary.json``: ``notebook`` and every :class:`Verdict` field (defaults where missing).

    An unknown verdict level becomes ``n/a``; text fields are strings; ``primary`` is a bool.
    """
    verdict = v.get("verdict", "n/a")
    row: dict[str, Any] = {
        "notebook": str(notebook),
        "section": str(v.get("section") or section),
        "check": str(v.get("check", "")),
        "value": v.get("value"),
        "threshold": str(v.get("threshold", "") or ""),
        "verdict": verdict if verdict in VERDICT_LEVELS else "n/a",
    }
    for name, default in verdict_defaults().items():
        value = v.get(name, default)
        if value is None:
            value = default
        if isinstance(default, str):
            value = str(value)
        elif isinstance(default, bool):
            value = bool(value)
        row[name] = value
    return row


def family_key(v: Mapping[str, Any]) -> str:
    """The family a verdict row belongs to: its ``family``, or its section when it has none."""
    return str(v.get("family") or v.get("section", ""))


def family_table(verdicts: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """One entry per family: its verdict (worst primary check) and the fields of the check that decided it.

    The deciding check is the first primary check, in publication order, whose verdict is
    the family's. Families are sorted by name (as ``summary.json`` stores them).
    """
    rows = [dict(v) for v in verdicts]
    levels = family_verdicts(rows)
    table: dict[str, dict[str, Any]] = {}
    for name, level in levels.items():
        members = [v for v in rows if family_key(v) == name]
        primary = [v for v in members if v.get("primary", True)]
        decider = next(v for v in primary if v["verdict"] == level)
        entry = {k: val for k, val in decider.items() if k not in ("family", "verdict", "primary")}
        entry.update(verdict=level, checks=len(members), primary_checks=len(primary))
        table[name] = entry
    return dict(sorted(table.items()))


def notebook_results(run) -> tuple[list[dict], dict[str, Any]]:
    """Verdict rows and flattened metrics of one :class:`~workbench.reports.runner.NotebookRun`."""
    name = Path(run.notebook).stem
    ran = {
        "section": RUNNER_SECTION,
        "check": RAN_CHECK,
        "value": None,
        "threshold": "no error",
        "verdict": "pass" if run.ok else "fail",
        "detail": "" if run.ok else str(run.error),
        "family": RUNNER_FAMILY,
        "sentence": f"Notebook {name} ran to the end."
        if run.ok
        else f"Notebook {name} stopped with an error, so its checks are missing.",
    }
    verdicts = [verdict_row(name, ran)]
    metrics: dict[str, Any] = {}
    for payload in collect(run.output_ipynb):
        section = str(payload.get("section", ""))
        for v in payload.get("verdicts", []):
            verdicts.append(verdict_row(name, v, section))
        for key, value in (payload.get("metrics") or {}).items():
            _flatten(f"{name}/{section}/{key}", value, metrics)
    return verdicts, metrics


def _counts(levels: Iterable[str]) -> dict[str, int]:
    levels = list(levels)
    return {level: sum(v == level for v in levels) for level in COUNT_LEVELS}


def build_results(runs) -> dict[str, Any]:
    """The deterministic part of a summary: verdicts, families, metrics, per-notebook status, overall verdict.

    Notebooks are ordered by name; verdicts keep each notebook's publication order
    (after its ``notebook ran`` row); metrics are sorted by key. ``overall`` is the
    worst family verdict.
    """
    verdicts: list[dict] = []
    metrics: dict[str, Any] = {}
    notebooks = {}
    for run in sorted(runs, key=lambda r: Path(r.notebook).stem):
        rows, values = notebook_results(run)
        verdicts.extend(rows)
        metrics.update(values)
        notebooks[Path(run.notebook).stem] = {"status": "ok" if run.ok else "failed"}
    return results_from_verdicts(verdicts, metrics, notebooks)


def results_from_verdicts(
    verdicts: Iterable[Mapping[str, Any]],
    metrics: Mapping[str, Any] | None = None,
    notebooks: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``results`` part of a summary from verdict rows (each gets every field; see :func:`verdict_row`)."""
    rows = [verdict_row(v.get("notebook", ""), v) for v in verdicts]
    families = family_table(rows)
    return {
        "overall": worst(f["verdict"] for f in families.values()),
        "counts": _counts(v["verdict"] for v in rows),
        "family_counts": _counts(f["verdict"] for f in families.values()),
        "families": families,
        "notebooks": dict(notebooks or {}),
        "verdicts": rows,
        "metrics": dict(sorted((metrics or {}).items())),
    }


def build_summary(runs, *, inputs: Mapping[str, Any], run_info: Mapping[str, Any]) -> dict[str, Any]:
    """Assemble ``summary.json`` from notebook runs, their inputs and the run bookkeeping."""
    run_section = dict(run_info)
    run_section["notebooks"] = {
        Path(r.notebook).stem: {
            "seconds": round(r.seconds, 2),
            "error": r.error,
            "html": r.output_html.name if r.output_html else None,
            "ipynb": Path(r.output_ipynb).name,
            "reused": bool(getattr(r, "reused", False)),
        }
        for r in runs
    }
    return {"schema": SCHEMA, "inputs": dict(inputs), "results": build_results(runs), "run": run_section}


def host_info() -> dict[str, Any]:
    """Platform, CPU count and accelerator (if torch sees one)."""
    info = {"platform": platform.platform(), "cpus": os.cpu_count(), "python": sys.executable}
    try:
        import torch  # heavy: imported only when a run's metadata is written, never at CLI start-up

        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # pragma: no cover - torch is a dependency, but keep metadata best-effort
        info["cuda"] = None
    return info


def write_summary(out: str | Path, summary: Mapping[str, Any]) -> Path:
    """Write ``out/summary.json`` (sorted keys, stable formatting)."""
    path = Path(out) / "summary.json"
    path.write_text(
        json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8"
    )
    return path


def upgrade_summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    """A summary in the current layout: v1 files, and summaries missing the v2 fields, are filled in.

    Every verdict row gets every :class:`Verdict` field (defaults where missing), and
    ``families``, ``family_counts`` and ``counts`` are added when absent. A recorded
    ``overall`` is kept (for v1 it is the worst check, which equals the worst family,
    since every v1 check is primary and its own section's family); it is computed when absent.
    The input is not changed.
    """
    out = {k: v for k, v in summary.items()}
    results = dict(out.get("results") or {})
    rows = [verdict_row(v.get("notebook", ""), v) for v in results.get("verdicts", [])]
    rebuilt = results_from_verdicts(rows, results.get("metrics"), results.get("notebooks"))
    for key in ("families", "family_counts", "overall"):
        results.setdefault(key, rebuilt[key])
    counts = dict(results.get("counts") or {})
    results["counts"] = {level: counts.get(level, rebuilt["counts"][level]) for level in COUNT_LEVELS}
    results["verdicts"] = rows
    results.setdefault("notebooks", {})
    results.setdefault("metrics", {})
    out["results"] = results
    if out.get("schema") in OLD_SCHEMAS:
        out["upgraded_from"] = out["schema"]
        out["schema"] = SCHEMA
    return out


def load_summary(path: str | Path) -> dict[str, Any]:
    """Read a ``summary.json`` (v2, or v1 upgraded to the v2 layout), given the file or the report folder."""
    path = Path(path)
    if path.is_dir():
        path = path / "summary.json"
    if not path.exists():
        raise FileNotFoundError(f"no summary.json at {path}")
    summary = json.loads(path.read_text(encoding="utf-8"))
    if summary.get("schema") not in (SCHEMA, *OLD_SCHEMAS):
        raise ValueError(f"{path}: not a workbench summary (schema {summary.get('schema')!r}, expected {SCHEMA!r})")
    return upgrade_summary(summary)
