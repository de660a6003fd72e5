"""Command line: ``python -m workbench audit|demo|compare|train-demo``.

``audit``
    Runs the audit notebooks (``notebooks/*.ipynb``, sorted by name, or ``--notebooks``)
    for one model with papermill and writes ``OUT/index.html`` (run metadata, verdict
    table, links), ``OUT/summary.json`` and one self-contained HTML report per notebook.

    Parameters are checked before anything runs:

    * ``--model`` (and ``--data`` / ``--seed`` when given) go to every selected
      notebook, so every selected notebook must declare them;
    * each ``--param name=value`` goes only to the notebooks whose ``parameters``
      cell declares ``name``; it is an error only when *no* selected notebook
      declares it (a typo would otherwise be ignored silently);
    * an unknown notebook name is an error that lists the available notebooks.

    Without ``--data`` each notebook uses its own default data set. Exit status:
    0 when every notebook ran, 1 when one failed (its HTML still shows the error and
    the others still run), 2 for invalid arguments or parameters, 3 when
    ``--fail-on`` is given and the overall verdict reaches it.

``demo``
    Audits ``demo-clean`` and ``demo-biased`` with every notebook and writes
    ``reports/index.html`` linking both runs.

``compare A B``
    What changed between two runs (report folders or ``summary.json`` files).
"""

from __future__ import annotations

import argparse
import ast
import os
import shlex
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEMO_MODELS = ("demo-clean", "demo-biased")


