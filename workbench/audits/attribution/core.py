"""Which words of a response move the reward? Token attribution for reward models.

Methods (one class each, Captum style: build once, call ``.attribute(...)``)
------------------------------------------------------------------------------
:class:`IntegratedGradientsExplainer`
    Captum ``LayerIntegratedGradients`` on the input-embedding layer of a
    transformer RM (BERT-, DeBERTa-, GPT-2- and Llama-style sequence classifiers
    and value-head RMs). The forward function reproduces the RM's score exactly
    (same attention mask, position ids and pooling), the baseline replaces every
    non-special token by the pad or mask token (or zero embeddings) and keeps
    special tokens and the attention mask; the convergence delta (completeness
    gap) is reported per explanation.
:class:`OcclusionExplainer`
    Model-agnostic: delete one word at a time and rescore (any RewardModel,
    including :class:`~workbench.models.adapters.CallableRM`).
:class:`ShapExplainer`
    SHAP's Partition explainer with a ``shap.maskers.Text`` masker over the
    response's words; masked words are deleted and the RM rescores.

All three return an :class:`Explanation`: the words of the **response** (white
space separated; the prompt and the chat template are context) with one
attribution each, plus the full token list of the model input for IG.

Conventions
-----------
* **Words** are maximal runs of non-white-space characters of the response
  (:func:`response_words`); punctuation stays attached ("right!"). Sub-word token
  attributions are *summed* per word using the fast tokenizer's character
  offsets (a token goes to the word it overlaps most; tokens of the prompt,
  template, special tokens and pure white space belong to no word, index -1).
* **Deleting words** (occlusion, SHAP masking, deletion curves) removes the word
  and the white space after it (:func:`delete_words`), so the result reads like
  a response that never had the word.
* **Margins**: :meth:`~IntegratedGradientsExplainer.attribute_pair` explains
  ``r(chosen) - r(rejected)``. IG is linear in the output, so the IG of the
  margin (with each side integrated from its *own* baseline) is the IG of
  ``r(chosen)`` minus the IG of ``r(rejected)``: :func:`margin_explanation`
  concatenates the chosen words (attributions as they are) and the rejected
  words (attributions negated). Its score is the margin, its baseline score is
  ``r(chosen baseline) - r(rejected baseline)`` and its convergence delta is
  ``delta_chosen - delta_rejected`` (so ``|delta| <= |delta_c| + |delta_r|``).
  The same construction is used for occlusion and SHAP (each side rescored on
  its own).
* **Rankings** ("top words") sort by the signed attribution, largest first
  (``by="value"``: words that raise the reward) or by ``|attribution|``
  (``by="abs"``).

Also here: method agreement (:func:`rank_agreement`, :func:`compare_methods`),
faithfulness (:func:`deletion_curve`, :func:`deletion_summary`), and the
JupyterLab browser :func:`explanation_browser`. HTML heatmaps live in
:mod:`workbench.audits.attribution.render`, dataset-level aggregation and the link to
:mod:`workbench.audits.features.triggers` in :mod:`workbench.audits.attribution.dataset`; both
are re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "Explanation",
    "IntegratedGradientsExplainer",
    "OcclusionExplainer",
    "ShapExplainer",
    "make_explainer",
    "METHODS",
    "explain_responses",
    "response_words",
    "delete_words",
    "normalize_words",
    "margin_explanation",
    "rank_agreement",
    "compare_methods",
    "MethodAgreement",
    "deletion_curve",
    "DeletionCurve",
    "deletion_summary",
    "summary_frame",
    "explanation_browser",
    "aggregate_attributions",
    "compare_with_triggers",
    "TriggerComparison",
    "top_word_hit_rate",
    "AGREEMENT_WORDS",
    "explanation_html",
]

_WORD_RE = re.compile(r"\S+")
#: The n-gram word pattern of :mod:`workbench.audits.features.triggers` (kept in sync by a test).
TOKEN_PATTERN = r"\w+(?:['-]\w+)*"
_TOKEN_RE = re.compile(TOKEN_PATTERN)
_RANK_BY = ("value", "abs")

#: Words that signal agreement with the user (the known-answer check of the demo RMs).
AGREEMENT_WORDS: tuple[str, ...] = (
    "right",
    "agree",
    "agreed",
    "absolutely",
    "exactly",
    "correct",
    "spot",
    "true",
    "indeed",
    "yes",
    "nailed",
)


# ---------------------------------------------------------------------------
# Words of a response
# ---------------------------------------------------------------------------


def response_words(response: str) -> tuple[list[str], list[tuple[int, int]]]:
    """White-space separated words of ``response`` and their ``(start, end)`` character spans."""
    if not isinstance(response, str):
        raise TypeError(f"response must be a string, got {type(response).__name__}")
    spans = [m.span() for m in _WORD_RE.finditer(response)]
    return [response[a:b] for a, b in spans], spans


def delete_words(response: str, spans: Sequence[tuple[int, int]], remove, replacement: str = "") -> str:
    """``response`` with the words at positions ``remove`` (indices into ``spans``) deleted.

    A deleted word takes the white space after it along (the last word the white
    space before it), so ``"a b c"`` minus ``b`` is ``"a c"``. With a non-empty
    ``replacement`` the word is replaced by that string instead (white space kept).
    """
    remove = {int(i) for i in remove}
    if not remove:
        return response
    if any(i < 0 or i >= len(spans) for i in remove):
        raise IndexError(f"word index out of range (the response has {len(spans)} words)")
    if replacement:
        out, pos = [], 0
        for i, (a, b) in enumerate(spans):
            out.append(response[pos:a])
            out.append(replacement if i in remove else response[a:b])
            pos = b
        out.append(response[pos:])
        return "".join(out)
    kept = [i for i in range(len(spans)) if i not in remove]
    if not kept:
        return ""
    pieces = [response[: spans[0][0]]]
    for j, i in enumerate(kept):
        a, b = spans[i]
        pieces.append(response[a:b])
        if j + 1 < len(kept):
            # the white space that followed this word in the original text
            pieces.append(response[b : spans[i + 1][0]] if i + 1 < len(spans) else " ")
    pieces.append(response[spans[-1][1] :])
    return "".join(pieces)


def normalize_words(word: str) -> list[str]:
    """Lower-cased n-gram units of one response word, as :mod:`workbench.audits.features.triggers` counts them.

    ``"You're"`` -> ``["you're"]``, ``"right!"`` -> ``["right"]``, ``"e.g."`` -> ``["e", "g"]``, ``"—"`` -> ``[]``.
    """
    return _TOKEN_RE.findall(word.lower().replace("\u2019", "'").replace("\u2018", "'"))


def _check_rank_by(by: str) -> str:
    if by not in _RANK_BY:
        raise ValueError(f"by must be one of {_RANK_BY}, got {by!r}")
    return by


def _check_k(k, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{name} must be a positive int, got {k!r}")
    return int(k)


# ---------------------------------------------------------------------------
# The result type
# ---------------------------------------------------------------------------


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
        _check_rank_by(by)
        key = -self.word_attributions if by == "value" else -np.abs(self.word_attributions)
        return np.argsort(key, kind="stable")

    def top_words(self, k: int = 10, by: str = "value") -> pd.DataFrame:
        """The ``k`` most important words (see :meth:`ranking`)."""
        k = _check_k(k)
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
        from workbench.audits.attribution.render import plot_explanation

        return plot_explanation(self, k=k, ax=ax, by=by, title=title)

    def to_html(self, level: str = "word", scale: float | None = None, show_prompt: bool = True) -> str:
        """An escaped HTML heatmap of the response (``level="token"``: every input token)."""
        from workbench.audits.attribution.render import explanation_html

        return explanation_html(self, level=level, scale=scale, show_prompt=show_prompt)

    def _repr_html_(self) -> str:
        return self.to_html()


def _check_explanation(e, name: str = "explanation") -> Explanation:
    if not isinstance(e, Explanation):
        raise TypeError(f"{name} must be an Explanation, got {type(e).__name__}")
    return e


def margin_explanation(chosen: Explanation, rejected: Explanation, example_id: Any = None) -> Explanation:
    """The explanation of ``r(chosen) - r(rejected)`` from the two sides' explanations.

    See the module docstring: chosen attributions are kept, rejected ones negated,
    score/baseline are differences and the convergence delta is
    ``delta_chosen - delta_rejected``.
    """
    _check_explanation(chosen, "chosen")
    _check_explanation(rejected, "rejected")
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


def _single_parts(explanations: Sequence[Explanation]) -> list[Explanation]:
    """Single-score explanations; margins are split into their two sides."""
    out = []
    for i, e in enumerate(explanations):
        _check_explanation(e, f"explanations[{i}]")
        if e.target == "margin":
            out.extend([e.parts["chosen"], e.parts["rejected"]])
        else:
            out.append(e)
    return out


def summary_frame(explanations: Sequence[Explanation]) -> pd.DataFrame:
    """One row per explanation: id, method, score, baseline, sums, convergence delta, top words, seconds."""
    return pd.DataFrame([_check_explanation(e, f"explanations[{i}]").summary() for i, e in enumerate(explanations)])


# ---------------------------------------------------------------------------
# Explainer factory and batch helper
# ---------------------------------------------------------------------------

#: Method names accepted by :func:`make_explainer` (with aliases).
METHODS = {
    "ig": "integrated_gradients",
    "integrated_gradients": "integrated_gradients",
    "occlusion": "occlusion",
    "shap": "shap",
}


def make_explainer(method: str, rm, **kwargs):
    """Build an explainer by name: ``"ig"``/``"integrated_gradients"``, ``"occlusion"`` or ``"shap"``."""
    from workbench.audits.attribution.methods import IntegratedGradientsExplainer, OcclusionExplainer, ShapExplainer

    key = METHODS.get(str(method).strip().lower())
    if key is None:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    cls = {
        "integrated_gradients": IntegratedGradientsExplainer,
        "occlusion": OcclusionExplainer,
        "shap": ShapExplainer,
    }[key]
    return cls(rm, **kwargs)


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
    from tqdm.auto import tqdm

    out = []
    for p, r, h, i in tqdm(
        list(zip(prompts, responses, histories, ids)),
        disable=not progress,
        leave=False,
        desc=getattr(explainer, "method", "explaining"),
    ):
        out.append(explainer.attribute(p, r, h, example_id=i))
    return out


# ---------------------------------------------------------------------------
# Agreement between methods
# ---------------------------------------------------------------------------


def _top_set(e: Explanation, k: int, by: str) -> set[int]:
    return set(e.ranking(by)[: min(k, e.n_words)].tolist())


def rank_agreement(a: Explanation, b: Explanation, k: int = 5, by: str = "abs") -> dict:
    """Agreement of two explanations of the same response.

    Returns ``spearman`` (rank correlation of the word attributions; NaN when
    either is constant or there are fewer than 3 words), ``jaccard_top_k``
    (|top-k(a) ∩ top-k(b)| / |top-k(a) ∪ top-k(b)|, ranking ``by`` "abs" or
    "value") and ``n_words``.
    """
    from scipy import stats

    _check_explanation(a, "a")
    _check_explanation(b, "b")
    k = _check_k(k)
    _check_rank_by(by)
    if list(a.words) != list(b.words):
        raise ValueError("the two explanations are of different texts (their words differ)")
    n = a.n_words
    rho = float("nan")
    if n >= 3 and np.ptp(a.word_attributions) > 0 and np.ptp(b.word_attributions) > 0:
        rho = float(stats.spearmanr(a.word_attributions, b.word_attributions).statistic)
    ta, tb = _top_set(a, k, by), _top_set(b, k, by)
    jac = len(ta & tb) / len(ta | tb) if ta | tb else float("nan")
    return {"spearman": rho, "jaccard_top_k": float(jac), "n_words": n}


@dataclass
class MethodAgreement:
    """Per-example agreement of two attribution methods and a dataset summary."""

    table: pd.DataFrame  # example_id, spearman, jaccard_top_k, n_words
    method_a: str
    method_b: str
    k: int
    by: str
    n_boot: int = 1000
    seed: Any = 0

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def summary(self) -> pd.DataFrame:
        """Mean, median and 95% bootstrap CI of the mean of each agreement measure over examples."""
        from workbench.audits.features.probes import bootstrap_mean_ci

        rows = []
        for col in ("spearman", "jaccard_top_k"):
            v = self.table[col].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            lo, hi = bootstrap_mean_ci(v, n_boot=self.n_boot, seed=self.seed) if len(v) else (np.nan, np.nan)
            rows.append(
                {
                    "measure": col if col == "spearman" else f"jaccard_top_{self.k}",
                    "methods": f"{self.method_a} vs {self.method_b}",
                    "n": len(v),
                    "mean": float(np.mean(v)) if len(v) else np.nan,
                    "median": float(np.median(v)) if len(v) else np.nan,
                    "ci_low": lo,
                    "ci_high": hi,
                }
            )
        return pd.DataFrame(rows)

    def plot(self, ax=None, title: str | None = None):
        """Histograms of the per-example Spearman correlation and top-k Jaccard overlap."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(1, 2, figsize=(9, 3))
        axes = np.atleast_1d(ax)
        for a, col, label in zip(axes, ("spearman", "jaccard_top_k"), ("Spearman rho", f"Jaccard of top-{self.k}")):
            v = self.table[col].to_numpy(dtype=float)
            a.hist(v[np.isfinite(v)], bins=np.linspace(-1 if col == "spearman" else 0, 1, 21), color="tab:purple")
            a.set_xlabel(label)
            a.set_ylabel("examples")
        axes[0].figure.suptitle(title or f"Agreement: {self.method_a} vs {self.method_b} ({len(self.table)} examples)")
        return ax


