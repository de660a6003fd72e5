"""Reward-model adapters behind one entry point, :func:`workbench.models.loading.load_reward_model`.

Every adapter turns ``(prompt, response, history)`` into a scalar reward and has a
``fingerprint`` that identifies the model *and* the way it formats inputs, so
the score cache never mixes scores of different models.

Adapters
--------
``SequenceClassifierRM``
    Any Hugging Face ``AutoModelForSequenceClassification`` with one logit
    (DeBERTa, Llama, Qwen, GPT-2 ... RMs), loaded with ``from_pretrained`` from a
    hub id or a local folder.
``ValueHeadRM``
    An ``AutoModel`` backbone plus a linear value head (last-token, mean, CLS or
    mean-plus-opening pooling, :data:`POOLINGS`), saved as a folder with ``value_head.json`` and
    ``value_head.safetensors`` next to the backbone files.
``CallableRM``
    A Python function ``f(prompts, responses) -> scores``.
``PrecomputedScoresRM``
    A file (CSV, JSONL or Parquet) with columns ``prompt``, ``response``, ``score``.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench._utils.io import iter_jsonl, unicode_problem
from workbench.models.embedding_cache import EmbeddingCache, embedding_key
from workbench.models.fingerprint import (
    WEIGHT_SUFFIXES,
    file_digest,
    folder_fingerprint,
    sha256_bytes,
    state_dict_fingerprint,
)
from workbench.models.formatting import Formatter, Message, TextTemplate

__all__ = [
    "POOLINGS",
    "VALUE_HEAD_CONFIG",
    "VALUE_HEAD_WEIGHTS",
    "RewardModel",
    "TransformerRM",
    "SequenceClassifierRM",
    "ValueHeadConfig",
    "ValueHeadRM",
    "CallableRM",
    "PrecomputedScoresRM",
    "default_max_length",
    "linear_head",
    "pool_hidden",
    "pool_mean_opening",
    "pooled_width",
    "SegmentedIds",
    "ADAPTER_CONFIG",
    "dtype_keyword",
    "is_peft_adapter",
    "source_fingerprint",
]

POOLINGS = ("last", "mean", "cls", "mean+opening")
VALUE_HEAD_CONFIG = "value_head.json"
VALUE_HEAD_WEIGHTS = "value_head.safetensors"


class RewardModel:
    """Base class: a named scorer of (prompt, response) pairs with a fingerprint."""

    name: str = "reward-model"
    fingerprint: str = ""
    max_length: int | None = None

    def format(self, prompt: str, response: str, history: Sequence[Message] | None = None) -> str | tuple[str, str]:
        """The exact input for one conversation (also the cache key)."""
        return (prompt, response)

    def score_items(self, items: Sequence[tuple[str, str, Sequence[Message] | None]]) -> np.ndarray:
        """Score a batch of ``(prompt, response, history)`` in the given order."""
        raise NotImplementedError

    def describe(self) -> dict:
        return {
            "name": self.name,
            "type": type(self).__name__,
            "fingerprint": self.fingerprint,
            "max_length": self.max_length,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, fingerprint={self.fingerprint[:12]})"


class SegmentedIds(list):
    """Token ids of a text pair with the tokenizer's segment ids (``token_type_ids``) attached.

    :meth:`TransformerRM.encode` returns one when the tokenizer marks the two texts of a
    pair (BERT-style ``[CLS] prompt [SEP] response [SEP]`` with types ``0...0 1...1``);
    it is a plain list of ids everywhere else, and :meth:`SequenceClassifierRM.forward_ids`
    hands the segment ids (padded with 0) to the model.
    """

    def __init__(self, ids, token_type_ids):
        super().__init__(ids)
        self.token_type_ids = list(token_type_ids)


def _token_types(batch: Sequence[Sequence[int]], side: str):
    """``[batch, width]`` segment ids of ``batch`` padded with 0 on ``side``; ``None`` when no row has any."""
    import torch

    if not any(isinstance(ids, SegmentedIds) for ids in batch):
        return None
    width = max(len(ids) for ids in batch)
    types = torch.zeros((len(batch), width), dtype=torch.long)
    for i, ids in enumerate(batch):
        if isinstance(ids, SegmentedIds):
            row = torch.tensor(ids.token_type_ids, dtype=torch.long)
            start = 0 if side == "right" else width - len(row)
            types[i, start : start + len(row)] = row
    return types


def _with_segments(enc) -> list[int]:
    """The ids of a tokenizer output; a :class:`SegmentedIds` when it has non-zero ``token_type_ids``."""
    ids = list(enc["input_ids"])
    types = enc.get("token_type_ids")
    return SegmentedIds(ids, types) if types is not None and any(types) else ids


class TransformerRM(RewardModel):
    """Shared machinery for RMs that run a transformers model on token ids.

    The scoring engine calls :meth:`encode` on every text (to count truncation
    and to sort by length) and :meth:`forward_ids` on padded batches.
    :meth:`forward_ids` is :meth:`pad` followed by :meth:`forward_tensors`, the
    differentiable reward forward (attribution methods call it directly).
    """

    tokenizer: Any
    formatter: Formatter
    device: Any
    dtype: Any
    truncation_side: str = "left"
    padding_side: str = "right"
    #: batches of this many padded tokens by default (the ``token_budget`` model option; ``None``: the engine's)
    token_budget: int | None = None
    #: how many times this object loaded its weights (0 while every score came from the cache)
    weight_loads: int = 0
    _model: Any = None
    _weights: Callable[[], Any] | None = None  # loads the weights on first use (``from_pretrained`` is lazy)
    #: the weights were placed by ``device_map`` or quantization: never moved by ``.to()``
    keep_placement: bool = False

    @property
    def model(self):
        """The torch module; loaded on first access when the RM was loaded lazily (see :meth:`load_weights`)."""
        if self._model is None and self._weights is not None:
            loader = self._weights
            module = loader()
            self._weights = None
            self._model = self._place(module)
            self.weight_loads += 1
        return self._model

    @model.setter
    def model(self, value) -> None:
        self._model = value

    @property
    def weights_loaded(self) -> bool:
        return self._model is not None

    def load_weights(self):
        """Load the weights now (they are otherwise loaded at the first text that is not in the score cache)."""
        return self.model

    def _place(self, module):
        """Put a freshly loaded module on :attr:`device` in :attr:`dtype`, in eval mode."""
        if self.keep_placement or _placed_by_transformers(module):
            self.device = _input_device(module)
            return module.eval()
        return module.to(device=self.device, dtype=self.dtype).eval()

    def format(self, prompt, response, history=None):
        return self.formatter.format(prompt, response, history)

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        return int(pad)

    def encode(self, formatted: str | tuple[str, str]) -> tuple[list[int], bool]:
        """Token ids for one formatted input and whether they were truncated to ``max_length``."""
        tok = self.tokenizer
        # A chat template already contains BOS and the like; adding them again doubles BOS.
        add_special = self.formatter.style != "chat_template"
        args = formatted if isinstance(formatted, tuple) else (formatted,)
        enc = tok(*args, add_special_tokens=add_special, truncation=False)
        if self.max_length is None or len(enc["input_ids"]) <= self.max_length:
            return _with_segments(enc), False
        old_side = tok.truncation_side
        tok.truncation_side = self.truncation_side
        try:
            kwargs = {"truncation": "longest_first"} if len(args) == 2 else {"truncation": True}
            enc = tok(*args, add_special_tokens=add_special, max_length=self.max_length, **kwargs)
        finally:
            tok.truncation_side = old_side
        return _with_segments(enc), True

    def pad(self, batch: Sequence[Sequence[int]], padding_side: str | None = None):
        """Pad token-id lists into ``(input_ids, attention_mask)`` long tensors on the model's device."""
        import torch

        self.load_weights()  # a device_map or quantized model knows its input device only once loaded
        side = padding_side or self.padding_side
        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, ids in enumerate(batch):
            n = len(ids)
            if side == "right":
                input_ids[i, :n] = torch.tensor(ids)
                mask[i, :n] = 1
            else:
                input_ids[i, width - n :] = torch.tensor(ids)
                mask[i, width - n :] = 1
        return input_ids.to(self.device), mask.to(self.device)

    @staticmethod
    def position_ids(mask):
        """Position ids that count real tokens only, so left padding does not shift them."""
        return (mask.cumsum(-1) - 1).clamp(min=0)

    def pool_index(self, input_ids, attention_mask):
        """The position each row's reward is read from (``None`` when the model pools by itself)."""
        return None

    def forward_tensors(self, input_ids, attention_mask, pool_index=None):
        """The reward of each row as a differentiable float32 tensor of shape ``[batch]``.

        ``input_ids`` and ``attention_mask`` are ``[batch, seq]`` long tensors on
        :attr:`device` (as :meth:`pad` returns them). ``pool_index`` (``[batch]``
        long tensor) overrides the position a per-position head is read from; it
        defaults to :meth:`pool_index` of these ids. Pass the index of the real
        input when scoring a perturbed copy whose pad tokens would move it
        (integrated-gradients baselines). Runs in whatever grad mode the caller
        sets; the scoring engine calls it (through :meth:`forward_ids`) under ``torch.inference_mode``.
        """
        raise NotImplementedError

    def forward_ids(self, batch: Sequence[Sequence[int]], padding_side: str | None = None) -> np.ndarray:
        """Scores (float64) of token-id lists: :meth:`pad`, then :meth:`forward_tensors`."""
        input_ids, mask = self.pad(batch, padding_side)
        return self.forward_tensors(input_ids, mask).detach().cpu().numpy().astype(np.float64)

    def score_items(self, items):
        import torch

        ids = [self.encode(self.format(p, r, h))[0] for p, r, h in items]
        with torch.inference_mode():
            return self.forward_ids(ids)


