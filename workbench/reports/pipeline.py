"""The audit pipeline behind ``python -m workbench audit`` and ``demo``, as a short list of named steps.

:func:`run_audit` runs, in order:

1. :func:`plan_audit`: select the notebooks and validate every parameter against their
   ``parameters`` cells, then :func:`check_inputs`: data files and model files that do
   not exist, and an ``--out`` that is a file or cannot be created (an error here stops
   everything before anything runs; the CLI exits with status 2);
2. :func:`resolve_inputs`: the model fingerprint (without loading the weights,
   :func:`~workbench.models.loading.spec_fingerprint`) and the content hash of each data spec;
   then :func:`prescore`: every data set the notebooks score with the audited model (pairs
   scored in full, 04's sycophancy pairs, 05's policy samples, best-of-n pools and golden set) is scored
   once here (the model loaded once), filling the score cache, so the notebooks' scoring
   is cache hits and their lazily loaded RMs never read the weights;
3. :func:`run_notebooks`: execute each notebook with papermill, then export its HTML report
   (:func:`~workbench.reports.runner.run_notebook`); a notebook that fails does not stop the others;
4. :func:`summarize`: collect the verdicts and metrics the notebooks published into the
   layout of ``summary.json`` (:func:`~workbench.reports.summary.build_summary`);
5. :func:`~workbench.reports.summary.write_summary` writes ``summary.json``,
   :func:`~workbench.reports.index.write_run_index` writes ``index.html`` and
   :func:`rewardbench_results` (from the pre-scored pairs) ``results.json``.

:func:`run_demo` audits both demo RMs this way and writes the top ``index.html``.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import multiprocessing
import os
import re
import shlex
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.audits.drift.goodhart import load_bon_pools
from workbench.audits.drift.samples import select_policy_samples
from workbench.audits.sycophancy.audit import sycophancy_texts
from workbench.audits.sycophancy.pairs import load_sycophancy_pairs
from workbench.data.formats import (
    REWARDBENCH_EXAMPLE_COUNTS,
    best_of_n_accuracy,
    parse_columns,
    rewardbench_section_scores,
)
from workbench.data.shipped import load_data
from workbench.models.demo import load_demo_model
from workbench.models.loading import load_reward_model, model_spec, spec_fingerprint, split_model_spec
from workbench.models.scoring import score_pairs, score_texts
from workbench.reports.execution_cache import ExecutionCache
from workbench.reports.index import write_run_index, write_top_index
from workbench.reports.pdf import INSTALL_HINT, find_chromium, render_pdf
from workbench.reports.runner import (
    NOTEBOOK_DIR,
    NotebookRun,
    ParameterError,
    notebook_parameters,
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
    package_versions,
    utc_now,
    write_summary,
)

DEMO_MODELS = ("demo-clean", "demo-biased")
DATA_PARAMETERS = ("data", "golden", "bon", "bootstrap_data")  # parameters that name a data file or a data set
MODEL_PARAMETERS = ("model", "models", "gold_model")  # parameters that name RM specs (models: comma-separated)
_DATA_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".parquet", ".pq")
_PYTHON_SPEC = re.compile(r"python:([A-Za-z_][\w.]*):")
#: what a notebook's ``data`` parameter holds, by notebook stem; any other notebook takes preference pairs
NOTEBOOK_DATA_KINDS = {"04_sycophancy": "sycophancy", "05_drift": "samples"}
#: seconds a cold run of each shipped notebook took on the demo (demo-clean, 2 idle cores; others count
#: 10): with several notebooks at once the slow ones start first, so the short ones fill the other slot
#: around them. The execution cache's own record of this machine's latest runs comes first
#: (:meth:`~workbench.reports.execution_cache.ExecutionCache.timings`).
NOTEBOOK_SECONDS = {
    "00_overview": 7.0,
    "01_calibration": 13.0,
    "02_feature_probes": 120.0,
    "03_attribution": 180.0,
    "04_sycophancy": 6.0,
    "05_drift": 7.0,
    "06_ensemble": 30.0,
}
#: the CLI flag that sets ``data`` for each kind of notebook
DATA_FLAGS = {"pairs": "--data", "sycophancy": "--sycophancy-data", "samples": "--samples"}


class PreflightError(ValueError):
    """An input found wrong before any notebook starts: a missing file, an unusable ``--out``."""


def log(message: str) -> None:
    """One progress line of the pipeline on stdout, written in one call (lines of concurrent notebooks never interleave)."""
    print(f"[workbench] {message}\n", end="", flush=True)


def _absolutize(value):
    """Make a relative path (or ``scores:PATH``) absolute: notebooks run with their own folder as cwd.

    In a dict model spec (``{"spec": ..., **model_args}``) the spec and a ``base_model`` are made absolute.
    """
    if isinstance(value, Mapping):
        return {k: _absolutize(v) if k in ("spec", "base_model") else v for k, v in value.items()}
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

    common: dict[str, Any]  # model and seed (every notebook gets them), and the routed data options as given
    parameters: dict[Path, dict[str, Any]]  # the parameters each notebook runs with, in run order
    notebooks: dict[str, dict[str, Any]]  # per notebook stem: {parameters, data, seed} as summary.json records them

    @property
    def model(self):
        """What every notebook's ``model`` parameter gets: the spec, or ``{"spec": ..., **model_args}``."""
        return self.common["model"]

    @property
    def model_spec(self):
        return split_model_spec(self.model)[0]

    @property
    def model_args(self) -> dict[str, Any]:
        return split_model_spec(self.model)[1]


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
    split: str | None = None,
    on_error: str | None = None,
    sycophancy_data=None,
    samples=None,
    columns: str | None = None,
    model_args: Mapping[str, Any] | None = None,
) -> AuditPlan:
    """Step 1: select the notebooks and check every parameter; raises :class:`~workbench.reports.runner.ParameterError`.

    Data is routed by kind (:data:`NOTEBOOK_DATA_KINDS`): ``data`` (preference pairs) goes to
    the notebooks that take pairs, ``sycophancy_data`` to the sycophancy notebook and
    ``samples`` (policy samples) to the drift notebook, each as its ``data`` parameter; a
    selected kind without a value keeps the notebook's own default. ``split``, ``on_error``
    and ``columns`` (``"prompt=question,chosen=good"``) go to the notebooks that declare them. A value no selected notebook can
    take is an error. ``model_args`` (``--model-arg k=v``) make every notebook's ``model`` a dict
    spec ``{"spec": model, **model_args}``, which :func:`~workbench.models.load_reward_model` reads.
    """
    selected = select_notebooks(list(notebooks) if notebooks is not None else None, notebook_dir or NOTEBOOK_DIR)
    common: dict[str, Any] = {"model": _absolutize(model_spec(model, model_args))}
    if seed is not None:
        common["seed"] = seed
    extra = {k: _absolutize(v) for k, v in (params.items() if isinstance(params, Mapping) else (params or []))}
    plan = plan_parameters(selected, common, extra)
    routed = {"pairs": data, "sycophancy": sycophancy_data, "samples": samples}
    problems = []
    for kind, value in routed.items():
        if value is None:
            continue
        targets = [nb for nb in plan if NOTEBOOK_DATA_KINDS.get(nb.stem, "pairs") == kind]
        if not targets:
            names = ", ".join(nb.stem for nb in plan)
            problems.append(f"{DATA_FLAGS[kind]}: no selected notebook takes {kind} data (selected: {names})")
        for nb in targets:
            if "data" not in notebook_parameters(nb):
                problems.append(f"{nb.name}: does not declare parameter 'data' for {DATA_FLAGS[kind]}")
            else:
                plan[nb]["data"] = _absolutize(value)
    for name, value in (("split", split), ("on_error", on_error), ("columns", columns)):
        if value is None:
            continue
        targets = [nb for nb in plan if name in notebook_parameters(nb)]
        if not targets:
            problems.append(f"{name}={value!r}: no selected notebook declares {name!r}")
        for nb in targets:
            plan[nb][name] = value
    if problems:
        raise ParameterError("invalid parameters:\n  " + "\n  ".join(problems))
    # recorded in summary.json (not handed to every notebook: each kind went to its notebooks above)
    common.update(
        {k: _absolutize(v) for k, v in (("data", data), ("split", split), ("on_error", on_error)) if v is not None}
    )
    common.update({k: _absolutize(v) for k, v in (("sycophancy_data", sycophancy_data), ("samples", samples)) if v})
    per_nb = {}
    for nb, p in plan.items():
        defaults = parameter_defaults(nb)
        per_nb[nb.stem] = {
            "parameters": p,
            "data": _with_split(p.get("data", defaults.get("data")), p.get("split", defaults.get("split"))),
            "seed": p.get("seed", defaults.get("seed")),
        }
    return AuditPlan(common, plan, per_nb)


