"""Write a notebook from a list of (kind, source) cells; the first code cell marked 'parameters' gets the tag.

Used to author the notebooks in notebooks/ so they are committed clean (no outputs).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat


REPO = Path(__file__).resolve().parent.parent


def build(path: str | Path, cells: list[tuple[str, str]], kernel: str = "python3") -> Path:
    """Write ``cells`` to ``path`` (relative paths are taken from the repository root)."""
    path = REPO / path
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, source in cells:
        source = source.strip("\n")
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(source))
        elif kind == "parameters":
            cell = nbformat.v4.new_code_cell(source)
            cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
        else:
            nb.cells.append(nbformat.v4.new_code_cell(source))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{Path(path).stem[:2]}-{i:02d}"
    nbformat.validate(nb)
    nbformat.write(nb, str(path))
    return Path(path)


if __name__ == "__main__":  # pragma: no cover
    print(__doc__, file=sys.stderr)
