"""Do two attribution methods agree? Rank correlation and top-k overlap, per response and over a data set."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from scipy import stats

from workbench._utils.stats import bootstrap_mean_ci
from workbench.audits.attribution._words import check_k, check_rank_by
from workbench.audits.attribution.explanation import Explanation, check_explanation

__all__ = ["MethodAgreement", "compare_methods", "rank_agreement"]


def _top_set(e: Explanation, k: int, by: str) -> set[int]:
    return set(e.ranking(by)[: min(k, e.n_words)].tolist())


def rank_agreement(a: Explanation, b: Explanation, k: int = 5, by: str = "abs") -> dict:
    """Agreement of two explanations of the same response.

    Returns ``spearman`` (rank correlation of the word attributions; NaN when
    either is constant or there are fewer than 3 words), ``jaccard_top_k``
    (|top-k(a) ∩ top-k(b)| / |top-k(a) ∪ top-k(b)|, ranking ``by`` "abs" or
    "value") and ``n_words``.
    """
    check_explanation(a, "a")
    check_explanation(b, "b")
    k = check_k(k)
    check_rank_by(by)
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
        """Histograms (seaborn) of the per-example Spearman correlation and top-k Jaccard overlap."""
        if ax is None:
            _, ax = plt.subplots(1, 2, figsize=(9, 3))
        axes = np.atleast_1d(ax)
        for a, col, label in zip(axes, ("spearman", "jaccard_top_k"), ("Spearman rho", f"Jaccard of top-{self.k}")):
            v = self.table[col].to_numpy(dtype=float)
            bins = np.linspace(-1 if col == "spearman" else 0, 1, 21)
            sns.histplot(x=v[np.isfinite(v)], bins=bins, color="tab:purple", ax=a)
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
        row = {"example_id": check_explanation(a, f"explanations_a[{i}]").example_id}
        row.update(rank_agreement(a, check_explanation(b, f"explanations_b[{i}]"), k=k, by=by))
        rows.append(row)
    return MethodAgreement(pd.DataFrame(rows), explanations_a[0].method, explanations_b[0].method, k, by, n_boot, seed)