def default_max_length(model, tokenizer, cap: int = 4096) -> int:
    """The longest input the model takes: its position limit and the tokenizer's, at most ``cap``.

    ``model`` may be the model or its config (no weights needed).
    """
    limits = [cap]
    config = getattr(model, "config", model)
    for attr in ("max_position_embeddings", "n_positions"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            limits.append(value)
    tok_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_limit, int) and 0 < tok_limit < 10**8:
        limits.append(tok_limit)
    return min(limits)


def _resolve_device(device: str | None):
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _resolve_dtype(dtype, device):
    import torch

    if dtype in (None, "auto"):
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        value = getattr(torch, dtype.removeprefix("torch."), None)
        if not isinstance(value, torch.dtype):
            raise ValueError(
                f"model option dtype={dtype!r} is not a torch dtype; use e.g. 'float32', 'bfloat16' or 'float16'"
            )
        return value
    return dtype


def dtype_keyword() -> str:
    """The ``from_pretrained`` keyword for the dtype: ``dtype`` from transformers 4.56, ``torch_dtype`` before."""
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def _placed_by_transformers(module) -> bool:
    """A module that ``device_map`` or a quantization config placed (``.to()`` would break or move it)."""
    return bool(
        getattr(module, "hf_device_map", None)
        or getattr(module, "is_loaded_in_8bit", False)
        or getattr(module, "is_loaded_in_4bit", False)
        or getattr(module, "hf_quantizer", None) is not None
    )


def _input_device(module):
    try:
        return module.get_input_embeddings().weight.device
    except (AttributeError, NotImplementedError):
        return next(module.parameters()).device


