"""Run parameterized notebooks headlessly with papermill and export them to HTML.

* Parameters are checked against the notebook's ``parameters`` cell before the
  run: an unknown name is an error, not a silently injected variable.
* A notebook that fails is still saved and exported, with the error visible.
* Exported HTML is self-contained (images embedded), code hidden by default.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"


class ParameterError(ValueError):
    """A parameter that the notebook's ``parameters`` cell does not declare."""


def notebook_parameters(path: str | Path) -> dict[str, dict]:
    """Names, inferred types and defaults declared in a notebook's ``parameters`` cell."""
    import papermill as pm

    return pm.inspect_notebook(str(path))


def validate_parameters(path: str | Path, params: Mapping[str, Any]) -> None:
    declared = notebook_parameters(path)
    if not declared:
        raise ParameterError(f"{path}: no cell tagged 'parameters'")
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise ParameterError(f"{Path(path).name}: unknown parameter(s) {unknown}; it declares {sorted(declared)}")


@dataclass
class NotebookRun:
    notebook: str
    output_ipynb: Path
    output_html: Path | None
    seconds: float
    ok: bool
    error: str | None = None
    parameters: dict = field(default_factory=dict)


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def _is_report_noise(output) -> bool:
    """Outputs that mean nothing in a static report: stderr streams (progress bars),
    widget views (live only in JupyterLab) and the verdict payloads meant for the index."""
    from .verdicts import MIME

    if output.get("output_type") == "stream" and output.get("name") == "stderr":
        return True
    data = output.get("data", {})
    return WIDGET_MIME in data or MIME in data


def export_html(ipynb: str | Path, html: str | Path, *, show_code: bool = False) -> Path:
    """Convert an executed notebook into self-contained HTML (images embedded, code optional).

    stderr streams (progress bars) and widget views (live only in JupyterLab) are left
    out of the report; errors stay, as error outputs.
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(ipynb), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", []) if not _is_report_noise(o)]
    exporter = HTMLExporter(template_name="lab", exclude_input=not show_code, exclude_input_prompt=True, exclude_output_prompt=True)
    exporter.embed_images = True
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"path": str(Path(ipynb).parent)}})
    html = Path(html)
    html.write_text(body, encoding="utf-8")
    return html


def run_notebook(
    notebook: str | Path,
    out_dir: str | Path,
    parameters: Mapping[str, Any] | None = None,
    *,
    kernel_name: str = "python3",
    execution_timeout: int = 1800,
    show_code: bool = False,
    progress: bool = False,
) -> NotebookRun:
    """Execute one notebook into ``out_dir`` and export it to HTML, failing or not."""
    import papermill as pm

    notebook = Path(notebook)
    if not notebook.exists():
        notebook = NOTEBOOK_DIR / notebook
    params = dict(parameters or {})
    validate_parameters(notebook, params)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out_nb = out_dir / notebook.name
    start = time.perf_counter()
    error = None
    try:
        pm.execute_notebook(
            str(notebook),
            str(out_nb),
            parameters=params,
            kernel_name=kernel_name,
            cwd=str(notebook.parent),
            progress_bar=progress,
            execution_timeout=execution_timeout,
        )
    except pm.PapermillExecutionError as exc:
        error = f"{exc.ename}: {exc.evalue}"
    html = None
    if out_nb.exists():
        html = export_html(out_nb, out_nb.with_suffix(".html"), show_code=show_code)
    return NotebookRun(notebook.name, out_nb, html, time.perf_counter() - start, error is None, error, params)
