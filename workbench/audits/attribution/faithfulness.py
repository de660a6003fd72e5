"""Faithfulness: does deleting the top-attributed words drop the reward more than deleting random words?

:func:`deletion_curve` measures one response; :func:`deletion_summary` averages the curves
per method and k; :func:`faithfulness_effect` is the graded quantity: the mean over
explained responses of (AOPC of the top-k deletions minus AOPC of k random deletions), in
standard deviations of the explained responses' rewards (so that margins mean the same for
every RM), with a percentile bootstrap interval that resamples clusters of responses
(prompts or topics; :func:`workbench._utils.stats.cluster_labels`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from scipy import stats

from workbench._utils.plotting import ensure_ax
from workbench._utils.stats import bootstrap_mean_ci, group_codes, percentile_ci, resample_indices
from workbench.audits.attribution._base import score_fn
from workbench.audits.attribution._words import check_rank_by, delete_words
from workbench.audits.attribution.explanation import Explanation, check_explanation
from workbench.models.loading import load_reward_model

__all__ = [
    "DEFAULT_KS",
    "DeletionCurve",
    "deletion_curve",
    "deletion_summary",
    "faithfulness_effect",
    "plot_deletion_summary",
]

#: Numbers of deleted words of a deletion curve.
DEFAULT_KS = (1, 2, 3, 5)


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
        ax = ensure_ax(ax, (5, 3.2))
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


def deletion_curve(
    explanation: Explanation,
    rm,
    ks: Sequence[int] = DEFAULT_KS,
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
    e = check_explanation(explanation)
    if e.target != "score":
        raise ValueError(
            "deletion_curve needs a single-score explanation (use explanation.parts['chosen'] for a margin)"
        )
    check_rank_by(by)
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
    scores = score_fn(rm, cache)([e.prompt] * len(texts), texts, [history] * len(texts))
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


def _standardised_difference(diff: np.ndarray, score: np.ndarray) -> float:
    if len(diff) < 2:
        return float("nan")
    sd = float(np.std(score, ddof=1))
    return float(np.mean(diff) / sd) if sd > 0 else float("nan")


def faithfulness_effect(
    curves: Sequence[DeletionCurve],
    clusters: Any = None,
    *,
    n_boot: int = 1000,
    seed: Any = 0,
    ci: float = 0.95,
) -> dict:
    """Mean (top-k AOPC - random AOPC) over responses, in SDs of their rewards, with a clustered interval.

    ``curves`` are the deletion curves of one method (one per explained response);
    ``clusters`` gives each curve's cluster label (prompt, topic; default: every
    response its own cluster). The estimate is ``mean_i(aopc_top_i - aopc_random_i) /
    sd_i(score_i)`` (``ddof=1``); each bootstrap resample draws whole clusters and
    recomputes both the mean and the SD. Positive: deleting the attributed words drops
    the reward more than deleting as many random words.

    Returns ``estimate, ci_low, ci_high, difference`` (the mean in reward units),
    ``reward_sd``, ``n`` (responses) and ``n_clusters``; NaN estimate with fewer than two
    responses or constant rewards.
    """
    curves = list(curves)
    for c in curves:
        if not isinstance(c, DeletionCurve):
            raise TypeError(f"expected DeletionCurve, got {type(c).__name__}")
    n = len(curves)
    diff = np.array([c.aopc_top - c.aopc_random for c in curves], dtype=float)
    score = np.array([c.score for c in curves], dtype=float)
    codes = group_codes(range(n) if clusters is None else clusters, n, "clusters") if n else np.zeros(0, int)
    estimate = _standardised_difference(diff, score)
    lo = hi = float("nan")
    if np.isfinite(estimate) and n_boot:
        boots = [_standardised_difference(diff[idx], score[idx]) for idx in resample_indices(n, n_boot, seed, codes)]
        lo, hi = percentile_ci(np.asarray(boots, dtype=float), ci)
    return {
        "estimate": estimate,
        "ci_low": float(lo),
        "ci_high": float(hi),
        "difference": float(diff.mean()) if n else float("nan"),
        "reward_sd": float(np.std(score, ddof=1)) if n > 1 else float("nan"),
        "n": n,
        "n_clusters": int(len(np.unique(codes))),
    }


def plot_deletion_summary(summary: pd.DataFrame, ax=None, title: str | None = None):
    """Mean reward drop per k (seaborn lines): top-k words of each method with their bootstrap band, and random k words.

    ``summary`` is the output of :func:`deletion_summary`; the random line is the
    mean over methods of the per-method random drops at each k. Returns the Axes.
    """
    ax = ensure_ax(ax, (6, 3.5))
    curves = summary[summary["k"] != "AOPC"].copy()
    if curves.empty:
        ax.text(0.5, 0.5, "no deletion curves", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return ax
    curves["k"] = curves["k"].astype(int)
    methods = list(dict.fromkeys(curves["method"]))
    palette = dict(zip(methods, sns.color_palette(n_colors=len(methods))))
    sns.lineplot(
        data=curves,
        x="k",
        y="drop_top",
        hue="method",
        hue_order=methods,
        palette=palette,
        marker="o",
        errorbar=None,
        ax=ax,
    )
    for method, g in curves.groupby("method", sort=False):
        ax.fill_between(g["k"], g["top_ci_low"], g["top_ci_high"], color=palette[method], alpha=0.2)
    rnd = curves.groupby("k", sort=False)["drop_random"].mean().reset_index()
    sns.lineplot(
        data=rnd, x="k", y="drop_random", color="gray", linestyle="--", marker="s", label="random k words", ax=ax
    )
    handles, labels = ax.get_legend_handles_labels()
    labels = [f"top-k by {lab}" if lab in palette else lab for lab in labels]
    ax.legend(handles, labels, fontsize="small")
    ax.set_xticks(sorted(curves["k"].unique()))
    ax.set_xlabel("words deleted (k)")
    ax.set_ylabel("mean reward drop")
    if title:
        ax.set_title(title)
    return ax
