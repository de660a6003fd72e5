"""Ensembles on preference pairs: accuracy of members and aggregators, and whether disagreement predicts mistakes.

For a pair, an aggregator's margin is ``agg(chosen) - agg(rejected)`` (aggregators:
:mod:`workbench.audits.ensemble.aggregation`). ``std_margin`` is the std over members
of the members' own margins ``z_i(chosen) - z_i(rejected)``, the disagreement about
*this comparison*. The **disagreement AUROC** asks whether ``std_margin`` ranks the
pairs the mean aggregator gets wrong above those it gets right; human ties
(``label == 0.5``) and zero mean margins are left out.

Accuracies use :func:`workbench.audits.calibration.metrics.pairwise_accuracy` (human and
model ties excluded). Intervals are percentile bootstrap intervals that resample
*clusters* of pairs (the data's topic/group/prompt-id column, else the normalised prompt:
:func:`workbench._utils.stats.cluster_labels`), drawn by the workbench's one bootstrap
(:func:`workbench._utils.stats.bootstrap_weights`); every comparison is paired (both
sides are recomputed on the same resampled clusters).

Graded checks (family ``"ensemble"``, :meth:`EnsembleResult.verdicts`) are about the
**audited model** when there is one:

* ``accuracy vs the other members`` (primary): the audited model's accuracy minus the
  mean accuracy of the other members, harmful when low (margins :data:`ACCURACY_MARGINS`).
  Compared with the other members one by one, not with their ensemble, so a
  well-behaved RM is not penalised for the gain that averaging brings;
* ``accuracy vs the ensemble mean``: the audited accuracy minus the mean aggregator's
  (shown, not primary: averaging usually gains a few points even among equal members);
* ``agreement with the other members``: share of pairs on which the audited model
  prefers the same response as the other members' mean margin (shown);
* ``disagreement predicts its mistakes``: AUROC of ``std_margin`` for the audited
  model's own mistakes (shown; 0.5 = the ensemble cannot flag its errors).

Without an audited model (bootstrap members) the ensemble-level checks (mean
aggregator vs best member, disagreement AUROC of the mean aggregator) decide the family.

:func:`ensemble_audit` is the one-call entry point (load pairs, load or train the
members, evaluate); :func:`ensemble_pairs` evaluates given members or score matrices.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from workbench._utils.plotting import error_histogram, panel_axes
from workbench._utils.stats import bootstrap_weights, cluster_labels, percentile_ci, resample_indices
from workbench._utils.validation import check_ci, check_n_boot
from workbench.audits.calibration.metrics import pairwise_accuracy
from workbench.audits.ensemble.aggregation import (
    check_lam,
    disagreement_auroc,
    ensemble_scores,
    score_frame,
    weighted_auroc,
)
from workbench.audits.ensemble.members import (
    as_pair_frame,
    load_members,
    parse_members,
    score_matrix,
    train_bootstrap_members,
)
from workbench.audits.result import AuditResult
from workbench.data.preferences import PreferenceSet
from workbench.data.shipped import load_data
from workbench.reports.render import escape_text
from workbench.reports.verdicts import Verdict, graded_verdict, verdict_table

__all__ = [
    "ACCURACY_MARGINS",
    "AGGREGATOR_MARGINS",
    "AGREEMENT_MARGINS",
    "AUROC_MARGINS",
    "EnsembleResult",
    "ensemble_pairs",
    "ensemble_audit",
    "bootstrap_interval",
]

_VERDICT_COLUMNS = [
    "check",
    "verdict",
    "value",
    "ci_low",
    "ci_high",
    "threshold",
    "n",
    "n_clusters",
    "primary",
    "sentence",
]

#: ``(warn, fail)`` of the audited model's accuracy minus the other members' (and minus the
#: ensemble mean's), in accuracy units, harmful when low. At the golden set's size (260 pairs,
#: one prompt each) the paired 95% interval of such a difference is about +-0.07 wide, so an
#: audited RM as good as the others passes in ~95% of seeds with warn at -0.12.
ACCURACY_MARGINS = (-0.12, -0.2)
#: ``(warn, fail)`` of the audited model's agreement with the other members (harmful when low).
AGREEMENT_MARGINS = (0.6, 0.5)
#: ``(warn, fail)`` of a disagreement AUROC (harmful when low: 0.5 = no signal).
AUROC_MARGINS = (0.6, 0.5)
#: ``(warn, fail)`` of the mean aggregator's accuracy minus the best member's (harmful when low).
AGGREGATOR_MARGINS = (-0.05, -0.1)


def bootstrap_interval(
    metric: Callable[..., float],
    *arrays: Any,
    n_boot: int = 1000,
    seed: Any = 0,
    ci: float = 0.95,
    clusters: Any = None,
) -> tuple[float, float]:
    """Percentile bootstrap interval (level ``ci``) of ``metric(*arrays)``, resampling rows jointly.

    With ``clusters`` (integer codes per row, e.g. from :func:`workbench._utils.stats.cluster_labels`)
    whole clusters are resampled. Resamples on which the metric is NaN are ignored;
    ``(nan, nan)`` for ``n_boot=0``.
    """
    n_boot, ci = check_n_boot(n_boot), check_ci(ci)
    arrs = [np.asarray(a) for a in arrays]
    codes = None if clusters is None else np.asarray(clusters)
    values = [
        float(metric(*(a[idx] for a in arrs))) for idx in resample_indices(len(arrs[0]), n_boot, seed, clusters=codes)
    ]
    return percentile_ci(np.asarray(values, dtype=float), ci)


def _boot_weights(n: int, n_boot: int, seed: Any, codes: np.ndarray) -> np.ndarray:
    """``(n_boot, n)`` multiplicities of every pair under the cluster bootstrap."""
    chunks = list(bootstrap_weights(n, n_boot, seed, clusters=codes))
    return np.concatenate(chunks, axis=0).astype(float) if chunks else np.empty((0, n))


def _ratio(num, den):
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _correct_decided(margin: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pair: ranked as the annotators did (1/0) and decided (no human or model tie), as in pairwise_accuracy."""
    decided = (label != 0.5) & (margin != 0)
    correct = decided & ((margin > 0) == (label > 0.5))
    return correct.astype(float), decided.astype(float)


