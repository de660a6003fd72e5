"""SHAP: the Partition explainer with a ``shap.maskers.Text`` masker over the response's words (any RM).

Masked words are deleted (or replaced) in the original text and the RM rescores;
shap is imported when an explanation is made.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from workbench.audits.attribution._base import BaseExplainer, score_fn, word_level_explanation
from workbench.audits.attribution._words import delete_words, positive_int, response_words
from workbench.audits.attribution.explanation import Explanation
from workbench.models.loading import load_reward_model

__all__ = ["ShapExplainer"]


class _WordTokenizer:
    """A tokenizer for ``shap.maskers.Text``: white-space words, ids = word positions."""

    def __call__(self, s, return_offsets_mapping=True, **kwargs):
        _, spans = response_words(s)
        out = {"input_ids": list(range(len(spans)))}
        if return_offsets_mapping:
            out["offset_mapping"] = spans
        return out


class ShapExplainer(BaseExplainer):
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
        self.max_evals = positive_int(max_evals, "max_evals")
        self.batch_size = positive_int(batch_size, "batch_size")
        if not isinstance(replacement, str):
            raise TypeError(f"replacement must be a string, got {type(replacement).__name__}")
        self.replacement = replacement
        self.cache = cache

    def parameters(self) -> dict[str, Any]:
        return {"max_evals": self.max_evals, "batch_size": self.batch_size, "replacement": self.replacement}

    def compute(self, prompt: str, response: str, history=None, example_id: Any = None) -> Explanation:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PendingDeprecationWarning)  # shap's colormap setup at import
                import shap
        except ImportError as exc:  # pragma: no cover - optional dependency
            raise ImportError("ShapExplainer needs shap (pip install 'rm-audit-workbench[analysis]')") from exc

        self.check_text(prompt, response)
        start = time.perf_counter()
        words, spans = response_words(response)
        rescore = score_fn(self.rm, self.cache)
        n_evals = [0]

        def f(rows):
            rows = np.atleast_2d(np.asarray(rows))
            texts = [delete_words(response, spans, np.flatnonzero(row < 0), self.replacement) for row in rows]
            n_evals[0] += len(texts)
            return rescore([prompt] * len(texts), texts, [history] * len(texts))

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
        return word_level_explanation(
            self.method, words, spans, values, score, base, delta, prompt, response, example_id, info
        )
