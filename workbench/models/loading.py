"""One entry point from a model spec to a :class:`~workbench.models.adapters.RewardModel`."""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path

from workbench.models.adapters import (
    VALUE_HEAD_CONFIG,
    CallableRM,
    PrecomputedScoresRM,
    RewardModel,
    SequenceClassifierRM,
    ValueHeadRM,
)
from workbench.models.demo import DEMO_NAMES, load_demo_model
from workbench.models.fingerprint import module_files, module_fingerprint, sha256_bytes
from workbench.models.remote import REMOTE_SCHEMES, load_remote_model

__all__ = ["load_reward_model"]


def load_reward_model(spec, **kwargs) -> RewardModel:
    """Load a reward model from a spec.

    ``spec`` may be:

    * a :class:`RewardModel` (returned as is) or any callable (wrapped in :class:`CallableRM`);
    * ``"demo-clean"`` / ``"demo-biased"``: the embedded demo RMs (trained on first use, then cached);
    * ``"scores:PATH"`` or a ``.csv``/``.jsonl``/``.parquet`` path: precomputed scores;
    * ``"python:package.module:function"``: a scoring function to import; ``"...:function@v3"``
      (or the option ``version="v3"``, or ``fingerprint=...``) names the scores' version
      for the score cache, see :func:`_load_python_rm`;
    * a folder with ``value_head.json``: a backbone + value head RM;
    * any other folder or a hub id: a sequence-classification RM (``trust_remote_code``
      stays off unless passed as ``trust_remote_code=True``);
    * a dict ``{"spec": ..., **options}``.

    Keyword arguments go to the adapter (``device``, ``dtype``, ``max_length``,
    ``format_style``, ``template``, ``trust_remote_code`` ...).
    """
    if isinstance(spec, RewardModel):
        return spec
    if isinstance(spec, dict):
        options = dict(spec)
        inner = options.pop("spec", None)
        if inner is None:
            raise ValueError("a dict model spec needs a 'spec' key, e.g. {'spec': 'demo-clean'}")
        return load_reward_model(inner, **{**options, **kwargs})
    if callable(spec):
        return CallableRM(spec, **kwargs)
    if not isinstance(spec, (str, Path)):
        raise TypeError(f"cannot load a reward model from {type(spec).__name__}")
    text = str(spec)
    if text in DEMO_NAMES:
        return load_demo_model(text, **kwargs)
    if text.partition(":")[0] in REMOTE_SCHEMES and ":" in text:
        return load_remote_model(text, **kwargs)  # tei:URL, vllm:URL, http:URL (workbench.models.remote)
    if text.startswith("scores:"):
        return PrecomputedScoresRM(text[len("scores:") :], **kwargs)
    if text.startswith("python:"):
        return _load_python_rm(text, **kwargs)
    path = Path(text)
    if path.suffix.lower() in (".csv", ".jsonl", ".parquet") and not path.is_dir():
        return PrecomputedScoresRM(path, **kwargs)
    if path.is_dir() and (path / VALUE_HEAD_CONFIG).exists():
        return ValueHeadRM.from_pretrained(path, **kwargs)
    if path.is_dir() and not (path / "config.json").exists():
        raise FileNotFoundError(f"{path}: not a model folder (no config.json or {VALUE_HEAD_CONFIG})")
    if not path.exists() and (text.startswith((".", "/", "~")) or text.count("/") > 1):
        raise FileNotFoundError(f"model folder not found: {text}")
    return SequenceClassifierRM.from_pretrained(text, **kwargs)


def _load_python_rm(text: str, *, version: str | None = None, fingerprint: str | None = None, **kwargs) -> CallableRM:
    """``python:package.module:function[@version]``: import the function and wrap it in :class:`CallableRM`.

    The score cache keys its scores by the fingerprint, which is:

    * ``fingerprint=`` when given (a dict spec key, or ``--model-arg``);
    * else the version, from ``@version`` in the spec or the ``version=`` option
      (``{"spec": "python:m:f", "version": "v3"}``, ``--model-version v3``); bump it
      whenever the scores may change;
    * else the contents of the module's file and its package's files
      (:func:`~workbench.models.fingerprint.module_files`), with a warning that
      scores may be reused when the function depends on anything else.
    """
    target = text[len("python:") :]
    target, at, spec_version = target.partition("@")
    if at:
        if not spec_version.strip():
            raise ValueError(f"{text!r}: nothing after '@'; write a version such as 'python:{target}@v2'")
        if version is not None and version != spec_version:
            raise ValueError(f"{text!r}: version {version!r} given as well; give one version")
        version = spec_version
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ValueError(f"python model spec must look like 'python:package.module:function', got {text!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"{text}: cannot import {module_name!r} ({exc}); run from the folder that holds it or add that "
            "folder to PYTHONPATH"
        ) from exc
    fn = getattr(module, attr, None)
    if fn is None:
        where = getattr(module, "__file__", None) or module_name
        raise AttributeError(f"{text}: {where} has no attribute {attr!r}")
    if fingerprint is None and version is None:
        n_files = len(module_files(module))
        fingerprint = sha256_bytes(
            "python", target, module_fingerprint(module), f"batched={kwargs.get('batched', True)}"
        )
        warnings.warn(
            f"{text}: no version given, so cached scores are keyed by the {n_files} file(s) of {module_name!r} and "
            "its package; they may be reused after a change elsewhere (weights or data read from other folders, "
            f"other modules, a server). Give a version to be sure: 'python:{target}@v2', "
            f"{{'spec': 'python:{target}', 'version': 'v2'}} or --model-version v2.",
            UserWarning,
            stacklevel=3,
        )
    return CallableRM(fn, name=kwargs.pop("name", None) or target, fingerprint=fingerprint, version=version, **kwargs)
