"""Headline numbers of an RM on preference pairs: pairwise accuracy, reward gap, score histograms.

:func:`overview` is the one-call entry point (notebook 00); it returns an
:class:`OverviewResult`, an :class:`~workbench.audits.result.AuditResult` that grades
nothing (its :meth:`~OverviewResult.verdicts` are empty, section ``"overview"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from workbench.audits.calibration.metrics import bootstrap_ci, mean_reward_gap, pairwise_accuracy
from workbench.audits.result import AuditResult
from workbench.reports.verdicts import Verdict

__all__ = ["OverviewResult", "overview"]

RESPONSE_COLORS = {"chosen": "tab:green", "rejected": "tab:red"}


def _accuracy(margin, label) -> float:
    return pairwise_accuracy(margin, label).accuracy


@dataclass
class OverviewResult(AuditResult):
    """Pairwise accuracy and reward gap with bootstrap CIs, plus the per-pair scores."""

    pairs: pd.DataFrame  # from PairScores.to_frame()
    model_name: str
    accuracy: float
    accuracy_ci: tuple[float, float]
    tie_rate: float
    n_label_ties: int
    mean_gap: float
    mean_gap_ci: tuple[float, float]
    n_pairs: int
    n_truncated: int
    n_skipped: int

    section: ClassVar[str] = "overview"

    def to_frame(self) -> pd.DataFrame:
        rows = [
            ("pairwise accuracy", self.accuracy, *self.accuracy_ci),
            ("mean reward gap (chosen - rejected)", self.mean_gap, *self.mean_gap_ci),
            ("RM tie rate", self.tie_rate, np.nan, np.nan),
            ("pairs scored", self.n_pairs, np.nan, np.nan),
            ("pairs labelled as ties (excluded from accuracy)", self.n_label_ties, np.nan, np.nan),
            ("pairs with a truncated response", self.n_truncated, np.nan, np.nan),
            ("rows skipped while loading", self.n_skipped, np.nan, np.nan),
        ]
        return pd.DataFrame(rows, columns=["metric", "value", "ci_low", "ci_high"])

    def summary(self) -> dict:
        """Headline numbers as a flat dict (accuracy and mean gap with their CIs, counts)."""
        return {
            "accuracy": float(self.accuracy),
            "accuracy_ci_low": float(self.accuracy_ci[0]),
            "accuracy_ci_high": float(self.accuracy_ci[1]),
            "mean_gap": float(self.mean_gap),
            "mean_gap_ci_low": float(self.mean_gap_ci[0]),
            "mean_gap_ci_high": float(self.mean_gap_ci[1]),
            "tie_rate": float(self.tie_rate),
            "n_pairs": int(self.n_pairs),
            "n_label_ties": int(self.n_label_ties),
            "n_truncated": int(self.n_truncated),
            "n_skipped": int(self.n_skipped),
        }

    def verdicts(self) -> list[Verdict]:
        """The overview grades nothing: always ``[]``."""
        return []

    def by_group(self, column: str = "category", min_pairs: int = 1) -> pd.DataFrame:
        """Accuracy and mean gap per subset or category."""
        if column not in self.pairs.columns:
            raise KeyError(f"no column {column!r} in the scored pairs (have {list(self.pairs.columns)})")
        rows = []
        for group, part in self.pairs.groupby(column, dropna=False, sort=True):
            if len(part) < min_pairs:
                continue
            acc = pairwise_accuracy(part["margin"], part["label"])
            rows.append(
                {
                    column: group,
                    "n": len(part),
                    "accuracy": acc.accuracy,
                    "mean_gap": mean_reward_gap(part["margin"], part["label"]),
                }
            )
        return pd.DataFrame(rows)

    def group_tables(self, columns: Sequence[str] = ("category", "subset")) -> dict[str, pd.DataFrame]:
        """:meth:`by_group` for each of ``columns`` that the pairs have with at least one value."""
        return {
            column: self.by_group(column)
            for column in columns
            if column in self.pairs and self.pairs[column].notna().any()
        }

    def worst_pairs(self, data, n: int = 5) -> pd.DataFrame:
        """The ``n`` pairs with the most negative margin, with their texts from ``data``.

        ``data`` is the :class:`~workbench.data.preferences.PreferenceData` that was scored
        (or its frame); columns ``id, margin, prompt, chosen, rejected``.
        """
        texts = data.to_frame() if hasattr(data, "to_frame") else data
        worst = self.pairs.sort_values("margin").head(n)
        worst = worst.merge(texts[["id", "prompt", "chosen", "rejected"]], on="id")
        return worst[["id", "margin", "prompt", "chosen", "rejected"]]

    def plot(self, ax=None, *, bins: int = 30):
        """Score distributions (seaborn histograms); returns the Figure.

        With ``ax=None`` a new figure shows the rewards of chosen and rejected responses
        (left) and the reward gaps (right). ``ax`` may be one Axes (the chosen/rejected
        histogram only) or a pair of Axes (both panels).
        """
        if ax is None:
            fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
        elif isinstance(ax, (Sequence, np.ndarray)):
            axes = list(np.ravel(ax))
            if len(axes) != 2:
                raise ValueError(f"`ax` must be one Axes or two, got {len(axes)}")
            fig = axes[0].figure
        else:
            axes, fig = [ax], ax.figure
        self._plot_scores(axes[0], bins)
        if len(axes) > 1:
            self._plot_gaps(axes[1], bins)
        if ax is None:
            fig.tight_layout()
        return fig

    def _plot_scores(self, ax, bins: int) -> None:
        chosen, rejected = self.pairs["chosen_score"], self.pairs["rejected_score"]
        lo, hi = min(chosen.min(), rejected.min()), max(chosen.max(), rejected.max())
        edges = np.linspace(lo, hi, bins + 1) if hi > lo else bins
        scores = pd.DataFrame(
            {
                "reward": np.concatenate([chosen.to_numpy(dtype=float), rejected.to_numpy(dtype=float)]),
                "response": ["chosen"] * len(chosen) + ["rejected"] * len(rejected),
            }
        )
        sns.histplot(
            scores,
            x="reward",
            hue="response",
            hue_order=list(RESPONSE_COLORS),
            palette=RESPONSE_COLORS,
            bins=edges,
            alpha=0.6,
            multiple="layer",
            ax=ax,
        )
        legend = ax.get_legend()
        if legend is not None:
            legend.set_title(None)
        ax.set_xlabel("reward")
        ax.set_ylabel("responses")
        ax.set_title(f"{self.model_name}: rewards of chosen vs rejected")

    def _plot_gaps(self, ax, bins: int) -> None:
        sns.histplot(x=self.pairs["margin"].to_numpy(dtype=float), bins=bins, color="tab:blue", alpha=0.8, ax=ax)
        ax.axvline(0, color="black", lw=1)
        ax.set_xlabel("reward gap r(chosen) - r(rejected)")
        ax.set_ylabel("")
        ax.set_title(f"accuracy {self.accuracy:.3f}, mean gap {self.mean_gap:.3f}")


def overview(pair_scores, *, n_skipped: int = 0, n_boot: int = 1000, seed: int = 0) -> OverviewResult:
    """Summarise :class:`~workbench.models.scoring.PairScores` (or its frame)."""
    frame = pair_scores.to_frame() if hasattr(pair_scores, "to_frame") else pair_scores
    margin = frame["margin"].to_numpy(dtype=float)
    label = frame["label"].to_numpy(dtype=float)
    acc = pairwise_accuracy(margin, label)
    acc_ci = bootstrap_ci(_accuracy, margin, label, n_boot=n_boot, seed=seed)
    gap_ci = bootstrap_ci(mean_reward_gap, margin, label, n_boot=n_boot, seed=seed)
    truncated = (
        int((frame["chosen_truncated"] | frame["rejected_truncated"]).sum()) if "chosen_truncated" in frame else 0
    )
    name = getattr(pair_scores, "model", {}).get("name", "RM") if hasattr(pair_scores, "model") else "RM"
    return OverviewResult(
        pairs=frame,
        model_name=name,
        accuracy=acc.accuracy,
        accuracy_ci=(acc_ci.low, acc_ci.high),
        tie_rate=acc.tie_rate,
        n_label_ties=acc.n_label_ties,
        mean_gap=mean_reward_gap(margin, label),
        mean_gap_ci=(gap_ci.low, gap_ci.high),
        n_pairs=len(frame),
        n_truncated=truncated,
        n_skipped=n_skipped,
    )
