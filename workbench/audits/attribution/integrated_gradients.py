"""Integrated gradients: Captum ``LayerIntegratedGradients`` on the input embeddings of a transformer RM.

Works for BERT-, DeBERTa-, GPT-2- and Llama-style sequence classifiers and
value-head RMs. The forward function reproduces the RM's score exactly (same
attention mask, position ids and pooling), the baseline replaces every
non-special token by the pad or mask token (or zero embeddings) and keeps
special tokens and the attention mask; the convergence delta (completeness gap)
is reported per explanation. Captum is imported when an explanation is made.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from workbench.audits.attribution._base import BaseExplainer
from workbench.audits.attribution._words import positive_int, response_words
from workbench.audits.attribution.explanation import Explanation
from workbench.models.adapters import TransformerRM, ValueHeadRM
from workbench.models.loading import load_reward_model

__all__ = ["BASELINES", "INTEGRATION", "IntegratedGradientsExplainer"]

#: The IG reference inputs: pad token, mask token, or zero embeddings.
BASELINES = ("pad", "mask", "zeros")
#: Captum's integral approximations.
INTEGRATION = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")


class IntegratedGradientsExplainer(BaseExplainer):
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
        self.n_steps = positive_int(n_steps, "n_steps")
        self.internal_batch_size = positive_int(internal_batch_size, "internal_batch_size", allow_none=True)
        if baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}")
        if integration not in INTEGRATION:
            raise ValueError(f"integration must be one of {INTEGRATION}, got {integration!r}")
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
        """The position the reward is read from (decoders), zeros where the model pools by itself."""
        import torch

        index = self.rm.pool_index(ids, mask)
        return index if index is not None else torch.zeros(ids.shape[0], dtype=torch.long, device=ids.device)

    def _forward(self, input_ids, attention_mask, pool_index):
        """The RM's score of each row, as a differentiable function of the token ids / embedding output."""
        import torch

        rm = self.rm
        ids = input_ids
        zero = ids < 0  # "zeros" baseline: negative ids mark positions whose embedding is zeroed
        self._zero_positions = zero if bool(zero.any()) else None
        if self._zero_positions is not None:
            ids = torch.where(zero, torch.full_like(ids, rm.pad_id), ids)
        return rm.forward_tensors(ids, attention_mask, pool_index)

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

        self.check_text(prompt, response)
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

    def parameters(self) -> dict[str, Any]:
        return {
            "n_steps": self.n_steps,
            "internal_batch_size": self.internal_batch_size,
            "baseline": self.baseline,
            "keep_context": self.keep_context,
            "integration": self.integration,
        }

    def compute(self, prompt: str, response: str, history=None, example_id: Any = None) -> Explanation:
        """Integrated gradients of ``r(prompt, response)`` per input token, summed per response word."""
        import torch

        try:
            from captum.attr import LayerIntegratedGradients
        except ImportError as exc:  # pragma: no cover - optional dependency
            raise ImportError(
                "IntegratedGradientsExplainer needs captum (pip install 'rm-audit-workbench[analysis]')"
            ) from exc

        self.check_text(prompt, response)
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
