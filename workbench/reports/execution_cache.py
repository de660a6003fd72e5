"""Nothing changed, nothing recomputed: executed notebooks cached by the content of their inputs.

An execution is keyed by everything that decides what a notebook shows
(:func:`execution_key`):

* the notebook file (sha256 of the ``.ipynb``), the kernel name and whether code is shown;
* the resolved parameters: the notebook's defaults overridden by the ones passed;
* the fingerprint of the model under audit;
* the content of every file or folder a parameter names (data files, ``scores:`` files,
  save_to_disk folders, other model folders; demo RM names by their trained folder), and of
  the shipped ``data/`` folder (:func:`workbench.paths.data_dir`), which the notebooks'
  default names resolve into;
* the workbench version, a digest of the ``workbench/`` package sources and the versions
  of the libraries the numbers depend on (:data:`~workbench.reports.summary.PACKAGES`).

A successful execution is stored under ``cache_dir()/executions/<key>/``: the executed
notebook (which carries the published verdicts and metrics), its HTML report, a
``meta.json`` with a ``verdicts.json`` of the published payloads, and under ``outputs/`` the
files the run wrote into its ``output_dir`` (relabel queues). A hit copies them back into
the run folder without starting a kernel (the outputs into the new run's ``output_dir``). Failed runs are never stored. Inputs the cache cannot
see (a Hugging Face ``hf:`` set is keyed by its name only, files a ``python:`` model reads
outside its package) need ``--force`` after they change.
"""

from __future__ import annotations

import functools
import html as html_lib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workbench.data.shipped import resolve_data_spec
from workbench.models.demo import DEMO_NAMES, demo_model_dir
from workbench.models.fingerprint import file_digest, sha256_bytes
from workbench.paths import PACKAGE_DIR, cache_dir, data_dir
from workbench.reports.summary import package_versions
from workbench.reports.verdicts import collect

__all__ = [
    "CACHE_SCHEMA",
    "EXECUTIONS_FOLDER",
    "ExecutionCache",
    "cached_digest",
    "execution_key",
    "execution_key_parts",
    "folder_digest",
    "named_inputs",
    "package_sources_digest",
]

CACHE_SCHEMA = "rm-workbench/execution-cache/v1"
EXECUTIONS_FOLDER = "executions"
#: parameters that hold RM specs whose fingerprint is the model fingerprint itself
_MAIN_MODEL = "model"
#: the parameter naming where a notebook writes files: an output location, not an input
_OUTPUT = "output_dir"

_DIGESTS: dict[str, tuple[int, int, str]] = {}


def cached_digest(path: str | Path) -> str:
    """:func:`~workbench.models.fingerprint.file_digest`, remembered while the file's size and mtime stay the same."""
    path = Path(path)
    st = path.stat()
    key = str(path.resolve())
    hit = _DIGESTS.get(key)
    if hit is not None and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
        return hit[2]
    digest = file_digest(path)
    _DIGESTS[key] = (st.st_size, st.st_mtime_ns, digest)
    return digest