def _with_split(spec, split):
    """The data spec with its split (``hf:NAME@SPLIT``, ``DIR@SPLIT``) as the notebook loads it, for hashing."""
    if not split or not isinstance(spec, str) or not spec or "@" in spec.rpartition("/")[2]:
        return spec
    return f"{spec}@{split}"


def _looks_like_path(text: str) -> bool:
    return text.startswith(("/", ".", "~")) or Path(text).suffix.lower() in _DATA_SUFFIXES


def _model_specs(value) -> list[str]:
    if isinstance(value, Mapping):
        value = value.get("spec")
    if not isinstance(value, str):
        return []
    return [part.strip() for part in value.split(",") if part.strip()]


def _check_out(out: Path) -> None:
    """``out`` must be a folder that exists or can be created, and be writable."""
    if out.exists() and not out.is_dir():
        raise PreflightError(f"--out {str(out)!r} is a file; give a folder for the reports (it is created if needed)")
    ancestor = out
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise PreflightError(f"--out {str(out)!r} cannot be created: {str(ancestor)!r} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise PreflightError(f"--out {str(out)!r} cannot be written: no write permission on {str(ancestor)!r}")


def check_inputs(plan: AuditPlan, out: str | Path | None = None) -> None:
    """Step 1b: what can be found wrong before any notebook starts; raises :class:`PreflightError`.

    * every data parameter (``data``, ``golden``, ``bon``, ``bootstrap_data``) that looks
      like a path (starts with ``/``, ``.`` or ``~``, or ends in a data suffix) must exist;
      names such as ``golden`` or ``hf:NAME`` are left to the notebooks;
    * a ``scores:FILE`` model, or a model spec that is a local path, must exist;
    * ``out`` must be a folder, or creatable, and writable.
    """
    for nb_params in plan.parameters.values():
        for name, value in nb_params.items():
            if name in DATA_PARAMETERS and isinstance(value, str) and value and not value.startswith("hf:"):
                path_text = value
                if "@" in value and not Path(value).expanduser().exists():
                    path_text = value.rpartition("@")[0] or value  # DIR@SPLIT
                if _looks_like_path(path_text) and not Path(path_text).expanduser().exists():
                    flag = "--data" if name == "data" else f"--param {name}"
                    raise PreflightError(
                        f"{flag} {value!r}: no such file or folder (relative paths are taken from {os.getcwd()})"
                    )
            if name in MODEL_PARAMETERS:
                for spec in _model_specs(value):
                    path_text = spec[len("scores:") :] if spec.startswith("scores:") else spec
                    if (spec.startswith("scores:") or _looks_like_path(spec)) and not Path(
                        path_text
                    ).expanduser().exists():
                        flag = "--model" if name == "model" else f"--param {name}"
                        raise PreflightError(
                            f"{flag} {spec!r}: no such file or folder (relative paths are taken from {os.getcwd()})"
                        )
    if out is not None:
        _check_out(Path(out))


def python_module_dirs(plan: AuditPlan) -> list[str]:
    """Folders that ``python:module:function`` specs are imported from here but a kernel would not see.

    Kernels run with the notebook's folder as working directory, so a module found in
    this process's working directory (or another folder outside the Python installation)
    is made importable there through ``PYTHONPATH``.
    """
    prefixes = {str(Path(p).resolve()) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    dirs: dict[str, None] = {}
    for nb_params in plan.parameters.values():
        for value in nb_params.values():
            if isinstance(value, Mapping):
                value = value.get("spec")
            if not isinstance(value, str):
                continue
            for module_name in _PYTHON_SPEC.findall(value):
                top = module_name.split(".", 1)[0]
                try:
                    spec = importlib.util.find_spec(top)
                except (ImportError, ValueError):
                    spec = None
                if spec is None:
                    continue
                if spec.submodule_search_locations:
                    folder = Path(list(spec.submodule_search_locations)[0]).resolve().parent
                elif spec.origin and spec.origin not in ("built-in", "frozen"):
                    folder = Path(spec.origin).resolve().parent
                else:
                    continue
                if not any(str(folder).startswith(prefix) for prefix in prefixes):
                    dirs[str(folder)] = None
    return list(dirs)


@contextmanager
def kernel_pythonpath(dirs: list[str]) -> Iterator[None]:
    """Put ``dirs`` in front of ``PYTHONPATH`` (which the kernels inherit) for the duration."""
    old = os.environ.get("PYTHONPATH")
    current = [p for p in (old or "").split(os.pathsep) if p]
    added = [d for d in dirs if d not in current]
    if added:
        os.environ["PYTHONPATH"] = os.pathsep.join([*added, *current])
    try:
        yield
    finally:
        if added:
            if old is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = old


def model_fingerprint(spec) -> tuple[str | None, str | None]:
    """``(fingerprint, error)`` of a model spec (a dict spec carries its options), without loading weights."""
    try:
        inner, options = split_model_spec(spec)
        return spec_fingerprint(inner, **options), None
    except Exception as exc:  # the notebooks will report the same failure in context
        return None, f"{type(exc).__name__}: {exc}"


def resolve_inputs(plan: AuditPlan) -> ResolvedInputs:
    """Step 2: the model fingerprint (a demo RM is trained on first use) and each data spec's content hash."""
    log("reading the model fingerprint (config and weight files; a demo RM is trained on first use) ...")
    fingerprint, fp_error = model_fingerprint(plan.model)
    if fp_error:
        log(f"  could not load the model here: {fp_error}")
    specs = sorted({str(v["data"]) for v in plan.notebooks.values() if v["data"] not in (None, "")})
    return ResolvedInputs(fingerprint, fp_error, [data_hash(s) for s in specs])


#: notebook parameters that decide which preference pairs a notebook loads
PAIR_LOAD_PARAMETERS = ("data", "split", "on_error", "columns")
#: notebook parameters of 04_sycophancy that decide which pairs it scores
#: (:func:`~workbench.audits.sycophancy.pairs.load_sycophancy_pairs`)
SYCOPHANCY_LOAD_PARAMETERS = ("data_format", "templates", "sample_size", "seed", "on_error")
#: notebook parameters of 05_drift that decide which policy samples it scores
#: (:func:`~workbench.audits.drift.samples.select_policy_samples`)
SAMPLE_LOAD_PARAMETERS = ("sample_size", "seed")
#: what one row of a pre-scored data set is, by job kind (the unit of the log line and of ``run.prescored``)
PRESCORE_UNITS = {"pairs": "pairs", "sycophancy": "pairs", "samples": "samples", "bon": "candidates"}


@dataclass
class Prescored:
    """One data set scored once in the parent process before the notebooks run.

    ``kind``: ``"pairs"`` (preference pairs, :func:`~workbench.models.scoring.score_pairs`),
    ``"sycophancy"`` (04's pairs, both replies in the pair's conversation), ``"samples"``
    (05's policy samples) or ``"bon"`` (05's best-of-n pools), the last three through
    :func:`~workbench.models.scoring.score_texts` with the texts the notebook scores.
    """

    data: Any
    options: dict[str, Any]  # how the notebooks load the data (pairs: split, on_error, columns)
    notebooks: list[str]
    kind: str = "pairs"
    scores: pd.DataFrame | None = None  # pairs: the PairScores frame; samples, bon: rows and reward; sycophancy: pairs
    rows: int = 0  # pairs, samples or candidates scored (PRESCORE_UNITS)
    texts: int = 0
    computed: int = 0
    seconds: float = 0.0
    error: str | None = None

    @property
    def unit(self) -> str:
        return PRESCORE_UNITS.get(self.kind, "rows")

    def record(self) -> dict[str, Any]:
        """What ``summary.json`` keeps under ``run.prescored``."""
        return {
            "kind": self.kind,
            "data": self.data,
            **{k: v for k, v in self.options.items() if v not in (None, "")},
            "notebooks": self.notebooks,
            self.unit: self.rows,
            "texts": self.texts,
            "texts_computed": self.computed,
            "seconds": round(self.seconds, 2),
            "error": self.error,
        }


def _job_options(resolved: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """The notebook's values of ``names``; the seed is dropped when nothing is sampled (it changes nothing)."""
    options = {k: resolved[k] for k in names if k in resolved}
    if "sample_size" in options and not options["sample_size"]:
        options.pop("sample_size")
        options.pop("seed", None)
    return options


def _add_job(jobs: dict[str, Prescored], kind: str, data, options: dict[str, Any], notebook: str) -> None:
    key = json.dumps({"kind": kind, "data": data, **options}, sort_keys=True, default=str)
    job = jobs.setdefault(key, Prescored(data, options, [], kind))
    job.notebooks.append(notebook)


def prescore_jobs(plan: AuditPlan) -> list[Prescored]:
    """The data sets to score up front, each with the texts and formatting its notebooks score.

    * ``pairs``: a notebook taking pairs (:data:`NOTEBOOK_DATA_KINDS`) whose ``sample_size``
      is 0 (or not declared) scores every pair of its data; notebooks that load the same
      data the same way (``data``, ``split``, ``on_error``, ``columns``) share one job. A
      notebook that scores a sample (03_attribution: 20 pairs) is left to itself, as are
      02's perturbations.
    * ``sycophancy``: the sycophancy notebook's pairs (its ``data``, ``data_format``,
      ``templates``, ``sample_size``, ``seed``, ``on_error``).
    * ``samples`` and ``bon``: the drift notebook's policy samples (``data``,
      ``sample_size``, ``seed``) and best-of-n pools (``bon``), and its ``golden`` set as a
      ``pairs`` job (shared with a pair notebook that loads the same set without a split
      or column mapping: a set that loads without errors loads the same whatever
      ``on_error`` says). Its ``gold_model`` is another model and is left to it.

    Parameters are resolved the way the notebooks get them: their defaults merged with the plan's.
    """
    jobs: dict[str, Prescored] = {}
    others = []
    for nb, p in plan.parameters.items():
        resolved = {**parameter_defaults(nb), **p}
        kind = NOTEBOOK_DATA_KINDS.get(nb.stem, "pairs")
        if kind != "pairs":
            others.append((nb, kind, resolved))
            continue
        if resolved.get("data") in (None, "") or resolved.get("sample_size"):
            continue
        _add_job(jobs, "pairs", resolved["data"], _job_options(resolved, PAIR_LOAD_PARAMETERS[1:]), nb.stem)
    for nb, kind, resolved in others:
        data = resolved.get("data")
        if kind == "sycophancy" and data not in (None, ""):
            _add_job(jobs, "sycophancy", data, _job_options(resolved, SYCOPHANCY_LOAD_PARAMETERS), nb.stem)
        if kind != "samples":
            continue
        golden = resolved.get("golden")
        if golden not in (None, ""):
            same = [
                j
                for j in jobs.values()
                if j.kind == "pairs"
                and j.data == golden
                and not j.options.get("split")
                and not j.options.get("columns")
            ]
            if same:
                same[0].notebooks.append(nb.stem)
            else:
                _add_job(jobs, "pairs", golden, {}, nb.stem)  # load_data(golden) with its defaults, as 05 loads it
        if data not in (None, ""):
            _add_job(jobs, "samples", data, _job_options(resolved, SAMPLE_LOAD_PARAMETERS), nb.stem)
        if resolved.get("bon") not in (None, ""):
            _add_job(jobs, "bon", resolved["bon"], {}, nb.stem)
    order = [nb.stem for nb in plan.parameters]
    for job in jobs.values():
        job.notebooks.sort(key=order.index)
    return list(jobs.values())


def _score_job(rm, job: Prescored) -> None:
    """Load ``job``'s data the way its notebooks do and score it with ``rm`` (into the score cache)."""
    if job.kind == "pairs":
        options = dict(job.options)
        if "columns" in options:
            options["columns"] = parse_columns(options["columns"])
        scored = score_pairs(rm, load_data(job.data, **options), progress=False)
        job.scores, job.rows = scored.frame, len(scored.frame)
        job.texts = 2 * job.rows
        job.computed = scored.chosen_result.n_computed + scored.rejected_result.n_computed
        return
    if job.kind == "sycophancy":
        frame = load_sycophancy_pairs(job.data, **job.options)
        prompts, responses, histories = sycophancy_texts(frame)
    else:
        frame = select_policy_samples(job.data, **job.options) if job.kind == "samples" else load_bon_pools(job.data)
        prompts, responses, histories = frame["prompt"].tolist(), frame["response"].tolist(), None
    result = score_texts(rm, prompts, responses, histories, progress=False)
    job.rows, job.texts, job.computed = len(frame), len(prompts), result.n_computed
    job.scores = frame.assign(reward=result.scores) if job.kind != "sycophancy" else frame


def prescore(plan: AuditPlan) -> list[Prescored]:
    """Step 2b: score every data set of :func:`prescore_jobs` once, here, into the score cache.

    The model is loaded once (its weights only when some text is not cached yet) and
    released before the notebooks start. A data set that fails here is logged and left to
    the notebooks, which report the failure in context.
    """
    jobs = prescore_jobs(plan)
    if not jobs:
        return []
    try:
        rm = load_reward_model(plan.model)
    except Exception as exc:
        log(f"pre-scoring skipped: the model does not load here ({type(exc).__name__}: {exc})")
        return jobs
    for job in jobs:
        t = time.perf_counter()
        hits = getattr(rm, "embedding_hits", 0)
        try:
            _score_job(rm, job)
        except Exception as exc:
            job.scores, job.error = None, f"{type(exc).__name__}: {exc}"
            log(f"pre-scoring {job.data} failed ({job.error}); {', '.join(job.notebooks)} will score it themselves")
            continue
        job.seconds = time.perf_counter() - t
        shared = getattr(rm, "embedding_hits", 0) - hits
        log(
            f"pre-scored {job.data}: {job.rows} {job.unit}, {job.texts} texts ({job.computed} computed"
            + (f", {shared} of them from the embedding cache" if shared else "")
            + f", {job.texts - job.computed} from the score cache) in {job.seconds:.1f}s for {', '.join(job.notebooks)}"
        )
    loads = getattr(rm, "weight_loads", None)
    del rm
    gc.collect()
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    if loads == 0:
        log("every text was in the score cache: the model's weights were not loaded")
    return jobs


def _number(value) -> float | None:
    value = float(value)
    return None if np.isnan(value) else round(value, 6)


def rewardbench_results(
    scores: pd.DataFrame,
    *,
    model,
    model_fingerprint: str | None,
    data=None,
    model_args: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """RewardBench-style results of one RM on scored pairs (a :class:`~workbench.models.PairScores` frame).

    A pair is correct when the preferred response scores strictly higher (RewardBench's rule;
    a tie is wrong); the preferred response is ``chosen`` unless the pair's ``label`` is
    below 0.5 (then ``rejected``), and pairs labelled exactly 0.5 are left out. ``accuracy``
    is over all pairs; with a ``subset`` column, ``subsets`` holds each subset's accuracy and
    ``n`` and, when subsets are RewardBench's, ``sections`` holds its section scores (Chat,
    Chat Hard, Safety, Reasoning, Score; percent, :func:`~workbench.data.formats.rewardbench_section_scores`).
    With a ``group`` column (RewardBench 2 best-of-4), ``best_of_n`` counts a group correct
    when every one of its pairs is.
    """
    margin = scores["margin"].to_numpy(dtype=float)
    label = scores["label"].to_numpy(dtype=float) if "label" in scores.columns else np.ones(len(scores))
    decided = label != 0.5
    oriented = np.where(label < 0.5, -margin, margin)
    correct = oriented > 0
    out: dict[str, Any] = {
        "model": model,
        "model_args": dict(model_args or {}),
        "model_fingerprint": model_fingerprint,
        "ref_model": None,
        "data": data,
        "n": int(decided.sum()),
        "accuracy": _number(correct[decided].mean()) if decided.any() else None,
        "ties": int((oriented[decided] == 0).sum()),
        "undecided_labels": int((~decided).sum()),
    }
    kept = scores.loc[decided].reset_index(drop=True)
    ok = correct[decided]
    if "subset" in kept.columns and kept["subset"].notna().any():
        subset = kept["subset"].fillna("").astype(str)
        table = pd.DataFrame({"subset": subset, "correct": ok})
        out["subsets"] = {
            name: {"accuracy": _number(g["correct"].mean()), "n": int(len(g))}
            for name, g in table.groupby("subset", sort=True)
        }
        if set(subset) & set(REWARDBENCH_EXAMPLE_COUNTS):
            sections = rewardbench_section_scores(subset, ok)
            out["sections"] = {k: _number(v) for k, v in sections.items()}
    if "group" in kept.columns and kept["group"].notna().any():
        groups = best_of_n_accuracy(kept["group"].astype(str), ok)
        out["best_of_n"] = {"accuracy": _number(groups.mean()), "groups": int(len(groups))}
    return out


def write_results_json(path: str | Path, results: Mapping[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")
    return path


def _results_source(jobs: list[Prescored]) -> Prescored | None:
    """The pre-scored data set results.json reports: the overview notebook's, else the first one."""
    done = [
        j
        for j in jobs
        if j.kind == "pairs"
        and j.scores is not None
        and any(NOTEBOOK_DATA_KINDS.get(nb, "pairs") == "pairs" for nb in j.notebooks)
    ]  # not a set only 05_drift scores for context (its golden set)
    for job in done:
        if any(nb.startswith("00_") for nb in job.notebooks):
            return job
    return done[0] if done else None


def notebook_jobs(jobs: int | None = None) -> int:
    """How many notebooks of one audit run at once: ``jobs``, else ``WORKBENCH_JOBS``, else 1 (capped at the CPUs)."""
    if jobs is None:
        raw = os.environ.get("WORKBENCH_JOBS") or "1"
        try:
            jobs = int(raw)
        except ValueError:
            raise PreflightError(f"WORKBENCH_JOBS must be a positive integer, got {raw!r}") from None
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise PreflightError(f"jobs must be a positive integer, got {jobs!r}")
    return max(1, min(jobs, os.cpu_count() or 1))


def longest_first(notebooks: list[Path], timings: Mapping[str, float] | None = None) -> list[Path]:
    """Start order for concurrent runs: the slow notebooks first, ties in plan order.

    A notebook's expected seconds: ``timings`` (by file name: the execution cache's record of
    the latest runs on this machine), else :data:`NOTEBOOK_SECONDS` (by stem), else 10.
    """
    timings = timings or {}

    def seconds(nb: Path) -> float:
        return timings.get(nb.name, NOTEBOOK_SECONDS.get(nb.stem, 10.0))

    return sorted(notebooks, key=lambda nb: -seconds(nb))


def run_notebooks(
    plan: AuditPlan,
    out: Path,
    *,
    kernel: str = "python3",
    timeout: int = 1800,
    show_code: bool = False,
    progress: bool = False,
    started: float | None = None,
    force: bool = False,
    model_fingerprint: str | None = None,
    jobs: int = 1,
) -> list[NotebookRun]:
    """Step 3: execute each notebook into ``out`` and export its HTML report.

    ``jobs`` notebooks run at once (each in its own kernel; the slow ones start first, see
    :func:`longest_first`); the runs come back in plan order whatever the order they finish in.
    With a ``model_fingerprint``, a notebook whose inputs did not change is copied from the
    execution cache (:mod:`workbench.reports.execution_cache`) unless ``force``.
    """
    t0 = time.perf_counter() if started is None else started
    items = list(plan.parameters.items())
    total = len(items)
    number = {nb: i for i, (nb, _) in enumerate(items, 1)}

    def one(nb: Path, p: dict) -> NotebookRun:
        i = number[nb]
        shown = ", ".join(f"{k}={v!r}" for k, v in p.items() if k != "model")
        log(f"[{i}/{total}] {nb.stem}: running{' (' + shown + ')' if shown else ''} ...")
        run = run_notebook(
            nb,
            out,
            p,
            kernel_name=kernel,
            execution_timeout=timeout,
            show_code=show_code,
            progress=progress and jobs == 1,
            validate=False,
            model_fingerprint=model_fingerprint,
            force=force,
        )
        status = ("reused (nothing changed)" if run.reused else "ok") if run.ok else f"FAILED: {run.error}"
        log(
            f"[{i}/{total}] {nb.stem}: {status} in {run.seconds:.1f}s (elapsed {time.perf_counter() - t0:.1f}s) -> {run.output_html}"
        )
        return run

    if jobs <= 1 or total <= 1:
        return [one(nb, p) for nb, p in items]
    params = dict(items)
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="notebook") as pool:
        timings = ExecutionCache().timings() if model_fingerprint else {}
        order = longest_first([nb for nb, _ in items], timings)
        futures = {nb: pool.submit(one, nb, params[nb]) for nb in order}
        return [futures[nb].result() for nb, _ in items]


def summarize(
    runs: list[NotebookRun], plan: AuditPlan, inputs: ResolvedInputs, run_info: Mapping[str, Any]
) -> dict[str, Any]:
    """Step 4: collect every notebook's verdicts and metrics into the layout of ``summary.json``."""
    recorded = {
        "model": plan.model_spec,
        **({"model_args": plan.model_args} if plan.model_args else {}),
        "model_fingerprint": inputs.fingerprint,
        "data": plan.common.get("data"),
        "data_hashes": inputs.data_hashes,
        "seed": plan.common.get("seed"),
        "notebooks": plan.notebooks,
    }
    return build_summary(runs, inputs=recorded, run_info=run_info)


def _check_pdf(pdf: bool) -> None:
    """Preflight of ``--pdf``: a Chromium to print with must be installed."""
    if pdf and find_chromium() is None:
        raise PreflightError(f"--pdf needs headless Chromium to print index.html: {INSTALL_HINT}")


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
    pdf: bool = False,
    split: str | None = None,
    on_error: str | None = None,
    sycophancy_data=None,
    samples=None,
    columns: str | None = None,
    force: bool = False,
    model_args: Mapping[str, Any] | None = None,
    results_json: str | Path | None = None,
    jobs: int | None = None,
) -> AuditRun:
    """Validate parameters, run every selected notebook, write the HTML reports, index.html and summary.json.

    A notebook whose inputs did not change since a stored run is reused from the
    execution cache; ``force`` re-executes every notebook.

    Raises :class:`~workbench.reports.runner.ParameterError` (a ``ValueError``) before
    running anything when a notebook name or parameter is invalid. A notebook that
    fails does not stop the others; see ``AuditRun.ok``. ``pdf`` also prints ``index.html`` to
    ``index.pdf`` with headless Chromium (checked before anything runs).

    ``model_args`` (``--model-arg``) are the model's loading options, handed to every
    notebook with the model. Before the notebooks start, every data set they score with the
    audited model is scored once here (:func:`prescore`), and RewardBench-style results of
    the overview notebook's data go to ``results_json`` (default ``OUT/results.json``).
    ``jobs`` notebooks run at once (:func:`notebook_jobs`: default ``WORKBENCH_JOBS``, else 1).
    """
    started_at = utc_now()
    t0 = time.perf_counter()
    plan = plan_audit(
        model,
        data,
        notebooks,
        params,
        seed=seed,
        notebook_dir=notebook_dir,
        split=split,
        on_error=on_error,
        sycophancy_data=sycophancy_data,
        samples=samples,
        columns=columns,
        model_args=model_args,
    )
    out = Path(out)
    check_inputs(plan, out)
    _check_pdf(pdf)
    jobs = notebook_jobs(jobs)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PreflightError(f"--out {str(out)!r} cannot be created: {exc}") from exc
    shown_args = "".join(f" {k}={v!r}" for k, v in plan.model_args.items())
    log(f"auditing model {plan.model_spec}{shown_args} with {len(plan.parameters)} notebook(s) -> {out}")
    inputs = resolve_inputs(plan)
    prescored = prescore(plan)
    module_dirs = python_module_dirs(plan)
    if module_dirs:
        log(f"python: model modules are imported in the notebooks from {', '.join(module_dirs)} (PYTHONPATH)")
    with kernel_pythonpath(module_dirs):
        runs = run_notebooks(
            plan,
            out,
            kernel=kernel,
            timeout=timeout,
            show_code=show_code,
            progress=sys.stdout.isatty() if progress is None else progress,
            started=t0,
            force=force,
            model_fingerprint=inputs.fingerprint,
            jobs=jobs,
        )
    run_info = {
        "started": started_at,
        "finished": utc_now(),
        "seconds": round(time.perf_counter() - t0, 2),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "kernel": kernel,
        "jobs": jobs,
        "platform": host_info(),
        "command": command or shlex.join([Path(sys.executable).name, "-m", "workbench", *sys.argv[1:]]),
        "model_fingerprint_error": inputs.fingerprint_error,
        "cwd": os.getcwd(),
        "prescored": [job.record() for job in prescored],
    }
    summary = summarize(runs, plan, inputs, run_info)
    write_summary(out, summary)
    index = write_run_index(out, summary)
    source = _results_source(prescored)
    if source is not None:
        bench = rewardbench_results(
            source.scores,
            model=plan.model_spec,
            model_fingerprint=inputs.fingerprint,
            data=source.data,
            model_args=plan.model_args,
        )
        log(f"wrote {write_results_json(results_json or out / 'results.json', bench)} (accuracy {bench['accuracy']})")
    else:
        log("no pre-scored preference pairs: results.json not written")
    if pdf:
        log(f"wrote {render_pdf(index)} (headless Chromium)")
    results = summary["results"]
    failed = [r.notebook for r in runs if not r.ok]
    flagged = ", ".join(f"{name} {f['verdict']}" for name, f in results["families"].items() if f["verdict"] != "pass")
    log(
        f"overall verdict (worst family): {results['overall']} ({flagged or 'every family passes'}); "
        f"{len(failed)} notebook(s) failed{': ' + ', '.join(failed) if failed else ''}"
    )
    log(f"wrote {index} and {out / 'summary.json'} in {time.perf_counter() - t0:.1f}s")
    return AuditRun(out, runs, summary, index)


def run_demo(
    out="reports", *, data=None, pdf: bool = False, models_at_once: int | None = None, **options
) -> list[AuditRun]:
    """Audit both demo RMs with every notebook (``out/demo-clean``, ``out/demo-biased``) and write ``out/index.html``.

    ``options`` are :func:`run_audit`'s. Names and parameters are checked before the
    demo RMs are trained. ``pdf`` prints the top ``index.html`` to ``index.pdf``.
    ``models_at_once`` (default: ``WORKBENCH_DEMO_JOBS``, else 1) audits that many demo RMs
    at once, each in its own process (``jobs``, one of ``options``, is the number of notebooks
    of one audit run at once).
    """
    start = time.perf_counter()
    plan = plan_audit(
        DEMO_MODELS[0],
        data,
        options.get("notebooks"),
        options.get("params"),
        seed=options.get("seed"),
        notebook_dir=options.get("notebook_dir"),
        **{k: options.get(k) for k in ("split", "on_error", "sycophancy_data", "samples", "columns", "model_args")},
    )
    check_inputs(plan, out)
    _check_pdf(pdf)
    notebook_jobs(options.get("jobs"))  # a bad value stops here, before the demo RMs are trained
    for name in DEMO_MODELS:
        t = time.perf_counter()
        load_demo_model(name)
        log(f"{name} ready ({time.perf_counter() - t:.1f}s)")
    models_at_once = int(os.environ.get("WORKBENCH_DEMO_JOBS") or 1) if models_at_once is None else int(models_at_once)
    if models_at_once > 1:
        log(f"auditing {len(DEMO_MODELS)} demo RMs {min(models_at_once, len(DEMO_MODELS))} at a time")
        spawn = multiprocessing.get_context("spawn")  # a fork of a process that imported torch can hang
        with ProcessPoolExecutor(max_workers=min(models_at_once, len(DEMO_MODELS)), mp_context=spawn) as pool:
            futures = [pool.submit(run_audit, name, data, Path(out) / name, **options) for name in DEMO_MODELS]
            results = [f.result() for f in futures]
    else:
        results = [run_audit(name, data, Path(out) / name, **options) for name in DEMO_MODELS]
    index = write_top_index(Path(out), [r.out for r in results])
    if pdf:
        log(f"wrote {render_pdf(index)} (headless Chromium)")
    for r in results:
        log(f"{r.out.name}: overall {r.overall}, {'all notebooks ran' if r.ok else 'some notebooks FAILED'}")
    log(f"wrote {index} in {time.perf_counter() - start:.1f}s")
    return results
