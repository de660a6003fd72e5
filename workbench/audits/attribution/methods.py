"""The attribution methods behind :mod:`workbench.audits.attribution.core` (one class per method).

* :class:`IntegratedGradientsExplainer`: Captum ``LayerIntegratedGradients`` on
  ``model.get_input_embeddings()`` of a transformer RM.
* :class:`OcclusionExplainer`: delete one word at a time and rescore (any RM).
* :class:`ShapExplainer`: SHAP Partition explainer with a ``shap.maskers.Text``
  masker over the response's words (any RM).

Every explainer has ``attribute(prompt, response, history=None, example_id=None)``
(one response's reward), ``attribute_pair(prompt, chosen, rejected, ...)`` (the
margin, see :func:`workbench.audits.attribution.core.margin_explanation`) and
``attribute_many(prompts, responses, ...)``.
"""

from __future__ import annotations

import contextlib
import inspect
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from workbench.audits.attribution.core import (
    Explanation,
    _score_fn,
    delete_words,
    explain_responses,
    margin_explanation,
    response_words,
)
from workbench.models.adapters import SequenceClassifierRM, TransformerRM, ValueHeadRM, load_reward_model

__all__ = ["IntegratedGradientsExplainer", "OcclusionExplainer", "ShapExplainer", "BASELINES"]

BASELINES = ("pad", "mask", "zeros")
_INTEGRATION = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")


