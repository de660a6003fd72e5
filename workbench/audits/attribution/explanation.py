"""The result type of every attribution method: :class:`Explanation`, and how margins are built from it.

An :class:`Explanation` holds the words of the **response** (white-space
separated; the prompt and the chat template are context, see
:mod:`workbench.audits.attribution._words`) with one attribution each, plus the
full token list of the model input for integrated gradients. Sub-word token
attributions are *summed* per word using the fast tokenizer's character offsets
(a token goes to the word it overlaps most; tokens of the prompt, template,
special tokens and pure white space belong to no word, index -1).

**Margins**: an explainer's ``attribute_pair`` explains ``r(chosen) - r(rejected)``.
IG is linear in the output, so the IG of the margin (with each side integrated
from its *own* baseline) is the IG of ``r(chosen)`` minus the IG of
``r(rejected)``: :func:`margin_explanation` concatenates the chosen words
(attributions as they are) and the rejected words (attributions negated). Its
score is the margin, its baseline score is ``r(chosen baseline) - r(rejected
baseline)`` and its convergence delta is ``delta_chosen - delta_rejected`` (so
``|delta| <= |delta_c| + |delta_r|``). The same construction is used for
occlusion and SHAP (each side rescored on its own).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.audits.attribution._words import check_k, check_rank_by
from workbench.audits.attribution.render import heatmap_html, plot_top_words

__all__ = [
    "Explanation",
    "check_explanation",
    "explanation_html",
    "margin_explanation",
    "single_parts",
    "summary_frame",
]


@dataclass
class Explanation:
    """Attribution of one reward (or one pair's margin) to the words of the response.

    Attributes
    ----------
    method : str
        ``"integrated_gradients"``, ``"occlusion"`` or ``"shap"``.
    words, word_spans, word_attributions
        The response's white-space words, their character spans in the response
        and one attribution per word (sum of its tokens' attributions for IG).
    score : float
        The reward of the response (``target="score"``) or the margin
        ``r(chosen) - r(rejected)`` (``target="margin"``).
    baseline_score : float
        The reward at the reference input: the IG baseline, SHAP's all-masked
        response, or NaN (occlusion).
    convergence_delta : float
        Completeness gap ``sum(all token attributions) - (score - baseline_score)``
        (IG: Captum's convergence delta; SHAP: its efficiency gap; NaN for occlusion).
    tokens, token_attributions, token_word
        The full token list of the model input (prompt and template included) for
        IG; for the word-level methods the tokens are the words themselves.
        ``token_word[i]`` is the index of the response word token ``i`` belongs to
        (-1: prompt, template, special token or white space).
    side : array of str or None
        For margins: ``"chosen"`` or ``"rejected"`` per word (rejected attributions
        are already negated, so every value is a contribution to the margin).
    parts : dict
        For margins: the single-score explanations ``{"chosen": .., "rejected": ..}``.
    info : dict
        Settings and bookkeeping (model, n_steps, baseline, seconds, truncated ...).
    """

    method: str
    words: list[str]
    word_attributions: np.ndarray
    score: float
    word_spans: list[tuple[int, int]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    token_attributions: np.ndarray = field(default_factory=lambda: np.zeros(0))
    token_word: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    baseline_score: float = float("nan")
    convergence_delta: float = float("nan")
    prompt: str = ""
    response: str = ""
    target: str = "score"
    side: np.ndarray | None = None
    parts: dict = field(default_factory=dict)
    example_id: Any = None
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        self.word_attributions = np.asarray(self.word_attributions, dtype=np.float64).reshape(-1)
        self.token_attributions = np.asarray(self.token_attributions, dtype=np.float64).reshape(-1)
        self.token_word = np.asarray(self.token_word, dtype=np.int64).reshape(-1)
        if len(self.word_attributions) != len(self.words):
            raise ValueError(f"{len(self.words)} words but {len(self.word_attributions)} word attributions")
        if len(self.token_attributions) != len(self.tokens) or len(self.token_word) != len(self.tokens):
            raise ValueError("tokens, token_attributions and token_word must have the same length")

    # -- views ---------------------------------------------------------------

    @property
    def n_words(self) -> int:
        return len(self.words)

    @property
    def total_attribution(self) -> float:
        """Sum of all token attributions (prompt and template tokens included)."""
        return float(self.token_attributions.sum())

    @property
    def response_attribution(self) -> float:
        """Sum of the response words' attributions."""
        return float(self.word_attributions.sum())

    def ranking(self, by: str = "value") -> np.ndarray:
        """Word indices, most important first (ties keep text order)."""
        check_rank_by(by)
        key = -self.word_attributions if by == "value" else -np.abs(self.word_attributions)
        return np.argsort(key, kind="stable")

    def top_words(self, k: int = 10, by: str = "value") -> pd.DataFrame:
        """The ``k`` most important words (see :meth:`ranking`)."""
        k = check_k(k)
        return self.to_frame().set_index("position").loc[self.ranking(by)[:k]].reset_index()

    def to_frame(self) -> pd.DataFrame:
        """One row per response word: position, word, attribution, rank (by value), side (margins)."""
        rank = np.empty(self.n_words, dtype=int)
        rank[self.ranking("value")] = np.arange(1, self.n_words + 1)
        frame = pd.DataFrame(
            {
                "position": np.arange(self.n_words),
                "word": list(self.words),
                "attribution": self.word_attributions,
                "rank": rank,
            }
        )
        if self.side is not None:
            frame["side"] = list(self.side)
        return frame

    def token_frame(self) -> pd.DataFrame:
        """One row per model-input token: position, token, attribution, word index (-1 = context)."""
        return pd.DataFrame(
            {
                "position": np.arange(len(self.tokens)),
                "token": list(self.tokens),
                "attribution": self.token_attributions,
                "word": self.token_word,
            }
        )

    def summary(self) -> dict:
        top = self.top_words(min(5, self.n_words)) if self.n_words else pd.DataFrame({"word": []})
        return {
            "example_id": self.example_id,
            "method": self.method,
            "target": self.target,
            "score": self.score,
            "baseline_score": self.baseline_score,
            "sum_attributions": self.total_attribution,
            "sum_response": self.response_attribution,
            "convergence_delta": self.convergence_delta,
            "n_words": self.n_words,
            "top_words": " | ".join(top["word"]),
            "seconds": self.info.get("seconds", float("nan")),
        }

    # -- display -------------------------------------------------------------

    def plot(self, k: int = 10, ax=None, by: str = "abs", title: str | None = None):
        """Horizontal bars of the ``k`` most important words (red raises the reward, blue lowers it)."""
        return plot_top_words(self, k=k, ax=ax, by=by, title=title)

    def to_html(self, level: str = "word", scale: float | None = None, show_prompt: bool = True) -> str:
        """An escaped HTML heatmap of the response (``level="token"``: every input token)."""
        return heatmap_html(self, level=level, scale=scale, show_prompt=show_prompt)

    def _repr_html_(self) -> str:
        return self.to_html()


def check_explanation(e, name: str = "explanation") -> Explanation:
    """``e`` if it is an :class:`Explanation`, else a TypeError naming ``name``."""
    if not isinstance(e, Explanation):
        raise TypeError(f"{name} must be an Explanation, got {type(e).__name__}")
    return e


def explanation_html(e, level: str = "word", scale: float | None = None, show_prompt: bool = True) -> str:
    """An HTML heatmap of an explanation (escaped; safe to display untrusted text).

    ``level="word"`` colours the response's words in the original text;
    ``level="token"`` colours every model-input token (prompt and template
    included, IG only meaningfully). Margin explanations show the chosen and the
    rejected response, each coloured by its contribution to the margin.
    """
    if not isinstance(e, Explanation):
        raise TypeError(f"expected an Explanation, got {type(e).__name__}")
    return heatmap_html(e, level=level, scale=scale, show_prompt=show_prompt)


def margin_explanation(chosen: Explanation, rejected: Explanation, example_id: Any = None) -> Explanation:
    """The explanation of ``r(chosen) - r(rejected)`` from the two sides' explanations.

    See the module docstring: chosen attributions are kept, rejected ones negated,
    score/baseline are differences and the convergence delta is
    ``delta_chosen - delta_rejected``.
    """
    check_explanation(chosen, "chosen")
    check_explanation(rejected, "rejected")
    if chosen.target != "score" or rejected.target != "score":
        raise ValueError("margin_explanation needs two single-score explanations")
    if chosen.method != rejected.method:
        raise ValueError(f"both sides must use the same method, got {chosen.method!r} and {rejected.method!r}")
    n_c = chosen.n_words
    shifted = np.where(rejected.token_word >= 0, rejected.token_word + n_c, -1)
    info = {k: v for k, v in chosen.info.items() if k != "seconds"}
    info["seconds"] = chosen.info.get("seconds", 0.0) + rejected.info.get("seconds", 0.0)
    info["delta_bound"] = abs(chosen.convergence_delta) + abs(rejected.convergence_delta)
    return Explanation(
        method=chosen.method,
        words=list(chosen.words) + list(rejected.words),
        word_attributions=np.concatenate([chosen.word_attributions, -rejected.word_attributions]),
        score=chosen.score - rejected.score,
        word_spans=list(chosen.word_spans) + list(rejected.word_spans),
        tokens=list(chosen.tokens) + list(rejected.tokens),
        token_attributions=np.concatenate([chosen.token_attributions, -rejected.token_attributions]),
        token_word=np.concatenate([chosen.token_word, shifted]),
        baseline_score=chosen.baseline_score - rejected.baseline_score,
        convergence_delta=chosen.convergence_delta - rejected.convergence_delta,
        prompt=chosen.prompt,
        response="",
        target="margin",
        side=np.array(["chosen"] * n_c + ["rejected"] * rejected.n_words, dtype=object),
        parts={"chosen": chosen, "rejected": rejected},
        example_id=example_id if example_id is not None else chosen.example_id,
        info=info,
    )


def single_parts(explanations: Sequence[Explanation]) -> list[Explanation]:
    """Single-score explanations; margins are split into their two sides."""
    out = []
    for i, e in enumerate(explanations):
        check_explanation(e, f"explanations[{i}]")
        if e.target == "margin":
            out.extend([e.parts["chosen"], e.parts["rejected"]])
        else:
            out.append(e)
    return out


def summary_frame(explanations: Sequence[Explanation]) -> pd.DataFrame:
    """One row per explanation: id, method, score, baseline, sums, convergence delta, top words, seconds."""
    return pd.DataFrame([check_explanation(e, f"explanations[{i}]").summary() for i, e in enumerate(explanations)])
