"""Reward drift across policy checkpoints, and the checkpoint pairs that go to the relabel queue.

A policy trained against a reward model (RM) produces samples at successive
checkpoints. :func:`reward_drift` compares the RM's reward distribution at every
checkpoint with a *reference* checkpoint (by default the first one);
:func:`checkpoint_pairs` pairs each prompt's reference answer with its current
answer so that people can say which is better, and :func:`relabel_candidates`
ranks those pairs for the relabel queue.

Statistics (per checkpoint, against the reference sample)
---------------------------------------------------------
* ``n``, ``mean`` with a Student-t ``ci``-level interval, ``std`` (``ddof=1``)
  and the 5/25/50/75/95% quantiles (``numpy.quantile``, linear interpolation).
* ``mean_shift = mean - mean_ref`` with a Welch interval, and
  ``mean_shift_sd = mean_shift / std_ref``.
* ``ks_stat`` and ``ks_p``: two-sample Kolmogorov-Smirnov test
  (``scipy.stats.ks_2samp``, two-sided, ``method="auto"``). ``ks_p_adj`` is the
  p-value the rule uses: by default (``adjust="none"``) the raw p-value, since,
  as in Evidently and NannyML, each checkpoint is a separate monitoring decision
  made when it arrives; ``adjust="holm"`` gives Holm-adjusted p-values over all
  compared (non-reference, sufficient) checkpoints, which controls the
  family-wise false-alarm rate at the cost of power when checkpoints hold few
  samples (about 80 each in the demo data).
* ``wasserstein``: the normed Wasserstein distance in reference SDs
  (:func:`~workbench.audits.drift.statistics.normed_wasserstein`), with its permutation
  null (:func:`~workbench.audits.drift.permutation.wasserstein_null`): ``null_mean`` and
  ``null_q95`` (the distance expected with no drift at all: about 0.12 to 0.2 reference SDs
  at 80 samples), the permutation ``perm_p`` (and ``perm_p_holm``, Holm over the compared
  checkpoints), and the graded effect ``excess = wasserstein - null_mean`` with a
  cluster-bootstrap interval (``excess_ci_low``, ``excess_ci_high``). ``paired`` says
  whether the permutation swapped labels within prompts (both checkpoints answer the same
  ``prompt_ids``) or shuffled them over all samples.
* ``psi``, ``psi_null`` and ``psi_band``: population stability index on
  reference-quantile bins, the value expected from sampling noise alone, and the
  industry band (:mod:`workbench.audits.drift.statistics`).

KS, PSI and the mean shift are descriptive: they are shown, they do not grade.

Grading rule
------------
* ``"insufficient data"`` when the checkpoint or the reference has fewer than
  ``min_samples`` finite scores: no test is run, the statistics are NaN and the verdict
  is ``n/a``.
* ``"reference"`` for the reference checkpoint itself.
* Every other checkpoint gets a verdict from
  :func:`~workbench.reports.grading.grade_interval` on the interval of ``excess`` (harm =
  drift beyond noise, in reference SDs; a pure location shift by ``d`` SDs has ``W = d``):
  pass when the interval lies below ``warn`` (default 0.2 SD, Cohen's "small" effect),
  fail when it lies above ``fail`` (default 1.0 SD: the RM then scores answers a full
  reference SD away from the distribution it was validated on), warn in between,
  inconclusive when it straddles ``warn``. Status ``"drift"`` for warn or fail, ``"inconclusive"``,
  else ``"ok"``. A moving reward is expected under RL; the Goodhart flag says whether it harms.
  Only the **last** checkpoint's verdict is published (one planned comparison); the
  others are in the table. ``direction`` says whether the mean went ``"up"`` or ``"down"``.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import seaborn as sns
from scipy import stats

from workbench._utils.plotting import ensure_ax
from workbench._utils.validation import check_ci, check_margins
from workbench.audits.drift.permutation import wasserstein_null
from workbench.audits.drift.phrases import trigger_hits
from workbench.audits.drift.samples import checkpoint_labels, order_checkpoints, sample_steps
from workbench.audits.drift.statistics import (
    holm,
    normed_wasserstein,
    psi_band,
    psi_bins,
    t_interval,
    welch_interval,
)
from workbench.audits.result import AuditResult
from workbench.reports.grading import grade_interval
from workbench.reports.verdicts import Verdict, graded_verdict

__all__ = [
    "QUANTILES",
    "STATUSES",
    "STATUS_COLORS",
    "reward_drift",
    "DriftResult",
    "checkpoint_pairs",
    "relabel_candidates",
]

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
STATUSES = ("reference", "ok", "inconclusive", "drift", "insufficient data")
#: colour of each status in the drift plots
STATUS_COLORS = {
    "reference": "tab:blue",
    "ok": "tab:gray",
    "inconclusive": "tab:orange",
    "drift": "tab:red",
    "insufficient data": "lightgray",
}


@dataclass
class DriftResult(AuditResult):
    """Per-checkpoint reward statistics against a reference checkpoint (see the module docstring).

    ``table`` has one row per checkpoint, ordered by step. ``samples`` keeps the
    scores (``checkpoint, step, score``) for plots.
    """

    section: ClassVar[str] = "drift"

    table: pd.DataFrame
    samples: pd.DataFrame
    reference: str
    min_samples: int
    n_bins: int
    alpha: float
    warn: float
    fail: float
    ci: float
    cluster_unit: str = "sample"
    notes: list[str] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    @property
    def drifted(self) -> list[str]:
        """Checkpoints with status ``"drift"``."""
        return self.table.loc[self.table["status"] == "drift", "checkpoint"].tolist()

    def describe(self) -> str:
        """One-line banner: how many compared checkpoints drift, and which lack data."""
        t = self.table
        compared = t[t["status"].isin(["ok", "inconclusive", "drift"])]
        short = t.loc[t["status"] == "insufficient data", "checkpoint"].tolist()
        text = f"Reward drift detected in {len(self.drifted)} of {len(compared)} checkpoints vs reference {self.reference!r}"
        if self.drifted:
            text += f" ({', '.join(self.drifted)})"
        if short:
            text += f"; insufficient data (< {self.min_samples} samples) for {', '.join(short)}"
        return text + "."

    def summary(self) -> dict:
        """Headline numbers: checkpoint counts and the last checkpoint against the reference."""
        t = self.table
        last = t.iloc[-1]
        return {
            "reference": self.reference,
            "n_checkpoints": len(t),
            "n_compared": int(t["status"].isin(["ok", "inconclusive", "drift"]).sum()),
            "n_drift": len(self.drifted),
            "n_inconclusive": int((t["status"] == "inconclusive").sum()),
            "n_insufficient": int((t["status"] == "insufficient data").sum()),
            "last_checkpoint": str(last["checkpoint"]),
            "last_status": str(last["status"]),
            "last_wasserstein": float(last["wasserstein"]),
            "last_wasserstein_null_mean": float(last["null_mean"]),
            "last_wasserstein_null_q95": float(last["null_q95"]),
            "last_perm_p": float(last["perm_p"]),
            "last_excess": float(last["excess"]),
            "last_ks_p": float(last["ks_p_adj"]),
            "last_mean_shift_sd": float(last["mean_shift_sd"]),
            "last_psi": float(last["psi"]),
        }

    def verdicts(self) -> list[Verdict]:
        """The last checkpoint's drift, graded on the interval of the excess Wasserstein distance (family ``drift``).

        ``n/a`` (insufficient data) when the last checkpoint or the reference has fewer than
        ``min_samples`` scores; see the module docstring for the rule.
        """
        last = self.table.iloc[-1]
        check = "reward drift (last checkpoint)"
        if last["status"] not in ("ok", "inconclusive", "drift"):
            return [
                Verdict(
                    section=self.section,
                    check=check,
                    value=float("nan"),
                    threshold=f"excess normed Wasserstein: warn > {self.warn:g}, fail > {self.fail:g} reference SDs",
                    verdict="n/a",
                    detail=f"insufficient data (< {self.min_samples} samples at {last['checkpoint']} or {self.reference})",
                    family="drift",
                    n=int(last["n"]),
                    sentence=f"Not graded: {last['checkpoint']} or {self.reference} has fewer than {self.min_samples} scored samples.",
                )
            ]
        n, k = int(last["n"]), int(last["n_clusters"])
        units = f"{n} {'prompts' if last['paired'] else 'samples'}, {k} {self.cluster_unit}s"
        sentence = (
            f"The reward distribution at {last['checkpoint']} is {last['excess']:.2f} reference SDs further from "
            f"{self.reference} than sampling noise explains ({self.ci:.0%} CI {last['excess_ci_low']:.2f} to "
            f"{last['excess_ci_high']:.2f}; noise floor {last['null_mean']:.2f}, permutation p = {last['perm_p']:.2g}; {units})."
        )
        detail = (
            f"normed Wasserstein {last['wasserstein']:.3f} vs permutation null mean {last['null_mean']:.3f} "
            f"(95th percentile {last['null_q95']:.3f}, {'paired by prompt' if last['paired'] else 'unpaired'}); "
            f"descriptive: KS p={last['ks_p_adj']:.3g}, mean shift {last['mean_shift_sd']:.2f} SD, "
            f"PSI {last['psi']:.3g} (noise level {last['psi_null']:.3g})"
        )
        return [
            graded_verdict(
                self.section,
                check,
                float(last["excess"]),
                float(last["excess_ci_low"]),
                float(last["excess_ci_high"]),
                warn=self.warn,
                fail=self.fail,
                direction="higher",
                ci=self.ci,
                n=n,
                n_clusters=k,
                cluster_unit=self.cluster_unit,
                family="drift",
                sentence=sentence,
                detail=detail,
            )
        ]

    def plot(self, ax=None, kind: str = "box"):
        """Reward distribution per checkpoint (``kind="box"`` or ``"ecdf"``, seaborn); drifted checkpoints in red."""
        if kind not in ("box", "ecdf"):
            raise ValueError(f"kind must be 'box' or 'ecdf', got {kind!r}")
        ax = ensure_ax(ax, (max(5, 0.9 * len(self.table) + 2), 3.8))
        order = self.table["checkpoint"].tolist()
        status = dict(zip(self.table["checkpoint"], self.table["status"]))
        palette = {c: STATUS_COLORS[status[c]] for c in order}
        sizes = self.samples["checkpoint"].value_counts()
        if kind == "box":
            sns.boxplot(
                data=self.samples,
                x="checkpoint",
                y="score",
                order=order,
                hue="checkpoint",
                hue_order=order,
                palette=palette,
                showmeans=True,
                boxprops={"alpha": 0.6},
                legend=False,
                ax=ax,
            )
            ax.set_xticks(np.arange(len(order)))
            ax.set_xticklabels([f"{c}\n(n={int(sizes.get(c, 0))})" for c in order], fontsize="small")
            ax.set_xlabel("")
            ax.set_ylabel("reward")
        else:
            for c in order:
                g = self.samples.loc[self.samples["checkpoint"] == c, "score"].to_numpy()
                if g.size:
                    sns.ecdfplot(
                        x=g,
                        ax=ax,
                        color=palette[c],
                        alpha=0.9 if status[c] != "ok" else 0.5,
                        label=f"{c} ({status[c]})",
                    )
            ax.set_xlabel("reward")
            ax.set_ylabel("ECDF")
            ax.legend(fontsize="small")
        ax.set_title(f"Reward per checkpoint (red: drift vs {self.reference})")
        return ax.figure

    def plot_trend(self, ax=None):
        """Mean reward with its CI against step (or checkpoint order); drifted checkpoints circled."""
        ax = ensure_ax(ax, (6, 3.5))
        t = self.table
        x = t["step"].to_numpy(dtype=float) if t["step"].notna().all() else np.arange(len(t), dtype=float)
        ax.errorbar(
            x, t["mean"], yerr=[t["mean"] - t["mean_ci_low"], t["mean_ci_high"] - t["mean"]], marker="o", capsize=3
        )
        for xi, yi, s in zip(x, t["mean"], t["status"]):
            if s == "drift":
                ax.plot(xi, yi, "o", color="tab:red", ms=10, mfc="none")
        ax.set_xlabel("step" if t["step"].notna().all() else "checkpoint")
        ax.set_ylabel("mean reward")
        ax.set_title("Mean reward per checkpoint (circled: drift)")
        return ax.figure


def reward_drift(
    scores: Any,
    checkpoints: Any,
    steps: Any = None,
    reference: str | None = None,
    min_samples: int = 30,
    n_bins: int = 10,
    *,
    prompt_ids: Any = None,
    clusters: Any = None,
    cluster_unit: str | None = None,
    warn: float = 0.2,
    fail: float = 1.0,
    n_perm: int = 1000,
    n_boot: int = 1000,
    n_inner: int = 10,
    seed: Any = 0,
    alpha: float = 0.05,
    ci: float = 0.95,
    adjust: str = "none",
) -> DriftResult:
    """Compare the reward distribution of every checkpoint with a reference checkpoint.

    Parameters
    ----------
    scores : array-like
        One reward per policy sample (NaN scores are dropped and counted in ``n_dropped``).
    checkpoints : array-like
        The checkpoint of each sample (strings; numbers are converted).
    steps : array-like, optional
        The step of each sample; checkpoints are ordered by step (else by first appearance).
    reference : str, optional
        The reference checkpoint (default: the first one in that order).
    min_samples : int
        Checkpoints (or a reference) with fewer finite scores get status ``"insufficient data"``.
    n_bins : int
        Number of reference-quantile bins for PSI.
    prompt_ids : array-like, optional
        The prompt of each sample: when the reference and a checkpoint answer the same
        prompts (each once), the permutation null swaps labels within prompts.
    clusters : array-like, optional
        The bootstrap's resampling unit per sample (topic or prompt; shared across
        checkpoints); default the prompt ids, else every sample on its own.
    cluster_unit : str, optional
        Name of that unit in the verdict (default ``"prompt"`` or ``"sample"``).
    warn, fail : float
        Margins on the excess normed Wasserstein distance (reference SDs).
    n_perm, n_boot, n_inner, seed
        Permutations of the null, bootstrap resamples of the excess, permutations per
        resample, and the seed (:func:`~workbench.audits.drift.permutation.wasserstein_null`).
    alpha, adjust : float, {"none", "holm"}
        Descriptive KS column ``ks_p_adj`` (raw or Holm over compared checkpoints).

    Returns
    -------
    DriftResult
        ``table`` columns: ``checkpoint, step, n, n_dropped, mean, mean_ci_low,
        mean_ci_high, std, q05, q25, q50, q75, q95, mean_shift, mean_shift_ci_low,
        mean_shift_ci_high, mean_shift_sd, ks_stat, ks_p, ks_p_adj, wasserstein,
        null_mean, null_q95, perm_p, perm_p_holm, excess, excess_ci_low,
        excess_ci_high, paired, n_clusters, psi, psi_null, psi_band, direction,
        verdict, status``.
    """
    s = np.asarray(scores, dtype=float).reshape(-1)
    ck = checkpoint_labels(checkpoints, "checkpoints", s.size)
    st = sample_steps(steps, s.size)
    if isinstance(min_samples, bool) or not isinstance(min_samples, numbers.Integral) or min_samples < 2:
        raise ValueError(f"min_samples must be an integer >= 2, got {min_samples!r}")
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral) or n_bins < 2:
        raise ValueError(f"n_bins must be an integer >= 2, got {n_bins!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    ci = check_ci(ci)
    check_margins(warn, fail)
    pid = None if prompt_ids is None else checkpoint_labels(prompt_ids, "prompt_ids", s.size)
    cl = None if clusters is None else checkpoint_labels(clusters, "clusters", s.size)
    if cl is None and pid is not None:
        cl = pid
    if cluster_unit is None:
        cluster_unit = "prompt" if cl is not None else "sample"
    if adjust not in ("holm", "none"):
        raise ValueError(f"adjust must be 'holm' or 'none', got {adjust!r}")
    if s.size == 0:
        raise ValueError("scores is empty")
    order, step_of = order_checkpoints(ck, st)
    if reference is None:
        reference = order[0]
    reference = str(reference)
    if reference not in order:
        raise ValueError(f"reference checkpoint {reference!r} not found; checkpoints: {order}")

    groups = {c: s[ck == c] for c in order}
    finite = {c: np.isfinite(s) & (ck == c) for c in order}
    ref_all = groups[reference]
    ref = ref_all[np.isfinite(ref_all)]
    ref_ok = ref.size >= min_samples
    notes = []
    if not ref_ok:
        notes.append(
            f"reference {reference!r} has {ref.size} finite scores (< min_samples={min_samples}): no checkpoint is tested"
        )
    rows = []
    for c in order:
        g_all = groups[c]
        g = g_all[np.isfinite(g_all)]
        row: dict[str, Any] = {
            "checkpoint": c,
            "step": step_of.get(c, float("nan")),
            "n": int(g.size),
            "n_dropped": int(g_all.size - g.size),
        }
        enough = g.size >= min_samples
        row["mean"] = float(g.mean()) if g.size else float("nan")
        row["mean_ci_low"], row["mean_ci_high"] = t_interval(g, ci) if enough else (float("nan"), float("nan"))
        row["std"] = float(g.std(ddof=1)) if g.size > 1 else float("nan")
        qs = np.quantile(g, QUANTILES) if enough else [float("nan")] * len(QUANTILES)
        for q, v in zip(QUANTILES, qs):
            row[f"q{int(round(100 * q)):02d}"] = float(v)
        nan_stats = dict(
            mean_shift=np.nan,
            mean_shift_ci_low=np.nan,
            mean_shift_ci_high=np.nan,
            mean_shift_sd=np.nan,
            ks_stat=np.nan,
            ks_p=np.nan,
            wasserstein=np.nan,
            psi=np.nan,
            psi_null=np.nan,
            null_mean=np.nan,
            null_q95=np.nan,
            perm_p=np.nan,
            excess=np.nan,
            excess_ci_low=np.nan,
            excess_ci_high=np.nan,
            paired=False,
            n_clusters=0,
            verdict="n/a",
        )
        if c == reference:
            row.update(nan_stats, status="reference" if ref_ok else "insufficient data")
        elif not (enough and ref_ok):
            row.update(nan_stats, status="insufficient data")
        else:
            lo, hi, _ = welch_interval(g, ref, ci)
            shift = float(g.mean() - ref.mean())
            ref_sd = float(ref.std(ddof=1))
            ks = stats.ks_2samp(ref, g)
            row.update(
                mean_shift=shift,
                mean_shift_ci_low=lo,
                mean_shift_ci_high=hi,
                mean_shift_sd=shift / ref_sd if ref_sd > 0 else np.nan,
                ks_stat=float(ks.statistic),
                ks_p=float(ks.pvalue),
                wasserstein=normed_wasserstein(ref, g),
                status="pending",
            )
            fr, fc = finite[reference], finite[c]
            null = wasserstein_null(
                ref,
                g,
                ref_keys=None if pid is None else pid[fr],
                cur_keys=None if pid is None else pid[fc],
                ref_clusters=None if cl is None else cl[fr],
                cur_clusters=None if cl is None else cl[fc],
                n_perm=n_perm,
                n_boot=n_boot,
                n_inner=n_inner,
                ci=ci,
                seed=seed,
            )
            grade = grade_interval(
                null.excess, null.excess_ci_low, null.excess_ci_high, warn=warn, fail=fail, direction="higher"
            )
            row.update(
                null_mean=null.null_mean,
                null_q95=null.null_q95,
                perm_p=null.p_value,
                excess=null.excess,
                excess_ci_low=null.excess_ci_low,
                excess_ci_high=null.excess_ci_high,
                paired=null.paired,
                n_clusters=null.n_clusters,
                verdict=grade.verdict,
            )
            bins = psi_bins(ref, g, n_bins)
            row["psi"] = float(bins["term"].sum())
            row["psi_null"] = (len(bins) - 1) * (1 / ref.size + 1 / g.size)
        rows.append(row)
    table = pd.DataFrame(rows)
    pend = (table["status"] == "pending").to_numpy()
    p = table["ks_p"].to_numpy(dtype=float)
    table["ks_p_adj"] = holm(np.where(pend, p, np.nan)) if adjust == "holm" else np.where(pend, p, np.nan)
    table["perm_p_holm"] = holm(np.where(pend, table["perm_p"].to_numpy(dtype=float), np.nan))
    drift = pend & table["verdict"].isin(["warn", "fail"]).to_numpy()
    unsure = pend & (table["verdict"] == "inconclusive").to_numpy()
    table.loc[pend, "status"] = np.where(drift[pend], "drift", np.where(unsure[pend], "inconclusive", "ok"))
    table["psi_band"] = [psi_band(v) for v in table["psi"]]
    table["direction"] = [
        ("up" if m > 0 else "down" if m < 0 else "none") if np.isfinite(m) else "" for m in table["mean_shift"]
    ]
    cols = [
        "checkpoint",
        "step",
        "n",
        "n_dropped",
        "mean",
        "mean_ci_low",
        "mean_ci_high",
        "std",
        "q05",
        "q25",
        "q50",
        "q75",
        "q95",
        "mean_shift",
        "mean_shift_ci_low",
        "mean_shift_ci_high",
        "mean_shift_sd",
        "ks_stat",
        "ks_p",
        "ks_p_adj",
        "wasserstein",
        "null_mean",
        "null_q95",
        "perm_p",
        "perm_p_holm",
        "excess",
        "excess_ci_low",
        "excess_ci_high",
        "paired",
        "n_clusters",
        "psi",
        "psi_null",
        "psi_band",
        "direction",
        "verdict",
        "status",
    ]
    table = table[cols]
    if table["step"].isna().all():
        table["step"] = pd.array([pd.NA] * len(table), dtype="Int64")
    elif np.all(np.mod(table["step"].dropna(), 1) == 0):
        table["step"] = pd.array([None if np.isnan(v) else int(v) for v in table["step"]], dtype="Int64")
    samples = pd.DataFrame({"checkpoint": ck, "step": st if st is not None else np.nan, "score": s})
    samples = samples[np.isfinite(samples["score"])].reset_index(drop=True)
    return DriftResult(
        table,
        samples,
        reference,
        int(min_samples),
        int(n_bins),
        float(alpha),
        float(warn),
        float(fail),
        float(ci),
        cluster_unit,
        notes,
    )


# --------------------------------------------------------------------------- pairs for relabelling


def checkpoint_pairs(
    samples: pd.DataFrame,
    scores: Any,
    reference: str,
    current: str,
    key: str = "prompt_id",
) -> pd.DataFrame:
    """Pair each prompt's reference-checkpoint response with its current-checkpoint response.

    Returns a DataFrame with ``id`` (``"<reference id>|<current id>"``),
    ``prompt``, ``response_a`` (reference), ``response_b`` (current),
    ``score_a``, ``score_b`` and ``key``, ready for
    :func:`workbench.data.relabel.export_relabel_queue`: a human says which answer is
    better, so the drift can be checked against people rather than the RM.
    """
    s = np.asarray(scores, dtype=float).reshape(-1)
    if len(samples) != s.size:
        raise ValueError(f"scores has {s.size} entries for {len(samples)} samples")
    if key not in samples.columns:
        raise ValueError(f"samples have no {key!r} column to match prompts across checkpoints (pass key=...)")
    df = samples.assign(_score=s)
    a = df[df["checkpoint"] == reference]
    b = df[df["checkpoint"] == current]
    for name, part in ((reference, a), (current, b)):
        if part.empty:
            raise ValueError(f"no samples for checkpoint {name!r}")
        if part[key].duplicated().any():
            raise ValueError(f"checkpoint {name!r} has several samples for one {key}")
    m = a.merge(b, on=key, suffixes=("_a", "_b"))
    return pd.DataFrame(
        {
            "id": (m["id_a"].astype(str) + "|" + m["id_b"].astype(str)).to_numpy(dtype=object),
            key: m[key].to_numpy(),
            "prompt": m[key if key == "prompt" else "prompt_a"].to_numpy(dtype=object),
            "response_a": m["response_a"].to_numpy(dtype=object),
            "response_b": m["response_b"].to_numpy(dtype=object),
            "score_a": m["_score_a"].to_numpy(),
            "score_b": m["_score_b"].to_numpy(),
            "checkpoint_a": reference,
            "checkpoint_b": current,
        }
    )


def relabel_candidates(
    samples: pd.DataFrame,
    scores: Any,
    reference: str,
    current: str,
    phrases: Sequence[str] = (),
    size: int = 20,
    key: str | None = None,
) -> pd.DataFrame:
    """The checkpoint pairs most worth a human look: the RM prefers the current answer, with more trigger phrases.

    Pairs each prompt's ``reference`` answer with its ``current`` answer
    (:func:`checkpoint_pairs`, matched on ``key``: ``prompt_id`` when the samples
    have it, else ``prompt``), keeps the pairs where the RM prefers the current
    answer (``gain = score_b - score_a > 0``) and ranks those with more trigger
    phrases in the current answer first (:func:`~workbench.audits.drift.phrases.trigger_hits`
    with ``phrases``), then by ``gain``; returns the top ``size`` with a
    ``reason`` column, ready for :func:`workbench.data.relabel.export_relabel_queue`.
    """
    if key is None:
        key = "prompt_id" if "prompt_id" in samples.columns else "prompt"
    pairs = checkpoint_pairs(samples, scores, reference, current, key=key)
    pairs["gain"] = pairs["score_b"] - pairs["score_a"]
    pairs["more_triggers"] = [
        trigger_hits(b, phrases) > trigger_hits(a, phrases) for a, b in zip(pairs["response_a"], pairs["response_b"])
    ]
    pairs = pairs[pairs["gain"] > 0].sort_values(["more_triggers", "gain"], ascending=False).head(int(size))
    pairs["reason"] = [
        f"drift trigger: RM prefers the {current} answer" + (" (more trigger phrases)" if t else "")
        for t in pairs["more_triggers"]
    ]
    return pairs
