"""Explanations cached by what decides them: model fingerprint, text, method and method parameters.

:class:`ExplanationCache` keeps one JSON file per explanation under
``cache_dir()/explanations/`` (:func:`workbench.paths.cache_dir`). The key is the sha256 of

* the RM's fingerprint and ``max_length`` (the score cache's key for the same model);
* the method and its parameters (:meth:`~workbench.audits.attribution._base.BaseExplainer.parameters`:
  IG steps, batch size, baseline, integration; SHAP's evaluation budget; the replacement text);
* the prompt, the response and the conversation history;
* a fingerprint of the ``workbench`` package code (a change to the explainers invalidates
  every entry) and the versions of torch, captum and shap.

Values are stored exactly (JSON floats round-trip), so a cached explanation has the
same attributions, scores and deltas as the computed one; only ``example_id`` is the
caller's. An entry that cannot be read is recomputed and rewritten.
"""

from __future__ import annotations

import functools
import importlib.metadata as md
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from workbench.audits.attribution.explanation import Explanation
from workbench.models.fingerprint import module_fingerprint, sha256_bytes
from workbench.paths import cache_dir

__all__ = ["EXPLANATIONS_FOLDER", "ExplanationCache", "explanation_key"]

EXPLANATIONS_FOLDER = "explanations"
_SCHEMA = "rm-workbench/explanation-cache/v1"
_LIBRARIES = ("torch", "captum", "shap", "transformers")


@functools.cache
def _code_version() -> str:
    """The workbench package's code and the versions of the libraries the attributions depend on."""
    versions = []
    for name in _LIBRARIES:
        try:
            versions.append(f"{name}={md.version(name)}")
        except md.PackageNotFoundError:
            versions.append(f"{name}=none")
    return module_fingerprint(sys.modules[__name__], versions)


def _plain(value):
    """JSON-safe form of parameters and histories (tuples as lists, other objects by repr)."""
    return json.loads(json.dumps(value, sort_keys=True, default=repr))


def explanation_key(
    fingerprint: str,
    method: str,
    parameters: dict[str, Any],
    prompt: str,
    response: str,
    history=None,
    max_length: int | None = None,
) -> str:
    """The cache key of one explanation (see the module docstring)."""
    return sha256_bytes(
        _SCHEMA,
        _code_version(),
        json.dumps(
            {
                "fingerprint": fingerprint,
                "max_length": max_length,
                "method": method,
                "parameters": _plain(parameters),
                "history": _plain(history),
            },
            sort_keys=True,
        ),
        prompt,
        response,
    )


def _float(x: float):
    return None if x is None else float(x)


def _encode(e: Explanation) -> dict[str, Any]:
    return {
        "method": e.method,
        "words": list(e.words),
        "word_attributions": e.word_attributions.tolist(),
        "score": _float(e.score),
        "word_spans": [list(s) for s in e.word_spans],
        "tokens": list(e.tokens),
        "token_attributions": e.token_attributions.tolist(),
        "token_word": e.token_word.tolist(),
        "baseline_score": _float(e.baseline_score),
        "convergence_delta": _float(e.convergence_delta),
        "prompt": e.prompt,
        "response": e.response,
        "target": e.target,
        "info": _plain(e.info),
    }


def _decode(data: dict[str, Any], example_id: Any) -> Explanation:
    fields = dict(data)
    fields["word_spans"] = [tuple(s) for s in fields["word_spans"]]
    for name in ("word_attributions", "token_attributions"):
        fields[name] = np.asarray(fields[name], dtype=np.float64)
    fields["token_word"] = np.asarray(fields["token_word"], dtype=np.int64)
    for name in ("score", "baseline_score", "convergence_delta"):
        fields[name] = math.nan if fields[name] is None else float(fields[name])
    return Explanation(**fields, example_id=example_id)


class ExplanationCache:
    """Single-response explanations on disk, one JSON file per key (default ``cache_dir()/explanations``).

    ``hits`` and ``misses`` count lookups in this object.
    """

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else cache_dir() / EXPLANATIONS_FOLDER
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str, example_id: Any = None) -> Explanation | None:
        """The stored explanation of ``key`` (with ``example_id``), or ``None``."""
        path = self.path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            found = _decode(data["explanation"], example_id) if data.get("key") == key else None
        except (OSError, ValueError, KeyError, TypeError):
            found = None
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def put(self, key: str, explanation: Explanation) -> Path | None:
        """Store ``explanation`` (atomically); an unwritable cache folder is skipped."""
        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"key": key, "explanation": _encode(explanation)}, fh)
            os.replace(tmp, path)
        except OSError:
            return None
        return path