def _parse_param(text: str) -> tuple[str, object]:
    """``name=value`` with the value read as a Python literal when it is one (else a string)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--param must look like name=value, got {text!r}")
    name, value = text.split("=", 1)
    name = name.strip()
    if not name.isidentifier():
        raise argparse.ArgumentTypeError(f"--param name must be a Python identifier, got {name!r}")
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    return name, parsed


def _add_run_options(p: argparse.ArgumentParser) -> None:
    from workbench.reports.runner import NOTEBOOK_DIR

    p.add_argument(
        "--notebooks",
        nargs="+",
        default=None,
        metavar="NAME",
        help="notebooks to run: file name, stem or unique prefix such as 00 (default: all, sorted by name)",
    )
    p.add_argument(
        "--notebook-dir", default=str(NOTEBOOK_DIR), help="folder holding the notebooks (default: %(default)s)"
    )
    p.add_argument(
        "--param",
        action="append",
        type=_parse_param,
        default=[],
        metavar="NAME=VALUE",
        help="extra notebook parameter (repeatable); passed only to notebooks that declare it",
    )
    p.add_argument("--seed", type=int, default=None, help="seed for every notebook (default: each notebook's own)")
    p.add_argument("--kernel", default="python3", help="Jupyter kernel name (default: %(default)s)")
    p.add_argument("--show-code", action="store_true", help="include code cells in the HTML reports")
    p.add_argument("--timeout", type=int, default=1800, help="per-cell timeout in seconds (default: %(default)s)")
    p.add_argument(
        "--fail-on",
        choices=("warn", "fail"),
        default=None,
        help="exit with status 3 when the overall verdict is at least this",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="Audit reward models and write HTML reports.")
    sub = parser.add_subparsers(dest="command", required=True)

    audit = sub.add_parser("audit", help="run the audit notebooks for one model and write reports/NAME")
    audit.add_argument(
        "--model", required=True, help="RM spec (demo-clean, a model folder, a hub id, scores:FILE, python:mod:fn ...)"
    )
    audit.add_argument(
        "--data",
        default=None,
        help="data spec for every notebook (golden, demo-eval, a file ...); default: each notebook's own",
    )
    audit.add_argument("--out", required=True, help="report folder, e.g. reports/my-rm")
    _add_run_options(audit)

    demo = sub.add_parser("demo", help="audit the demo RMs and write reports/index.html")
    demo.add_argument("--out", default="reports", help="root folder; runs go to OUT/demo-clean and OUT/demo-biased")
    demo.add_argument("--data", default=None, help="data spec for every notebook (default: each notebook's own)")
    _add_run_options(demo)

    compare = sub.add_parser("compare", help="show what changed between two audit runs")
    compare.add_argument("a", help="old run: report folder or summary.json")
    compare.add_argument("b", help="new run: report folder or summary.json")
    compare.add_argument(
        "--fail-on-regression", action="store_true", help="exit with status 1 if any verdict got worse"
    )
    compare.add_argument("--tolerance", type=float, default=0.0, help="ignore metric changes up to this absolute size")

    train = sub.add_parser("train-demo", help="train (or load from cache) the demo RMs")
    train.add_argument("names", nargs="*", default=list(DEMO_MODELS))
    return parser


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
class AuditResult:
    """The outcome of :func:`run_audit`."""

    out: Path
    runs: list
    summary: dict
    index: Path

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.runs)

    @property
    def overall(self) -> str:
        return self.summary["results"]["overall"]


def _log(message: str) -> None:
    print(f"[workbench] {message}", flush=True)


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
) -> AuditResult:
    """Validate parameters, run every selected notebook, write the HTML reports, index.html and summary.json.

    Raises :class:`~workbench.reports.runner.ParameterError` (a ``ValueError``) before
    running anything when a notebook name or parameter is invalid. A notebook that
    fails does not stop the others; see ``AuditResult.ok``.
    """
    from workbench.reports.index import write_run_index
    from workbench.reports.runner import (
        NOTEBOOK_DIR,
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

    started_at = utc_now()
    t0 = time.perf_counter()
    selected = select_notebooks(list(notebooks) if notebooks is not None else None, notebook_dir or NOTEBOOK_DIR)
    common: dict[str, Any] = {"model": _absolutize(model)}
    if data is not None:
        common["data"] = _absolutize(data)
    if seed is not None:
        common["seed"] = seed
    extra = {k: _absolutize(v) for k, v in (params.items() if isinstance(params, Mapping) else (params or []))}
    plan = plan_parameters(selected, common, extra)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    per_nb = {}
    for nb, p in plan.items():
        defaults = parameter_defaults(nb)
        per_nb[nb.stem] = {
            "parameters": p,
            "data": p.get("data", defaults.get("data")),
            "seed": p.get("seed", defaults.get("seed")),
        }

    _log(f"auditing model {common['model']} with {len(plan)} notebook(s) -> {out}")
    _log("reading the model fingerprint (a demo RM is trained on first use) ...")
    fingerprint, fp_error = model_fingerprint(common["model"])
    if fp_error:
        _log(f"  could not load the model here: {fp_error}")
    specs = sorted({str(v["data"]) for v in per_nb.values() if v["data"] not in (None, "")})
    hashes = [data_hash(s) for s in specs]

    tty = sys.stdout.isatty() if progress is None else progress
    runs = []
    for i, (nb, p) in enumerate(plan.items(), 1):
        shown = ", ".join(f"{k}={v!r}" for k, v in p.items() if k != "model")
        _log(f"[{i}/{len(plan)}] {nb.stem}: running{' (' + shown + ')' if shown else ''} ...")
        run = run_notebook(
            nb, out, p, kernel_name=kernel, execution_timeout=timeout, show_code=show_code, progress=tty, validate=False
        )
        status = "ok" if run.ok else f"FAILED: {run.error}"
        _log(
            f"[{i}/{len(plan)}] {nb.stem}: {status} in {run.seconds:.1f}s (elapsed {time.perf_counter() - t0:.1f}s) -> {run.output_html}"
        )
        runs.append(run)

    inputs = {
        "model": common["model"],
        "model_fingerprint": fingerprint,
        "data": common.get("data"),
        "data_hashes": hashes,
        "seed": seed,
        "notebooks": per_nb,
    }
    run_info = {
        "started": started_at,
        "finished": utc_now(),
        "seconds": round(time.perf_counter() - t0, 2),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "kernel": kernel,
        "platform": host_info(),
        "command": command or shlex.join([Path(sys.executable).name, "-m", "workbench", *sys.argv[1:]]),
        "model_fingerprint_error": fp_error,
        "cwd": os.getcwd(),
    }
    summary = build_summary(runs, inputs=inputs, run_info=run_info)
    write_summary(out, summary)
    index = write_run_index(out, summary)
    results = summary["results"]
    failed = [r.notebook for r in runs if not r.ok]
    _log(
        f"overall verdict: {results['overall']} ({results['counts']}); "
        f"{len(failed)} notebook(s) failed{': ' + ', '.join(failed) if failed else ''}"
    )
    _log(f"wrote {index} and {out / 'summary.json'} in {time.perf_counter() - t0:.1f}s")
    return AuditResult(out, runs, summary, index)


def _exit_status(results: Iterable[AuditResult], fail_on: str | None) -> int:
    from workbench.reports.verdicts import severity

    results = list(results)
    if not all(r.ok for r in results):
        return 1
    if fail_on and any(severity(r.overall) >= severity(fail_on) for r in results):
        return 3
    return 0


def main(argv=None) -> int:
    from workbench.reports.runner import ParameterError

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    command = shlex.join(["python", "-m", "workbench", *argv])
    if args.command == "train-demo":
        from workbench.models.demo import load_demo_model

        for name in args.names:
            start = time.perf_counter()
            rm = load_demo_model(name)
            print(f"{name}: {rm.path} ({time.perf_counter() - start:.1f}s)")
        return 0
    if args.command == "compare":
        from workbench.reports.compare import main_compare

        try:
            return main_compare(args.a, args.b, fail_on_regression=args.fail_on_regression, tolerance=args.tolerance)
        except (FileNotFoundError, ValueError) as exc:
            print(f"workbench compare: error: {exc}", file=sys.stderr)
            return 2
    options = dict(
        notebooks=args.notebooks,
        params=args.param,
        kernel=args.kernel,
        show_code=args.show_code,
        timeout=args.timeout,
        seed=args.seed,
        notebook_dir=args.notebook_dir,
        command=command,
    )
    try:
        if args.command == "audit":
            result = run_audit(args.model, args.data, args.out, **options)
            return _exit_status([result], args.fail_on)
        if args.command == "demo":
            return run_demo(args.out, data=args.data, fail_on=args.fail_on, **options)
    except (ParameterError, FileNotFoundError) as exc:
        print(f"workbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 2


def run_demo(out="reports", *, data=None, fail_on=None, **options) -> int:
    """Audit both demo RMs with every notebook and write ``out/index.html``; returns the exit status."""
    from workbench.models.demo import load_demo_model
    from workbench.reports.index import write_top_index
    from workbench.reports.runner import NOTEBOOK_DIR, plan_parameters, select_notebooks

    start = time.perf_counter()
    # Check names and parameters before training anything.
    selected = select_notebooks(options.get("notebooks"), options.get("notebook_dir") or NOTEBOOK_DIR)
    common = {
        "model": DEMO_MODELS[0],
        **({"data": data} if data is not None else {}),
        **({"seed": options["seed"]} if options.get("seed") is not None else {}),
    }
    plan_parameters(selected, common, dict(options.get("params") or []))
    for name in DEMO_MODELS:
        t = time.perf_counter()
        load_demo_model(name)
        _log(f"{name} ready ({time.perf_counter() - t:.1f}s)")
    results = [run_audit(name, data, Path(out) / name, **options) for name in DEMO_MODELS]
    index = write_top_index(Path(out), [r.out for r in results])
    for r in results:
        _log(f"{r.out.name}: overall {r.overall}, {'all notebooks ran' if r.ok else 'some notebooks FAILED'}")
    _log(f"wrote {index} in {time.perf_counter() - start:.1f}s")
    return _exit_status(results, fail_on)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