def _quantization_config(load_in_8bit: bool, load_in_4bit: bool, dtype):
    """A ``BitsAndBytesConfig`` for the ``load_in_8bit`` / ``load_in_4bit`` options (``None`` without them)."""
    if not (load_in_8bit or load_in_4bit):
        return None
    if load_in_8bit and load_in_4bit:
        raise ValueError("model options load_in_8bit and load_in_4bit: choose one")
    option = "load_in_8bit" if load_in_8bit else "load_in_4bit"
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ImportError(
            f"model option {option}=true needs the bitsandbytes package, which is not installed: "
            "pip install bitsandbytes (it quantizes on a CUDA GPU); or drop the option"
        )
    from transformers import BitsAndBytesConfig

    if load_in_8bit:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=dtype)


def _option_extras(dtype, quantization, revision) -> list[str]:
    """Fingerprint parts of the loading options that change scores (none for the float32 defaults)."""
    import torch

    extras = []
    if dtype is not None and dtype != torch.float32:
        extras.append(f"dtype={str(dtype).removeprefix('torch.')}")
    if quantization is not None:
        extras.append("quantization=" + ("8bit" if getattr(quantization, "load_in_8bit", False) else "4bit"))
    if revision:
        extras.append(f"revision={revision}")
    return extras


def _load_kwargs(
    source: str, *, dtype, trust_remote_code, revision, attn_implementation, device_map, quantization, device
):
    """Keyword arguments for ``from_pretrained`` of the weights."""
    kwargs: dict[str, Any] = {
        dtype_keyword(): dtype,
        "use_safetensors": _prefer_safetensors(source),
        "trust_remote_code": trust_remote_code,
        "revision": revision,
    }
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    if device_map is not None:
        kwargs["device_map"] = device_map
    if quantization is not None:
        kwargs["quantization_config"] = quantization
        kwargs.setdefault("device_map", {"": str(device)})
    return kwargs


def source_fingerprint(name_or_path: str | Path, config=None, extra: Sequence[str] = ()) -> str:
    """Fingerprint of saved weights without loading them: a folder's files, or a hub id's resolved commit.

    ``config`` (a transformers config loaded from the hub cache) carries the commit of a hub
    id; without a commit a hub id cannot be fingerprinted.
    """
    path = Path(name_or_path)
    if path.is_dir():
        return folder_fingerprint(path, extra)
    commit = getattr(config, "_commit_hash", None) if config is not None else None
    if commit:
        return sha256_bytes(f"hub:{name_or_path}@{commit}", *extra)
    raise ValueError(
        f"{name_or_path}: cannot fingerprint a hub model without its commit; download it first "
        "(huggingface-cli download NAME) or give a local folder"
    )


def _weights_fingerprint(model, path: str | None, extra: Sequence[str], config=None) -> str:
    """Fingerprint from the saved folder when there is one, else from the hub revision or the tensors."""
    config = config if config is not None else getattr(model, "config", None)
    if path is not None and Path(path).is_dir():
        return folder_fingerprint(path, extra)
    commit = getattr(config, "_commit_hash", None)
    if path is not None and commit:
        return sha256_bytes(f"hub:{path}@{commit}", *extra)
    if model is None:
        return source_fingerprint(path, config, extra)
    return state_dict_fingerprint(model, extra)


ADAPTER_CONFIG = "adapter_config.json"


def is_peft_adapter(path: str | Path) -> bool:
    """A folder holding a PEFT adapter (``adapter_config.json``) rather than a whole model."""
    path = Path(path)
    return path.is_dir() and (path / ADAPTER_CONFIG).is_file()


def _peft_base(adapter: Path, base_model: str | None) -> str:
    cfg_path = adapter / ADAPTER_CONFIG
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{cfg_path}: not a readable PEFT adapter config ({exc})") from exc
    base = base_model or cfg.get("base_model_name_or_path")
    if not base:
        raise ValueError(
            f"{cfg_path}: no base_model_name_or_path; give the base model with the model option "
            "base_model=FOLDER_OR_HUB_ID (--model-arg base_model=...)"
        )
    if importlib.util.find_spec("peft") is None:
        raise ImportError(
            f"{adapter} is a PEFT adapter (adapter_config.json); loading it needs peft: "
            "pip install 'rm-audit-workbench[peft]' (or pip install peft)"
        )
    base_path = Path(base).expanduser()
    if not base_path.is_absolute() and not base_path.exists() and (adapter / base).is_dir():
        return str((adapter / base).resolve())  # relative to the adapter folder
    return str(base_path) if base_path.exists() else str(base)


