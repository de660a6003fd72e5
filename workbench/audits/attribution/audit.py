"""The one-call attribution audit: explain sampled responses with several methods and compare them.

:func:`attribution_audit` runs what notebook 03 shows: explanations per method,
the margin of one pair, method agreement, deletion curves (faithfulness),
dataset-level phrase attributions joined with trigger mining, and the
known-answer check on agreement words. It returns an :class:`AttributionAudit`
(the :class:`~workbench.audits.result.AuditResult` contract).

One check is graded (family ``"attribution"``): **deletion-curve faithfulness**, the mean
over explained responses of the reward drop from deleting the top-k attributed words
minus the drop from deleting k random words (averaged over k, AOPC), in SDs of the
explained responses' rewards (:func:`~workbench.audits.attribution.faithfulness.faithfulness_effect`),
with a bootstrap interval that resamples prompts (or the data's topic/group column).
Harmful direction: lower (an attribution should beat random deletion); margins
:data:`FAITHFULNESS_MARGINS`. The primary (first) method's check decides the family;
the other methods' checks are shown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from workbench._utils.plotting import ensure_ax
from workbench._utils.stats import cluster_labels, unit_name
from workbench.audits.attribution.agreement import MethodAgreement, compare_methods
from workbench.audits.attribution.browser import explanation_browser
from workbench.audits.attribution.cache import ExplanationCache
from workbench.audits.attribution.dataset import (
    TriggerComparison,
    aggregate_attributions,
    compare_with_triggers,
    hit_rates_by_group,
)
from workbench.audits.attribution.explanation import Explanation, margin_explanation, summary_frame
from workbench.audits.attribution.factory import make_explainer
from workbench.audits.attribution.faithfulness import (
    DEFAULT_KS,
    DeletionCurve,
    deletion_curve,
    deletion_summary,
    faithfulness_effect,
    plot_deletion_summary,
)
from workbench.audits.features.triggers import mine_triggers
from workbench.audits.result import AuditResult
from workbench.models.adapters import TransformerRM
from workbench.models.cache import ScoreCache
from workbench.models.loading import load_reward_model
from workbench.models.scoring import score_pairs
from workbench.reports.verdicts import Verdict, graded_verdict, verdict_table

__all__ = ["FAITHFULNESS_EXAMPLES", "FAITHFULNESS_MARGINS", "SIDES", "AttributionAudit", "attribution_audit"]

#: ``(warn, fail)`` of the faithfulness effect (SDs of reward, harmful when low): fail when the
#: interval lies below 0 (the attributed words matter less than random words), warn when it
#: lies below 0.05 SD (no better than random in practice), pass when it lies above 0.05 SD.
#: Random attributions (effect 0) never pass.
FAITHFULNESS_MARGINS = (0.05, 0.0)

#: Responses in the graded faithfulness check by default (the primary method's; see ``explain_pairs``).
#: Measured on demo-clean's IG (demo data with links and certainty openers, samples drawn with
#: seeds 0 to 3): with 20 responses the estimate ran from 0.11 to 0.19 SD and the lower 95% bound
#: from 0.036 to 0.11 (seed 0 of notebook 03's sample: 0.11, CI 0.036 to 0.18, inconclusive);
#: with 40 responses (26 to 30 topics) 0.14 to 0.16 SD, lower bounds 0.086 to 0.111 (pass).
#: 30 random deletions per k instead of 10 moved no interval by more than 0.005: the spread is
#: between responses, so more responses, not more random draws, narrow it.
FAITHFULNESS_EXAMPLES = 40

#: Which responses of each pair are explained.
SIDES = ("chosen", "both")
_AGREEMENT_K = 5  # top-k words compared between methods (and the known-answer check)
_MIN_WORDS_FOR_CURVE = 5  # responses shorter than this get no deletion curve


def _json_number(value):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


@dataclass
class AttributionAudit(AuditResult):
    """Everything :func:`attribution_audit` computed (see the module docstring).

    Attributes
    ----------
    explanations : dict
        ``{method name: [Explanation, ...]}`` in the order of ``responses``
        (every chosen response first, then every rejected one for ``sides="both"``).
    margin : Explanation
        The margin ``r(chosen) - r(rejected)`` of pair ``example`` by the primary (first) method.
    agreements : list of MethodAgreement
        One per pair of methods.
    curves, faithfulness
        The per-response deletion curves and their :func:`deletion_summary`.
    phrases : DataFrame
        :func:`aggregate_attributions` of the primary method.
    triggers, comparison
        The mined triggers and their :class:`TriggerComparison` (None without ``trigger_data``).
    known_answer : DataFrame or None
        Agreement-word hit rates per method for responses with and without an
        agreeing opener (None when the data has no ``attrs`` column).
    notes : list of str
        What was skipped and why.
    """

    section: ClassVar[str] = "attribution"

    model: str
    source: str
    pairs: pd.DataFrame
    sides: str
    explanations: dict[str, list[Explanation]]
    margin: Explanation | None
    agreements: list[MethodAgreement]
    curves: list[DeletionCurve]
    faithfulness: pd.DataFrame
    phrases: pd.DataFrame
    triggers: Any = None
    comparison: TriggerComparison | None = None
    known_answer: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    params: dict = field(default_factory=dict)
    faithfulness_tests: pd.DataFrame = field(default_factory=pd.DataFrame)
    ci: float = 0.95
    cluster_unit: str = "prompt"

    # -- tables ----------------------------------------------------------------

    @property
    def methods(self) -> list[str]:
        return list(self.explanations)

    @property
    def primary(self) -> str:
        """The first method: it explains the margin and the dataset-level phrases."""
        return self.methods[0]

    @property
    def n_responses(self) -> int:
        return len(next(iter(self.explanations.values()), []))

    def explanations_frame(self) -> pd.DataFrame:
        """One row per explanation of every method (:func:`summary_frame`)."""
        frames = [summary_frame(v) for v in self.explanations.values() if len(v)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def to_frame(self) -> pd.DataFrame:
        """One row per method: mean seconds, mean |convergence delta| and mean words per explanation."""
        summary = self.explanations_frame()
        if summary.empty:
            return pd.DataFrame(columns=["method", "mean seconds", "mean |delta|", "mean words"])
        return (
            summary.groupby("method")[["seconds", "convergence_delta", "n_words"]]
            .agg(lambda s: s.abs().mean())
            .reset_index()
            .rename(columns={"seconds": "mean seconds", "convergence_delta": "mean |delta|", "n_words": "mean words"})
        )

    def agreement_frame(self) -> pd.DataFrame:
        """:meth:`MethodAgreement.summary` of every pair of methods, stacked."""
        if not self.agreements:
            return pd.DataFrame(columns=["measure", "methods", "n", "mean", "median", "ci_low", "ci_high"])
        return pd.concat([a.summary() for a in self.agreements], ignore_index=True)

    def agreement_matrix(self, measure: str = "spearman") -> pd.DataFrame:
        """Methods by methods: the mean per-response agreement (``"spearman"`` or ``"jaccard_top_k"``); 1 on the diagonal."""
        if measure not in ("spearman", "jaccard_top_k"):
            raise ValueError(f"measure must be 'spearman' or 'jaccard_top_k', got {measure!r}")
        names = self.methods
        matrix = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
        for (a, b), agreement in zip(pairs, self.agreements):
            v = agreement.table[measure].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            matrix.loc[a, b] = matrix.loc[b, a] = float(np.mean(v)) if len(v) else np.nan
        return matrix

    def example(self, index: int = 0) -> dict[str, Explanation]:
        """The explanations of response ``index`` by every method."""
        return {name: exps[index] for name, exps in self.explanations.items()}

    def summary(self) -> dict:
        """Headline numbers (flat, JSON-safe; NaN becomes None)."""
        out: dict[str, Any] = {
            "model": self.model,
            "data": self.source,
            "n_pairs": len(self.pairs),
            "n_responses": self.n_responses,
            "sides": self.sides,
            "methods": ",".join(self.methods),
        }
        for r in self.to_frame().to_dict("records"):
            out[f"{r['method']}_mean_seconds"] = _json_number(r["mean seconds"])
            out[f"{r['method']}_mean_abs_delta"] = _json_number(r["mean |delta|"])
            out[f"{r['method']}_mean_words"] = _json_number(r["mean words"])
        if self.margin is not None:
            out["margin"] = _json_number(self.margin.score)
            out["margin_convergence_delta"] = _json_number(self.margin.convergence_delta)
        for r in self.agreement_frame().itertuples(index=False):
            key = r.methods.replace(" ", "_")
            out[f"agreement_{key}_{r.measure}_mean"] = _json_number(r.mean)
        for r in self.faithfulness[self.faithfulness["k"] == "AOPC"].itertuples(index=False):
            out[f"faithfulness_{r.method}_aopc_top"] = _json_number(r.drop_top)
            out[f"faithfulness_{r.method}_aopc_random"] = _json_number(r.drop_random)
            out[f"faithfulness_{r.method}_aopc_difference"] = _json_number(r.difference)
        for r in self.faithfulness_tests.to_dict("records"):
            for key in ("estimate", "ci_low", "ci_high", "n", "n_clusters"):
                out[f"faithfulness_{r['method']}_effect_sd{'' if key == 'estimate' else '_' + key}"] = _json_number(
                    r[key]
                )
        out["n_phrases"] = len(self.phrases)
        if self.comparison is not None:
            for key, value in self.comparison.summary().items():
                out[f"triggers_{key}"] = value if isinstance(value, str) else _json_number(value)
        if self.known_answer is not None:
            measure = self.known_answer.columns[-1]
            for r in self.known_answer.to_dict("records"):
                label = r["responses"].replace(" ", "_")
                out[f"known_answer_{r['method']}_{label}"] = _json_number(r[measure])
            out["known_answer_measure"] = measure
        return out

    def verdicts(self) -> list[Verdict]:
        """Deletion-curve faithfulness per method (family ``"attribution"``; the primary method's check decides)."""
        out = []
        pct = f"{100 * self.ci:g}%"
        for r in self.faithfulness_tests.to_dict("records"):
            est, lo, hi = r["estimate"], r["ci_low"], r["ci_high"]
            sizes = f"{r['n']} responses, {r['n_clusters']} {self.cluster_unit}s"
            if np.isfinite(est):
                sentence = (
                    f"Deleting the words {r['method']} ranks highest lowers the reward by {est:.2f} SD more than "
                    f"deleting as many random words ({pct} CI {lo:.2f} to {hi:.2f}; {sizes})."
                )
            else:
                sentence = (
                    f"Faithfulness of {r['method']} needs at least two explained responses with different rewards."
                )
            out.append(
                graded_verdict(
                    self.section,
                    f"deletion faithfulness vs random [{r['method']}]",
                    est,
                    lo,
                    hi,
                    warn=FAITHFULNESS_MARGINS[0],
                    fail=FAITHFULNESS_MARGINS[1],
                    direction="lower",
                    ci=self.ci,
                    n=r["n"],
                    n_clusters=r["n_clusters"],
                    cluster_unit=self.cluster_unit,
                    family="attribution",
                    sentence=sentence,
                    detail=(
                        f"mean AOPC difference {r['difference']:.4g} reward units; reward SD {r['reward_sd']:.4g}; "
                        f"k = {', '.join(str(k) for k in DEFAULT_KS)}"
                    ),
                    primary=r["method"] == self.primary,
                )
            )
        return out

    def verdicts_frame(self) -> pd.DataFrame:
        """:meth:`verdicts` as a table (check, verdict, estimate, interval, margins, sizes, primary, sentence)."""
        cols = ["check", "verdict", "value", "ci_low", "ci_high", "threshold", "n", "n_clusters", "primary", "sentence"]
        return verdict_table(self.verdicts(), cols)

    # -- figures -------------------------------------------------------------------

    def plot(self, ax=None):
        """Deletion curves averaged over responses: top-k words of each method vs random k words."""
        return plot_deletion_summary(self.faithfulness, ax=ax).figure

    def plot_example(self, index: int = 0, k: int | None = None):
        """Top words of response ``index`` by every method, side by side."""
        k = self.params.get("top_k", 10) if k is None else k
        example = self.example(index)
        fig, axes = plt.subplots(1, len(example), figsize=(5 * len(example), 3.8), squeeze=False)
        for ax, (name, e) in zip(axes[0], example.items()):
            e.plot(k=k, ax=ax, title=name)
        fig.tight_layout()
        return fig

    def plot_agreement(self, ax=None, measure: str = "spearman"):
        """Heatmap (seaborn) of :meth:`agreement_matrix`."""
        matrix = self.agreement_matrix(measure)
        ax = ensure_ax(ax, (1.6 * len(matrix) + 2.0, 1.3 * len(matrix) + 1.2))
        sns.heatmap(
            matrix,
            annot=True,
            fmt=".2f",
            vmin=-1 if measure == "spearman" else 0,
            vmax=1,
            cmap="RdBu_r" if measure == "spearman" else "Purples",
            square=True,
            cbar_kws={"label": "mean Spearman rho" if measure == "spearman" else "mean Jaccard of top-k"},
            ax=ax,
        )
        ax.set_title(f"Method agreement over {self.n_responses} responses")
        return ax.figure

    def plot_triggers(self, ax=None):
        """:meth:`TriggerComparison.plot` (an empty note when no triggers were mined)."""
        if self.comparison is None:
            ax = ensure_ax(ax, (6, 4))
            ax.text(0.5, 0.5, "no trigger comparison", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            return ax.figure
        return self.comparison.plot(ax=ax).figure

    def browser(self, k: int | None = None):
        """The JupyterLab :func:`explanation_browser` over every method's explanations."""
        return explanation_browser(self.explanations, k=self.params.get("top_k", 10) if k is None else k)


def _check_explain_pairs(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"explain_pairs must be a positive int or None, got {value!r}")
    return int(value)


def _method_list(methods) -> list[str]:
    if isinstance(methods, str):
        return [m.strip() for m in methods.split(",") if m.strip()]
    return [str(m).strip() for m in methods if str(m).strip()]


def _agree_mask(frame: pd.DataFrame, side_names: Sequence[str]) -> np.ndarray:
    """Per explained response: does it open by agreeing with the user (demo data's ``attrs[side]["a"] == 1``)?"""
    return np.array([a[side]["a"] == 1 for side in side_names for a in frame["attrs"]])


def attribution_audit(
    rm,
    pairs,
    *,
    sides: str = "chosen",
    methods: str | Sequence[str] = "ig,occlusion,shap",
    seed: Any = 0,
    n_steps: int = 32,
    internal_batch_size: int | None = 16,
    baseline: str = "pad",
    shap_max_evals: int = 200,
    top_k: int = 10,
    n_random: int = 10,
    faithfulness_examples: int = FAITHFULNESS_EXAMPLES,
    explain_pairs: int | None = None,
    trigger_data=None,
    example: int = 0,
    n_boot: int = 1000,
    ci: float = 0.95,
    progress: bool = False,
    explanation_cache: ExplanationCache | bool | None = True,
    score_cache: ScoreCache | str | None = "default",
) -> AttributionAudit:
    """Explain the responses of ``pairs`` with every method and compare the methods.

    Parameters
    ----------
    rm
        A reward model or spec (IG needs a transformer RM; it is skipped, with a
        note, for any other RM).
    pairs
        A :class:`~workbench.data.preferences.PreferenceSet` or a DataFrame with
        ``prompt, chosen, rejected, id`` (optional ``history``, ``attrs``).
    sides : {"chosen", "both"}
        Explain the chosen responses, or the chosen and then the rejected ones.
    methods
        Comma-separated names or a list (``ig``, ``occlusion``, ``shap``); the first is the primary method.
    n_steps, internal_batch_size, baseline
        Integrated-gradients settings.
    shap_max_evals
        SHAP model evaluations per explanation.
    top_k
        Words / phrases in rankings and the top-k of the trigger comparison.
    n_random, faithfulness_examples
        Random deletions per k, and responses per method with a deletion curve
        (the first ones with at least 5 words).
    explain_pairs
        How many of ``pairs`` (the first ones) every method explains; ``None``: all of them.
        The primary method also explains the chosen responses of the pairs after them, as many
        as the graded faithfulness check needs to reach ``faithfulness_examples`` responses:
        the check then rests on more responses and topics than the side-by-side comparison,
        at the cost of the primary method alone. The other methods' deletion curves use the
        responses they explain.
    trigger_data
        Pairs scored for trigger mining (a PreferenceSet or DataFrame); None skips the trigger comparison.
    example
        The pair whose margin is explained.
    n_boot, ci
        Bootstrap resamples and level of the faithfulness interval (resampling prompts).
    explanation_cache
        Where explanations are kept between runs: ``True`` (default) the
        :class:`~workbench.audits.attribution.cache.ExplanationCache` under the cache folder,
        another cache, or ``False``/``None`` to compute every explanation. A cached
        explanation has exactly the numbers of a computed one.
    score_cache
        Score cache of the faithfulness check's rescored deletions (``"default"``: the shared
        :class:`~workbench.models.cache.ScoreCache`; ``None``: none). The methods' random
        deletions of a response are the same texts (same seed), so they are scored once.
    """
    if explanation_cache is True:
        explanation_cache = ExplanationCache()
    elif explanation_cache is False:
        explanation_cache = None
    if score_cache == "default":
        score_cache = ScoreCache()
    if sides not in SIDES:
        raise ValueError(f"sides must be 'chosen' or 'both', got {sides!r}")
    rm = load_reward_model(rm)
    every_pair = (pairs.frame if hasattr(pairs, "frame") else pd.DataFrame(pairs)).reset_index(drop=True)
    n_explained = len(every_pair) if explain_pairs is None else _check_explain_pairs(explain_pairs)
    frame = every_pair.iloc[:n_explained].reset_index(drop=True)
    side_names = ["chosen"] if sides == "chosen" else ["chosen", "rejected"]
    prompts = list(frame["prompt"]) * len(side_names)
    responses = [r for side in side_names for r in frame[side]]
    history = every_pair["history"] if "history" in every_pair.columns else [None] * len(every_pair)
    every_history = [h if isinstance(h, list) and h else None for h in history]
    histories = every_history[:n_explained] * len(side_names)
    ids = [f"{i}/{side}" for side in side_names for i in frame["id"]]

    options = {
        "ig": dict(n_steps=n_steps, internal_batch_size=internal_batch_size, baseline=baseline),
        "occlusion": {},
        "shap": dict(max_evals=shap_max_evals),
    }
    wanted = _method_list(methods)
    notes = []
    if "ig" in wanted and not isinstance(rm, TransformerRM):
        notes.append("IG needs a transformer RM; this one is not, so IG is skipped.")
        wanted.remove("ig")
    if not wanted:
        raise ValueError(f"no attribution method to run (methods={methods!r})")
    explainers = {
        name: make_explainer(name, rm, explanation_cache=explanation_cache, **options.get(name, {})) for name in wanted
    }
    explanations = {
        name: ex.attribute_many(prompts, responses, histories, ids=ids, progress=progress)
        for name, ex in explainers.items()
    }
    primary = wanted[0]

    # the margin of one pair
    if sides == "both":
        margin = margin_explanation(explanations[primary][example], explanations[primary][example + len(frame)])
    else:
        row = frame.iloc[example]
        margin = explainers[primary].attribute_pair(
            row["prompt"], row["chosen"], row["rejected"], histories[example], example_id=row["id"]
        )

    # agreement of every pair of methods
    agreements = [
        compare_methods(explanations[a], explanations[b], k=_AGREEMENT_K, seed=seed)
        for i, a in enumerate(wanted)
        for b in wanted[i + 1 :]
    ]

    # faithfulness: deletion curves, and the graded effect per method (clusters: the pairs' prompts or topics);
    # the primary method explains the chosen responses of further pairs when the check needs more responses
    pair_codes, cluster_column = cluster_labels(every_pair)
    cluster_unit = unit_name(cluster_column)
    explained_pair = [i for _ in side_names for i in range(len(frame))]  # the pair of each explanation
    more = slice(len(frame), len(frame) + max(0, faithfulness_examples - len(responses)))
    more_pairs = every_pair.iloc[more]
    extra = []
    if len(more_pairs):
        extra = explainers[primary].attribute_many(
            list(more_pairs["prompt"]),
            list(more_pairs["chosen"]),
            every_history[more],
            ids=[f"{i}/chosen" for i in more_pairs["id"]],
            progress=progress,
        )
    curves, tests = [], []
    for name, exps in explanations.items():
        pool = list(zip(explained_pair, exps))
        if name == primary:
            pool += list(zip(range(len(frame), len(frame) + len(extra)), extra))
        chosen = [(j, e) for j, e in pool[:faithfulness_examples] if e.n_words >= _MIN_WORDS_FOR_CURVE]
        mine = [
            deletion_curve(e, rm, ks=DEFAULT_KS, n_random=n_random, seed=seed, cache=score_cache) for _, e in chosen
        ]
        curves += mine
        if mine:
            codes = [int(pair_codes[j]) for j, _ in chosen]
            tests.append({"method": name, **faithfulness_effect(mine, codes, n_boot=n_boot, seed=seed, ci=ci)})
    if curves:
        faithfulness = deletion_summary(curves, seed=seed)
    else:
        faithfulness = pd.DataFrame(columns=["method", "k", "n", "drop_top", "drop_random", "difference"])
        notes.append(f"no response has {_MIN_WORDS_FOR_CURVE} words or more: no deletion curves.")
    faithfulness_tests = pd.DataFrame(
        tests, columns=["method", "estimate", "ci_low", "ci_high", "difference", "reward_sd", "n", "n_clusters"]
    )

    # dataset level: phrases and trigger mining
    phrases = aggregate_attributions(explanations[primary], ngram_range=(1, 2), min_count=3)
    triggers = comparison = None
    if trigger_data is not None:
        mined = trigger_data.frame if hasattr(trigger_data, "frame") else trigger_data
        mined_scores = score_pairs(rm, trigger_data, progress=progress).to_frame()
        texts = list(mined["chosen"]) + list(mined["rejected"])
        rewards = np.concatenate([mined_scores["chosen_score"], mined_scores["rejected_score"]])
        triggers = mine_triggers(texts, rewards, ngram_range=(1, 2), min_count=5, top_k=30, n_boot=200, seed=seed)
        comparison = compare_with_triggers(phrases, triggers, k=top_k)

    # known answer: agreement words among the top words
    known_answer = None
    if "attrs" in frame.columns:
        agree = _agree_mask(frame, side_names)
        known_answer = hit_rates_by_group(
            explanations, {"agree opener": agree, "no agree opener": ~agree}, k=_AGREEMENT_K
        )
    else:
        notes.append("this data set has no attrs column: no known-answer check.")

    params = {
        "sides": sides,
        "methods": list(wanted),
        "seed": seed,
        "n_steps": n_steps,
        "internal_batch_size": internal_batch_size,
        "baseline": baseline,
        "shap_max_evals": shap_max_evals,
        "top_k": top_k,
        "n_random": n_random,
        "faithfulness_examples": faithfulness_examples,
        "explain_pairs": explain_pairs,
        "example": example,
        "n_boot": n_boot,
        "ci": ci,
    }
    return AttributionAudit(
        model=rm.name,
        source=str(getattr(pairs, "source", "")),
        pairs=frame,
        sides=sides,
        explanations=explanations,
        margin=margin,
        agreements=agreements,
        curves=curves,
        faithfulness=faithfulness,
        phrases=phrases,
        triggers=triggers,
        comparison=comparison,
        known_answer=known_answer,
        notes=notes,
        params=params,
        faithfulness_tests=faithfulness_tests,
        ci=ci,
        cluster_unit=cluster_unit,
    )
