"""One entry point from a model spec to a :class:`~workbench.models.adapters.RewardModel`."""

from __future__ import annotations

import importlib
import inspect
import json
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from workbench.models.adapters import (
    VALUE_HEAD_CONFIG,
    CallableRM,
    PrecomputedScoresRM,
    RewardModel,
    SequenceClassifierRM,
    ValueHeadRM,
    is_peft_adapter,
)
from workbench.models.demo import DEMO_NAMES, load_demo_model
from workbench.models.fingerprint import module_files, module_fingerprint, sha256_bytes
from workbench.models.remote import REMOTE_SCHEMES, load_remote_model

__all__ = ["load_reward_model", "spec_fingerprint", "parse_model_args", "model_spec", "split_model_spec"]

#: options every kind of RM takes (set on the loaded RM)
COMMON_OPTIONS = ("token_budget",)


def parse_model_args(items: Iterable[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """``["dtype=bfloat16", "max_length=2048", "trust_remote_code=true"]`` -> options for :func:`load_reward_model`.

    A value is read as JSON when it is JSON (``true``, ``false``, ``null``, numbers, lists,
    objects), else kept as a string. A mapping is returned as a dict.
    """
    if items is None:
        return {}
    if isinstance(items, Mapping):
        return dict(items)
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = str(item).partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise ValueError(f"--model-arg must look like name=value (e.g. dtype=bfloat16), got {item!r}")
        if name in out:
            raise ValueError(f"--model-arg {name} is given twice")
        try:
            out[name] = json.loads(value)
        except json.JSONDecodeError:
            out[name] = value
    return out


def model_spec(spec, model_args: Mapping[str, Any] | None = None):
    """``spec`` with ``model_args`` as one value: the spec itself without options, else ``{"spec": spec, **args}``."""
    if not model_args:
        return spec
    if isinstance(spec, Mapping):
        return {**dict(spec), **dict(model_args)}
    return {"spec": spec, **dict(model_args)}


def split_model_spec(spec) -> tuple[Any, dict[str, Any]]:
    """The inverse of :func:`model_spec`: ``(spec, options)``."""
    if isinstance(spec, Mapping):
        options = dict(spec)
        return options.pop("spec", None), options
    return spec, {}


def spec_fingerprint(spec, **model_args) -> str:
    """The fingerprint ``load_reward_model(spec, **model_args)`` has, without loading the model's weights.

    Folder and hub RMs are fingerprinted from their config, tokenizer and weight files (or
    the hub commit in the local cache) plus the options that change scores (dtype,
    quantization, revision, PEFT adapter); the weights are not read into memory. A demo RM
    is trained on first use. Equal to the loaded RM's ``.fingerprint``.
    """
    return load_reward_model(spec, **model_args).fingerprint


def _accepted(fn: Callable, skip: Iterable[str] = ()) -> list[str] | None:
    """The keyword options ``fn`` takes (``None`` when it takes any)."""
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in params if p.kind in kinds and p.name not in ("self", "cls", *skip)]


def _check_options(what: str, options: Mapping[str, Any], *accepted: list[str] | None) -> None:
    if any(a is None for a in accepted):
        return
    names = [n for group in accepted for n in group] + list(COMMON_OPTIONS)
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise ValueError(
            f"{what}: unknown model option(s) {', '.join(unknown)}; accepted: {', '.join(sorted(set(names)))}"
        )


def _with_common(rm: RewardModel, token_budget) -> RewardModel:
    if token_budget is not None:
        if isinstance(token_budget, bool) or not isinstance(token_budget, int) or token_budget < 1:
            raise ValueError(f"model option token_budget must be a positive integer, got {token_budget!r}")
        rm.token_budget = token_budget
    return rm


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
    * a PEFT adapter folder (``adapter_config.json``; needs ``peft``): the adapter merged
      into its base model (``base_model_name_or_path``, or the option ``base_model=``);
    * any other folder or a hub id: a sequence-classification RM (``trust_remote_code``
      stays off unless passed as ``trust_remote_code=True``);
    * a dict ``{"spec": ..., **options}``.

    Keyword arguments (``--model-arg`` on the command line) go to the adapter. Folder, hub
    and demo RMs take ``dtype`` (``"bfloat16"`` ...), ``attn_implementation``,
    ``device_map``, ``revision``, ``trust_remote_code``, ``load_in_8bit`` / ``load_in_4bit``
    (needs bitsandbytes), ``max_length``, ``device`` ... (see
    :meth:`~workbench.models.adapters.SequenceClassifierRM.from_pretrained`); every RM
    takes ``token_budget`` (padded tokens per batch). An unknown option is an error
    listing the accepted ones. Folder, hub and demo RMs load their weights lazily, at the
    first text that is not in the score cache.
    """
    if isinstance(spec, RewardModel):
        return spec
    if isinstance(spec, dict):
        options = dict(spec)
        inner = options.pop("spec", None)
        if inner is None:
            raise ValueError("a dict model spec needs a 'spec' key, e.g. {'spec': 'demo-clean'}")
        return load_reward_model(inner, **{**options, **kwargs})
    token_budget = kwargs.pop("token_budget", None)
    return _with_common(_load(spec, kwargs), token_budget)


def _load(spec, kwargs: dict) -> RewardModel:
    if callable(spec):
        _check_options(f"callable model {getattr(spec, '__name__', spec)!r}", kwargs, _accepted(CallableRM, ["fn"]))
        return CallableRM(spec, **kwargs)
    if not isinstance(spec, (str, Path)):
        raise TypeError(f"cannot load a reward model from {type(spec).__name__}")
    text = str(spec)
    transformer_options = _accepted(SequenceClassifierRM.from_pretrained, ["name_or_path"])
    if text in DEMO_NAMES:
        _check_options(
            f"demo model {text!r}",
            kwargs,
            ["config", "label_smoothing"],  # load_demo_model's own; the rest go to ValueHeadRM.from_pretrained
            _accepted(ValueHeadRM.from_pretrained, ["folder", "name"]),
        )
        return load_demo_model(text, **kwargs)
    if text.partition(":")[0] in REMOTE_SCHEMES and ":" in text:
        return load_remote_model(text, **kwargs)  # tei:URL, vllm:URL, http:URL (workbench.models.remote)
    if text.startswith("scores:"):
        _check_options(f"model {text!r}", kwargs, _accepted(PrecomputedScoresRM, ["path"]))
        return PrecomputedScoresRM(text[len("scores:") :], **kwargs)
    if text.startswith("python:"):
        _check_options(f"model {text!r}", kwargs, _accepted(CallableRM, ["fn"]))
        return _load_python_rm(text, **kwargs)
    path = Path(text)
    if path.suffix.lower() in (".csv", ".jsonl", ".parquet") and not path.is_dir():
        _check_options(f"model {text!r}", kwargs, _accepted(PrecomputedScoresRM, ["path"]))
        return PrecomputedScoresRM(path, **kwargs)
    if path.is_dir() and (path / VALUE_HEAD_CONFIG).exists():
        _check_options(f"value-head model {text!r}", kwargs, _accepted(ValueHeadRM.from_pretrained, ["folder"]))
        return ValueHeadRM.from_pretrained(path, **kwargs)
    if path.is_dir() and not (path / "config.json").exists() and not is_peft_adapter(path):
        raise FileNotFoundError(
            f"{path}: not a model folder (no config.json, {VALUE_HEAD_CONFIG} or adapter_config.json)"
        )
    if not path.exists() and (text.startswith((".", "/", "~")) or text.count("/") > 1):
        raise FileNotFoundError(f"model folder not found: {text}")
    _check_options(f"model {text!r}", kwargs, transformer_options)
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
            stacklevel=4,
        )
    return CallableRM(fn, name=kwargs.pop("name", None) or target, fingerprint=fingerprint, version=version, **kwargs)
