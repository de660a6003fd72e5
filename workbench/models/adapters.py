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
    An ``AutoModel`` backbone plus a linear value head (last-token, mean or CLS
    pooling), saved as a folder with ``value_head.json`` and
    ``value_head.safetensors`` next to the backbone files.
``CallableRM``
    A Python function ``f(prompts, responses) -> scores``.
``PrecomputedScoresRM``
    A file (CSV, JSONL or Parquet) with columns ``prompt``, ``response``, ``score``.
"""

from __future__ import annotations

import inspect
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench._utils.io import iter_jsonl, unicode_problem
from workbench.models.fingerprint import file_digest, folder_fingerprint, sha256_bytes, state_dict_fingerprint
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
]

POOLINGS = ("last", "mean", "cls")
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


class TransformerRM(RewardModel):
    """Shared machinery for RMs that run a transformers model on token ids.

    The scoring engine calls :meth:`encode` on every text (to count truncation
    and to sort by length) and :meth:`forward_ids` on padded batches.
    :meth:`forward_ids` is :meth:`pad` followed by :meth:`forward_tensors`, the
    differentiable reward forward (attribution methods call it directly).
    """

    model: Any
    tokenizer: Any
    formatter: Formatter
    device: Any
    dtype: Any
    truncation_side: str = "left"
    padding_side: str = "right"

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
        ids = tok(*args, add_special_tokens=add_special, truncation=False)["input_ids"]
        if self.max_length is None or len(ids) <= self.max_length:
            return list(ids), False
        old_side = tok.truncation_side
        tok.truncation_side = self.truncation_side
        try:
            kwargs = {"truncation": "longest_first"} if len(args) == 2 else {"truncation": True}
            ids = tok(*args, add_special_tokens=add_special, max_length=self.max_length, **kwargs)["input_ids"]
        finally:
            tok.truncation_side = old_side
        return list(ids), True

    def pad(self, batch: Sequence[Sequence[int]], padding_side: str | None = None):
        """Pad token-id lists into ``(input_ids, attention_mask)`` long tensors on the model's device."""
        import torch

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
    """The longest input the model takes: its position limit and the tokenizer's, at most ``cap``."""
    limits = [cap]
    for attr in ("max_position_embeddings", "n_positions"):
        value = getattr(model.config, attr, None)
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
        return getattr(torch, dtype)
    return dtype


def _weights_fingerprint(model, path: str | None, extra: Sequence[str]) -> str:
    """Fingerprint from the saved folder when there is one, else from the hub revision or the tensors."""
    if path is not None and Path(path).is_dir():
        return folder_fingerprint(path, extra)
    commit = getattr(model.config, "_commit_hash", None)
    if path is not None and commit:
        return sha256_bytes(f"hub:{path}@{commit}", *extra)
    return state_dict_fingerprint(model, extra)


