"""Command line: ``python -m workbench audit|demo|compare|train-demo``.

``audit``
    Runs the audit notebooks (``notebooks/*.ipynb``, sorted by name, or ``--notebooks``)
    for one model with papermill and writes ``OUT/index.html`` (run metadata, verdict
    table, links), ``OUT/summary.json`` and one self-contained HTML report per notebook.

    Parameters are checked before anything runs:

    * ``--model`` (and ``--seed`` when given) go to every selected notebook, so every
      selected notebook must declare them;
    * data is routed by kind: ``--data`` (preference pairs, with ``--split`` for a
      Hugging Face dataset) goes to the notebooks that take pairs, ``--sycophancy-data``
      to 04_sycophancy and ``--samples`` (policy samples) to 05_drift; each defaults to
      the shipped data. Bad data rows are skipped and counted by reason (the
      ``data_quality`` verdict grades the skipped share); ``--strict`` stops at the first;
    * each ``--param name=value`` goes only to the notebooks whose ``parameters``
      cell declares ``name``; it is an error only when *no* selected notebook
      declares it (a typo would otherwise be ignored silently);
    * an unknown notebook name is an error that lists the available notebooks;
    * ``--model-arg name=value`` (repeatable; the value read as JSON when it is) are the
      model's loading options (dtype, attn_implementation, device_map, revision,
      trust_remote_code, max_length, token_budget, load_in_8bit / load_in_4bit, base_model);
      every notebook gets the model as ``{"spec": MODEL, **options}``.

    Every preference set the notebooks score in full is scored once before they start
    (filling the score cache), and RewardBench-style results go to ``OUT/results.json``
    (``--results-json``).

    Without ``--data`` each notebook uses its own default data set. Exit status:
    0 when every notebook ran, 1 when one failed (its HTML still shows the error and
    the others still run), 2 for invalid arguments or parameters and for anything found
    before the notebooks start (a ``--data`` or model file that does not exist, an
    ``--out`` that is a file or cannot be created), 3 when
    ``--fail-on LEVEL`` is given and the overall verdict reaches it. The overall
    verdict is the worst *family* verdict (each family's verdict is the worst of its
    primary checks) and levels rank ``pass < inconclusive < warn < fail``, so
    ``--fail-on inconclusive`` also stops a pipeline when the data cannot rule a
    harmful effect out. The families that reached the level are printed on stderr.

``demo``
    Audits ``demo-clean`` and ``demo-biased`` with every notebook and writes
    ``reports/index.html`` linking both runs.

``compare A B``
    What changed between two runs (report folders or ``summary.json`` files).

``doctor --data SPEC [--split S] [--model M [--max-length N] [--model-arg K=V ...]] [--json]``
    Data checks before an audit (:func:`workbench.data.doctor.diagnose`): rows the
    loader skips (by reason), duplicate ids, exact duplicate pairs, identical
    chosen/rejected, contradicting votes, prompt mismatches and, with ``--model``,
    pairs truncated at the RM's ``max_length``; each with counts and row numbers.
    Exit status 0 when clean, 1 when something was found, 2 when the data cannot be
    read (missing file, unreadable file, no usable row) or the model cannot be loaded.

This module only parses arguments and dispatches; the audit pipeline is
:mod:`workbench.reports.pipeline`. Importing it stays light (no torch) so that
``python -m workbench --help`` answers at once.
"""

from __future__ import annotations

import argparse
import ast
import shlex
import sys
import time
from collections.abc import Iterable

from workbench.data.doctor import diagnose
from workbench.data.formats import parse_columns
from workbench.models.demo import load_demo_model
from workbench.models.distributed import ENGINES, score_to_parquet
from workbench.models.loading import load_reward_model, parse_model_args
from workbench.reports.compare import main_compare
from workbench.reports.pipeline import DEMO_MODELS, AuditRun, PreflightError, run_audit, run_demo
from workbench.reports.runner import NOTEBOOK_DIR, ParameterError
from workbench.reports.verdicts import severity

FAIL_ON_LEVELS = ("inconclusive", "warn", "fail")


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


def _add_model_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model-arg",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="model loading option (repeatable; VALUE read as JSON when it is, e.g. true, 2048, else a string): "
        "dtype=bfloat16, attn_implementation=sdpa, device_map=auto, revision=REV, trust_remote_code=true, "
        "max_length=N, token_budget=N, load_in_8bit=true / load_in_4bit=true (bitsandbytes), "
        "base_model=M (PEFT adapter folders)",
    )