@dataclass(frozen=True)
class _CheckSpec:
    """One graded check of :meth:`EnsembleResult.verdicts`: a key of :meth:`EnsembleResult.checks`, its
    name, ``(warn, fail)`` margins (harmful when low) and the sentence as a function of ``(estimate, lo, hi)``."""

    key: str
    check: str
    margins: tuple[float, float]
    sentence: Callable[[float, float, float], str]
    detail: str
    primary: bool = False


@dataclass
class EnsembleResult(AuditResult):
    """Ensemble evaluation on preference pairs (see the module docstring).

    ``items``: one row per pair with ``id, prompt, chosen, rejected, label``, each
    member's margin (``margin:<name>``), ``mean_margin, worst_margin,
    uncertainty_margin, std_margin, disagree`` (members' signs differ) and
    ``mistake`` (the mean aggregator ranks the pair against the label; NaN for
    human ties and zero margins). ``accuracy``: one row per member and aggregator.
    :func:`ensemble_audit` also fills ``source`` (the pairs), ``origin`` (a Markdown
    line naming the members) and ``audited`` (the member under audit, if any).
    """

    section: ClassVar[str] = "ensemble"

    items: pd.DataFrame
    accuracy: pd.DataFrame
    members: list[str]
    lam: float
    zscored: bool
    auroc: float
    auroc_ci: tuple[float, float]
    disagreement_rate: float
    member_disagreement: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    ci: float = 0.95
    source: str = ""
    origin: str = ""
    audited: str | None = None
    clusters: np.ndarray | None = field(default=None, repr=False)
    cluster_unit: str = "pair"
    n_boot: int = 1000
    seed: Any = 0

    def to_frame(self) -> pd.DataFrame:
        """Accuracy of every member and aggregator, with bootstrap intervals."""
        return self.accuracy.copy()

    @property
    def n_clusters(self) -> int:
        """Independent units the intervals resample (prompts, topics or groups; pairs without clusters)."""
        return int(len(np.unique(self._codes())))

    def _codes(self) -> np.ndarray:
        return np.arange(len(self.items)) if self.clusters is None else np.asarray(self.clusters)

    def summary(self) -> dict:
        """Headline numbers (flat): pairs, clusters, ``lam``, disagreement rate and AUROC, accuracies, audited checks."""
        acc = dict(zip(self.accuracy["scorer"], self.accuracy["accuracy"]))
        out = {
            "n_pairs": int(len(self.items)),
            "lam": self.lam,
            "zscored": self.zscored,
            "disagreement_rate": self.disagreement_rate,
            "auroc_std_vs_mistake": self.auroc,
            "n_clusters": self.n_clusters,
            "cluster_unit": self.cluster_unit,
            "audited": self.audited or "",
            **{f"accuracy[{k}]": v for k, v in acc.items()},
        }
        for key, (value, lo, hi) in self.checks().items():
            out[key], out[f"{key}_low"], out[f"{key}_high"] = value, lo, hi
        return out

    def checks(self) -> dict[str, tuple[float, float, float]]:
        """Every graded quantity as ``(estimate, ci_low, ci_high)`` from one set of cluster resamples.

        Keys: ``mean_minus_best_member``, ``auroc_mean_aggregator`` and, with an audited
        member, ``audited_minus_others``, ``audited_minus_mean``, ``audited_agreement``,
        ``audited_auroc``. Computed once and cached.
        """
        key = (self.audited, self.n_boot, self.seed, self.ci, tuple(self.members))
        cached = getattr(self, "_checks_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        it = self.items
        label = it["label"].to_numpy(dtype=float)
        margins = {m: it[f"margin:{m}"].to_numpy(dtype=float) for m in self.members}
        mean_m = it["mean_margin"].to_numpy(dtype=float)
        std_m = it["std_margin"].to_numpy(dtype=float)
        n = len(it)
        w = _boot_weights(n, self.n_boot, self.seed, self._codes()) if self.n_boot else np.empty((0, n))
        ones = np.ones((1, n))

        def acc(margin):
            c, d = _correct_decided(margin, label)
            return _ratio(ones @ c, ones @ d)[0], _ratio(w @ c, w @ d)

        def interval(point, boots):
            lo, hi = percentile_ci(boots, self.ci) if len(boots) else (np.nan, np.nan)
            return float(point), float(lo), float(hi)

        def auroc(scores, margin):
            c, d = _correct_decided(margin, label)
            keep = d > 0
            mistakes = c[keep] == 0
            point = weighted_auroc(scores[keep], mistakes, np.ones(int(keep.sum())))[0]
            boots = weighted_auroc(scores[keep], mistakes, w[:, keep]) if len(w) else np.empty(0)
            return interval(point, boots)

        member_acc = {m: acc(margins[m]) for m in self.members}
        mean_acc = acc(mean_m)
        best = max(self.members, key=lambda m: np.nan_to_num(member_acc[m][0], nan=-1.0))
        out = {
            "mean_minus_best_member": interval(mean_acc[0] - member_acc[best][0], mean_acc[1] - member_acc[best][1]),
            "auroc_mean_aggregator": auroc(std_m, mean_m),
        }
        if self.audited in margins:
            a = self.audited
            others = [m for m in self.members if m != a]
            if others:
                o_point = np.mean([member_acc[m][0] for m in others])
                o_boot = np.mean([member_acc[m][1] for m in others], axis=0)
                out["audited_minus_others"] = interval(member_acc[a][0] - o_point, member_acc[a][1] - o_boot)
                rest = np.mean([margins[m] for m in others], axis=0)
                both = ((margins[a] != 0) & (rest != 0)).astype(float)
                same = both * (np.sign(margins[a]) == np.sign(rest))
                out["audited_agreement"] = interval(_ratio(ones @ same, ones @ both)[0], _ratio(w @ same, w @ both))
            out["audited_minus_mean"] = interval(member_acc[a][0] - mean_acc[0], member_acc[a][1] - mean_acc[1])
            out["audited_auroc"] = auroc(std_m, margins[a])
        self._checks_cache = (key, out)
        return out

    def verdicts(self) -> list[Verdict]:
        """Graded checks of family ``"ensemble"`` (see the module docstring), each on its clustered interval.

        With an audited member its checks come first and ``accuracy vs the other members``
        is the primary one; the ensemble-level checks are shown (``primary=False``). Without
        an audited member (bootstrap members) the ensemble-level checks are primary.
        """
        checks = self.checks()
        pct = f"{100 * self.ci:g}%"
        n, k, unit = len(self.items), self.n_clusters, self.cluster_unit
        sizes = f"{n} pairs, {k} {unit}s"
        common = dict(ci=self.ci, n=n, n_clusters=k, cluster_unit=unit, family="ensemble", direction="lower")
        acc = self.accuracy.set_index("scorer")["accuracy"]
        a = self.audited if self.audited in self.members else None
        ensemble_decides = "audited_minus_others" not in checks  # no audited model, or no other member

        def pts(x):
            return f"{100 * x:+.0f}"

        specs: list[_CheckSpec] = []
        if a is not None:
            others = [m for m in self.members if m != a]
            o_acc = float(np.mean([acc[m] for m in others])) if others else float("nan")
            vs_others = (
                f"the other member ({others[0]}) ranks "
                if len(others) == 1
                else f"the other members ({', '.join(others)}) average "
            )
            specs += [
                _CheckSpec(
                    "audited_minus_others",
                    "audited accuracy minus the other members'",
                    ACCURACY_MARGINS,
                    lambda d, lo, hi: (
                        f"{a} ranks {acc[a]:.0%} of pairs as the annotators do; {vs_others}{o_acc:.0%}: "
                        f"a difference of {pts(d)} points ({pct} CI {pts(lo)} to {pts(hi)}; {sizes})."
                    ),
                    f"accuracy {acc[a]:.3f} vs other members' mean {o_acc:.3f}",
                    primary=True,
                ),
                _CheckSpec(
                    "audited_minus_mean",
                    "audited accuracy minus the ensemble mean's",
                    ACCURACY_MARGINS,
                    lambda d, lo, hi: (
                        f"Averaging {a} with the other members would change accuracy from {acc[a]:.0%} to "
                        f"{acc['mean']:.0%}: {a} is {pts(d)} points against the ensemble mean ({pct} CI "
                        f"{pts(lo)} to {pts(hi)}; {sizes})."
                    ),
                    "shown, not primary: averaging gains a few points even among equally good members",
                ),
                _CheckSpec(
                    "audited_agreement",
                    "audited agreement with the other members",
                    AGREEMENT_MARGINS,
                    lambda r, lo, hi: (
                        f"{a} prefers the same response as the other members on {r:.0%} of pairs "
                        f"({pct} CI {lo:.0%} to {hi:.0%}; {sizes})."
                    ),
                    "sign of the audited margin vs the sign of the other members' mean margin",
                ),
                _CheckSpec(
                    "audited_auroc",
                    "disagreement predicts the audited model's mistakes (AUROC)",
                    AUROC_MARGINS,
                    lambda u, lo, hi: (
                        f"The members' disagreement ranks the pairs {a} gets wrong above those it gets right "
                        f"with AUROC {u:.2f} ({pct} CI {lo:.2f} to {hi:.2f}; 0.5 = no signal; {sizes})."
                    ),
                    "std of member margins as a flag for the audited model's errors",
                ),
            ]
        best = self.accuracy.loc[self.accuracy["kind"] == "member"].sort_values("accuracy", kind="mergesort")
        best_name = str(best["scorer"].iloc[-1])
        specs += [
            _CheckSpec(
                "mean_minus_best_member",
                "mean aggregator minus the best member (accuracy)",
                AGGREGATOR_MARGINS,
                lambda d, lo, hi: (
                    f"The ensemble mean ranks {acc['mean']:.0%} of pairs correctly, {pts(d)} points against the "
                    f"best member {best_name} ({pct} CI {pts(lo)} to {pts(hi)}; {sizes})."
                ),
                f"mean {acc['mean']:.3f}, best member {acc[best_name]:.3f}",
                primary=ensemble_decides,
            ),
            _CheckSpec(
                "auroc_mean_aggregator",
                "disagreement predicts the ensemble's mistakes (AUROC)",
                AUROC_MARGINS,
                lambda u, lo, hi: (
                    f"The members' disagreement ranks the pairs the ensemble mean gets wrong above those it gets "
                    f"right with AUROC {u:.2f} ({pct} CI {lo:.2f} to {hi:.2f}; 0.5 = no signal; {sizes})."
                ),
                f"disagreement rate {self.disagreement_rate:.3f}",
                primary=ensemble_decides,
            ),
        ]
        out = []
        for spec in specs:
            if spec.key not in checks:  # agreement and "vs the other members" need another member
                continue
            x, lo, hi = checks[spec.key]
            warn, fail = spec.margins
            out.append(
                graded_verdict(
                    self.section,
                    spec.check,
                    x,
                    lo,
                    hi,
                    warn=warn,
                    fail=fail,
                    sentence=spec.sentence(x, lo, hi),
                    detail=spec.detail,
                    primary=spec.primary,
                    **common,
                )
            )
        return out

    def verdicts_frame(self) -> pd.DataFrame:
        """:meth:`verdicts` as a table (check, verdict, estimate, interval, margins, sizes, primary, sentence)."""
        return verdict_table(self.verdicts(), _VERDICT_COLUMNS)

    def top_disagreements(self, k: int = 10) -> pd.DataFrame:
        """The ``k`` pairs with the largest ``std_margin`` (member margins side by side)."""
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        cols = [
            c for c in ("id", "prompt", "chosen", "rejected", "label", "category", "subset") if c in self.items.columns
        ]
        cols += [f"margin:{m}" for m in self.members] + ["mean_margin", "std_margin", "mistake"]
        return (
            self.items.sort_values("std_margin", ascending=False, kind="mergesort")
            .head(int(k))[cols]
            .reset_index(drop=True)
        )

    def relabel_candidates(self, k: int = 20, reason: str = "ensemble disagreement") -> pd.DataFrame:
        """The :meth:`top_disagreements` as flagged items for :func:`workbench.data.relabel.export_relabel_queue`.

        Adds ``reason`` and ``margin``: the audited member's margin (its ``rm_preference``
        in the queue), or the ensemble mean margin when no member is audited (bootstrap members).
        """
        flagged = self.top_disagreements(k).assign(reason=reason)
        margin_col = f"margin:{self.audited}" if self.audited else "mean_margin"
        flagged["margin"] = flagged[margin_col]
        return flagged

    def plot(self, ax=None, kind: str = "all"):
        """Accuracy of each member and aggregator (bootstrap CI) and ``std_margin`` of correct vs wrong pairs.

        ``kind="all"`` draws both panels, ``"accuracy"`` or ``"disagreement"`` one;
        ``ax``: one Axes per panel (``None``: a new figure). Returns the Figure.
        """
        fig, axes, chosen = panel_axes(kind, ("accuracy", "disagreement"), ax, (5.5, 3.8))
        for a, k in zip(axes, chosen):
            if k == "accuracy":
                self._plot_accuracy(a)
            else:
                self._plot_disagreement(a)
        if ax is None:
            fig.tight_layout()
        return fig

    def _plot_accuracy(self, ax) -> None:
        a = self.accuracy
        y = np.arange(len(a))[::-1]
        err = np.vstack([np.nan_to_num(a["accuracy"] - a["ci_low"]), np.nan_to_num(a["ci_high"] - a["accuracy"])])
        colors = ["tab:gray" if k == "member" else "tab:blue" for k in a["kind"]]
        ax.barh(y, a["accuracy"], xerr=err, color=colors, capsize=3)
        ax.set_yticks(y)
        ax.set_yticklabels(a["scorer"], fontsize="small")
        ax.axvline(0.5, color="k", lw=0.8, ls=":")
        ax.set_xlim(0, 1)
        ax.set_xlabel("pairwise accuracy")
        ax.set_title("Members (gray) and aggregators (blue)")

    def _plot_disagreement(self, ax) -> None:
        error_histogram(ax, self.items, "std_margin")
        ax.set_xlabel("std of member margins")
        ax.set_title(f"Disagreement vs error: AUROC {self.auroc:.3f}")


def ensemble_pairs(
    models_or_scores: Any,
    pairs: Any,
    zscore: bool = True,
    lam: float = 1.0,
    *,
    names: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: Any = 0,
    ci: float = 0.95,
    cache="default",
    progress: bool = False,
    cluster_column: str | None = None,
    audited: str | None = None,
) -> EnsembleResult:
    """Evaluate an ensemble on preference pairs.

    ``models_or_scores`` is a list (or comma-separated string) of RM specs, or
    a tuple ``(chosen_matrix, rejected_matrix)`` of ``pairs x members`` scores.
    Accuracies use :func:`workbench.audits.calibration.metrics.pairwise_accuracy` (human and
    model ties excluded) with percentile-bootstrap intervals (level ``ci``) that resample
    clusters of pairs (``cluster_column``, else :func:`workbench._utils.stats.cluster_labels`
    picks the data's topic/group/prompt-id column or the normalised prompt);
    ``n_boot=0`` skips the intervals. ``audited`` names the member under audit.
    """
    lam = check_lam(lam)
    n_boot, ci = check_n_boot(n_boot), check_ci(ci)
    frame = as_pair_frame(pairs)
    n = len(frame)
    codes, unit = cluster_labels(frame, cluster_column)
    label = frame["label"].to_numpy(dtype=float) if "label" in frame.columns else np.ones(n)
    if isinstance(models_or_scores, tuple) and len(models_or_scores) == 2:
        c = score_frame(models_or_scores[0], None, None, names, cache, progress)
        r = score_frame(models_or_scores[1], None, None, list(c.columns), cache, progress)
        if c.shape != (n, c.shape[1]) or r.shape != c.shape:
            raise ValueError(f"chosen and rejected score matrices must both be {n} x k, got {c.shape} and {r.shape}")
        both = pd.concat([c, r], ignore_index=True)
    else:
        members = load_members(models_or_scores)
        hist = list(frame["history"]) if "history" in frame.columns else [None] * n
        hist = [h if isinstance(h, list) and h else None for h in hist]
        both = score_matrix(
            members,
            list(frame["prompt"]) * 2,
            list(frame["chosen"]) + list(frame["rejected"]),
            hist * 2,
            cache=cache,
            progress=progress,
        )
        if names is not None:
            both.columns = list(names)
    es = ensemble_scores(both, zscore=zscore, lam=lam)
    z = es.z.to_numpy()
    zc, zr = z[:n], z[n:]
    member_names = list(es.z.columns)
    margins = zc - zr
    mean_m = es.mean[:n] - es.mean[n:]
    worst_m = es.worst[:n] - es.worst[n:]
    unc_m = es.penalized[:n] - es.penalized[n:]
    std_m = margins.std(1)
    signs = np.sign(margins)
    disagree = ~(np.all(signs == signs[:, :1], axis=1))
    decided = (label != 0.5) & (mean_m != 0)
    mistake = np.where(decided, ((mean_m > 0) != (label > 0.5)).astype(float), np.nan)

    keep = [c for c in ("id", "prompt", "chosen", "rejected", "category", "subset") if c in frame.columns]
    items = frame[keep].copy()
    items["label"] = label
    for j, m in enumerate(member_names):
        items[f"margin:{m}"] = margins[:, j]
    items["mean_margin"], items["worst_margin"], items["uncertainty_margin"] = mean_m, worst_m, unc_m
    items["std_margin"], items["disagree"], items["mistake"] = std_m, disagree, mistake

    rows = []
    scorers = [(m, "member", margins[:, j]) for j, m in enumerate(member_names)]
    scorers += [
        ("mean", "aggregator", mean_m),
        ("worst-case", "aggregator", worst_m),
        (f"mean - {lam:g}*std", "aggregator", unc_m),
    ]
    weights = _boot_weights(n, n_boot, seed, codes) if n_boot else None
    for name, kind, m in scorers:
        pa = pairwise_accuracy(m, label)
        lo = hi = float("nan")
        if weights is not None:
            correct, decided = _correct_decided(m, label)
            lo, hi = percentile_ci(_ratio(weights @ correct, weights @ decided), ci)
        rows.append(
            {
                "scorer": name,
                "kind": kind,
                "accuracy": pa.accuracy,
                "ci_low": lo,
                "ci_high": hi,
                "n_decided": pa.n_decided,
                "n_correct": pa.n_correct,
                "n_wrong": pa.n_wrong,
                "tie_rate": pa.tie_rate,
            }
        )
    notes = []
    ok = np.isfinite(mistake)
    auroc = disagreement_auroc(std_m[ok], mistake[ok]) if ok.any() else float("nan")
    auroc_ci = (float("nan"), float("nan"))
    if np.isnan(auroc):
        notes.append("disagreement AUROC undefined: the mean aggregator is right on every pair or wrong on every pair")
    elif weights is not None:
        auroc_ci = percentile_ci(weighted_auroc(std_m[ok], mistake[ok] == 1, weights[:, ok]), ci)
    k = len(member_names)
    dis = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            dis[i, j] = float(np.mean(np.sign(margins[:, i]) != np.sign(margins[:, j])))
    if k == 2 and zscore and lam == 1.0:
        notes.append("with 2 members, mean - 1*std (ddof=0) equals the worst case")
    return EnsembleResult(
        items=items,
        accuracy=pd.DataFrame(rows),
        members=member_names,
        lam=lam,
        zscored=bool(zscore),
        auroc=auroc,
        auroc_ci=tuple(auroc_ci),
        disagreement_rate=float(disagree.mean()),
        member_disagreement=pd.DataFrame(dis, index=member_names, columns=member_names),
        notes=notes,
        ci=ci,
        audited=audited,
        clusters=codes,
        cluster_unit=unit,
        n_boot=n_boot,
        seed=seed,
    )


def _as_preference_set(data: Any) -> PreferenceSet:
    if isinstance(data, PreferenceSet):
        return data
    if isinstance(data, pd.DataFrame):
        return PreferenceSet(frame=data.reset_index(drop=True), source="<frame>")
    return load_data(data)


def ensemble_audit(
    data: Any = "golden",
    models: Any = "demo-clean,demo-biased",
    *,
    model: Any = None,
    lam: float = 1.0,
    zscore: bool = True,
    sample_size: int | None = 0,
    seed: int = 0,
    n_boot: int = 1000,
    ci: float = 0.95,
    bootstrap_k: int = 0,
    bootstrap_data: Any = "demo-train-biased",
    bootstrap_pairs: int | None = 300,
    cluster_column: str | None = None,
    cache="default",
    progress: bool = False,
) -> EnsembleResult:
    """Load preference pairs, load (or train) the members, and evaluate the ensemble in one call.

    Parameters
    ----------
    data : shipped-data name (``"golden"``), path, PreferenceSet or DataFrame
        The pairs to evaluate; ``sample_size`` of them are kept (0: all), seeded by ``seed``.
    models : comma-separated specs or a list
        The members (ignored when ``bootstrap_k`` is 2 or more).
    model : spec, optional
        The RM under audit: added in front of the members if missing; its margins
        become the relabel queue's ``rm_preference`` (:meth:`EnsembleResult.relabel_candidates`).
    bootstrap_k : int
        2 or more: train this many bootstrap members (:func:`train_bootstrap_members`) on
        ``bootstrap_pairs`` pairs of ``bootstrap_data`` instead of using ``models``.
    lam, zscore, n_boot, ci, seed, cluster_column : see :func:`ensemble_pairs`.
    """
    pairs = _as_preference_set(data).sample(sample_size or None, seed=seed)
    if bootstrap_k and bootstrap_k >= 2:
        train = _as_preference_set(bootstrap_data).sample(bootstrap_pairs or None, seed=seed)
        members = train_bootstrap_members(train, k=int(bootstrap_k), seed=seed)
        origin = f"{bootstrap_k} bootstrap members trained on {len(train)} pairs of `{escape_text(bootstrap_data)}`"
        audited = None
    else:
        specs = parse_members(models)
        if model and model not in specs:
            specs = [model] + specs
        members = load_members(specs)
        origin = "members " + ", ".join(f"`{escape_text(m.name)}`" for m in members)
        audited = members[specs.index(model)].name if model else None
    result = ensemble_pairs(
        members,
        pairs,
        zscore=zscore,
        lam=lam,
        n_boot=n_boot,
        seed=seed,
        ci=ci,
        cache=cache,
        progress=progress,
        cluster_column=cluster_column,
        audited=audited,
    )
    result.source, result.origin = pairs.source, origin
    return result