def _has_tokenizer(folder: Path) -> bool:
    return any((folder / n).is_file() for n in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json"))


class SequenceClassifierRM(TransformerRM):
    """A Hugging Face sequence-classification RM with a single output logit.

    Decoder RMs (GPT-2, Llama, Qwen ...) pool the logit of the last real token.
    This adapter pools that position itself from the attention mask, with the
    same rule as transformers (the right-most token that is not the pad id), so
    the score of a text does not depend on batch size, padding side or on
    ``pad_token == eos_token``.

    :meth:`from_pretrained` is lazy: it reads the config and the tokenizer and
    fingerprints the weight files, and loads the weights at the first text that is
    not in the score cache (:attr:`~TransformerRM.weight_loads` counts loads).
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        name: str | None = None,
        path: str | None = None,
        format_style: str = "auto",
        template: TextTemplate | None = None,
        max_length: int | None = None,
        device: str | None = None,
        dtype=None,
        truncation_side: str = "left",
        padding_side: str = "right",
        model_config=None,
        weights: Callable[[], Any] | None = None,
        fingerprint: str | None = None,
        fingerprint_extra: Sequence[str] = (),
        token_budget: int | None = None,
    ):
        if model is None and (weights is None or model_config is None):
            raise ValueError("SequenceClassifierRM needs a model, or weights= (a loader) and model_config=")
        config = model.config if model is not None else model_config
        n_labels = getattr(config, "num_labels", None)
        if n_labels != 1:
            raise ValueError(
                f"{name or path or type(model).__name__}: a reward model must have exactly one output logit "
                f"(config.num_labels == 1), this one has {n_labels}. For a 2-class preference classifier, "
                "wrap it with CallableRM and return the logit difference."
            )
        if truncation_side not in ("left", "right") or padding_side not in ("left", "right"):
            raise ValueError("truncation_side and padding_side must be 'left' or 'right'")
        self.device = _resolve_device(device)
        self.dtype = _resolve_dtype(dtype, self.device)
        self.tokenizer = tokenizer
        self.model_config = config
        if model is not None:
            self.model = self._place(model)
        else:
            self._weights = weights
        self.formatter = Formatter.for_tokenizer(tokenizer, format_style, template)
        self.max_length = max_length or default_max_length(config, tokenizer)
        self.truncation_side = truncation_side
        self.padding_side = padding_side
        self.token_budget = token_budget
        self.name = name or (Path(path).name if path else type(model).__name__)
        self.path = path
        extra = [
            json.dumps(self.formatter.describe(), sort_keys=True),
            f"max_length={self.max_length}",
            f"trunc={truncation_side}",
            *fingerprint_extra,
        ]
        if self.formatter.style == "pair" and (getattr(config, "type_vocab_size", 0) or 0) > 1:
            extra.append("segments=token_type_ids")  # pair scores before segment ids were passed differ
        self.fingerprint = fingerprint or _weights_fingerprint(model, path, extra, config)

    def _place(self, module):
        module = super()._place(module)
        if getattr(module.config, "pad_token_id", None) is None:
            module.config.pad_token_id = self.pad_id
        return module

    @property
    def per_position_head(self):
        """Decoder classifiers have a ``score`` head applied at every position (``None`` for encoders)."""
        return getattr(self.model, "score", None)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        trust_remote_code: bool = False,
        revision: str | None = None,
        device: str | None = None,
        dtype=None,
        attn_implementation: str | None = None,
        device_map=None,
        load_in_8bit: bool = False,
        load_in_4bit: bool = False,
        base_model: str | None = None,
        max_length: int | None = None,
        token_budget: int | None = None,
        name: str | None = None,
        format_style: str = "auto",
        template: TextTemplate | None = None,
        truncation_side: str = "left",
        padding_side: str = "right",
        lazy: bool = True,
    ) -> SequenceClassifierRM:
        """Load an RM from a folder, a hub id or a PEFT adapter folder (``adapter_config.json``).

        The loading options go to ``from_pretrained``: ``dtype`` (``"bfloat16"`` ...),
        ``attn_implementation``, ``device_map``, ``revision``, ``trust_remote_code`` and
        ``load_in_8bit`` / ``load_in_4bit`` (bitsandbytes). A PEFT adapter is applied
        to ``base_model`` (default: the adapter config's ``base_model_name_or_path``) and
        merged into it. ``lazy`` (default) defers loading the weights to first use.
        """
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        text = str(name_or_path)
        adapter = Path(text) if is_peft_adapter(text) else None
        if base_model is not None and adapter is None:
            raise ValueError(
                f"model option base_model={base_model!r} is for PEFT adapter folders (with adapter_config.json); "
                f"{text} is not one"
            )
        source = _peft_base(adapter, base_model) if adapter is not None else text
        device_ = _resolve_device(device)
        dtype_ = _resolve_dtype(dtype, device_)
        quantization = _quantization_config(load_in_8bit, load_in_4bit, dtype_)
        common = dict(trust_remote_code=trust_remote_code, revision=revision)
        tokenizer_source = text if adapter is not None and _has_tokenizer(adapter) else source
        tokenizer = AutoTokenizer.from_pretrained(
            tokenizer_source, **(common if tokenizer_source == source else {"trust_remote_code": trust_remote_code})
        )
        config = AutoConfig.from_pretrained(source, **common)
        if adapter is not None and getattr(config, "num_labels", None) != 1:
            config.num_labels = 1  # a causal-LM base of a reward adapter: the adapter carries the 1-logit head
        load_kwargs = _load_kwargs(
            source,
            dtype=dtype_,
            trust_remote_code=trust_remote_code,
            revision=revision,
            attn_implementation=attn_implementation,
            device_map=device_map,
            quantization=quantization,
            device=device_,
        )
        extras = _option_extras(dtype_, quantization, revision)
        if adapter is not None:
            extras.append(f"peft-base={source_fingerprint(source, config)}")

        def weights():
            model = AutoModelForSequenceClassification.from_pretrained(source, config=config, **load_kwargs)
            if adapter is not None:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, str(adapter))
                if quantization is None:
                    model = model.merge_and_unload()
            return model

        rm = cls(
            None,
            tokenizer,
            name=name,
            path=text,
            format_style=format_style,
            template=template,
            max_length=max_length,
            device=str(device_),
            dtype=dtype_,
            truncation_side=truncation_side,
            padding_side=padding_side,
            model_config=config,
            weights=weights,
            fingerprint_extra=extras,
            token_budget=token_budget,
        )
        rm.keep_placement = "device_map" in load_kwargs
        if not lazy:
            rm.load_weights()
        return rm

    def pool_index(self, input_ids, attention_mask):
        """Decoders: the right-most real token that is not the pad id (transformers' rule); encoders: ``None``."""
        import torch

        if self.per_position_head is None:
            return None
        real = attention_mask.bool() & (input_ids != int(self.model.config.pad_token_id))
        real = torch.where(real.any(-1, keepdim=True), real, attention_mask.bool())
        return (torch.arange(real.shape[-1], device=real.device) * real).argmax(-1)

    def forward_tensors(self, input_ids, attention_mask, pool_index=None, token_type_ids=None):
        """The logit at :meth:`pool_index` (decoders) or the model's pooled logit (encoders), as float32.

        ``token_type_ids`` (``[batch, seq]``, 0 on padding): the segment ids of text pairs, as the
        tokenizer gives them (:class:`SegmentedIds`); ``None`` leaves them to the model (all 0).
        """
        import torch

        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        if "position_ids" in inspect.signature(self.model.forward).parameters:
            kwargs["position_ids"] = self.position_ids(attention_mask)
        captured = {}
        handle = None
        if self.per_position_head is not None:
            handle = self.per_position_head.register_forward_hook(lambda m, i, o: captured.__setitem__("logits", o))
        try:
            out = self.model(**kwargs)
        finally:
            if handle is not None:
                handle.remove()
        if "logits" in captured:
            per_pos = captured["logits"][..., 0]
            if pool_index is None:
                pool_index = self.pool_index(input_ids, attention_mask)
            scores = per_pos[torch.arange(per_pos.shape[0], device=per_pos.device), pool_index]
        else:
            scores = out.logits[:, 0]
        return scores.float()

    def forward_ids(self, batch, padding_side=None):
        if self.per_position_head is None:
            # Encoder classifiers pool the first position (CLS); only right padding keeps it there.
            padding_side = "right"
        types = _token_types(batch, padding_side or self.padding_side)
        if types is None:
            return super().forward_ids(batch, padding_side)
        input_ids, mask = self.pad(batch, padding_side)
        scores = self.forward_tensors(input_ids, mask, token_type_ids=types.to(input_ids.device))
        return scores.detach().cpu().numpy().astype(np.float64)


def _prefer_safetensors(name_or_path: str) -> bool | None:
    """Use safetensors when a local folder has them; let transformers decide for hub ids."""
    path = Path(name_or_path)
    if path.is_dir():
        return True if any(path.glob("*.safetensors")) else None
    return None


@dataclass
class ValueHeadConfig:
    pooling: str = "mean"
    hidden_size: int = 0
    format_style: str = "template"
    template: dict = field(default_factory=lambda: TextTemplate().to_dict())
    max_length: int | None = 256
    truncation_side: str = "left"
    trained_by: dict = field(default_factory=dict)
    #: ``"mean+opening"`` pooling: how many tokens of the response's opening are averaged
    opening_tokens: int = 4

    def __post_init__(self):
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.pooling == "mean+opening":
            if self.format_style != "template":
                raise ValueError(
                    f"pooling 'mean+opening' needs format_style 'template' (it finds the response after the "
                    f"template's assistant marker), got {self.format_style!r}"
                )
            if int(self.opening_tokens) < 1:
                raise ValueError(f"opening_tokens must be >= 1, got {self.opening_tokens}")

    @property
    def pooled_size(self) -> int:
        """Width of the pooled vector the head reads (:func:`pooled_width` of ``hidden_size``)."""
        return pooled_width(self.pooling, self.hidden_size)


class ValueHeadRM(TransformerRM):
    """An ``AutoModel`` backbone and a linear value head on a pooled hidden state.

    :meth:`from_pretrained` reads the head (a few numbers) and the tokenizer and loads
    the backbone at the first text that is not in the score cache.
    """

    def __init__(
        self,
        backbone,
        tokenizer,
        head,
        config: ValueHeadConfig,
        *,
        name=None,
        path=None,
        device=None,
        dtype=None,
        weights: Callable[[], Any] | None = None,
        fingerprint_extra: Sequence[str] = (),
        token_budget: int | None = None,
    ):
        import torch

        if backbone is None and (weights is None or path is None):
            raise ValueError("ValueHeadRM needs a backbone, or weights= (a loader) and the folder path=")
        self.device = _resolve_device(device)
        self.dtype = _resolve_dtype(dtype, self.device)
        self.head = head.to(device=self.device, dtype=torch.float32).eval()
        self.tokenizer = tokenizer
        self.config = config
        if backbone is not None:
            self.model = self._place(backbone)
        else:
            self._weights = weights
        self.formatter = Formatter.for_tokenizer(tokenizer, config.format_style, TextTemplate(**config.template))
        self.max_length = config.max_length
        self.truncation_side = config.truncation_side
        self.padding_side = "right"
        self.token_budget = token_budget
        self.name = name or (Path(path).name if path else "value-head-rm")
        self.path = path
        extra = [
            json.dumps(self.formatter.describe(), sort_keys=True),
            json.dumps(config.__dict__, sort_keys=True, default=str),
            *fingerprint_extra,
        ]
        base = folder_fingerprint(path, extra) if path else state_dict_fingerprint(self.model, extra)
        self.fingerprint = sha256_bytes(base, state_dict_fingerprint(self.head))
        self._backbone_extra = [*fingerprint_extra]
        self._backbone_fp: str | None = None

    #: where pooled backbone states are kept (:mod:`workbench.models.embedding_cache`): ``"default"``
    #: the shared cache, another :class:`~workbench.models.embedding_cache.EmbeddingCache`, or
    #: ``None`` (every text runs through the backbone). Only RMs loaded from a folder use it.
    embedding_cache: Any = "default"
    #: pooled states this object read from / wrote to :attr:`embedding_cache` (backbone passes saved / run)
    embedding_hits: int = 0
    embedding_misses: int = 0

    @property
    def backbone_fingerprint(self) -> str | None:
        """The backbone's weights, config, pooling and loading options without the head (``None`` without a folder).

        Two value heads on the same saved backbone share it, and with it the pooled states
        of :attr:`embedding_cache`.
        """
        if self.path is None:
            return None
        if self._backbone_fp is None:
            # The weights and their config only: the token ids are part of each key, so tokenizer files (whose
            # saved truncation/padding state differs between two saves of the same tokenizer) do not matter.
            c, pooling = self.config, self.cache_pooling
            opening = json.dumps([self.response_marker_ids, c.opening_tokens]) if pooling == "mean+opening" else ""
            self._backbone_fp = folder_fingerprint(
                self.path,
                [f"pooling={pooling}", opening, *self._backbone_extra],
                select=lambda p: (
                    p.name != VALUE_HEAD_WEIGHTS and (p.name == "config.json" or p.suffix in WEIGHT_SUFFIXES)
                ),
            )
        return self._backbone_fp

    @property
    def cache_pooling(self) -> str:
        """The pooling whose vectors the embedding cache keeps for this RM.

        ``"mean+opening"`` for a template-formatted RM with ``"mean"`` or ``"mean+opening"``
        pooling (the first half of that vector is the mean), so heads with either pooling on
        the same backbone share one backbone pass per text; otherwise the RM's own pooling.
        """
        c = self.config
        if c.pooling in ("mean", "mean+opening") and c.format_style == "template" and self.response_marker_ids:
            return "mean+opening"
        return c.pooling

    def _embedding_store(self):
        """The embedding cache to use now: none for an in-memory RM or while a dropout layer is on (MC dropout)."""
        store = self.embedding_cache
        if store is None or self.path is None:
            return None
        if self.weights_loaded and any(m.training for m in self.model.modules()):
            return None  # stochastic passes: never cached, never served from the cache
        if isinstance(store, str):
            store = self.embedding_cache = EmbeddingCache() if store == "default" else EmbeddingCache(store)
        return store

    def forward_ids(self, batch: Sequence[Sequence[int]], padding_side: str | None = None) -> np.ndarray:
        """Scores of token-id lists; pooled states come from :attr:`embedding_cache` where it holds them."""
        store = self._embedding_store()
        if store is None:
            return super().forward_ids(batch, padding_side)
        import torch

        fp = self.backbone_fingerprint
        keys = [embedding_key(fp, ids) for ids in batch]
        found = store.get_many(keys)
        width = self.head.in_features
        stored = pooled_width(self.cache_pooling, width // pooled_width(self.config.pooling, 1))
        pooled = np.zeros((len(batch), width), dtype=np.float32)
        todo = []
        for i, k in enumerate(keys):
            vector = found.get(k)
            if vector is not None and vector.shape == (stored,):
                pooled[i] = vector[:width]
            else:
                todo.append(i)
        if todo:
            input_ids, mask = self.pad([batch[i] for i in todo], padding_side)
            computed = self.pooled(input_ids, mask, self.cache_pooling).detach().float().cpu().numpy()
            pooled[todo] = computed[:, :width]
            store.put_many({keys[i]: computed[j] for j, i in enumerate(todo)})
        self.embedding_misses += len(todo)
        self.embedding_hits += len(batch) - len(todo)
        with torch.inference_mode():
            values = self.head(torch.from_numpy(pooled).to(self.head.weight.device))[:, 0]
        return values.detach().cpu().numpy().astype(np.float64)

    @classmethod
    def from_pretrained(
        cls,
        folder: str | Path,
        *,
        device=None,
        dtype=None,
        name=None,
        trust_remote_code=False,
        revision: str | None = None,
        attn_implementation: str | None = None,
        device_map=None,
        load_in_8bit: bool = False,
        load_in_4bit: bool = False,
        max_length: int | None = None,
        token_budget: int | None = None,
        lazy: bool = True,
    ):
        """Load a value-head RM folder; the loading options are those of :meth:`SequenceClassifierRM.from_pretrained`."""
        from dataclasses import replace

        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        folder = Path(folder)
        cfg_path = folder / VALUE_HEAD_CONFIG
        try:
            cfg = ValueHeadConfig(**json.loads(cfg_path.read_text()))
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"{cfg_path}: not a valid value-head config ({exc})") from exc
        if max_length is not None:
            cfg = replace(cfg, max_length=int(max_length))
        device_ = _resolve_device(device)
        dtype_ = _resolve_dtype(dtype, device_)
        quantization = _quantization_config(load_in_8bit, load_in_4bit, dtype_)
        common = dict(trust_remote_code=trust_remote_code, revision=revision)
        tokenizer = AutoTokenizer.from_pretrained(folder, **common)
        hidden = cfg.hidden_size or AutoConfig.from_pretrained(folder, **common).hidden_size
        head = linear_head(pooled_width(cfg.pooling, hidden))
        head.load_state_dict(load_file(folder / VALUE_HEAD_WEIGHTS))
        load_kwargs = _load_kwargs(
            str(folder),
            dtype=dtype_,
            trust_remote_code=trust_remote_code,
            revision=revision,
            attn_implementation=attn_implementation,
            device_map=device_map,
            quantization=quantization,
            device=device_,
        )
        rm = cls(
            None,
            tokenizer,
            head,
            cfg,
            name=name,
            path=str(folder),
            device=str(device_),
            dtype=dtype_,
            weights=lambda: AutoModel.from_pretrained(folder, **load_kwargs),
            fingerprint_extra=_option_extras(dtype_, quantization, revision),
            token_budget=token_budget,
        )
        rm.keep_placement = "device_map" in load_kwargs
        if not lazy:
            rm.load_weights()
        return rm

    def save_pretrained(self, folder: str | Path) -> Path:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        self.config.hidden_size = self.config.hidden_size or self.model.config.hidden_size
        (folder / VALUE_HEAD_CONFIG).write_text(json.dumps(self.config.__dict__, indent=2, default=str))
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}, folder / VALUE_HEAD_WEIGHTS
        )
        return folder

    def pooled(self, input_ids, mask, pooling: str | None = None):
        """Pooled hidden state of each sequence: with the head's own pooling (what it reads) unless
        ``pooling`` names another (:attr:`cache_pooling` for the embedding cache)."""
        pooling = pooling or self.config.pooling
        kwargs = {"input_ids": input_ids, "attention_mask": mask}
        if "position_ids" in inspect.signature(self.model.forward).parameters:
            kwargs["position_ids"] = self.position_ids(mask)
        hidden = self.model(**kwargs).last_hidden_state.float()
        if pooling == "mean+opening":
            return pool_mean_opening(hidden, mask, input_ids, self.response_marker_ids, self.config.opening_tokens)
        return pool_hidden(hidden, mask, pooling)

    @property
    def response_marker_ids(self) -> list[int]:
        """Token ids of the template's assistant marker (``"Assistant:"``), after which the response starts."""
        marker = getattr(self, "_response_marker_ids", None)
        if marker is None:
            prefix = TextTemplate(**self.config.template).assistant.split("{content}")[0].strip()
            marker = self.tokenizer(prefix, add_special_tokens=False)["input_ids"] if prefix else []
            self._response_marker_ids = marker
        return marker

    def forward_tensors(self, input_ids, attention_mask, pool_index=None):
        """The value head on the pooled hidden state (``pool_index`` is ignored: pooling follows the mask)."""
        pooled = self.pooled(input_ids, attention_mask)
        return self.head(pooled.to(self.head.weight.device))[:, 0]


def pooled_width(pooling: str, hidden_size: int) -> int:
    """Width of the pooled vector a value head reads: twice ``hidden_size`` for ``"mean+opening"``."""
    return hidden_size * (2 if pooling == "mean+opening" else 1)


def linear_head(hidden_size: int):
    """The value head: ``torch.nn.Linear(hidden_size, 1)``."""
    import torch

    return torch.nn.Linear(hidden_size, 1)


def pool_mean_opening(hidden, mask, input_ids, marker: Sequence[int], opening_tokens: int = 4):
    """``[mean of all tokens, mean of the response's first tokens]`` (``[batch, 2 * hidden]``).

    The response starts after the *last* occurrence of ``marker`` (the template's
    assistant marker, so the final turn of a multi-turn conversation); its first
    ``opening_tokens`` real tokens are averaged. A row without the marker (or with
    nothing after it) uses its mean for both halves. A reply that itself contains the
    marker text moves the opening to after it.
    """
    import torch

    mean = pool_hidden(hidden, mask, "mean")
    batch, width = mask.shape
    start = torch.full((batch,), -1, dtype=torch.long, device=mask.device)
    k = len(marker)
    if k and width >= k:
        ids = input_ids * mask + (mask - 1)  # padding -> -1, never a token id
        windows = ids.unfold(1, k, 1)  # [batch, width - k + 1, k]
        hit = (windows == torch.tensor(list(marker), device=ids.device)).all(-1)
        pos = torch.arange(hit.shape[1], device=ids.device)
        last = torch.where(hit, pos, torch.full_like(pos, -1)).max(-1).values
        start = torch.where(last >= 0, last + k, start)
    positions = torch.arange(width, device=mask.device)[None, :]
    window = (positions >= start[:, None]) & (positions < start[:, None] + int(opening_tokens)) & (start[:, None] >= 0)
    window = window & mask.bool()
    w = window.unsqueeze(-1).to(hidden.dtype)
    count = w.sum(1)
    opening = torch.where(count > 0, (hidden * w).sum(1) / count.clamp(min=1.0), mean)
    return torch.cat([mean, opening], dim=-1)


def pool_hidden(hidden, mask, pooling: str):
    """Pool ``[batch, seq, hidden]`` states with a ``[batch, seq]`` attention mask."""
    import torch

    if pooling == "cls":
        first = mask.float().argmax(-1)  # first real token, whatever the padding side
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), first]
    if pooling == "last":
        idx = (torch.arange(mask.shape[-1], device=mask.device) * mask).argmax(-1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), idx]
    if pooling == "mean":
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
    raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")


