"""Run parameterized notebooks headlessly with papermill and export them to HTML.

* Parameters are checked against the notebook's ``parameters`` cell before the
  run: an unknown name is an error, not a silently injected variable.
* A notebook that fails is still saved and exported, with the error visible.
* Exported HTML is self-contained (images embedded), code hidden by default.
"""

from __future__ import annotations

import ast
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import DictLoader

from workbench.paths import notebook_dir as shipped_notebook_dir
from workbench.reports.execution_cache import ExecutionCache, execution_key
from workbench.reports.pages import render_page, template_source
from workbench.reports.verdicts import MIME

NOTEBOOK_DIR = shipped_notebook_dir()  # the checkout's notebooks/, or the installed package data
#: the parameter that names the folder a notebook writes its files to (relabel queues); defaults to the run folder
OUTPUT_PARAMETER = "output_dir"
#: what ``output_dir`` stands for in the execution key when it is the run folder (so a new --out can reuse a run)
RUN_FOLDER = "<run folder>"


class ParameterError(ValueError):
    """A parameter that the notebook's ``parameters`` cell does not declare."""


def notebook_parameters(path: str | Path) -> dict[str, dict]:
    """Names, inferred types and defaults declared in a notebook's ``parameters`` cell.

    papermill's ``inspect_notebook`` skips lines it cannot parse (for example a
    comment containing ``=``) although injection still overrides them; names
    assigned in the cell that it skipped are added from the cell's syntax tree.
    """
    # nbformat and papermill are the optional "notebooks" extra (and slow to import).
    import nbformat
    import papermill as pm

    declared = dict(pm.inspect_notebook(str(path)))
    nb = nbformat.read(str(path), as_version=4)
    cell = next((c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])), None)
    if cell is None:
        return declared
    try:
        tree = ast.parse(cell.source)
    except SyntaxError:
        return declared
    for node in tree.body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        for target in targets:
            if isinstance(target, ast.Name) and target.id not in declared and node.value is not None:
                declared[target.id] = {
                    "name": target.id,
                    "inferred_type_name": "None",
                    "default": ast.get_source_segment(cell.source, node.value),
                    "help": "",
                }
    return declared


def parameter_defaults(path: str | Path) -> dict[str, Any]:
    """The default values of a notebook's parameters, parsed as Python literals where possible."""
    out = {}
    for name, info in notebook_parameters(path).items():
        text = info.get("default")
        try:
            out[name] = ast.literal_eval(text) if isinstance(text, str) else text
        except (ValueError, SyntaxError):
            out[name] = text
    return out


def validate_parameters(path: str | Path, params: Mapping[str, Any]) -> None:
    """Raise :class:`ParameterError` if ``params`` names anything the notebook does not declare."""
    declared = notebook_parameters(path)
    if not declared:
        raise ParameterError(f"{path}: no cell tagged 'parameters'")
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise ParameterError(f"{Path(path).name}: unknown parameter(s) {unknown}; it declares {sorted(declared)}")


def available_notebooks(notebook_dir: str | Path = NOTEBOOK_DIR) -> list[Path]:
    """The audit notebooks in ``notebook_dir`` (``*.ipynb``, sorted by name; checkpoints excluded)."""
    folder = Path(notebook_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"notebook folder not found: {folder}")
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))


def select_notebooks(names: Iterable[str] | None, notebook_dir: str | Path = NOTEBOOK_DIR) -> list[Path]:
    """Resolve notebook names to files in ``notebook_dir``.

    ``None`` selects every notebook. A name may be the file name (``00_overview.ipynb``),
    the stem (``00_overview``) or a unique prefix (``00``). Unknown or ambiguous names
    raise :class:`ParameterError` listing the available notebooks.
    """
    available = available_notebooks(notebook_dir)
    if not available:
        raise ParameterError(f"no notebooks (*.ipynb) in {notebook_dir}")
    if names is None:
        return available
    listing = ", ".join(p.stem for p in available)
    chosen: list[Path] = []
    for name in names:
        stem = name[: -len(".ipynb")] if name.endswith(".ipynb") else name
        exact = [p for p in available if p.stem == stem]
        matches = exact or [p for p in available if p.stem.startswith(stem)]
        if not matches:
            raise ParameterError(f"unknown notebook {name!r}; available: {listing}")
        if len(matches) > 1:
            raise ParameterError(
                f"notebook name {name!r} is ambiguous ({', '.join(p.stem for p in matches)}); available: {listing}"
            )
        if matches[0] not in chosen:
            chosen.append(matches[0])
    return chosen


