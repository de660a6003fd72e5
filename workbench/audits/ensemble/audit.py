"""Ensembles on preference pairs: accuracy of members and aggregators, and whether disagreement predicts mistakes.

For a pair, an aggregator's margin is ``agg(chosen) - agg(rejected)`` (aggregators:
:mod:`workbench.audits.ensemble.aggregation`). ``std_margin`` is the std over members
of the members' own margins ``z_i(chosen) - z_i(rejected)``, the disagreement about
*this comparison*. The **disagreement AUROC** asks whether ``std_margin`` ranks the
pairs the mean aggregator gets wrong above those it gets right; human ties
(``label == 0.5``) and zero mean margins are left out.

Accuracies use :func:`workbench.audits.calibration.metrics.pairwise_accuracy` (human and
model ties excluded). Intervals are percentile bootstrap intervals over pairs, drawn
by the workbench's one bootstrap (:func:`workbench._utils.stats.resample_indices`).

:func:`ensemble_audit` is the one-call entry point (load pairs, load or train the
members, evaluate); :func:`ensemble_pairs` evaluates given members or score matrices.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from workbench._utils.stats import percentile_ci, resample_indices
from workbench._utils.validation import check_ci, check_n_boot
from workbench.audits.calibration.metrics import pairwise_accuracy
from workbench.audits.ensemble.aggregation import check_lam, disagreement_auroc, ensemble_scores, score_frame
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
from workbench.reports.verdicts import Verdict

__all__ = ["EnsembleResult", "ensemble_pairs", "ensemble_audit", "bootstrap_interval"]

_VERDICT_COLUMNS = ["check", "value", "threshold", "verdict", "detail"]


def bootstrap_interval(
    metric: Callable[..., float], *arrays: Any, n_boot: int = 1000, seed: Any = 0, ci: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval (level ``ci``) of ``metric(*arrays)``, resampling rows jointly.

    Resamples on which the metric is NaN are ignored; ``(nan, nan)`` for ``n_boot=0``.
    """
    n_boot, ci = check_n_boot(n_boot), check_ci(ci)
    arrs = [np.asarray(a) for a in arrays]
    values = [float(metric(*(a[idx] for a in arrs))) for idx in resample_indices(len(arrs[0]), n_boot, seed)]
    return percentile_ci(np.asarray(values, dtype=float), ci)


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

    def to_frame(self) -> pd.DataFrame:
        """Accuracy of every member and aggregator, with bootstrap intervals."""
        return self.accuracy.copy()

    def summary(self) -> dict:
        """Headline numbers (flat): pairs, ``lam``, disagreement rate and AUROC, accuracy of every scorer."""
        acc = dict(zip(self.accuracy["scorer"], self.accuracy["accuracy"]))
        return {
            "n_pairs": int(len(self.items)),
            "lam": self.lam,
            "zscored": self.zscored,
            "disagreement_rate": self.disagreement_rate,
            "auroc_std_vs_mistake": self.auroc,
            **{f"accuracy[{k}]": v for k, v in acc.items()},
        }

    def verdicts(self) -> list[Verdict]:
        """Graded checks for the report.

        * ``disagreement predicts mistakes``: AUROC of ``std_margin`` for mistakes;
          ``pass`` when its bootstrap interval lies above 0.5, ``warn`` otherwise
          (the ensemble's uncertainty is not a usable error signal), ``n/a`` if undefined.
        * ``mean aggregator vs best member``: accuracy difference; ``warn`` when the
          mean aggregator is below the best single member, else ``pass``.
        """
        a = self.accuracy.set_index("scorer")["accuracy"]
        members = self.accuracy.loc[self.accuracy["kind"] == "member", "accuracy"]
        lo = self.auroc_ci[0]
        v1 = "n/a" if not np.isfinite(self.auroc) else ("pass" if np.isfinite(lo) and lo > 0.5 else "warn")
        diff = float(a["mean"] - members.max())
        return [
            Verdict(
                section=self.section,
                check="disagreement predicts mistakes (AUROC)",
                value=self.auroc,
                threshold=f"{100 * self.ci:g}% CI above 0.5: pass",
                verdict=v1,
                detail=f"CI {self.auroc_ci[0]:.3f}-{self.auroc_ci[1]:.3f}; disagreement rate {self.disagreement_rate:.3f}",
            ),
            Verdict(
                section=self.section,
                check="mean aggregator vs best member (accuracy)",
                value=diff,
                threshold="< 0: warn",
                verdict="warn" if diff < 0 else "pass",
                detail=f"mean {a['mean']:.3f}, best member {members.max():.3f}",
            ),
        ]

    def verdicts_frame(self) -> pd.DataFrame:
        """:meth:`verdicts` as a table (``check, value, threshold, verdict, detail``)."""
        return pd.DataFrame([asdict(v) for v in self.verdicts()], columns=["section", *_VERDICT_COLUMNS])[
            _VERDICT_COLUMNS
        ]

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
        kinds = ("accuracy", "disagreement")
        if kind != "all" and kind not in kinds:
            raise ValueError(f"kind must be 'all' or one of {kinds}, got {kind!r}")
        chosen = kinds if kind == "all" else (kind,)
        if ax is None:
            fig, axes = plt.subplots(1, len(chosen), figsize=(5.5 * len(chosen), 3.8), squeeze=False)
            axes = list(axes[0])
        else:
            axes = list(np.ravel(ax))
            if len(axes) != len(chosen):
                raise ValueError(f"kind={kind!r} draws {len(chosen)} panel(s) but {len(axes)} Axes were given")
            fig = axes[0].figure
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
        it = self.items
        decided = it[it["mistake"].notna()]
        n_wrong = int((decided["mistake"] == 1).sum())
        right, wrong = f"ranked right (n={len(decided) - n_wrong})", f"ranked wrong (n={n_wrong})"
        data = pd.DataFrame(
            {
                "std_margin": decided["std_margin"].to_numpy(dtype=float),
                "pairs": np.where(decided["mistake"].to_numpy() == 1, wrong, right),
            }
        )
        bins = np.linspace(0, max(float(it["std_margin"].max()), 1e-9), 25)
        if len(data):
            sns.histplot(
                data=data,
                x="std_margin",
                hue="pairs",
                hue_order=[right, wrong],
                palette=["C0", "C1"],
                bins=bins,
                stat="density",
                common_norm=False,
                alpha=0.6,
                ax=ax,
            )
            if ax.get_legend() is not None:
                sns.move_legend(ax, "best", title=None, fontsize="small")
        ax.set_xlabel("std of member margins")
        ax.set_ylabel("density")
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
) -> EnsembleResult:
    """Evaluate an ensemble on preference pairs.

    ``models_or_scores`` is a list (or comma-separated string) of RM specs, or
    a tuple ``(chosen_matrix, rejected_matrix)`` of ``pairs x members`` scores.
    Accuracies use :func:`workbench.audits.calibration.metrics.pairwise_accuracy` (human and
    model ties excluded) with percentile-bootstrap intervals (level ``ci``) over pairs;
    ``n_boot=0`` skips the intervals.
    """
    lam = check_lam(lam)
    n_boot, ci = check_n_boot(n_boot), check_ci(ci)
    frame = as_pair_frame(pairs)
    n = len(frame)
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
    for name, kind, m in scorers:
        pa = pairwise_accuracy(m, label)
        lo, hi = bootstrap_interval(_accuracy, m, label, n_boot=n_boot, seed=seed, ci=ci)
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
    elif n_boot:
        auroc_ci = bootstrap_interval(disagreement_auroc, std_m[ok], mistake[ok], n_boot=n_boot, seed=seed, ci=ci)
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
    )


def _accuracy(margin: np.ndarray, label: np.ndarray) -> float:
    return pairwise_accuracy(margin, label).accuracy


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
    lam, zscore, n_boot, ci, seed : see :func:`ensemble_pairs`.
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
        members, pairs, zscore=zscore, lam=lam, n_boot=n_boot, seed=seed, ci=ci, cache=cache, progress=progress
    )
    result.source, result.origin, result.audited = pairs.source, origin, audited
    return result
