"""Occlusion: delete one word at a time and rescore (model-agnostic, any RewardModel)."""

from __future__ import annotations

import time
from typing import Any

from workbench.audits.attribution._base import BaseExplainer, score_fn, word_level_explanation
from workbench.audits.attribution._words import delete_words, response_words
from workbench.audits.attribution.explanation import Explanation
from workbench.models.loading import load_reward_model

__all__ = ["OcclusionExplainer"]


class OcclusionExplainer(BaseExplainer):
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

    def parameters(self) -> dict[str, Any]:
        return {"replacement": self.replacement}

    def compute(self, prompt: str, response: str, history=None, example_id: Any = None) -> Explanation:
        self.check_text(prompt, response)
        start = time.perf_counter()
        words, spans = response_words(response)
        texts = [response] + [delete_words(response, spans, [i], self.replacement) for i in range(len(words))]
        scores = score_fn(self.rm, self.cache)([prompt] * len(texts), texts, [history] * len(texts))
        values = scores[0] - scores[1:]
        info = {
            "model": self.rm.name,
            "fingerprint": self.rm.fingerprint,
            "replacement": self.replacement,
            "n_evals": len(texts),
            "history": history,
            "seconds": time.perf_counter() - start,
        }
        return word_level_explanation(
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