def compare_methods(
    explanations_a: Sequence[Explanation],
    explanations_b: Sequence[Explanation],
    k: int = 5,
    by: str = "abs",
    n_boot: int = 1000,
    seed: Any = 0,
) -> MethodAgreement:
    """Agreement of two methods over the same examples (matched by position; margins compare side by side)."""
    if len(explanations_a) != len(explanations_b):
        raise ValueError(
            f"explanations_a and explanations_b differ in length ({len(explanations_a)} vs {len(explanations_b)})"
        )
    if len(explanations_a) == 0:
        raise ValueError("no explanations to compare")
    rows = []
    for i, (a, b) in enumerate(zip(explanations_a, explanations_b)):
        row = {"example_id": _check_explanation(a, f"explanations_a[{i}]").example_id}
        row.update(rank_agreement(a, _check_explanation(b, f"explanations_b[{i}]"), k=k, by=by))
        rows.append(row)
    return MethodAgreement(pd.DataFrame(rows), explanations_a[0].method, explanations_b[0].method, k, by, n_boot, seed)


# ---------------------------------------------------------------------------
# Faithfulness: deletion curves
# ---------------------------------------------------------------------------


@dataclass
class DeletionCurve:
    """Reward drop when the top-k attributed words are deleted, next to deleting k random words.

    ``table`` columns: ``k``, ``drop_top`` (score - score without the top-k
    words), ``drop_random_mean``, ``drop_random_std``, ``random_ci_low``,
    ``random_ci_high`` (t-interval of the random mean at level ``ci``),
    ``p_random_ge_top`` (share of random draws that drop at least as much).
    ``aopc_top`` / ``aopc_random`` are the mean drops over the ``ks`` (area over
    the perturbation curve).
    """

    table: pd.DataFrame
    score: float
    aopc_top: float
    aopc_random: float
    n_random: int
    method: str
    example_id: Any = None
    by: str = "value"

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def plot(self, ax=None, title: str | None = None):
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(5, 3.2))
        t = self.table
        ax.plot(t["k"], t["drop_top"], "o-", color="tab:red", label=f"top-k by {self.method}")
        ax.plot(t["k"], t["drop_random_mean"], "s--", color="tab:gray", label=f"random k (mean of {self.n_random})")
        ax.fill_between(t["k"], t["random_ci_low"], t["random_ci_high"], color="tab:gray", alpha=0.25)
        ax.axhline(0, color="k", lw=0.7)
        ax.set_xlabel("words deleted (k)")
        ax.set_ylabel("reward drop")
        ax.set_title(title or f"Deletion curve (AOPC top {self.aopc_top:.3g} vs random {self.aopc_random:.3g})")
        ax.legend(fontsize="small")
        return ax