def _add_run_options(p: argparse.ArgumentParser) -> None:
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
    _add_model_arg(p)
    p.add_argument(
        "--split",
        default=None,
        help="split of a Hugging Face --data (hf:NAME or a save_to_disk folder; same as NAME@SPLIT)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first bad data row (default: skip bad rows, count them by reason and grade the skipped "
        "share as the data_quality family: warn above 1%%, fail above 10%%)",
    )
    p.add_argument(
        "--columns",
        default=None,
        metavar="SCHEMA=INPUT,...",
        help="input columns of --data under other names, e.g. prompt=question,chosen=good,rejected=bad",
    )
    p.add_argument(
        "--sycophancy-data",
        default=None,
        metavar="SPEC",
        help="sycophancy items for 04_sycophancy (item JSONL, Anthropic sycophancy JSONL or claim CSV; "
        "default: the shipped items)",
    )
    p.add_argument(
        "--samples",
        default=None,
        metavar="SPEC",
        help="policy samples for 05_drift (.jsonl/.csv/.parquet; default: the shipped demo-policy samples)",
    )
    p.add_argument("--kernel", default="python3", help="Jupyter kernel name (default: %(default)s)")
    p.add_argument("--show-code", action="store_true", help="include code cells in the HTML reports")
    p.add_argument(
        "--force",
        action="store_true",
        help="re-execute every notebook (default: reuse a notebook's stored run when nothing it depends on changed)",
    )
    p.add_argument("--timeout", type=int, default=1800, help="per-cell timeout in seconds (default: %(default)s)")
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help="notebooks of an audit executed at once, each in its own kernel (default: WORKBENCH_JOBS, else 1; on 2 cores two at once were slower: the kernels contend for the cores)",
    )
    p.add_argument(
        "--fail-on",
        choices=FAIL_ON_LEVELS,
        default=None,
        help="exit with status 3 when the overall verdict (the worst family verdict) is at least this; "
        "levels rank pass < inconclusive < warn < fail",
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
        help="preference pairs for the notebooks that take pairs (golden, demo-eval, a file, DIR@SPLIT, "
        "hf:NAME[:CONFIG][@SPLIT] ...); default: each notebook's own",
    )
    audit.add_argument("--out", required=True, help="report folder, e.g. reports/my-rm")
    audit.add_argument(
        "--model-version",
        default=None,
        metavar="VERSION",
        help="version of a python:mod:fn model for the score cache (same as python:mod:fn@VERSION); "
        "change it whenever the function's scores may change",
    )
    _add_run_options(audit)
    audit.add_argument("--pdf", action="store_true", help="also print index.html to index.pdf (headless Chromium)")
    audit.add_argument(
        "--results-json",
        default=None,
        metavar="PATH",
        help="RewardBench-style results (accuracy, per-subset and section scores) of the pre-scored pairs "
        "(default: OUT/results.json)",
    )

    demo = sub.add_parser("demo", help="audit the demo RMs and write reports/index.html")
    demo.add_argument("--out", default="reports", help="root folder; runs go to OUT/demo-clean and OUT/demo-biased")
    demo.add_argument(
        "--data", default=None, help="preference pairs for the notebooks that take pairs (default: each notebook's own)"
    )
    _add_run_options(demo)
    demo.add_argument(
        "--pdf", action="store_true", help="also print the top index.html to index.pdf (headless Chromium)"
    )

    compare = sub.add_parser("compare", help="show what changed between two audit runs")
    compare.add_argument("a", help="old run: report folder or summary.json")
    compare.add_argument("b", help="new run: report folder or summary.json")
    compare.add_argument(
        "--fail-on-regression", action="store_true", help="exit with status 1 if any verdict got worse"
    )
    compare.add_argument("--tolerance", type=float, default=0.0, help="ignore metric changes up to this absolute size")

    train = sub.add_parser("train-demo", help="train (or load from cache) the demo RMs")
    train.add_argument("names", nargs="*", default=list(DEMO_MODELS))

    score = sub.add_parser(
        "score",
        help="score every pair of a data set into a Parquet file (resumable; local engine or a Ray cluster)",
        description="Score chosen and rejected responses of every pair with one RM and write id, chosen_score, "
        "rejected_score, margin, label and truncation flags to OUT. Finished chunks are kept in OUT.parts/, so "
        "running the same command again after an interruption scores only the rest.",
    )
    score.add_argument("--model", required=True, help="RM spec: model folder, hub id, tei:URL, vllm:URL, http:URL ...")
    score.add_argument(
        "--data", required=True, help="data spec: a file (.parquet is read in chunks), golden, demo-eval ..."
    )
    score.add_argument("--out", required=True, help="output file, e.g. scores.parquet")
    score.add_argument("--engine", choices=ENGINES, default="local", help="local (this process) or ray (an actor pool)")
    score.add_argument(
        "--ray-address", default=None, help="Ray cluster to join (e.g. auto); default: start a local one"
    )
    score.add_argument("--workers", type=int, default=None, help="Ray CPU actors when the cluster has no GPUs")
    score.add_argument("--devices", default=None, help="local engine: 'all' visible GPUs or a list like cuda:0,cuda:1")
    score.add_argument("--chunk-pairs", type=int, default=4096, help="pairs read and scored at a time")
    score.add_argument(
        "--token-budget", type=int, default=None, help="padded tokens per batch (default: the RM's, else 16384)"
    )
    _add_model_arg(score)
    score.add_argument("--no-cache", action="store_true", help="neither read nor write the score cache")
    doctor = sub.add_parser(
        "doctor",
        help="check a data set before an audit: skipped rows, duplicates, identical pairs, contradictions, truncation",
        description="Load the data with on_error='skip' and count rows skipped (by reason), duplicate ids, exact "
        "duplicate pairs, identical chosen/rejected, contradicting votes, chosen/rejected prompt mismatches and, "
        "with --model, pairs truncated at the RM's max_length, naming example rows. Exit status: 0 clean, "
        "1 something found, 2 the data (or model) cannot be read.",
    )
    doctor.add_argument("--data", required=True, help="data spec: golden, demo-eval, a file, a save_to_disk folder ...")
    doctor.add_argument("--split", default=None, help="split of a Hugging Face dataset")
    doctor.add_argument(
        "--columns", default=None, metavar="SCHEMA=INPUT,...", help="input column names, e.g. prompt=question"
    )
    doctor.add_argument("--model", default=None, help="RM spec whose tokenizer and max_length decide truncation")
    doctor.add_argument("--max-length", type=int, default=None, help="max_length for --model (default: the RM's)")
    _add_model_arg(doctor)
    doctor.add_argument("--examples", type=int, default=5, help="example rows named per finding (default: 5)")
    doctor.add_argument("--json", action="store_true", help="write the report as JSON instead of text")
    return parser