class CallableRM(RewardModel):
    """Wrap ``fn(prompts, responses) -> scores`` (or ``fn(prompt, response) -> score`` with ``batched=False``).

    The fingerprint (the score-cache key) is, in order of precedence:

    * ``fingerprint=``: used as given;
    * ``version=``: the function's module and name plus this version string; change
      the version whenever the scores may change (new weights, a new server);
    * otherwise the function's source code and the file of the module defining it, so
      editing a helper or a constant in that file is noticed. State outside that file
      (weights it loads, other modules, a server) is not: pass a version then.
    """

    def __init__(
        self,
        fn: Callable,
        *,
        name: str | None = None,
        fingerprint: str | None = None,
        version: str | None = None,
        batched: bool = True,
    ):
        if not callable(fn):
            raise TypeError(f"CallableRM needs a callable, got {type(fn).__name__}")
        if fingerprint is not None and version is not None:
            raise ValueError("CallableRM: pass fingerprint= or version=, not both")
        if version is not None and (not isinstance(version, str) or not version.strip()):
            raise ValueError(f"CallableRM: version must be a non-empty string, got {version!r}")
        self.fn = fn
        self.batched = batched
        self.version = version
        self.name = name or getattr(fn, "__qualname__", type(fn).__name__)
        qualified = f"{getattr(fn, '__module__', None)}.{getattr(fn, '__qualname__', self.name)}"
        if version is not None:
            fingerprint = sha256_bytes("callable", qualified, f"version={version}", f"batched={batched}")
        elif fingerprint is None:
            try:
                source = inspect.getsource(fn)
            except (OSError, TypeError):
                source = None
            if source is None:
                # No source: scores are cached for this process only.
                fingerprint = f"ephemeral-{uuid.uuid4().hex}"
            else:
                module_file = getattr(inspect.getmodule(fn), "__file__", None)
                digest = file_digest(module_file) if module_file and Path(module_file).is_file() else ""
                fingerprint = sha256_bytes(qualified, source, f"module-file={digest}", f"batched={batched}")
        self.fingerprint = fingerprint

    def describe(self) -> dict:
        info = super().describe()
        if self.version is not None:
            info["version"] = self.version
        return info

    def score_items(self, items):
        prompts = [p for p, _, _ in items]
        responses = [r for _, r, _ in items]
        if self.batched:
            out = np.asarray(self.fn(prompts, responses), dtype=np.float64).reshape(-1)
        else:
            out = np.asarray([self.fn(p, r) for p, r in zip(prompts, responses)], dtype=np.float64)
        if out.shape != (len(items),):
            raise ValueError(f"{self.name}: returned {out.shape[0]} scores for {len(items)} inputs")
        if not np.all(np.isfinite(out)):
            raise ValueError(f"{self.name}: returned non-finite scores")
        return out