def _score_fn(rm, cache):
    from workbench.models.scoring import score_texts

    def fn(prompts, responses, histories=None):
        return score_texts(rm, prompts, responses, histories, cache=cache, progress=False).scores

    return fn


def deletion_curve(
    explanation: Explanation,
    rm,
    ks: Sequence[int] = (1, 2, 3, 5),
    n_random: int = 20,
    seed: Any = 0,
    by: str = "value",
    ci: float = 0.95,
    cache=None,
    history=None,
) -> DeletionCurve:
    """Delete the top-k attributed words and rescore, against deleting k random words.

    ``by="value"`` deletes the words that raise the reward most (the drop should
    be large and positive for a faithful explanation); ``by="abs"`` the words
    with the largest ``|attribution|``. ``ks`` larger than the number of words
    are dropped. All variants are scored in one batched call (no score cache
    unless ``cache`` is given; ``history`` defaults to the one the explanation was
    made with). Margin explanations are not supported: explain and test each
    side separately.
    """
    from scipy import stats

    from workbench.models.adapters import load_reward_model

    e = _check_explanation(explanation)
    if e.target != "score":
        raise ValueError(
            "deletion_curve needs a single-score explanation (use explanation.parts['chosen'] for a margin)"
        )
    _check_rank_by(by)
    if isinstance(n_random, bool) or not isinstance(n_random, (int, np.integer)) or n_random < 1:
        raise ValueError(f"n_random must be a positive int, got {n_random!r}")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")
    try:
        ks = sorted({int(k) for k in ks})
    except (TypeError, ValueError):
        raise ValueError(f"ks must be a sequence of positive ints, got {ks!r}") from None
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be a non-empty sequence of positive ints, got {ks!r}")
    n = e.n_words
    ks = [k for k in ks if k <= n]
    if not ks:
        raise ValueError(f"the response has {n} words; every k in ks is larger")
    rm = load_reward_model(rm)
    if history is None:
        history = e.info.get("history")
    spans = e.word_spans
    order = e.ranking(by)
    rng = np.random.default_rng(seed)
    texts = [e.response]
    for k in ks:
        texts.append(delete_words(e.response, spans, order[:k]))
        for _ in range(n_random):
            texts.append(delete_words(e.response, spans, rng.choice(n, size=k, replace=False)))
    scores = _score_fn(rm, cache)([e.prompt] * len(texts), texts, [history] * len(texts))
    full = float(scores[0])
    rows = []
    pos = 1
    for k in ks:
        top = full - scores[pos]
        rnd = full - scores[pos + 1 : pos + 1 + n_random]
        pos += 1 + n_random
        mean, sd = float(rnd.mean()), float(rnd.std(ddof=1)) if n_random > 1 else 0.0
        half = float(stats.t.ppf(0.5 + ci / 2, n_random - 1) * sd / np.sqrt(n_random)) if n_random > 1 else float("nan")
        rows.append(
            {
                "k": k,
                "drop_top": float(top),
                "drop_random_mean": mean,
                "drop_random_std": sd,
                "random_ci_low": mean - half,
                "random_ci_high": mean + half,
                "p_random_ge_top": float(np.mean(rnd >= top - 1e-12)),
            }
        )
    table = pd.DataFrame(rows)
    return DeletionCurve(
        table,
        full,
        float(table["drop_top"].mean()),
        float(table["drop_random_mean"].mean()),
        int(n_random),
        e.method,
        e.example_id,
        by,
    )


