"""The audit pipeline behind ``python -m workbench audit`` and ``demo``, as a short list of named steps.

:func:`run_audit` runs, in order:

1. :func:`plan_audit`: select the notebooks and validate every parameter against their
   ``parameters`` cells (an error here stops everything before anything runs);
2. :func:`resolve_inputs`: the model fingerprint and the content hash of each data spec;
3. :func:`run_notebooks`: execute each notebook with papermill, then export its HTML report
   (:func:`~workbench.reports.runner.run_notebook`); a notebook that fails does not stop the others;
4. :func:`summarize`: collect the verdicts and metrics the notebooks published into the
   layout of ``summary.json`` (:func:`~workbench.reports.summary.build_summary`);
5. :func:`~workbench.reports.summary.write_summary` writes ``summary.json`` and
   :func:`~workbench.reports.index.write_run_index` writes ``index.html``.

:func:`run_demo` audits both demo RMs this way and writes the top ``index.html``.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.models.demo import load_demo_model
from workbench.reports.index import write_run_index, write_top_index
from workbench.reports.runner import (
    NOTEBOOK_DIR,
    NotebookRun,
    parameter_defaults,
    plan_parameters,
    run_notebook,
    select_notebooks,
)
from workbench.reports.summary import (
    build_summary,
    data_hash,
    git_commit,
    host_info,
    model_fingerprint,
    package_versions,
    utc_now,
    write_summary,
)

DEMO_MODELS = ("demo-clean", "demo-biased")


def log(message: str) -> None:
    """One progress line of the pipeline on stdout."""
    print(f"[workbench] {message}", flush=True)


def _absolutize(value):
    """Make a relative path (or ``scores:PATH``) absolute: notebooks run with their own folder as cwd."""
    if not isinstance(value, str) or not value:
        return value
    prefix = ""
    text = value
    if value.startswith("scores:"):
        prefix, text = "scores:", value[len("scores:") :]
    path = Path(text).expanduser()
    if not path.is_absolute() and path.exists():
        return prefix + str(path.resolve())
    if text.startswith("~"):
        return prefix + str(path)
    return value


@dataclass
class AuditPlan:
    """Validated parameters of an audit: what each notebook gets, before anything runs."""

    common: dict[str, Any]  # model, and data / seed when given: every notebook gets them
    parameters: dict[Path, dict[str, Any]]  # the parameters each notebook runs with, in run order
    notebooks: dict[str, dict[str, Any]]  # per notebook stem: {parameters, data, seed} as summary.json records them

    @property
    def model(self):
        return self.common["model"]


@dataclass
class ResolvedInputs:
    """What the run's inputs are, beyond their specs: the model fingerprint and the data hashes."""

    fingerprint: str | None
    fingerprint_error: str | None
    data_hashes: list[dict[str, Any]]


@dataclass
class AuditRun:
    """The outcome of :func:`run_audit`."""

    out: Path
    runs: list[NotebookRun]
    summary: dict
    index: Path

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.runs)

    @property
    def overall(self) -> str:
        return self.summary["results"]["overall"]


def plan_audit(
    model,
    data=None,
    notebooks: Iterable[str] | None = None,
    params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
    *,
    seed: int | None = None,
    notebook_dir=None,
) -> AuditPlan:
    """Step 1: select the notebooks and check every parameter; raises :class:`~workbench.reports.runner.ParameterError`."""
    selected = select_notebooks(list(notebooks) if notebooks is not None else None, notebook_dir or NOTEBOOK_DIR)
    common: dict[str, Any] = {"model": _absolutize(model)}
    if data is not None:
        common["data"] = _absolutize(data)
    if seed is not None:
        common["seed"] = seed
    extra = {k: _absolutize(v) for k, v in (params.items() if isinstance(params, Mapping) else (params or []))}
    plan = plan_parameters(selected, common, extra)
    per_nb = {}
    for nb, p in plan.items():
        defaults = parameter_defaults(nb)
        per_nb[nb.stem] = {
            "parameters": p,
            "data": p.get("data", defaults.get("data")),
            "seed": p.get("seed", defaults.get("seed")),
        }
    return AuditPlan(common, plan, per_nb)


def resolve_inputs(plan: AuditPlan) -> ResolvedInputs:
    """Step 2: the model fingerprint (a demo RM is trained on first use) and each data spec's content hash."""
    log("reading the model fingerprint (a demo RM is trained on first use) ...")
    fingerprint, fp_error = model_fingerprint(plan.model)
    if fp_error:
        log(f"  could not load the model here: {fp_error}")
    specs = sorted({str(v["data"]) for v in plan.notebooks.values() if v["data"] not in (None, "")})
    return ResolvedInputs(fingerprint, fp_error, [data_hash(s) for s in specs])