def _positive_int(value, name: str, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int{' or None' if allow_none else ''}, got {value!r}")
    return int(value)


class _Explainer:
    """Shared pair and batch helpers."""

    method = "base"

    def attribute(self, prompt: str, response: str, history=None, example_id: Any = None) -> Explanation:
        raise NotImplementedError

    def attribute_pair(
        self, prompt: str, chosen: str, rejected: str, history=None, example_id: Any = None
    ) -> Explanation:
        """Explain the margin ``r(chosen) - r(rejected)`` (each side attributed on its own, then combined)."""
        return margin_explanation(
            self.attribute(prompt, chosen, history, example_id),
            self.attribute(prompt, rejected, history, example_id),
            example_id,
        )

    def attribute_many(
        self, prompts: Sequence[str], responses: Sequence[str], histories=None, ids=None, progress: bool = False
    ) -> list[Explanation]:
        """:meth:`attribute` for every (prompt, response)."""
        return explain_responses(self, prompts, responses, histories, ids, progress)

    @staticmethod
    def _check_text(prompt, response):
        if not isinstance(prompt, str) or not isinstance(response, str):
            raise TypeError(
                f"prompt and response must be strings, got {type(prompt).__name__} and {type(response).__name__}"
            )


# ---------------------------------------------------------------------------
# Integrated gradients
# ---------------------------------------------------------------------------


class IntegratedGradientsExplainer(_Explainer):
    """Layer integrated gradients on the input embeddings of a transformer RM.

    Parameters
    ----------
    rm : TransformerRM or spec
        A :class:`~workbench.models.adapters.SequenceClassifierRM` (encoders pool
        the first token, decoders the last real token) or
        :class:`~workbench.models.adapters.ValueHeadRM`. Needs a fast tokenizer
        (character offsets map tokens to words).
    n_steps : int
        Integration steps (Captum's ``n_steps``).
    internal_batch_size : int or None
        How many interpolated inputs go through the model at once (forward and
        backward); ``None`` runs all ``n_steps`` in one batch.
    baseline : {"pad", "mask", "zeros"}
        The reference input: every non-special token replaced by the pad token
        (``"pad"``) or the mask token (``"mask"``, tokenizers with one), or its
        embedding set to zero (``"zeros"``). Special tokens (CLS, SEP, BOS, EOS
        ...), the attention mask, position ids and the pooled position stay as in
        the real input.
    keep_context : bool
        If True the prompt and template tokens are kept in the baseline too, so
        only the response is integrated and the response words' attributions
        sum to ``score - baseline_score`` (up to the delta).
    integration : str
        Captum's approximation method (default ``"gausslegendre"``).

    The forward function reproduces :func:`workbench.models.scoring.score_texts`
    exactly (:meth:`score` returns it at the real input). The convergence delta
    of each explanation is Captum's ``sum(attributions) - (F(x) - F(baseline))`` (computed from the
    reported end points, which saves Captum's two extra forward passes).
    """

    method = "integrated_gradients"

    def __init__(
        self,
        rm,
        n_steps: int = 50,
        internal_batch_size: int | None = 16,
        baseline: str = "pad",
        keep_context: bool = False,
        integration: str = "gausslegendre",
    ):
        rm = load_reward_model(rm)
        if not isinstance(rm, TransformerRM):
            raise TypeError(
                f"IntegratedGradientsExplainer needs a transformer RM (SequenceClassifierRM or ValueHeadRM), got "
                f"{type(rm).__name__}; use OcclusionExplainer or ShapExplainer for model-agnostic attribution"
            )
        self.rm = rm
        self.n_steps = _positive_int(n_steps, "n_steps")
        self.internal_batch_size = _positive_int(internal_batch_size, "internal_batch_size", allow_none=True)
        if baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}")
        if integration not in _INTEGRATION:
            raise ValueError(f"integration must be one of {_INTEGRATION}, got {integration!r}")
        tok = rm.tokenizer
        if not getattr(tok, "is_fast", False):
            raise ValueError(f"{rm.name}: IntegratedGradientsExplainer needs a fast tokenizer (character offsets)")
        if baseline == "mask" and tok.mask_token_id is None:
            raise ValueError(f"{rm.name}: the tokenizer has no mask token; use baseline='pad' or 'zeros'")
        self.baseline = baseline
        self.keep_context = bool(keep_context)
        self.integration = integration
        self.layer = rm.model.get_input_embeddings()
        self._special = set(int(i) for i in tok.all_special_ids)
        self._takes_positions = "position_ids" in inspect.signature(rm.model.forward).parameters
        self._zero_positions = None

    # -- model plumbing ------------------------------------------------------

    def _encode(self, formatted):
        """Token ids exactly as the RM encodes them, with character offsets and segment ids."""
        rm, tok = self.rm, self.rm.tokenizer
        ids_rm, truncated = rm.encode(formatted)
        args = formatted if isinstance(formatted, tuple) else (formatted,)
        kwargs = {"add_special_tokens": rm.formatter.style != "chat_template", "return_offsets_mapping": True}
        if not truncated:
            enc = tok(*args, truncation=False, **kwargs)
        else:
            old = tok.truncation_side
            tok.truncation_side = rm.truncation_side
            try:
                enc = tok(
                    *args, max_length=rm.max_length, truncation="longest_first" if len(args) == 2 else True, **kwargs
                )
            finally:
                tok.truncation_side = old
        ids = [int(i) for i in enc["input_ids"]]
        if ids != [int(i) for i in ids_rm]:
            raise RuntimeError(f"{rm.name}: tokenizing with offsets gave different ids than the RM's encode()")
        return ids, [tuple(o) for o in enc["offset_mapping"]], enc.sequence_ids(), truncated

    def _pool_index(self, ids, mask):
        import torch

        if isinstance(self.rm, SequenceClassifierRM) and self.rm._per_position_head is not None:
            real = mask.bool() & (ids != int(self.rm.model.config.pad_token_id))
            real = torch.where(real.any(-1, keepdim=True), real, mask.bool())
            return (torch.arange(real.shape[-1], device=real.device) * real).argmax(-1)
        return torch.zeros(ids.shape[0], dtype=torch.long, device=ids.device)

    def _forward(self, input_ids, attention_mask, pool_index):
        """The RM's score of each row, as a differentiable function of the token ids / embedding output."""
        import torch

        rm = self.rm
        ids = input_ids
        zero = ids < 0  # "zeros" baseline: negative ids mark positions whose embedding is zeroed
        self._zero_positions = zero if bool(zero.any()) else None
        if self._zero_positions is not None:
            ids = torch.where(zero, torch.full_like(ids, rm.pad_id), ids)
        if isinstance(rm, ValueHeadRM):
            return rm.head(rm.pooled(ids, attention_mask))[:, 0]
        kwargs = {"input_ids": ids, "attention_mask": attention_mask}
        if self._takes_positions:
            kwargs["position_ids"] = rm._position_ids(attention_mask)
        head = rm._per_position_head
        if head is None:
            return rm.model(**kwargs).logits[:, 0].float()
        captured = {}
        handle = head.register_forward_hook(lambda m, i, o: captured.__setitem__("logits", o))
        try:
            rm.model(**kwargs)
        finally:
            handle.remove()
        per_pos = captured["logits"][..., 0].float()
        return per_pos[torch.arange(per_pos.shape[0], device=per_pos.device), pool_index]

    def _zero_hook(self, module, inputs, output):
        z = self._zero_positions
        if z is None or tuple(z.shape) != tuple(output.shape[:2]):
            return None
        return output * (~z).unsqueeze(-1).to(output.dtype)

    @contextlib.contextmanager
    def _grad_context(self):
        """Gradients on (even inside inference mode), parameters frozen, zero-embedding hook installed."""
        import torch

        modules = [self.rm.model] + ([self.rm.head] if isinstance(self.rm, ValueHeadRM) else [])
        frozen = [p for m in modules for p in m.parameters() if p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        handle = self.layer.register_forward_hook(self._zero_hook)
        try:
            with torch.inference_mode(False), torch.enable_grad():
                yield
        finally:
            handle.remove()
            self._zero_positions = None
            for p in frozen:
                p.requires_grad_(True)

    def _tensors(self, prompt, response, history):
        import torch

        formatted = self.rm.format(prompt, response, history)
        ids, offsets, seq_ids, truncated = self._encode(formatted)
        device = self.rm.device
        input_ids = torch.tensor([ids], dtype=torch.long, device=device)
        mask = torch.ones_like(input_ids)
        return formatted, ids, offsets, seq_ids, truncated, input_ids, mask

    def score(self, prompt: str, response: str, history=None) -> float:
        """The RM's reward computed by this explainer's forward function (equals ``score_texts``)."""
        import torch

        self._check_text(prompt, response)
        _, _, _, _, _, input_ids, mask = self._tensors(prompt, response, history)
        with torch.no_grad():
            return float(self._forward(input_ids, mask, self._pool_index(input_ids, mask))[0])

    def baseline_ids(self, ids: Sequence[int], context: Sequence[bool] | None = None) -> list[int]:
        """The baseline token ids for ``ids`` (``-1`` marks a zeroed embedding for ``baseline="zeros"``).

        ``context[i]`` True keeps token ``i`` (used for the prompt with ``keep_context``).
        """
        tok = self.rm.tokenizer
        fill = {"pad": self.rm.pad_id, "mask": tok.mask_token_id, "zeros": -1}[self.baseline]
        out = []
        for i, t in enumerate(ids):
            keep = int(t) in self._special or (context is not None and context[i])
            out.append(int(t) if keep else int(fill))
        return out

    # -- word mapping --------------------------------------------------------

    @staticmethod
    def _response_location(formatted, response):
        """(segment, shift): response character c sits at character c + shift of that input segment."""
        if isinstance(formatted, tuple):
            return 1, 0
        core = response.strip()
        lead = len(response) - len(response.lstrip())
        pos = formatted.rfind(core) if core else -1
        if core and pos < 0:
            raise ValueError(
                "the response does not appear verbatim in the formatted model input; cannot map tokens to words"
            )
        return 0, pos - lead

    @staticmethod
    def _token_words(offsets, seq_ids, segment, shift, spans) -> np.ndarray:
        out = np.full(len(offsets), -1, dtype=np.int64)
        if not spans:
            return out
        starts = np.array([a for a, _ in spans])
        ends = np.array([b for _, b in spans])
        for i, ((a, b), s) in enumerate(zip(offsets, seq_ids)):
            if s != segment or b <= a:
                continue
            ov = np.minimum(b - shift, ends) - np.maximum(a - shift, starts)
            j = int(np.argmax(ov))
            if ov[j] > 0:
                out[i] = j
        return out

    # -- the method ----------------------------------------------------------

    def attribute(self, prompt: str, response: str, history=None, example_id: Any = None) -> Explanation:
        """Integrated gradients of ``r(prompt, response)`` per input token, summed per response word."""
        import torch

        try:
            from captum.attr import LayerIntegratedGradients
        except ImportError as exc:  # pragma: no cover - optional dependency
            raise ImportError(
                "IntegratedGradientsExplainer needs captum (pip install 'rm-audit-workbench[analysis]')"
            ) from exc

        self._check_text(prompt, response)
        start = time.perf_counter()
        formatted, ids, offsets, seq_ids, truncated, input_ids, mask = self._tensors(prompt, response, history)
        words, spans = response_words(response)
        segment, shift = self._response_location(formatted, response)
        token_word = self._token_words(offsets, seq_ids, segment, shift, spans)
        context = (token_word < 0) if self.keep_context else None
        base = torch.tensor([self.baseline_ids(ids, context)], dtype=torch.long, device=input_ids.device)
        pool = self._pool_index(input_ids, mask)

        lig = LayerIntegratedGradients(self._forward, self.layer)
        with self._grad_context():
            attributions = lig.attribute(
                input_ids,
                baselines=base,
                additional_forward_args=(mask, pool),
                n_steps=self.n_steps,
                method=self.integration,
                internal_batch_size=self.internal_batch_size,
            )
            # Captum's convergence delta, computed here from the two end points we report anyway
            # (return_convergence_delta=True would run both forwards a second time).
            with torch.no_grad():
                ends = self._forward(torch.cat([input_ids, base]), torch.cat([mask, mask]), torch.cat([pool, pool]))
        score, baseline_score = (float(v) for v in ends.detach().float().cpu())
        tok_attr = attributions[0].sum(-1).detach().double().cpu().numpy()
        delta = float(tok_attr.sum() - (score - baseline_score))
        word_attr = np.zeros(len(words))
        np.add.at(word_attr, token_word[token_word >= 0], tok_attr[token_word >= 0])

        segments = formatted if isinstance(formatted, tuple) else (formatted,)
        raw = self.rm.tokenizer.convert_ids_to_tokens(ids)
        tokens = [segments[s][a:b] if s is not None and b > a else r for (a, b), s, r in zip(offsets, seq_ids, raw)]
        covered = np.zeros(len(words), dtype=bool)
        covered[token_word[token_word >= 0]] = True
        info = {
            "model": self.rm.name,
            "fingerprint": self.rm.fingerprint,
            "n_steps": self.n_steps,
            "internal_batch_size": self.internal_batch_size,
            "baseline": self.baseline,
            "keep_context": self.keep_context,
            "integration": self.integration,
            "truncated": bool(truncated),
            "n_tokens": len(ids),
            "words_without_tokens": int((~covered).sum()),
            "history": history,
            "seconds": time.perf_counter() - start,
        }
        return Explanation(
            method=self.method,
            words=words,
            word_attributions=word_attr,
            score=score,
            word_spans=spans,
            tokens=tokens,
            token_attributions=tok_attr,
            token_word=token_word,
            baseline_score=baseline_score,
            convergence_delta=delta,
            prompt=prompt,
            response=response,
            example_id=example_id,
            info=info,
        )


# ---------------------------------------------------------------------------
# Model-agnostic methods
# ---------------------------------------------------------------------------


def _word_level(method, words, spans, values, score, baseline, delta, prompt, response, example_id, info):
    idx = np.arange(len(words))
    return Explanation(
        method=method,
        words=words,
        word_attributions=values,
        score=score,
        word_spans=spans,
        tokens=list(words),
        token_attributions=values,
        token_word=idx,
        baseline_score=baseline,
        convergence_delta=delta,
        prompt=prompt,
        response=response,
        example_id=example_id,
        info=info,
    )


class OcclusionExplainer(_Explainer):
    """Leave-one-word-out attribution: ``r(response) - r(response without word i)``.

    Works for any :class:`~workbench.models.adapters.RewardModel` (transformer,
    callable, precomputed scores with every variant present). All ``n_words + 1``
    texts are scored in one batched :func:`~workbench.models.scoring.score_texts` call
    (``cache=None`` by default, so the variants do not fill the score cache).

    ``replacement``: ``""`` deletes the word (with its trailing white space);
    any other string replaces it (e.g. ``"[MASK]"`` or ``"..."``).
    """

    method = "occlusion"

    def __init__(self, rm, replacement: str = "", cache=None):
        self.rm = load_reward_model(rm)
        if not isinstance(replacement, str):
            raise TypeError(f"replacement must be a string, got {type(replacement).__name__}")
        self.replacement = replacement
        self.cache = cache

    def attribute(self, prompt: str, response: str, history=None, example_id: Any = None) -> Explanation:
        self._check_text(prompt, response)
        start = time.perf_counter()
        words, spans = response_words(response)
        texts = [response] + [delete_words(response, spans, [i], self.replacement) for i in range(len(words))]
        scores = _score_fn(self.rm, self.cache)([prompt] * len(texts), texts, [history] * len(texts))
        values = scores[0] - scores[1:]
        info = {
            "model": self.rm.name,
            "fingerprint": self.rm.fingerprint,
            "replacement": self.replacement,
            "n_evals": len(texts),
            "history": history,
            "seconds": time.perf_counter() - start,
        }
        return _word_level(
            self.method,
            words,
            spans,
            values,
            float(scores[0]),
            float("nan"),
            float("nan"),
            prompt,
            response,
            example_id,
            info,
        )


class _WordTokenizer:
    """A tokenizer for ``shap.maskers.Text``: white-space words, ids = word positions."""

    def __call__(self, s, return_offsets_mapping=True, **kwargs):
        _, spans = response_words(s)
        out = {"input_ids": list(range(len(spans)))}
        if return_offsets_mapping:
            out["offset_mapping"] = spans
        return out


class ShapExplainer(_Explainer):
    """SHAP Partition explainer over the response's words (``shap.maskers.Text``).

    The masker hands the scoring function word positions with ``-1`` for masked
    words; the response is rebuilt from the original text with those words
    deleted (or replaced by ``replacement``), so white space is preserved and
    the unmasked input scores exactly like the response. Masked variants are
    scored in batches with :func:`~workbench.models.scoring.score_texts` (any RM).

    ``max_evals`` bounds the model evaluations per explanation (SHAP's budget);
    the base value is the reward of the fully masked (empty) response, and the
    values satisfy ``base + sum(values) = score`` (reported as the delta).
    """

    method = "shap"

    def __init__(self, rm, max_evals: int = 500, batch_size: int = 64, replacement: str = "", cache=None):
        self.rm = load_reward_model(rm)
        self.max_evals = _positive_int(max_evals, "max_evals")
        self.batch_size = _positive_int(batch_size, "batch_size")
        if not isinstance(replacement, str):
            raise TypeError(f"replacement must be a string, got {type(replacement).__name__}")
        self.replacement = replacement
        self.cache = cache

    def attribute(self, prompt: str, response: str, history=None, example_id: Any = None) -> Explanation:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PendingDeprecationWarning)  # shap's colormap setup at import
                import shap
        except ImportError as exc:  # pragma: no cover - optional dependency
            raise ImportError("ShapExplainer needs shap (pip install 'rm-audit-workbench[analysis]')") from exc

        self._check_text(prompt, response)
        start = time.perf_counter()
        words, spans = response_words(response)
        score_fn = _score_fn(self.rm, self.cache)
        n_evals = [0]

        def f(rows):
            rows = np.atleast_2d(np.asarray(rows))
            texts = [delete_words(response, spans, np.flatnonzero(row < 0), self.replacement) for row in rows]
            n_evals[0] += len(texts)
            return score_fn([prompt] * len(texts), texts, [history] * len(texts))

        full_row = np.arange(len(words))[None, :]
        if len(words) <= 1:
            # Nothing to partition: the single word's Shapley value is r(response) - r(empty).
            vals = f(np.vstack([full_row, -np.ones_like(full_row)])) if words else f(full_row)
            score, base = float(vals[0]), float(vals[-1])
            values = np.array([score - base]) if words else np.zeros(0)
        else:
            masker = shap.maskers.Text(
                _WordTokenizer(), mask_token=-1, collapse_mask_token=False, output_type="token_ids"
            )
            explainer = shap.Explainer(f, masker, algorithm="partition")
            res = explainer([response], max_evals=self.max_evals, batch_size=self.batch_size, silent=True)
            values = np.asarray(res.values[0], dtype=np.float64).reshape(-1)
            base = float(np.ravel(res.base_values)[0])
            score = float(f(full_row)[0])
        delta = float(values.sum() - (score - base))
        info = {
            "model": self.rm.name,
            "fingerprint": self.rm.fingerprint,
            "max_evals": self.max_evals,
            "replacement": self.replacement,
            "n_evals": n_evals[0],
            "history": history,
            "seconds": time.perf_counter() - start,
        }
        return _word_level(self.method, words, spans, values, score, base, delta, prompt, response, example_id, info)
