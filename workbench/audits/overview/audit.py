"""Headline numbers of an RM on preference pairs: pairwise accuracy, reward gap, score histograms.

:func:`overview` is the one-call entry point (notebook 00); it returns an
:class:`OverviewResult`, an :class:`~workbench.audits.result.AuditResult` of section
``"overview"`` whose two graded checks form the family ``"accuracy"``:

* ``accuracy`` - pairwise accuracy against chance (harm: lower), graded on its
  cluster-bootstrap interval: pass when the interval lies above 0.6, fail when it lies
  below 0.55;
* ``accuracy_vs_length`` - accuracy minus the accuracy of the length-only baseline
  "prefer the longer response" (characters) on the same pairs (harm: lower): pass when
  the RM beats the baseline by more than 5 points (whole interval), fail when the whole
  interval lies below 0 (the RM does worse than picking the longer response).

Intervals resample whole prompts or topics (:func:`~workbench.audits.calibration.uncertainty.pair_clusters`),
never single pairs. Both agreements score an exact tie (equal reward or equal length) as
a half in the difference; the reported ``accuracy`` leaves RM ties out, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from workbench._utils.stats import bootstrap_weights, percentile_ci, unit_name
from workbench._utils.validation import check_ci, check_n_boot
from workbench.audits.calibration.metrics import mean_reward_gap, pairwise_accuracy
from workbench.audits.calibration.uncertainty import join_pair_data, pair_clusters
from workbench.audits.result import AuditResult
from workbench.reports.verdicts import Verdict, graded_verdict, verdict_table

__all__ = ["OverviewResult", "overview"]

RESPONSE_COLORS = {"chosen": "tab:green", "rejected": "tab:red"}
FAMILY = "accuracy"
#: default margins: accuracy (warn below, fail below) and accuracy minus the length baseline
ACCURACY_WARN, ACCURACY_FAIL = 0.60, 0.55
LENGTH_WARN, LENGTH_FAIL = 0.05, 0.0
NAN2 = (float("nan"), float("nan"))


def _agreement(score: np.ndarray, label: np.ndarray) -> np.ndarray:
    """1 when ``sign(score)`` picks the human-preferred response, 0 when not, 0.5 for ``score == 0``."""
    first = label > 0.5
    return np.where(score == 0, 0.5, ((score > 0) == first).astype(float))


def _plural(unit: str, k: int) -> str:
    return unit if k == 1 else unit + "s"


@dataclass
class OverviewResult(AuditResult):
    """Pairwise accuracy, the length-only baseline and the reward gap with cluster-bootstrap CIs."""

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
    length_accuracy: float = float("nan")  # "prefer the longer response", length ties as half
    length_accuracy_ci: tuple[float, float] = NAN2
    accuracy_vs_length: float = float("nan")  # RM agreement minus length agreement (ties as half)
    accuracy_vs_length_ci: tuple[float, float] = NAN2
    n_decided: int = 0  # pairs with a human preference (label != 0.5)
    n_clusters: int = 0
    cluster_unit: str = "pair"
    ci: float = 0.95

    section: ClassVar[str] = "overview"

    def to_frame(self) -> pd.DataFrame:
        rows = [
            ("pairwise accuracy", self.accuracy, *self.accuracy_ci),
            (
                'length-only baseline accuracy ("prefer the longer response")',
                self.length_accuracy,
                *self.length_accuracy_ci,
            ),
            ("accuracy minus length baseline", self.accuracy_vs_length, *self.accuracy_vs_length_ci),
            ("mean reward gap (chosen - rejected)", self.mean_gap, *self.mean_gap_ci),
            ("RM tie rate", self.tie_rate, np.nan, np.nan),
            ("pairs scored", self.n_pairs, np.nan, np.nan),
            (f"{self.cluster_unit}s (resampling unit of the intervals)", self.n_clusters, np.nan, np.nan),
            ("pairs labelled as ties (excluded from accuracy)", self.n_label_ties, np.nan, np.nan),
            ("pairs with a truncated response", self.n_truncated, np.nan, np.nan),
            ("rows skipped while loading", self.n_skipped, np.nan, np.nan),
        ]
        return pd.DataFrame(rows, columns=["metric", "value", "ci_low", "ci_high"])

    def summary(self) -> dict:
        """Headline numbers as a flat dict (accuracy, length baseline and mean gap with their CIs, counts)."""
        return {
            "accuracy": float(self.accuracy),
            "accuracy_ci_low": float(self.accuracy_ci[0]),
            "accuracy_ci_high": float(self.accuracy_ci[1]),
            "length_accuracy": float(self.length_accuracy),
            "length_accuracy_ci_low": float(self.length_accuracy_ci[0]),
            "length_accuracy_ci_high": float(self.length_accuracy_ci[1]),
            "accuracy_vs_length": float(self.accuracy_vs_length),
            "accuracy_vs_length_ci_low": float(self.accuracy_vs_length_ci[0]),
            "accuracy_vs_length_ci_high": float(self.accuracy_vs_length_ci[1]),
            "n_clusters": int(self.n_clusters),
            "mean_gap": float(self.mean_gap),
            "mean_gap_ci_low": float(self.mean_gap_ci[0]),
            "mean_gap_ci_high": float(self.mean_gap_ci[1]),
            "tie_rate": float(self.tie_rate),
            "n_pairs": int(self.n_pairs),
            "n_label_ties": int(self.n_label_ties),
            "n_truncated": int(self.n_truncated),
            "n_skipped": int(self.n_skipped),
        }

    def verdicts(
        self,
        *,
        accuracy_warn: float = ACCURACY_WARN,
        accuracy_fail: float = ACCURACY_FAIL,
        length_warn: float = LENGTH_WARN,
        length_fail: float = LENGTH_FAIL,
    ) -> list[Verdict]:
        """The two graded checks of family ``"accuracy"`` (module docstring), graded on their intervals.

        Margins are in accuracy units and the harm is ``"lower"`` (``fail <= warn``).
        ``accuracy_vs_length`` is ``n/a`` when the response texts were not available.
        """
        k, unit = self.n_clusters, self.cluster_unit
        size = f"{self.n_decided} pairs" + ("" if unit == "pair" else f", {k} {_plural(unit, k)}")
        level = f"{self.ci:.0%} CI"
        common = dict(direction="lower", ci=self.ci, n=self.n_decided, n_clusters=k, cluster_unit=unit, family=FAMILY)
        lo, hi = self.accuracy_ci
        acc = graded_verdict(
            self.section,
            "accuracy",
            self.accuracy,
            lo,
            hi,
            warn=accuracy_warn,
            fail=accuracy_fail,
            sentence=(
                f"The RM agrees with the human preference on {self.accuracy:.0%} of pairs "
                f"({level} {lo:.0%} to {hi:.0%}; chance is 50%; {size})."
            ),
            detail=f"RM ties left out ({self.tie_rate:.1%} of pairs); human ties left out ({self.n_label_ties})",
            **common,
        )
        d, (dlo, dhi) = self.accuracy_vs_length, self.accuracy_vs_length_ci
        if np.isfinite(d):
            word = "more" if d >= 0 else "less"
            sentence = (
                f"The RM agrees with the humans {abs(d) * 100:.0f} points {word} often than simply preferring the "
                f"longer response ({self.length_accuracy:.0%}) does ({level} of the difference "
                f"{dlo * 100:+.0f} to {dhi * 100:+.0f} points; {size})."
            )
        else:
            sentence = "The length-only baseline needs the response texts (pass data= to overview)."
        vs = graded_verdict(
            self.section,
            "accuracy_vs_length",
            d,
            dlo,
            dhi,
            warn=length_warn,
            fail=length_fail,
            sentence=sentence,
            detail='baseline: "prefer the longer response" (characters); ties of either count as half',
            **common,
        )
        return [acc, vs]

    def verdicts_frame(self, **margins: float) -> pd.DataFrame:
        """:meth:`verdicts` as a table: ``check, value, ci_low, ci_high, threshold, verdict, sentence, detail``."""
        cols = ["check", "value", "ci_low", "ci_high", "threshold", "verdict", "sentence", "detail"]
        return verdict_table(self.verdicts(**margins), cols)

    def by_group(self, column: str | Sequence[str] = "category", min_pairs: int = 1) -> pd.DataFrame:
        """Accuracy and mean gap per subset or category; a list of columns groups by their combinations.

        ``by_group(["subset", "category"])`` gives one row per subset and category (e.g. the
        accuracy on the golden set's ``confident_wrong_vs_hedged_correct`` pairs in each category).
        """
        cols = [column] if isinstance(column, str) else list(column)
        if not cols:
            raise ValueError("by_group needs at least one column")
        for c in cols:
            if c not in self.pairs.columns:
                raise KeyError(f"no column {c!r} in the scored pairs (have {list(self.pairs.columns)})")
        rows = []
        key = cols[0] if len(cols) == 1 else cols
        for group, part in self.pairs.groupby(key, dropna=False, sort=True):
            if len(part) < min_pairs:
                continue
            acc = pairwise_accuracy(part["margin"], part["label"])
            values = dict(zip(cols, group if len(cols) > 1 else (group,)))
            rows.append(
                {
                    **values,
                    "n": len(part),
                    "accuracy": acc.accuracy,
                    "mean_gap": mean_reward_gap(part["margin"], part["label"]),
                }
            )
        return pd.DataFrame(rows, columns=[*cols, "n", "accuracy", "mean_gap"])

    def group_tables(self, columns: Sequence[str | Sequence[str]] = ("category", "subset")) -> dict[str, pd.DataFrame]:
        """:meth:`by_group` for each of ``columns`` that the pairs have with at least one value.

        An entry may be a tuple of columns (``("subset", "category")``): one table for their
        combinations, keyed ``"subset x category"``.
        """
        out = {}
        for entry in columns:
            cols = [entry] if isinstance(entry, str) else list(entry)
            if all(c in self.pairs and self.pairs[c].notna().any() for c in cols):
                out[" x ".join(cols)] = self.by_group(entry)
        return out

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


def overview(
    pair_scores,
    *,
    data=None,
    n_skipped: int = 0,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    cluster_column: str | None = None,
) -> OverviewResult:
    """Summarise :class:`~workbench.models.scoring.PairScores` (or its frame) and grade accuracy.

    ``data`` is the scored :class:`~workbench.data.preferences.PreferenceData` (or its
    frame): it supplies the response texts for the length-only baseline and the prompts or
    topics that the intervals resample (``cluster_column`` names the unit explicitly).
    ``n_boot`` cluster-bootstrap resamples at level ``ci``, seeded with ``seed``.
    """
    frame = pair_scores.to_frame() if hasattr(pair_scores, "to_frame") else pair_scores
    frame = frame.reset_index(drop=True)
    n_boot = check_n_boot(n_boot)
    ci = check_ci(ci)
    joined = join_pair_data(frame, data)
    codes, column = pair_clusters(joined, None, cluster_column)
    margin = frame["margin"].to_numpy(dtype=float)
    label = frame["label"].to_numpy(dtype=float)
    acc = pairwise_accuracy(margin, label)
    decided = label != 0.5
    scored = decided & (margin != 0)
    correct = scored & ((margin > 0) == (label > 0.5))
    gap = (2.0 * label - 1.0) * margin
    rm_agree = np.where(decided, _agreement(margin, label), 0.0)
    has_text = {"chosen", "rejected"} <= set(joined.columns)
    if has_text:
        length = (joined["chosen"].astype(str).str.len() - joined["rejected"].astype(str).str.len()).to_numpy(float)
        len_agree = np.where(decided, _agreement(length, label), 0.0)
    else:
        len_agree = np.zeros_like(margin)
    n_dec = int(decided.sum())
    point_len = float(len_agree.sum() / n_dec) if has_text and n_dec else float("nan")
    point_diff = float((rm_agree - len_agree).sum() / n_dec) if has_text and n_dec else float("nan")

    cis = {k: NAN2 for k in ("acc", "gap", "len", "diff")}
    if n_boot > 0 and len(frame):
        stats = np.column_stack([correct, scored, gap, np.ones_like(gap), len_agree, rm_agree - len_agree, decided])
        boots = []
        for w in bootstrap_weights(len(frame), n_boot, seed, clusters=codes):
            sums = w @ stats
            with np.errstate(invalid="ignore", divide="ignore"):
                boots.append(
                    np.column_stack(
                        [
                            sums[:, 0] / sums[:, 1],
                            sums[:, 2] / sums[:, 3],
                            sums[:, 4] / sums[:, 6],
                            sums[:, 5] / sums[:, 6],
                        ]
                    )
                )
        b = np.concatenate(boots)
        lo, hi = percentile_ci(b, ci)
        cis = {k: (float(lo[i]), float(hi[i])) for i, k in enumerate(("acc", "gap", "len", "diff"))}
        if not has_text:
            cis["len"] = cis["diff"] = NAN2
    truncated = (
        int((frame["chosen_truncated"] | frame["rejected_truncated"]).sum()) if "chosen_truncated" in frame else 0
    )
    name = getattr(pair_scores, "model", {}).get("name", "RM") if hasattr(pair_scores, "model") else "RM"
    return OverviewResult(
        pairs=frame,
        model_name=name,
        accuracy=acc.accuracy,
        accuracy_ci=cis["acc"],
        tie_rate=acc.tie_rate,
        n_label_ties=acc.n_label_ties,
        mean_gap=mean_reward_gap(margin, label),
        mean_gap_ci=cis["gap"],
        n_pairs=len(frame),
        n_truncated=truncated,
        n_skipped=n_skipped,
        length_accuracy=point_len,
        length_accuracy_ci=cis["len"],
        accuracy_vs_length=point_diff,
        accuracy_vs_length_ci=cis["diff"],
        n_decided=n_dec,
        n_clusters=int(codes.max()) + 1 if len(codes) else 0,
        cluster_unit=unit_name(column),
        ci=ci,
    )