def reached(run: AuditRun, fail_on: str) -> list[tuple[str, str]]:
    """``(family, verdict)`` of the run's families whose verdict is at least ``fail_on``, worst first."""
    families = run.summary["results"].get("families", {})
    hits = [(name, f["verdict"]) for name, f in families.items() if severity(f["verdict"]) >= severity(fail_on)]
    return sorted(hits, key=lambda h: (-severity(h[1]), h[0]))


def exit_status(results: Iterable[AuditRun], fail_on: str | None, err=None) -> int:
    """1 when a notebook failed, 3 when ``fail_on`` is given and an overall verdict reaches it, else 0.

    The overall verdict is the worst family verdict; with ``fail_on`` the families that
    reached it are written to ``err`` (stderr by default).
    """
    results = list(results)
    if not all(r.ok for r in results):
        return 1
    if fail_on and any(severity(r.overall) >= severity(fail_on) for r in results):
        err = err or sys.stderr
        for r in results:
            hits = reached(r, fail_on)
            if hits:
                shown = ", ".join(f"{name} {verdict}" for name, verdict in hits)
                print(f"workbench: --fail-on {fail_on}: {r.out}: overall {r.overall} ({shown})", file=err)
        return 3
    return 0


def _train_demo(args: argparse.Namespace) -> int:
    for name in args.names:
        start = time.perf_counter()
        rm = load_demo_model(name)
        print(f"{name}: {rm.path} ({time.perf_counter() - start:.1f}s)")
    return 0


def _compare(args: argparse.Namespace) -> int:
    try:
        return main_compare(args.a, args.b, fail_on_regression=args.fail_on_regression, tolerance=args.tolerance)
    except (FileNotFoundError, ValueError) as exc:
        print(f"workbench compare: error: {exc}", file=sys.stderr)
        return 2


