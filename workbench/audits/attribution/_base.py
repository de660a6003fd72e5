"""What the three explainers share: pair and batch helpers, batched rescoring, word-level results.

Every explainer has ``attribute(prompt, response, history=None, example_id=None)``
(one response's reward), ``attribute_pair(prompt, chosen, rejected, ...)`` (the
margin, see :func:`workbench.audits.attribution.explanation.margin_explanation`)
and ``attribute_many(prompts, responses, ...)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from workbench.audits.attribution.cache import ExplanationCache, explanation_key
from workbench.audits.attribution.explanation import Explanation, margin_explanation
from workbench.models.scoring import score_texts

__all__ = ["BaseExplainer", "explain_responses", "score_fn", "word_level_explanation"]


def score_fn(rm, cache):
    """``fn(prompts, responses, histories=None) -> rewards``: one batched, quiet :func:`score_texts` call."""

    def fn(prompts, responses, histories=None):
        return score_texts(rm, prompts, responses, histories, cache=cache, progress=False).scores

    return fn


def explain_responses(
    explainer, prompts: Sequence[str], responses: Sequence[str], histories=None, ids=None, progress: bool = False
) -> list[Explanation]:
    """Run ``explainer.attribute`` on every (prompt, response); ``ids`` become ``example_id``."""
    n = len(prompts)
    if len(responses) != n:
        raise ValueError(f"prompts and responses differ in length ({n} vs {len(responses)})")
    histories = list(histories) if histories is not None else [None] * n
    ids = list(ids) if ids is not None else list(range(n))
    if len(histories) != n or len(ids) != n:
        raise ValueError("histories and ids must have one entry per prompt")
    out = []
    for p, r, h, i in tqdm(
        list(zip(prompts, responses, histories, ids)),
        disable=not progress,
        leave=False,
        desc=getattr(explainer, "method", "explaining"),
    ):
        out.append(explainer.attribute(p, r, h, example_id=i))
    return out


class BaseExplainer:
    """Shared pair and batch helpers; a subclass sets ``method`` and implements :meth:`compute` and :meth:`parameters`.

    ``explanation_cache`` (an :class:`~workbench.audits.attribution.cache.ExplanationCache`,
    ``None``: off) makes :meth:`attribute` return a stored explanation when the model
    fingerprint, text, method and :meth:`parameters` are the same.
    """

    method = "base"
    explanation_cache: ExplanationCache | None = None

    def parameters(self) -> dict[str, Any]:
        """The settings that change this method's attributions (part of the explanation-cache key)."""
        return {}

    def compute(self, prompt: str, response: str, history=None, example_id: Any = None) -> Explanation:
        """The explanation of ``r(prompt, response)``, computed (no cache)."""
        raise NotImplementedError

    def attribute(self, prompt: str, response: str, history=None, example_id: Any = None) -> Explanation:
        """Explain ``r(prompt, response)``: from the explanation cache when set and it holds one, else :meth:`compute`."""
        cache = self.explanation_cache
        if cache is None:
            return self.compute(prompt, response, history, example_id)
        self.check_text(prompt, response)
        rm = self.rm
        key = explanation_key(
            rm.fingerprint,
            self.method,
            self.parameters(),
            prompt,
            response,
            history,
            getattr(rm, "max_length", None),
        )
        found = cache.get(key, example_id)
        if found is None:
            found = self.compute(prompt, response, history, example_id)
            cache.put(key, found)
        return found

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
    def check_text(prompt, response):
        """TypeError unless ``prompt`` and ``response`` are strings."""
        if not isinstance(prompt, str) or not isinstance(response, str):
            raise TypeError(
                f"prompt and response must be strings, got {type(prompt).__name__} and {type(response).__name__}"
            )


def word_level_explanation(
    method, words, spans, values, score, baseline, delta, prompt, response, example_id, info
) -> Explanation:
    """An :class:`Explanation` whose tokens are the response's words (occlusion, SHAP)."""
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