class SequenceClassifierRM(TransformerRM):
    """A Hugging Face sequence-classification RM with a single output logit.

    Decoder RMs (GPT-2, Llama, Qwen ...) pool the logit of the last real token.
    This adapter pools that position itself from the attention mask, with the
    same rule as transformers (the right-most token that is not the pad id), so
    the score of a text does not depend on batch size, padding side or on
    ``pad_token == eos_token``.
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
    ):
        n_labels = getattr(model.config, "num_labels", None)
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
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.tokenizer = tokenizer
        if getattr(self.model.config, "pad_token_id", None) is None:
            self.model.config.pad_token_id = self.pad_id
        self.formatter = Formatter.for_tokenizer(tokenizer, format_style, template)
        self.max_length = max_length or default_max_length(model, tokenizer)
        self.truncation_side = truncation_side
        self.padding_side = padding_side
        self.name = name or (Path(path).name if path else type(model).__name__)
        self.path = path
        # Decoder classifiers have a `score` head applied at every position.
        self.per_position_head = getattr(model, "score", None)
        extra = [
            json.dumps(self.formatter.describe(), sort_keys=True),
            f"max_length={self.max_length}",
            f"trunc={truncation_side}",
        ]
        self.fingerprint = _weights_fingerprint(model, path, extra)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        trust_remote_code: bool = False,
        revision: str | None = None,
        device: str | None = None,
        dtype=None,
        **kwargs,
    ) -> SequenceClassifierRM:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        device_ = _resolve_device(device)
        dtype_ = _resolve_dtype(dtype, device_)
        common = dict(trust_remote_code=trust_remote_code, revision=revision)
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, **common)
        model = AutoModelForSequenceClassification.from_pretrained(
            name_or_path, dtype=dtype_, use_safetensors=_prefer_safetensors(name_or_path), **common
        )
        return cls(model, tokenizer, path=str(name_or_path), device=str(device_), dtype=dtype_, **kwargs)

    def pool_index(self, input_ids, attention_mask):
        """Decoders: the right-most real token that is not the pad id (transformers' rule); encoders: ``None``."""
        import torch

        if self.per_position_head is None:
            return None
        real = attention_mask.bool() & (input_ids != int(self.model.config.pad_token_id))
        real = torch.where(real.any(-1, keepdim=True), real, attention_mask.bool())
        return (torch.arange(real.shape[-1], device=real.device) * real).argmax(-1)

    def forward_tensors(self, input_ids, attention_mask, pool_index=None):
        """The logit at :meth:`pool_index` (decoders) or the model's pooled logit (encoders), as float32."""
        import torch

        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
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
        return super().forward_ids(batch, padding_side)


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

    def __post_init__(self):
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")


class ValueHeadRM(TransformerRM):
    """An ``AutoModel`` backbone and a linear value head on a pooled hidden state."""

    def __init__(
        self, backbone, tokenizer, head, config: ValueHeadConfig, *, name=None, path=None, device=None, dtype=None
    ):
        import torch

        self.device = _resolve_device(device)
        self.dtype = _resolve_dtype(dtype, self.device)
        self.model = backbone.to(device=self.device, dtype=self.dtype).eval()
        self.head = head.to(device=self.device, dtype=torch.float32).eval()
        self.tokenizer = tokenizer
        self.config = config
        self.formatter = Formatter.for_tokenizer(tokenizer, config.format_style, TextTemplate(**config.template))
        self.max_length = config.max_length
        self.truncation_side = config.truncation_side
        self.padding_side = "right"
        self.name = name or (Path(path).name if path else "value-head-rm")
        self.path = path
        extra = [
            json.dumps(self.formatter.describe(), sort_keys=True),
            json.dumps(config.__dict__, sort_keys=True, default=str),
        ]
        base = folder_fingerprint(path, extra) if path else state_dict_fingerprint(self.model, extra)
        self.fingerprint = sha256_bytes(base, state_dict_fingerprint(self.head))

    @classmethod
    def from_pretrained(cls, folder: str | Path, *, device=None, dtype=None, name=None, trust_remote_code=False):
        from safetensors.torch import load_file
        from transformers import AutoModel, AutoTokenizer

        folder = Path(folder)
        cfg_path = folder / VALUE_HEAD_CONFIG
        try:
            cfg = ValueHeadConfig(**json.loads(cfg_path.read_text()))
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"{cfg_path}: not a valid value-head config ({exc})") from exc
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
        backbone = AutoModel.from_pretrained(
            folder, use_safetensors=_prefer_safetensors(str(folder)), trust_remote_code=trust_remote_code
        )
        head = linear_head(cfg.hidden_size or backbone.config.hidden_size)
        state = load_file(folder / VALUE_HEAD_WEIGHTS)
        head.load_state_dict(state)
        return cls(backbone, tokenizer, head, cfg, name=name, path=str(folder), device=device, dtype=dtype)

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

    def pooled(self, input_ids, mask):
        """Pooled hidden state of each sequence (what the value head reads)."""
        kwargs = {"input_ids": input_ids, "attention_mask": mask}
        if "position_ids" in inspect.signature(self.model.forward).parameters:
            kwargs["position_ids"] = self.position_ids(mask)
        hidden = self.model(**kwargs).last_hidden_state.float()
        return pool_hidden(hidden, mask, self.config.pooling)

    def forward_tensors(self, input_ids, attention_mask, pool_index=None):
        """The value head on the pooled hidden state (``pool_index`` is ignored: pooling follows the mask)."""
        return self.head(self.pooled(input_ids, attention_mask))[:, 0]


def linear_head(hidden_size: int):
    """The value head: ``torch.nn.Linear(hidden_size, 1)``."""
    import torch

    return torch.nn.Linear(hidden_size, 1)


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