class PrecomputedScoresRM(RewardModel):
    """Scores read from a file with columns ``prompt``, ``response``, ``score``.

    ``prompt`` and ``response`` are read as text exactly as written (a response
    ``"0.50"`` or ``"007"`` stays that string; CSV cells are never turned into numbers
    or NaN); in JSON lines and Parquet they must be strings. Every text asked for
    must be in the file; a missing one is an error naming it. The fingerprint is
    the file's sha256.
    """

    def __init__(self, path: str | Path, *, name: str | None = None):
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"precomputed scores file not found: {path}")
        if path.is_dir():
            raise IsADirectoryError(f"precomputed scores must be a file, {path} is a folder")
        suffix = path.suffix.lower()
        if suffix == ".csv":
            unit, columns, rows = "row", *_read_scores_csv(path)
        elif suffix in (".jsonl", ".json"):
            unit, columns, rows = _read_scores_json(path)
        elif suffix == ".parquet":
            unit, columns, rows = "row", *_read_scores_parquet(path)
        else:
            raise ValueError(f"{path}: precomputed scores must be .csv, .jsonl, .json or .parquet")
        missing = [c for c in ("prompt", "response", "score") if c not in columns]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing}; expected prompt, response, score")
        self.table: dict[tuple[str, str], float] = {}
        for row, record in rows:
            where = f"{path}, {unit} {row}"
            if isinstance(record, str):  # a line that could not be read
                raise ValueError(f"{where}: {record}")
            if not isinstance(record, dict):
                raise ValueError(f"{where}: expected an object with prompt, response, score")
            for col in ("prompt", "response"):
                value = record.get(col)
                if not isinstance(value, str):
                    raise ValueError(
                        f"{where}, field {col!r}: expected a string, got {type(value).__name__} {value!r}; "
                        "write texts as strings (quote them in JSON)"
                    )
                problem = unicode_problem(value)
                if problem is not None:
                    raise ValueError(f"{where}, field {col!r}: {problem}")
            s = record.get("score")
            try:
                if isinstance(s, bool):
                    raise TypeError
                value = float(s)
            except (TypeError, ValueError):
                raise ValueError(f"{where}, field 'score': not a number: {s!r}") from None
            if not np.isfinite(value):
                raise ValueError(f"{where}, field 'score': not finite: {s!r}")
            key = (record["prompt"], record["response"])
            if key in self.table and self.table[key] != value:
                raise ValueError(f"{where}: the same prompt and response appear earlier with a different score")
            self.table[key] = value
        self.path = path
        self.name = name or path.stem
        self.fingerprint = sha256_bytes("precomputed", file_digest(path))

    def score_items(self, items):
        out = np.empty(len(items))
        missing = []
        for i, (p, r, _) in enumerate(items):
            value = self.table.get((p, r))
            if value is None:
                missing.append(i)
            else:
                out[i] = value
        if missing:
            p, r, _ = items[missing[0]]
            raise KeyError(
                f"{self.path}: {len(missing)} of {len(items)} (prompt, response) pairs have no precomputed score; "
                f"first missing: prompt={p[:80]!r}, response={r[:80]!r}"
            )
        return out