def plan_parameters(
    notebooks: Iterable[str | Path],
    common: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> dict[Path, dict[str, Any]]:
    """Decide which parameters each notebook gets, and check them all before anything runs.

    * ``common`` (model, and data / seed when given) must be declared by **every**
      selected notebook: a notebook that cannot take the model under audit is an error.
    * Each ``extra`` parameter (``--param k=v``) goes only to the notebooks that
      declare it; it is an error only when **no** selected notebook declares it
      (most likely a typo).

    Returns ``{notebook_path: parameters}`` in the order given.
    """
    notebooks = [Path(nb) for nb in notebooks]
    extra = dict(extra or {})
    declared: dict[Path, set[str]] = {}
    problems = []
    for nb in notebooks:
        names = set(notebook_parameters(nb))
        if not names:
            problems.append(f"{nb.name}: no cell tagged 'parameters'")
        declared[nb] = names
        missing = sorted(set(common) - names)
        if names and missing:
            problems.append(f"{nb.name}: does not declare parameter(s) {missing}; it declares {sorted(names)}")
    for name in sorted(extra):
        if not any(name in names for names in declared.values()):
            listing = "; ".join(f"{nb.stem}: {', '.join(sorted(declared[nb]))}" for nb in notebooks)
            problems.append(f"unknown parameter {name!r}: no selected notebook declares it ({listing})")
    if problems:
        raise ParameterError("invalid parameters:\n  " + "\n  ".join(problems))
    return {nb: {**dict(common), **{k: v for k, v in extra.items() if k in declared[nb]}} for nb in notebooks}


@dataclass
class NotebookRun:
    """What happened when one notebook ran: where its outputs are, how long it took, any error."""

    notebook: str
    output_ipynb: Path
    output_html: Path | None
    seconds: float
    ok: bool
    error: str | None = None
    parameters: dict = field(default_factory=dict)
    reused: bool = False  # copied from the execution cache; no kernel started
    cache_key: str | None = None


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

# nbconvert's lab template with one MathJax setting (see templates/notebook.html.j2).
NOTEBOOK_TEMPLATE = "notebook.html.j2"


def _is_report_noise(output) -> bool:
    """Outputs that mean nothing in a static report: stderr streams (progress bars),
    widget views (live only in JupyterLab) and the verdict payloads meant for the index."""
    if output.get("output_type") == "stream" and output.get("name") == "stderr":
        return True
    data = output.get("data", {})
    return WIDGET_MIME in data or MIME in data


def export_html(ipynb: str | Path, html: str | Path, *, show_code: bool = False) -> Path:
    """Convert an executed notebook into self-contained HTML (images embedded, code optional).

    stderr streams (progress bars) and widget views (live only in JupyterLab) are left
    out of the report; errors stay, as error outputs.
    """
    # nbformat and nbconvert are the optional "notebooks" extra (and slow to import).
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(ipynb), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", []) if not _is_report_noise(o)]
    nb.metadata.pop("widgets", None)  # widget state needs JupyterLab (and unpkg); reports are static
    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[DictLoader({NOTEBOOK_TEMPLATE: template_source(NOTEBOOK_TEMPLATE)})],
        template_file=NOTEBOOK_TEMPLATE,
        exclude_input=not show_code,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    exporter.embed_images = True
    body, _ = exporter.from_notebook_node(
        nb, resources={"metadata": {"path": str(Path(ipynb).parent), "name": Path(ipynb).stem}}
    )
    html = Path(html)
    html.write_text(body, encoding="utf-8")
    return html


def _record_failure(source: Path, out_nb: Path, error: str, detail: str) -> None:
    """Make sure ``out_nb`` exists and shows ``error`` at the top (for failures papermill did not mark)."""
    import nbformat  # optional "notebooks" extra

    nb = nbformat.read(str(out_nb if out_nb.exists() else source), as_version=4)
    banner = nbformat.v4.new_code_cell(source="# the workbench runner recorded this error")
    banner.outputs = [
        nbformat.v4.new_output(
            "error",
            ename="NotebookRunError",
            evalue=error,
            traceback=[f"The workbench runner stopped this notebook: {error}", detail],
        )
    ]
    banner.metadata["tags"] = ["workbench-error"]
    nb.cells.insert(0, banner)
    nbformat.write(nb, str(out_nb))


def execute_notebook(
    notebook: Path,
    out_nb: Path,
    parameters: Mapping[str, Any],
    *,
    kernel_name: str = "python3",
    execution_timeout: int = 1800,
    progress: bool = False,
) -> str | None:
    """Run ``notebook`` with papermill into ``out_nb``; the error text (``None`` when it ran through).

    A failure papermill did not mark in the output notebook (a timeout, a dead or
    missing kernel) is written at its top, so the exported report shows it.
    """
    import papermill as pm  # optional "notebooks" extra (slow to import)

    try:
        pm.execute_notebook(
            str(notebook),
            str(out_nb),
            parameters=dict(parameters),
            kernel_name=kernel_name,
            cwd=str(notebook.parent),
            progress_bar=progress,
            execution_timeout=execution_timeout,
        )
    except pm.PapermillExecutionError as exc:  # papermill already marked the failing cell
        return f"{exc.ename}: {exc.evalue}"
    except Exception as exc:  # timeout, dead kernel, missing kernel ...
        error = f"{type(exc).__name__}: {exc}"
        _record_failure(notebook, out_nb, error, traceback.format_exc())
        return error
    return None


def export_report(out_nb: Path, html: Path, *, title: str, error: str | None, show_code: bool = False) -> str | None:
    """Export ``out_nb`` to ``html``; when the export itself fails, leave a page saying what happened.

    Returns the run's error: ``error``, or the export failure when the run had none.
    """
    try:
        export_html(out_nb, html, show_code=show_code)
    except Exception as exc:
        error = error or f"HTML export failed: {type(exc).__name__}: {exc}"
        page = render_page(
            "failure.html.j2", title="failed", notebook=title, error=error, traceback=traceback.format_exc()
        )
        html.write_text(page, encoding="utf-8")
    return error


def _snapshot(folder: Path | None, skip: Iterable[Path] = ()) -> dict[str, tuple[int, int]]:
    """``{relative path: (size, mtime)}`` of the files under ``folder`` (to see which ones a run wrote)."""
    if folder is None or not folder.is_dir():
        return {}
    skipped = {Path(p).resolve() for p in skip}
    out = {}
    for path in folder.rglob("*"):
        if path.is_file() and path.resolve() not in skipped:
            st = path.stat()
            out[path.relative_to(folder).as_posix()] = (st.st_size, st.st_mtime_ns)
    return out


def run_notebook(
    notebook: str | Path,
    out_dir: str | Path,
    parameters: Mapping[str, Any] | None = None,
    *,
    kernel_name: str = "python3",
    execution_timeout: int = 1800,
    show_code: bool = False,
    progress: bool = False,
    validate: bool = True,
    model_fingerprint: str | None = None,
    cache: ExecutionCache | bool | None = None,
    force: bool = False,
) -> NotebookRun:
    """Execute one notebook into ``out_dir`` and export it to HTML, failing or not.

    Any failure (an exception in a cell, a cell timeout, a dead or missing kernel)
    is caught: the output notebook is still written and exported with the error
    shown, and the returned :class:`NotebookRun` has ``ok=False`` and ``error``.

    With a ``model_fingerprint`` the run goes through the execution cache
    (:mod:`workbench.reports.execution_cache`; ``cache`` picks another one, ``False``
    turns it off): when nothing the notebook depends on changed, the stored executed
    notebook and HTML are copied to ``out_dir`` without starting a kernel
    (``reused=True``), with every file the stored run wrote into its ``output_dir``
    (relabel queues); ``force`` re-executes and refreshes the entry. Only runs that
    succeed are stored.

    A notebook that declares ``output_dir`` and is not given one writes into ``out_dir``,
    so every file of a run lands in its own folder.
    """
    notebook = Path(notebook)
    if not notebook.exists():
        notebook = NOTEBOOK_DIR / notebook
    params = dict(parameters or {})
    if validate:
        validate_parameters(notebook, params)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out_nb = out_dir / notebook.name
    if out_nb.resolve() == notebook.resolve():
        raise ValueError(f"out_dir {out_dir} is the notebook's own folder: the run would overwrite {notebook}")
    out_nb.unlink(missing_ok=True)
    html = out_nb.with_suffix(".html")
    start = time.perf_counter()
    defaults = parameter_defaults(notebook)
    if OUTPUT_PARAMETER in defaults and not params.get(OUTPUT_PARAMETER):
        params[OUTPUT_PARAMETER] = str(out_dir.resolve())  # every file the run writes lands in out_dir
    written_to = Path(params[OUTPUT_PARAMETER]) if params.get(OUTPUT_PARAMETER) else None
    store, key = None, None
    if model_fingerprint and cache is not False:
        store = cache if isinstance(cache, ExecutionCache) else ExecutionCache()
        resolved = {**defaults, **params}
        if written_to is not None and written_to.resolve() == out_dir.resolve():
            resolved[OUTPUT_PARAMETER] = RUN_FOLDER
        key = execution_key(
            notebook, resolved, model_fingerprint=model_fingerprint, kernel_name=kernel_name, show_code=show_code
        )
        if not force and store.restore(key, out_nb, html, outputs_to=written_to) is not None:
            return NotebookRun(notebook.name, out_nb, html, time.perf_counter() - start, True, None, params, True, key)
    before = _snapshot(written_to, skip=(out_nb, html))
    error = execute_notebook(
        notebook, out_nb, params, kernel_name=kernel_name, execution_timeout=execution_timeout, progress=progress
    )
    error = export_report(out_nb, html, title=notebook.name, error=error, show_code=show_code)
    seconds = time.perf_counter() - start
    if store is not None and error is None:
        after = _snapshot(written_to, skip=(out_nb, html))
        outputs = {rel: written_to / rel for rel, stat in after.items() if before.get(rel) != stat}
        meta = {"notebook": notebook.name, "seconds": round(seconds, 2), "parameters": params}
        store.store(key, out_nb, html, meta, outputs=outputs, outputs_from=written_to, replace=force)
    return NotebookRun(notebook.name, out_nb, html, seconds, error is None, error, params, False, key)