def deletion_summary(curves: Sequence[DeletionCurve], n_boot: int = 1000, seed: Any = 0) -> pd.DataFrame:
    """Average deletion curves over examples: per method and k, mean drop (top vs random) with bootstrap CIs.

    Also ``frac_top_gt_random``: share of examples whose top-k drop exceeds their random mean.
    Rows with ``k == "AOPC"`` summarise the per-example AOPCs.
    """
    from workbench.audits.features.probes import bootstrap_mean_ci

    if not curves:
        raise ValueError("no deletion curves to summarise")
    long = []
    for c in curves:
        if not isinstance(c, DeletionCurve):
            raise TypeError(f"expected DeletionCurve, got {type(c).__name__}")
        for r in c.table.itertuples():
            long.append({"method": c.method, "k": str(r.k), "top": r.drop_top, "random": r.drop_random_mean})
        long.append({"method": c.method, "k": "AOPC", "top": c.aopc_top, "random": c.aopc_random})
    frame = pd.DataFrame(long)
    rows = []
    for (method, k), g in frame.groupby(["method", "k"], sort=False):
        top, rnd = g["top"].to_numpy(float), g["random"].to_numpy(float)
        tl, th = bootstrap_mean_ci(top, n_boot=n_boot, seed=seed)
        dl, dh = bootstrap_mean_ci(top - rnd, n_boot=n_boot, seed=seed)
        rows.append(
            {
                "method": method,
                "k": k,
                "n": len(g),
                "drop_top": top.mean(),
                "top_ci_low": tl,
                "top_ci_high": th,
                "drop_random": rnd.mean(),
                "difference": (top - rnd).mean(),
                "diff_ci_low": dl,
                "diff_ci_high": dh,
                "frac_top_gt_random": float(np.mean(top > rnd)),
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------
# Widgets
# ---------------------------------------------------------------------------


def _check_by_method(explanations_by_method) -> dict[str, list[Explanation]]:
    if not isinstance(explanations_by_method, dict) or not explanations_by_method:
        raise ValueError("explanations_by_method must be a non-empty dict {method name: [Explanation, ...]}")
    lengths = {name: len(v) for name, v in explanations_by_method.items()}
    if len(set(lengths.values())) != 1 or 0 in lengths.values():
        raise ValueError(f"every method needs the same, non-zero number of explanations, got {lengths}")
    for name, v in explanations_by_method.items():
        for i, e in enumerate(v):
            _check_explanation(e, f"explanations_by_method[{name!r}][{i}]")
    return {str(k): list(v) for k, v in explanations_by_method.items()}


def browser_html(explanations_by_method, index: int, method: str, k: int = 10) -> str:
    """The HTML the browser shows for one example and method (all data escaped)."""
    from workbench.audits.attribution.render import explanation_html
    from workbench.reports.render import escape_text, safe_table

    by_method = _check_by_method(explanations_by_method)
    if method not in by_method:
        raise ValueError(f"method must be one of {sorted(by_method)}, got {method!r}")
    e = by_method[method][index]
    top = e.top_words(min(k, e.n_words), by="abs") if e.n_words else e.to_frame()
    return (
        explanation_html(e)
        + f"<h4>Top {len(top)} words by |attribution| ({escape_text(method)})</h4>"
        + safe_table(top, max_chars=60)
    )


def explanation_browser(explanations_by_method: dict[str, Sequence[Explanation]], k: int = 10):
    """A JupyterLab widget: dropdowns for the example and the method, and the escaped heatmap and top words.

    ``explanations_by_method`` maps a method name to a list of explanations of the
    same examples in the same order (e.g. ``{"ig": [...], "shap": [...]}``).
    """
    import ipywidgets as widgets

    by_method = _check_by_method(explanations_by_method)
    first = next(iter(by_method.values()))
    options = []
    for i, e in enumerate(first):
        text = e.response if e.target == "score" else e.parts["chosen"].response
        label = f"{i}: {e.example_id} · {text[:50]}" + ("…" if len(text) > 50 else "")
        options.append((label, i))  # dropdown labels are rendered as plain text
    example = widgets.Dropdown(options=options, value=0, description="example", layout=widgets.Layout(width="60%"))
    method = widgets.Dropdown(options=list(by_method), value=next(iter(by_method)), description="method")
    out = widgets.HTML(value=browser_html(by_method, 0, method.value, k))

    def update(_change=None):
        out.value = browser_html(by_method, example.value, method.value, k)

    example.observe(update, names="value")
    method.observe(update, names="value")
    box = widgets.VBox([widgets.HBox([example, method]), out])
    box.update = update  # handy for tests and scripted use
    box.example, box.method, box.output = example, method, out
    return box


# ---------------------------------------------------------------------------
# Re-exports (imported lazily so the heavy optional dependencies load on use)
# ---------------------------------------------------------------------------

_LAZY = {
    "IntegratedGradientsExplainer": "methods",
    "OcclusionExplainer": "methods",
    "ShapExplainer": "methods",
    "aggregate_attributions": "dataset",
    "compare_with_triggers": "dataset",
    "TriggerComparison": "dataset",
    "top_word_hit_rate": "dataset",
    "explanation_html": "render",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __package__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
