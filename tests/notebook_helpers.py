"""Small notebooks written on the fly for runner, report, CLI and XSS tests."""

from __future__ import annotations

from pathlib import Path

import nbformat


def make_notebook(path: Path, parameters: str, *cells: str, heading: bool = False) -> Path:
    """A notebook with a tagged ``parameters`` cell followed by ``cells`` (after a ``# stem`` markdown cell if ``heading``)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    p = nbformat.v4.new_code_cell(parameters.strip())
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p] + [nbformat.v4.new_code_cell(c.strip()) for c in cells]
    if heading:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"# {path.stem}"))
    nbformat.write(nb, str(path))
    return path