def _versioned(model: str, version: str | None) -> str:
    """``python:mod:fn`` with ``--model-version V`` becomes ``python:mod:fn@V``."""
    if version is None:
        return model
    if not model.startswith("python:"):
        raise PreflightError(f"--model-version applies to python:module:function models, not to {model!r}")
    if "@" in model:
        raise PreflightError(f"--model {model!r} already names a version; drop --model-version or the '@...'")
    if not version.strip():
        raise PreflightError("--model-version needs a non-empty version, e.g. v2")
    return f"{model}@{version}"


def _audit_or_demo(args: argparse.Namespace, command: str) -> int:
    try:
        model_args = parse_model_args(args.model_arg)
    except ValueError as exc:
        print(f"workbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    options = dict(
        model_args=model_args or None,
        notebooks=args.notebooks,
        params=args.param,
        kernel=args.kernel,
        show_code=args.show_code,
        timeout=args.timeout,
        seed=args.seed,
        notebook_dir=args.notebook_dir,
        command=command,
        split=args.split,
        on_error="raise" if args.strict else None,
        sycophancy_data=args.sycophancy_data,
        samples=args.samples,
        columns=args.columns,
        pdf=args.pdf,
        force=args.force,
        jobs=args.jobs,
    )
    try:
        if args.command == "audit":
            results = [
                run_audit(
                    _versioned(args.model, args.model_version),
                    args.data,
                    args.out,
                    results_json=args.results_json,
                    **options,
                )
            ]
        else:
            results = run_demo(args.out, data=args.data, **options)
    except (ParameterError, PreflightError, FileNotFoundError) as exc:
        print(f"workbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return exit_status(results, args.fail_on)


def _score(args: argparse.Namespace) -> int:
    devices = args.devices
    if devices and devices not in ("all", "auto"):
        devices = [d.strip() for d in devices.split(",") if d.strip()]
    extra = {"devices": devices} if devices else {}
    if args.token_budget is not None:
        extra["token_budget"] = args.token_budget
    try:
        model_args = parse_model_args(args.model_arg)
        result = score_to_parquet(
            args.model,
            args.data,
            args.out,
            engine=args.engine,
            cache=None if args.no_cache else "default",
            chunk_pairs=args.chunk_pairs,
            ray_address=args.ray_address,
            workers=args.workers,
            model_kwargs=model_args or None,
            **extra,
        )
    except (FileNotFoundError, ValueError, RuntimeError, ImportError) as exc:
        print(f"workbench score: error: {exc}", file=sys.stderr)
        return 2
    s = result.summary()
    print(
        f"{s['out']}: {s['rows']} pairs ({s['rows_scored']} scored now, {s['rows_resumed']} from an earlier run, "
        f"{s['texts_computed']} texts computed) in {s['seconds']} s with the {s['engine']} engine"
    )
    return 0


def _doctor(args: argparse.Namespace) -> int:
    """``workbench doctor``: 0 clean, 1 findings, 2 unreadable data or model."""
    options = {}
    try:
        if args.examples < 1:
            raise ValueError(f"--examples must be at least 1, got {args.examples}")
        if args.model is not None:
            kwargs = parse_model_args(args.model_arg)
            if args.max_length is not None:
                kwargs["max_length"] = args.max_length
            rm = load_reward_model(args.model, **kwargs)
            if callable(getattr(rm, "encode", None)) and getattr(rm, "max_length", None):
                options = dict(
                    truncated=lambda p, r, h: bool(rm.encode(rm.format(p, r, h))[1]),
                    max_length=rm.max_length,
                    model=rm.name,
                )
            else:
                print(
                    f"workbench doctor: {args.model!r} scores text without a tokenizer: truncation not checked",
                    file=sys.stderr,
                )
        elif args.max_length is not None:
            raise ValueError("--max-length needs --model (the tokenizer that counts the tokens)")
        elif args.model_arg:
            raise ValueError("--model-arg needs --model")
        report = diagnose(
            args.data, split=args.split, columns=parse_columns(args.columns), n_examples=args.examples, **options
        )
    except (FileNotFoundError, ValueError, OSError, ImportError, RuntimeError) as exc:  # DataFormatError: ValueError
        print(f"workbench doctor: error: {exc}", file=sys.stderr)
        return 2
    print(report.to_json() if args.json else report.to_text())
    return report.exit_code


def main(argv=None) -> int:
    """Parse ``argv`` and run the command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.command == "train-demo":
        return _train_demo(args)
    if args.command == "score":
        return _score(args)
    if args.command == "compare":
        return _compare(args)
    if args.command == "doctor":
        return _doctor(args)
    return _audit_or_demo(args, shlex.join(["python", "-m", "workbench", *argv]))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