def run_notebooks(
    plan: AuditPlan,
    out: Path,
    *,
    kernel: str = "python3",
    timeout: int = 1800,
    show_code: bool = False,
    progress: bool = False,
    started: float | None = None,
) -> list[NotebookRun]:
    """Step 3: execute each notebook into ``out`` and export its HTML report, one after the other."""
    t0 = time.perf_counter() if started is None else started
    runs = []
    total = len(plan.parameters)
    for i, (nb, p) in enumerate(plan.parameters.items(), 1):
        shown = ", ".join(f"{k}={v!r}" for k, v in p.items() if k != "model")
        log(f"[{i}/{total}] {nb.stem}: running{' (' + shown + ')' if shown else ''} ...")
        run = run_notebook(
            nb,
            out,
            p,
            kernel_name=kernel,
            execution_timeout=timeout,
            show_code=show_code,
            progress=progress,
            validate=False,
        )
        status = "ok" if run.ok else f"FAILED: {run.error}"
        log(
            f"[{i}/{total}] {nb.stem}: {status} in {run.seconds:.1f}s (elapsed {time.perf_counter() - t0:.1f}s) -> {run.output_html}"
        )
        runs.append(run)
    return runs


def summarize(
    runs: list[NotebookRun], plan: AuditPlan, inputs: ResolvedInputs, run_info: Mapping[str, Any]
) -> dict[str, Any]:
    """Step 4: collect every notebook's verdicts and metrics into the layout of ``summary.json``."""
    recorded = {
        "model": plan.model,
        "model_fingerprint": inputs.fingerprint,
        "data": plan.common.get("data"),
        "data_hashes": inputs.data_hashes,
        "seed": plan.common.get("seed"),
        "notebooks": plan.notebooks,
    }
    return build_summary(runs, inputs=recorded, run_info=run_info)


def run_audit(
    model,
    data=None,
    out="reports/audit",
    notebooks: Iterable[str] | None = None,
    params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
    kernel: str = "python3",
    show_code: bool = False,
    timeout: int = 1800,
    *,
    seed: int | None = None,
    notebook_dir=None,
    command: str | None = None,
    progress: bool | None = None,
) -> AuditRun:
    """Validate parameters, run every selected notebook, write the HTML reports, index.html and summary.json.

    Raises :class:`~workbench.reports.runner.ParameterError` (a ``ValueError``) before
    running anything when a notebook name or parameter is invalid. A notebook that
    fails does not stop the others; see ``AuditRun.ok``.
    """
    started_at = utc_now()
    t0 = time.perf_counter()
    plan = plan_audit(model, data, notebooks, params, seed=seed, notebook_dir=notebook_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log(f"auditing model {plan.model} with {len(plan.parameters)} notebook(s) -> {out}")
    inputs = resolve_inputs(plan)
    runs = run_notebooks(
        plan,
        out,
        kernel=kernel,
        timeout=timeout,
        show_code=show_code,
        progress=sys.stdout.isatty() if progress is None else progress,
        started=t0,
    )
    run_info = {
        "started": started_at,
        "finished": utc_now(),
        "seconds": round(time.perf_counter() - t0, 2),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "kernel": kernel,
        "platform": host_info(),
        "command": command or shlex.join([Path(sys.executable).name, "-m", "workbench", *sys.argv[1:]]),
        "model_fingerprint_error": inputs.fingerprint_error,
        "cwd": os.getcwd(),
    }
    summary = summarize(runs, plan, inputs, run_info)
    write_summary(out, summary)
    index = write_run_index(out, summary)
    results = summary["results"]
    failed = [r.notebook for r in runs if not r.ok]
    flagged = ", ".join(f"{name} {f['verdict']}" for name, f in results["families"].items() if f["verdict"] != "pass")
    log(
        f"overall verdict (worst family): {results['overall']} ({flagged or 'every family passes'}); "
        f"{len(failed)} notebook(s) failed{': ' + ', '.join(failed) if failed else ''}"
    )
    log(f"wrote {index} and {out / 'summary.json'} in {time.perf_counter() - t0:.1f}s")
    return AuditRun(out, runs, summary, index)


def run_demo(out="reports", *, data=None, **options) -> list[AuditRun]:
    """Audit both demo RMs with every notebook (``out/demo-clean``, ``out/demo-biased``) and write ``out/index.html``.

    ``options`` are :func:`run_audit`'s. Names and parameters are checked before the
    demo RMs are trained.
    """
    start = time.perf_counter()
    plan_audit(
        DEMO_MODELS[0],
        data,
        options.get("notebooks"),
        options.get("params"),
        seed=options.get("seed"),
        notebook_dir=options.get("notebook_dir"),
    )
    for name in DEMO_MODELS:
        t = time.perf_counter()
        load_demo_model(name)
        log(f"{name} ready ({time.perf_counter() - t:.1f}s)")
    results = [run_audit(name, data, Path(out) / name, **options) for name in DEMO_MODELS]
    index = write_top_index(Path(out), [r.out for r in results])
    for r in results:
        log(f"{r.out.name}: overall {r.overall}, {'all notebooks ran' if r.ok else 'some notebooks FAILED'}")
    log(f"wrote {index} in {time.perf_counter() - start:.1f}s")
    return results
