"""Headline numbers of an RM on preference pairs: pairwise accuracy, reward gap, score histograms."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from workbench.audits.calibration.metrics import bootstrap_ci, mean_reward_gap, pairwise_accuracy


def _accuracy(margin, label) -> float:
    return pairwise_accuracy(margin, label).accuracy


@dataclass
class OverviewResult:
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

    def plot(self, bins: int = 30):
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
        lo = min(self.pairs["chosen_score"].min(), self.pairs["rejected_score"].min())
        hi = max(self.pairs["chosen_score"].max(), self.pairs["rejected_score"].max())
        edges = np.linspace(lo, hi, bins + 1) if hi > lo else bins
        axes[0].hist(self.pairs["chosen_score"], bins=edges, alpha=0.6, label="chosen", color="tab:green")
        axes[0].hist(self.pairs["rejected_score"], bins=edges, alpha=0.6, label="rejected", color="tab:red")
        axes[0].set_xlabel("reward")
        axes[0].set_ylabel("responses")
        axes[0].set_title(f"{self.model_name}: rewards of chosen vs rejected")
        axes[0].legend()
        axes[1].hist(self.pairs["margin"], bins=bins, color="tab:blue", alpha=0.8)
        axes[1].axvline(0, color="black", lw=1)
        axes[1].set_xlabel("reward gap r(chosen) - r(rejected)")
        axes[1].set_title(f"accuracy {self.accuracy:.3f}, mean gap {self.mean_gap:.3f}")
        fig.tight_layout()
        return fig


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