def _read_scores_csv(path: Path) -> tuple[list[str], list[tuple[int, dict]]]:
    """Header and ``(row, record)`` pairs, every cell a string (rows counted from 2: the header is row 1)."""
    import csv

    with path.open("r", encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: the file is empty (expected a header prompt,response,score)")
        rows = []
        row = 1
        for values in reader:
            if not values:
                continue
            row += 1
            if len(values) != len(header):
                rows.append((row, f"expected {len(header)} fields, got {len(values)}"))
            else:
                rows.append((row, dict(zip(header, values))))
    return header, rows


def _read_scores_json(path: Path) -> tuple[str, list[str], list[tuple[int, Any]]]:
    """A JSON list of objects (rows) or JSON lines (lines); bad lines carry their error text."""
    with path.open("r", encoding="utf-8-sig", errors="surrogateescape") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith("["):
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig", errors="surrogateescape"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}, line {exc.lineno}: invalid JSON ({exc.msg})") from None
        records = data if isinstance(data, list) else [data]
        return "row", sorted({k for r in records if isinstance(r, dict) for k in r}), list(enumerate(records, 1))
    rows: list[tuple[int, Any]] = []
    columns: set[str] = set()
    for lineno, record, error in iter_jsonl(path):
        rows.append((lineno, error if error is not None else record))
        if isinstance(record, dict):
            columns.update(record)
    return "line", sorted(columns), rows


def _read_scores_parquet(path: Path) -> tuple[list[str], list[tuple[int, dict]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ValueError(
            f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc}); write it again "
            "(e.g. DataFrame.to_parquet)"
        ) from None
    return list(table.column_names), list(enumerate(table.to_pylist(), start=1))
