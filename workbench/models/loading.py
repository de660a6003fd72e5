"""One entry point from a model spec to a :class:`~workbench.models.adapters.RewardModel`."""

from __future__ import annotations

import importlib
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

__all__ = ["load_reward_model"]


def load_reward_model(spec, **kwargs) -> RewardModel:
    """Load a reward model from a spec.

    ``spec`` may be:

    * a :class:`RewardModel` (returned as is) or any callable (wrapped in :class:`CallableRM`);
    * ``"demo-clean"`` / ``"demo-biased"``: the embedded demo RMs (trained on first use, then cached);
    * ``"scores:PATH"`` or a ``.csv``/``.jsonl``/``.parquet`` path: precomputed scores;
    * ``"python:package.module:function"``: a scoring function to import;
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
    if text.startswith("scores:"):
        return PrecomputedScoresRM(text[len("scores:") :], **kwargs)
    if text.startswith("python:"):
        target = text[len("python:") :]
        module_name, _, attr = target.partition(":")
        if not attr:
            raise ValueError(f"python model spec must look like 'python:package.module:function', got {text!r}")
        fn = getattr(importlib.import_module(module_name), attr)
        return CallableRM(fn, name=target, **kwargs)
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
