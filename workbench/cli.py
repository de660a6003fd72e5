"""Command line: ``python -m workbench demo|audit|train-demo``."""

from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path

DEFAULT_NOTEBOOKS = ["00_overview.ipynb"]


def _parse_param(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--param must look like name=value, got {text!r}")
    name, value = text.split("=", 1)
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    return name.strip(), parsed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="Audit reward models and write HTML reports.")
    sub = parser.add_subparsers(dest="command", required=True)

    audit = sub.add_parser("audit", help="run the audit notebooks for one model and data set")
    audit.add_argument("--model", required=True, help="RM spec (demo-clean, a model folder, a hub id, scores:FILE ...)")
    audit.add_argument("--data", default="golden", help="data spec (golden, demo-eval, a file, a save_to_disk folder ...)")
    audit.add_argument("--out", required=True, help="report folder, e.g. reports/my-rm")
    audit.add_argument("--notebooks", nargs="+", default=None, help="notebook names to run (default: all)")
    audit.add_argument("--param", action="append", type=_parse_param, default=[], help="extra notebook parameter name=value")
    audit.add_argument("--kernel", default="python3", help="Jupyter kernel name")
    audit.add_argument("--show-code", action="store_true", help="include code cells in the HTML")
    audit.add_argument("--timeout", type=int, default=1800, help="per-cell timeout in seconds")

    demo = sub.add_parser("demo", help="audit the embedded demo RMs and write reports/index.html")
    demo.add_argument("--out", default="reports")
    demo.add_argument("--kernel", default="python3")

    train = sub.add_parser("train-demo", help="train (or load from cache) the demo RMs")
    train.add_argument("names", nargs="*", default=["demo-clean", "demo-biased"])
    return parser


def run_audit(model, data, out, notebooks=None, params=None, kernel="python3", show_code=False, timeout=1800):
    from .notebook_runner import NOTEBOOK_DIR, run_notebook
    from .report_index import write_run_index

    notebooks = notebooks or DEFAULT_NOTEBOOKS
    out = Path(out)
    runs = []
    for name in notebooks:
        nb = NOTEBOOK_DIR / (name if name.endswith(".ipynb") else f"{name}.ipynb")
        print(f"[workbench] running {nb.name} for model={model} data={data} ...", flush=True)
        run = run_notebook(nb, out, {"model": model, "data": data, **dict(params or {})}, kernel_name=kernel,
                           execution_timeout=timeout, show_code=show_code)
        status = "ok" if run.ok else f"FAILED ({run.error})"
        print(f"[workbench]   {nb.name}: {status} in {run.seconds:.1f}s -> {run.output_html}", flush=True)
        runs.append(run)
    write_run_index(out, model=model, data=data, runs=runs)
    return runs


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "train-demo":
        from .demo_models import load_demo_model

        for name in args.names:
            start = time.perf_counter()
            rm = load_demo_model(name)
            print(f"{name}: {rm.path} ({time.perf_counter() - start:.1f}s)")
        return 0
    if args.command == "audit":
        runs = run_audit(args.model, args.data, args.out, args.notebooks, args.param, args.kernel, args.show_code, args.timeout)
        return 0 if all(r.ok for r in runs) else 1
    if args.command == "demo":
        from .demo_models import load_demo_model
        from .report_index import write_top_index

        start = time.perf_counter()
        for name in ("demo-clean", "demo-biased"):
            load_demo_model(name)
        ok = True
        folders = []
        for name in ("demo-clean", "demo-biased"):
            folder = Path(args.out) / name
            runs = run_audit(name, "golden", folder, kernel=args.kernel)
            ok &= all(r.ok for r in runs)
            folders.append(folder)
        index = write_top_index(Path(args.out), folders)
        print(f"[workbench] wrote {index} in {time.perf_counter() - start:.1f}s")
        return 0 if ok else 1
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
