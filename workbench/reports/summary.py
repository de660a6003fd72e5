"""``summary.json`` of an audit run: every verdict and headline metric, for CI gating and comparison.

Layout (``schema`` ``rm-workbench/summary/v1``)::

    {
      "schema": "rm-workbench/summary/v1",
      "inputs":  {model, model_fingerprint, data, data_hashes, seed, notebooks: {name: {parameters, data, seed}}},
      "results": {overall, counts, notebooks: {name: {status}}, verdicts: [...], metrics: {key: value}},
      "run":     {started, finished, seconds, notebooks: {name: {seconds, error, html, ipynb}},
                  versions, git_commit, command, kernel, platform}
    }

``inputs`` and ``results`` hold no timings or timestamps: the same inputs and seed
give byte-identical ``results``. Everything that changes from run to run (times,
host, versions) is under ``run``.

* A verdict is ``{notebook, section, check, value, threshold, verdict, detail}``.
  Every notebook contributes a ``"notebook ran"`` check (section ``runner``):
  ``pass``, or ``fail`` with the error as detail.
* Metric keys are ``"<notebook>/<section>/<metric>"`` (nested dicts flattened with ``.``).
* ``overall`` is the worst verdict of the run.
"""

from __future__ import annotations

import datetime as _dt
import gc
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
from workbench.models.loading import load_reward_model
from workbench.paths import REPO_DIR
from workbench.reports.verdicts import VERDICT_LEVELS, collect, worst

SCHEMA = "rm-workbench/summary/v1"
RUNNER_SECTION = "runner"
RAN_CHECK = "notebook ran"
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


def model_fingerprint(spec) -> tuple[str | None, str | None]:
    """``(fingerprint, error)`` of a model spec (loading a demo RM trains it on first use).

    The model is loaded in this process only to read its fingerprint and released
    straight after, so it does not sit in memory while the notebooks run.
    """
    try:
        rm = load_reward_model(spec)
        fingerprint = rm.fingerprint
    except Exception as exc:  # the notebooks will report the same failure in context
        return None, f"{type(exc).__name__}: {exc}"
    del rm
    gc.collect()
    return fingerprint, None


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


def notebook_results(run) -> tuple[list[dict], dict[str, Any]]:
    """Verdict rows and flattened metrics of one :class:`~workbench.reports.runner.NotebookRun`."""
    name = Path(run.notebook).stem
    verdicts = [
        {
            "notebook": name,
            "section": RUNNER_SECTION,
            "check": RAN_CHECK,
            "value": None,
            "threshold": "no error",
            "verdict": "pass" if run.ok else "fail",
            "detail": "" if run.ok else str(run.error),
        }
    ]
    metrics: dict[str, Any] = {}
    for payload in collect(run.output_ipynb):
        section = str(payload.get("section", ""))
        for v in payload.get("verdicts", []):
            verdict = v.get("verdict", "n/a")
            verdicts.append(
                {
                    "notebook": name,
                    "section": str(v.get("section") or section),
                    "check": str(v.get("check", "")),
                    "value": v.get("value"),
                    "threshold": str(v.get("threshold", "")),
                    "verdict": verdict if verdict in VERDICT_LEVELS else "n/a",
                    "detail": str(v.get("detail", "") or ""),
                }
            )
        for key, value in (payload.get("metrics") or {}).items():
            _flatten(f"{name}/{section}/{key}", value, metrics)
    return verdicts, metrics


def build_results(runs) -> dict[str, Any]:
    """The deterministic part of a summary: verdicts, metrics, per-notebook status, overall verdict.

    Notebooks are ordered by name; verdicts keep each notebook's publication order
    (after its ``notebook ran`` row); metrics are sorted by key.
    """
    verdicts: list[dict] = []
    metrics: dict[str, Any] = {}
    notebooks = {}
    for run in sorted(runs, key=lambda r: Path(r.notebook).stem):
        rows, values = notebook_results(run)
        verdicts.extend(rows)
        metrics.update(values)
        notebooks[Path(run.notebook).stem] = {"status": "ok" if run.ok else "failed"}
    counts = {level: sum(v["verdict"] == level for v in verdicts) for level in ("pass", "warn", "fail", "n/a")}
    return {
        "overall": worst(v["verdict"] for v in verdicts),
        "counts": counts,
        "notebooks": notebooks,
        "verdicts": verdicts,
        "metrics": dict(sorted(metrics.items())),
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


def load_summary(path: str | Path) -> dict[str, Any]:
    """Read a ``summary.json``, given the file or the report folder that holds it."""
    path = Path(path)
    if path.is_dir():
        path = path / "summary.json"
    if not path.exists():
        raise FileNotFoundError(f"no summary.json at {path}")
    summary = json.loads(path.read_text(encoding="utf-8"))
    if summary.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a workbench summary (schema {summary.get('schema')!r}, expected {SCHEMA!r})")
    return summary