def _listing(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def folder_digest(folder: str | Path) -> str:
    """sha256 over every file of ``folder`` (relative path and content; hidden entries and ``__pycache__`` skipped)."""
    folder = Path(folder)
    return sha256_bytes(*(f"{p.relative_to(folder).as_posix()}:{cached_digest(p)}" for p in _listing(folder)))


def package_sources_digest() -> str:
    """Digest of the ``workbench/`` package: code, templates and static files."""
    return folder_digest(PACKAGE_DIR)


@functools.cache
def _demo_folder(name: str) -> str:
    return demo_model_dir(name).name


def _path_digest(path: Path) -> str | None:
    if path.is_file():
        return cached_digest(path)
    if path.is_dir():
        return folder_digest(path)
    return None


def _spec_parts(name: str, value: str) -> list[str]:
    parts = [p.strip() for p in value.split(",")] if name == "models" else [value.strip()]
    out = []
    for part in parts:
        if part.startswith("scores:"):
            part = part[len("scores:") :]
        if part:
            out.append(part)
    return out


def named_inputs(parameters: Mapping[str, Any], base: str | Path | None = None) -> dict[str, str]:
    """Content digests of the files, folders and demo RMs the parameter values name, by ``name=value``.

    A value is looked up as a path (relative paths from ``base``, the notebook's folder,
    where notebooks run), then as ``PATH@SPLIT``, then as a shipped data name and a demo RM
    name. ``model`` is left out: the model fingerprint stands for it. Values that name
    nothing on disk (numbers, options, ``hf:`` sets) are keyed by their text alone.
    """
    found: dict[str, str] = {}
    for name, value in sorted(parameters.items()):
        if name in (_MAIN_MODEL, _OUTPUT) or not isinstance(value, str) or not value or value.startswith("hf:"):
            continue
        for part in _spec_parts(name, value):
            candidates = [Path(part).expanduser()]
            if base is not None and not candidates[0].is_absolute():
                candidates.append(Path(base) / candidates[0])
            if "@" in part:
                head = part.rpartition("@")[0]
                candidates += [Path(head).expanduser()]
            shipped = resolve_data_spec(part)
            if shipped != part:
                candidates.append(Path(shipped))
            digest = None
            for candidate in candidates:
                try:
                    digest = _path_digest(candidate)
                except OSError:
                    digest = None
                if digest is not None:
                    break
            if digest is None and part in DEMO_NAMES:
                digest = f"demo-model:{_demo_folder(part)}"
            if digest is not None:
                found[f"{name}={part}"] = digest
    return found


def _json(value) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def execution_key_parts(
    notebook: str | Path,
    parameters: Mapping[str, Any],
    *,
    model_fingerprint: str,
    kernel_name: str = "python3",
    show_code: bool = False,
) -> dict[str, Any]:
    """Everything the key of one notebook execution is made of (``parameters``: the resolved ones)."""
    notebook = Path(notebook)
    shipped = data_dir()
    return {
        "schema": CACHE_SCHEMA,
        "notebook": notebook.name,
        "notebook_sha256": cached_digest(notebook),
        "parameters": json.loads(_json(dict(parameters))),
        "model_fingerprint": model_fingerprint,
        "inputs": named_inputs(parameters, notebook.parent),
        "shipped_data": folder_digest(shipped) if shipped.is_dir() else None,
        "versions": package_versions(),
        "package_sources": package_sources_digest(),
        "kernel": kernel_name,
        "show_code": bool(show_code),
    }


def execution_key(notebook, parameters, *, model_fingerprint: str, kernel_name="python3", show_code=False) -> str:
    """The content key of one execution (see :func:`execution_key_parts`)."""
    parts = execution_key_parts(
        notebook, parameters, model_fingerprint=model_fingerprint, kernel_name=kernel_name, show_code=show_code
    )
    return sha256_bytes(_json(parts))


def _retarget(page: Path, before: str, after: str) -> None:
    """Make a stored notebook or HTML page name ``after`` where it named the stored run's folder ``before``."""
    text = page.read_text(encoding="utf-8")
    forms = []
    for escape in (lambda s: html_lib.escape(s, quote=True), lambda s: s):
        for encode in (lambda s: json.dumps(s)[1:-1], lambda s: s):
            forms.append((encode(escape(before)), encode(escape(after))))
    new = text
    for old_form, new_form in dict(forms).items():
        new = new.replace(old_form, new_form)
    if new != text:
        page.write_text(new, encoding="utf-8")


class ExecutionCache:
    """Executed notebooks and their HTML reports under ``root`` (default ``cache_dir()/executions``)."""

    NOTEBOOK = "executed.ipynb"
    HTML = "report.html"
    META = "meta.json"
    VERDICTS = "verdicts.json"
    OUTPUTS = "outputs"
    TIMINGS = "timings.json"

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else cache_dir() / EXECUTIONS_FOLDER

    def entry(self, key: str) -> Path:
        return self.root / key[:2] / key

    def lookup(self, key: str) -> Path | None:
        """The stored entry of ``key``, when it is complete."""
        folder = self.entry(key)
        if all((folder / name).is_file() for name in (self.NOTEBOOK, self.HTML, self.META)):
            return folder
        return None

    def meta(self, key: str) -> dict[str, Any] | None:
        folder = self.lookup(key)
        if folder is None:
            return None
        try:
            return json.loads((folder / self.META).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def restore(
        self, key: str, out_nb: str | Path, html: str | Path, *, outputs_to: str | Path | None = None
    ) -> dict[str, Any] | None:
        """Copy the stored notebook and HTML of ``key`` to ``out_nb`` and ``html``; its metadata, or ``None`` on a miss.

        The files the stored run wrote into its ``output_dir`` are copied into ``outputs_to``;
        where the notebook and HTML name the stored run's folder, they name ``outputs_to`` instead.
        """
        meta = self.meta(key)
        if meta is None:
            return None
        folder = self.entry(key)
        try:
            shutil.copyfile(folder / self.NOTEBOOK, out_nb)
            shutil.copyfile(folder / self.HTML, html)
            stored = folder / self.OUTPUTS
            if outputs_to is not None and stored.is_dir():
                for path in sorted(p for p in stored.rglob("*") if p.is_file()):
                    target = Path(outputs_to) / path.relative_to(stored)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, target)
            before = meta.get("outputs_from")
            if outputs_to is not None and before and before != str(outputs_to):
                for page in (out_nb, html):
                    _retarget(Path(page), before, str(outputs_to))
        except OSError:
            return None
        return meta

    def store(
        self,
        key: str,
        out_nb: str | Path,
        html: str | Path,
        meta: Mapping[str, Any],
        *,
        outputs: Mapping[str, str | Path] | None = None,
        outputs_from: str | Path | None = None,
        replace: bool = False,
    ) -> Path | None:
        """Keep a successful execution; a concurrent writer of the same key wins, an unwritable cache is skipped.

        ``outputs`` (``{path relative to the output folder: file}``) are the files the run wrote
        into its ``output_dir`` (``outputs_from``); :meth:`restore` copies them back. An entry
        already stored under ``key`` is kept unless ``replace`` (a ``--force`` run: what it
        computed replaces the stored run, whose inputs the key may not have seen change).
        """
        final = self.entry(key)
        if self.lookup(key) is not None and not replace:
            return final
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{key[:8]}-", dir=final.parent))
        except OSError:
            return None
        try:
            shutil.copyfile(out_nb, tmp / self.NOTEBOOK)
            shutil.copyfile(html, tmp / self.HTML)
            (tmp / self.VERDICTS).write_text(json.dumps(collect(out_nb), default=repr), encoding="utf-8")
            for rel, path in sorted((outputs or {}).items()):
                target = tmp / self.OUTPUTS / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
            record = {"key": key, "stored": time.time(), **dict(meta)}
            if outputs_from is not None:
                record["outputs_from"] = str(outputs_from)
                record["outputs"] = sorted(outputs or {})
            (tmp / self.META).write_text(json.dumps(record, sort_keys=True, default=repr), encoding="utf-8")
            if replace and final.exists():  # a folder cannot be replaced in one step: move the old one aside first
                old = Path(tempfile.mkdtemp(prefix=f".{key[:8]}-old-", dir=final.parent))
                os.replace(final, old / key)
                shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp, final)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            return final if self.lookup(key) is not None else None
        if isinstance(meta.get("notebook"), str) and isinstance(meta.get("seconds"), (int, float)):
            self._record_seconds(meta["notebook"], float(meta["seconds"]))
        return final

    def timings(self) -> dict[str, float]:
        """Seconds of the latest stored execution of each notebook (by file name); ``{}`` when none is stored.

        What a run of the notebook costs on this machine, whatever its inputs were: it orders
        notebooks that run at once (the slow ones start first). Unreadable records are ignored.
        """
        try:
            raw = json.loads((self.root / self.TIMINGS).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(raw, dict):
            return {}
        return {
            str(k): float(v)
            for k, v in raw.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
        }

    def _record_seconds(self, notebook: str, seconds: float) -> None:
        """Keep ``seconds`` as the latest run time of ``notebook`` (atomic replace; an unwritable cache is skipped)."""
        timings = {**self.timings(), notebook: round(seconds, 2)}
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".timings-", dir=self.root)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(timings, fh, sort_keys=True)
            os.replace(tmp, self.root / self.TIMINGS)
        except OSError:
            pass
