"""Wall time of ``workbench demo`` cold (fresh caches, demo RMs trained), warm, and after editing one notebook.

    python benchmarks/demo_time.py                 # every notebook, one demo RM at a time
    python benchmarks/demo_time.py --notebooks 00 04 --jobs 1 --models-at-once 2
    python benchmarks/demo_time.py --edit 05_drift   # the notebook edited before the third run

The cold run gets a fresh score/execution cache (``WORKBENCH_CACHE_DIR``) and a fresh
model folder (``WORKBENCH_MODEL_DIR``), both temporary, so the demo RMs are trained
and every notebook executes; the warm run repeats the same command with the same
folders (nothing changed, so every notebook should be reused). Then, unless ``--live`` or
``--edit ""``, one notebook of the snapshot gets a new Markdown cell (an edit that changes
its file, not its results) and the command runs a third time: only that notebook should
execute again, once per demo RM; the run's *overhead* is its time minus those executions'
own seconds (the issue's target: at most 60 s). Prints the times, the cold/warm ratio, how
many notebooks each run reused and the load average (1 min) before and after each run, as
a Markdown block for ``benchmarks/RESULTS.md``. Nothing here is asserted: timings belong in
RESULTS.md, not in tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _run(command: list[str], env: dict[str, str], cwd: Path, log: Path, timeout: float | None) -> dict:
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(command, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout)
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 1), "rc": proc.returncode, "load": (load_before, os.getloadavg()[0])}


def _reused(out: Path) -> tuple[int, int]:
    reused = total = 0
    for summary in sorted(out.glob("*/summary.json")):
        notebooks = json.loads(summary.read_text())["run"]["notebooks"]
        total += len(notebooks)
        reused += sum(bool(info.get("reused")) for info in notebooks.values())
    return reused, total


def _steps(out: Path, log: Path) -> list[tuple[str, float]]:
    """Where a run's time went: demo RM training (the log's "ready" lines), each audit, each notebook."""
    rows = []
    for line in log.read_text(errors="replace").splitlines():
        m = re.search(r"\] (demo-\S+) ready \(([\d.]+)s\)", line)
        if m:
            rows.append((f"{m.group(1)} ready (trained, or loaded)", float(m.group(2))))
    for summary in sorted(out.glob("*/summary.json")):
        run = json.loads(summary.read_text())["run"]
        rows.append((f"{summary.parent.name} audit (jobs={run.get('jobs', 1)})", float(run["seconds"])))
        for name, info in run["notebooks"].items():
            rows.append((f"  {name}" + (" (reused)" if info.get("reused") else ""), float(info["seconds"])))
    return rows


def _edit_notebook(path: Path) -> None:
    """Append a Markdown cell to ``path`` (its file changes, its results do not)."""
    if not path.is_file():
        raise SystemExit(f"--edit: no notebook {path}")
    book = json.loads(path.read_text(encoding="utf-8"))
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    book["cells"].append(
        {
            "cell_type": "markdown",
            "id": f"bench-edit-{int(time.time())}",
            "metadata": {},
            "source": [f"Edited {stamp}."],
        }
    )
    path.write_text(json.dumps(book, indent=1), encoding="utf-8")


def _executed_seconds(out: Path) -> dict[str, float]:
    """Seconds of each notebook a run executed (not reused), ``model/notebook`` -> seconds."""
    found = {}
    for summary in sorted(out.glob("*/summary.json")):
        for name, info in json.loads(summary.read_text())["run"]["notebooks"].items():
            if not info.get("reused"):
                found[f"{summary.parent.name}/{name}"] = float(info["seconds"])
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebooks", nargs="+", default=None, help="notebooks to run (default: all)")
    parser.add_argument("--jobs", type=int, default=None, help="notebooks of an audit run at once (default: the CLI's)")
    parser.add_argument("--models-at-once", type=int, default=1, help="demo RMs audited at once (WORKBENCH_DEMO_JOBS)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds allowed per run (default: none)")
    parser.add_argument("--keep", default=None, help="keep the caches and reports in this folder")
    parser.add_argument(
        "--edit",
        default="04_sycophancy",
        help="notebook (stem) given a new Markdown cell before the third run; '' skips that run",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="run the checkout itself (default: a snapshot of workbench/, notebooks/ and data/, so edits made "
        "during the benchmark do not invalidate the warm run)",
    )
    args = parser.parse_args(argv)

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="wb-demo-time-"))
    root.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        WORKBENCH_CACHE_DIR=str(root / "cache"),
        WORKBENCH_MODEL_DIR=str(root / "models"),
        WORKBENCH_DEMO_JOBS=str(args.models_at_once),
    )
    if args.jobs is not None:
        env["WORKBENCH_JOBS"] = str(args.jobs)
    cwd = REPO
    if not args.live:
        cwd = root / "checkout"
        for folder in ("workbench", "notebooks", "data"):
            if not (cwd / folder).exists():
                shutil.copytree(REPO / folder, cwd / folder, ignore=shutil.ignore_patterns("__pycache__", ".*"))
        shutil.copy2(REPO / "pyproject.toml", cwd / "pyproject.toml")  # marks the snapshot as a checkout
        env["PYTHONPATH"] = os.pathsep.join([str(cwd), *filter(None, [env.get("PYTHONPATH")])])
    extra = ["--notebooks", *args.notebooks] if args.notebooks else []
    rows = {}
    phases = ["cold", "warm"]
    if args.edit and not args.live:
        phases.append("edited")
    for phase in phases:
        if phase == "edited":
            _edit_notebook(cwd / "notebooks" / f"{args.edit}.ipynb")
        command = [sys.executable, "-m", "workbench", "demo", "--out", str(root / phase), *extra]
        print(f"{phase}: {shlex.join(command)}", flush=True)
        rows[phase] = _run(command, env, cwd, root / f"{phase}.log", args.timeout)
        rows[phase]["reused"] = _reused(root / phase)
        print(f"{phase}: {rows[phase]}", flush=True)

    cold, warm = rows["cold"], rows["warm"]
    loads = [x for r in rows.values() for x in r["load"]]
    shared = max(loads) > 2
    try:
        import torch

        threads = torch.get_num_threads()
        torch_version = torch.__version__
    except ImportError:  # pragma: no cover
        threads, torch_version = None, "not installed"
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    shown = shlex.join(["python", "benchmarks/demo_time.py", *(argv if argv is not None else sys.argv[1:])])
    print()
    print(f"`{shown}` · {when} · {platform.machine()} {platform.system()}, {os.cpu_count()} CPU cores")
    jobs = args.jobs if args.jobs is not None else "default"
    print(f"(torch {torch_version}, {threads} threads), Python {platform.python_version()} · notebooks at once: {jobs}")
    print(f"demo RMs at once: {args.models_at_once}")
    print(f"load average (1 min) before/after: cold {cold['load'][0]:.1f}/{cold['load'][1]:.1f}, ")
    print(f"warm {warm['load'][0]:.1f}/{warm['load'][1]:.1f}" + (" · **the machine was shared**" if shared else ""))
    print()
    print("| run | seconds | exit status | notebooks reused |")
    print("|---|---|---|---|")
    for phase, r in rows.items():
        print(f"| {phase} | {r['seconds']} | {r['rc']} | {r['reused'][0]} of {r['reused'][1]} |")
    for phase in rows:
        print(f"\n| {phase} step | seconds |\n|---|---|")
        for name, seconds in _steps(root / phase, root / f"{phase}.log"):
            print(f"| {name} | {seconds:.1f} |")
    ratio = cold["seconds"] / warm["seconds"] if warm["seconds"] else float("inf")
    print(f"\ncold / warm = {ratio:.1f}x; reports and caches in {root}")
    if "edited" in rows:
        own = _executed_seconds(root / "edited")
        spent = sum(own.values())
        shown = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in own.items()) or "none"
        print(
            f"after editing {args.edit}: {rows['edited']['seconds']:.1f} s, of which the notebooks executed again "
            f"took {spent:.1f} s ({shown}); overhead {rows['edited']['seconds'] - spent:.1f} s"
        )
    return 0 if all(r["rc"] == 0 for r in rows.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
