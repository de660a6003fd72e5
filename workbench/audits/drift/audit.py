"""The drift audit in one call: reward drift, Goodhart flag, trigger phrases, best-of-n curve, relabel candidates.

:func:`drift_audit` scores policy samples with the reward model (RM) under audit
and runs every step of notebook 05; :class:`DriftAudit` holds the parts
(:class:`~workbench.audits.drift.checkpoints.DriftResult`,
:class:`~workbench.audits.drift.flag.GoodhartFlag`,
:class:`~workbench.audits.drift.goodhart.BestOfNResult`, the trigger-phrase
tables and the relabel candidates) and publishes them as the report section
``"drift"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from workbench._utils.stats import cluster_labels, normalize_prompt, unit_name
from workbench.audits.calibration.metrics import bootstrap_ci, pairwise_accuracy
from workbench.audits.drift.checkpoints import DriftResult, relabel_candidates, reward_drift
from workbench.audits.drift.flag import GoodhartFlag, goodhart_flag
from workbench.audits.drift.goodhart import BestOfNResult, best_of_n_curve, load_bon_pools
from workbench.audits.drift.phrases import TriggerFrequency, emerging_phrases, select_phrases, trigger_frequency
from workbench.audits.drift.samples import demo_gold_score, select_policy_samples
from workbench.audits.result import AuditResult
from workbench.data.shipped import load_data
from workbench.models.loading import load_reward_model
from workbench.models.scoring import score_pairs, score_texts
from workbench.reports.verdicts import Verdict, verdict_table

__all__ = ["DriftAudit", "drift_audit", "VERDICT_COLUMNS"]

#: columns of :meth:`DriftAudit.verdict_table`
VERDICT_COLUMNS = [
    "family",
    "check",
    "verdict",
    "value",
    "ci_low",
    "ci_high",
    "threshold",
    "n",
    "n_clusters",
    "sentence",
]


@dataclass
class DriftAudit(AuditResult):
    """Everything :func:`drift_audit` found (one report section, ``"drift"``).

    ``samples`` are the scored policy samples (with ``reward`` and, when a gold
    signal exists, ``gold`` columns); ``flag`` is ``None`` without a gold signal,
    ``bon`` is ``None`` without best-of-n pools, ``golden_accuracy`` is ``None``
    without a golden set (``golden_note`` then says why when it failed to load).
    """

    section: ClassVar[str] = "drift"

    model_name: str
    model_fingerprint: str
    samples: pd.DataFrame
    scores: np.ndarray
    drift: DriftResult
    flag: GoodhartFlag | None
    gold_name: str | None
    golden_accuracy: float | None
    golden_ci: tuple[float, float] | None
    golden_n_decided: int | None
    golden_note: str | None
    lexicon: TriggerFrequency
    emerging: pd.DataFrame
    phrases: list[str]
    phrase_label: str
    phrase_frequency: TriggerFrequency | None
    bon: BestOfNResult | None
    relabel_pairs: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def checkpoints(self) -> list[str]:
        """The checkpoints in order (by step)."""
        return self.drift.table["checkpoint"].tolist()

    def to_frame(self) -> pd.DataFrame:
        """The per-checkpoint drift table (see :func:`~workbench.audits.drift.checkpoints.reward_drift`)."""
        return self.drift.to_frame()

    def summary(self) -> dict:
        """The headline metrics of the ``drift`` report section."""
        last = self.drift.table.iloc[-1]
        out = {
            "n_samples": len(self.samples),
            "n_checkpoints": len(self.checkpoints),
            "last_checkpoint": str(last["checkpoint"]),
            "last_status": str(last["status"]),
            "last_wasserstein": float(last["wasserstein"]),
            "last_wasserstein_null_mean": float(last["null_mean"]),
            "last_excess": float(last["excess"]),
            "last_excess_ci_low": float(last["excess_ci_low"]),
            "last_excess_ci_high": float(last["excess_ci_high"]),
            "last_perm_p": float(last["perm_p"]),
            "last_ks_p": float(last["ks_p_adj"]),
            "last_mean_shift_sd": float(last["mean_shift_sd"]),
            "golden_accuracy": self.golden_accuracy,
        }
        if self.flag is not None:
            fs = self.flag.summary()
            out.update(
                goodhart_flagged=self.flag.flagged,
                gold_trend=self.flag.gold_trend,
                goodhart_reward_change_sd=fs["reward_change_sd"],
                goodhart_gold_change_sd=fs["gold_change_sd"],
            )
        if self.bon is not None:
            out.update({f"bon_{k}": v for k, v in self.bon.summary().items() if not k.startswith("best_n_ci")})
        return out

    def verdicts(self) -> list[Verdict]:
        """Reward drift, then the Goodhart flag and the best-of-n check when they ran."""
        out = self.drift.verdicts()
        if self.flag is not None:
            out += self.flag.verdicts()
        if self.bon is not None:
            out += self.bon.verdicts()
        return out

    def verdict_table(self) -> pd.DataFrame:
        """:meth:`verdicts` as a table (columns :data:`VERDICT_COLUMNS`)."""
        return verdict_table(self.verdicts(), VERDICT_COLUMNS)

    def plot(self, ax=None, kind: str = "box"):
        """Reward distribution per checkpoint (``kind="box"`` or ``"ecdf"``); returns the Figure."""
        return self.drift.plot(ax=ax, kind=kind)


def _accuracy(margin, label) -> float:
    return pairwise_accuracy(margin, label).accuracy


def drift_audit(
    rm: Any,
    samples: Any = "demo-policy",
    *,
    golden: str = "golden",
    gold_model: Any = "",
    bon: Any = "demo-bon",
    sample_size: int = 0,
    seed: int = 0,
    min_samples: int = 30,
    n_bins: int = 10,
    n_boot: int = 1000,
    trigger_phrases: str | list[str] = "",
    queue_size: int = 20,
) -> DriftAudit:
    """Run the drift audit of notebook 05 on one RM and one set of policy samples.

    Parameters
    ----------
    rm : reward model or spec
        The RM under audit (the proxy), anything :func:`~workbench.models.loading.load_reward_model` accepts.
    samples : DataFrame, path or ``"demo-policy"``
        Policy samples (validated by :func:`~workbench.audits.drift.samples.load_policy_samples`).
    golden : str
        Preference set for the RM's own pairwise accuracy (``""`` to skip); a set that
        cannot be loaded is reported in ``golden_note``.
    gold_model : reward model or spec
        Gold scorer. Empty: the samples' ``gold`` column when complete, else the demo's
        simulated gold judge from ``attrs`` (:func:`~workbench.audits.drift.samples.demo_gold_score`),
        else no Goodhart flag. Also scores the best-of-n pools (else their ``gold`` field).
    bon : str
        Best-of-n pools (``"demo-bon"`` or a path; ``""`` to skip).
    sample_size : int
        Samples per checkpoint to score, drawn with ``seed`` (0 for all).
    min_samples, n_bins
        Passed to :func:`~workbench.audits.drift.checkpoints.reward_drift`.
    n_boot, seed
        Bootstrap resamples (and drift permutations) and seed: drift excess, Goodhart
        changes, golden-set accuracy, best-of-n curve. Samples are paired across
        checkpoints by ``prompt_id`` (else the normalised prompt) and resampled by the
        data's topic column (:func:`~workbench._utils.stats.cluster_labels`).
    trigger_phrases : str or list of str
        Phrases to track (comma-separated); empty: the rising phrases the RM rewards most.
    queue_size : int
        How many checkpoint pairs go to the relabel queue (``relabel_pairs``).
    """
    rm = load_reward_model(rm)
    samples = select_policy_samples(samples, sample_size, seed)
    prompts, responses = samples["prompt"].tolist(), samples["response"].tolist()
    scores = score_texts(rm, prompts, responses, progress=False).scores
    samples["reward"] = scores

    # 1. reward drift against the first checkpoint, paired by prompt, clusters (topics) resampled
    if "prompt_id" in samples.columns and samples["prompt_id"].notna().all():
        prompt_ids = samples["prompt_id"].astype(str).to_numpy()
    else:
        prompt_ids = samples["prompt"].map(normalize_prompt).to_numpy()
    codes, unit = cluster_labels(samples)
    unit = unit_name(unit)
    drift = reward_drift(
        scores,
        samples["checkpoint"],
        samples["step"],
        min_samples=min_samples,
        n_bins=n_bins,
        prompt_ids=prompt_ids,
        clusters=codes,
        cluster_unit=unit,
        n_boot=n_boot,
        n_perm=n_boot,
        seed=seed,
    )
    table = drift.to_frame()
    order = table["checkpoint"].tolist()

    # 2. Goodhart flag against a gold signal
    gold_rm = load_reward_model(gold_model) if gold_model else None
    gold_name = None
    if gold_rm is not None:
        samples["gold"] = score_texts(gold_rm, prompts, responses, progress=False).scores
        gold_name = f"gold RM {gold_rm.name}"
    elif "gold" in samples.columns and samples["gold"].notna().all():
        gold_name = "gold labels"
    elif "attrs" in samples.columns:
        samples["gold"] = demo_gold_score(samples)
        gold_name = "demo gold judge"
    flag = None
    if gold_name:
        flag = goodhart_flag(
            scores,
            samples["gold"].to_numpy(dtype=float),
            samples["checkpoint"],
            samples["step"],
            prompt_ids=prompt_ids,
            clusters=codes,
            cluster_unit=unit,
            n_boot=n_boot,
            seed=seed,
            gold_name=gold_name,
        )

    # the RM's own accuracy on the golden set, for context
    golden_accuracy = golden_ci = golden_n = golden_note = None
    if golden:
        try:
            gold_pairs = load_data(golden)
        except (FileNotFoundError, ValueError) as exc:
            gold_pairs = None
            golden_note = str(exc)
        if gold_pairs is not None:
            gp = score_pairs(rm, gold_pairs, progress=False)
            acc = pairwise_accuracy(gp.margin, gp.label)
            golden_accuracy, golden_n = acc.accuracy, acc.n_decided
            golden_ci = tuple(bootstrap_ci(_accuracy, gp.margin, gp.label, n_boot=n_boot, seed=seed))

    # 3. trigger phrases
    lexicon = trigger_frequency(samples["response"], samples["checkpoint"], steps=samples["step"])
    emerging = emerging_phrases(
        samples["response"],
        samples["checkpoint"],
        scores,
        steps=samples["step"],
        ngram_range=(2, 4),
        min_count=8,
        top_k=15,
    )
    phrases, phrase_label = select_phrases(emerging, trigger_phrases)
    phrase_frequency = (
        trigger_frequency(samples["response"], samples["checkpoint"], phrases, steps=samples["step"])
        if phrases
        else None
    )

    # 4. best-of-n curve
    bres = None
    if bon:
        pools = load_bon_pools(bon)
        pool_prompts, pool_responses = pools["prompt"].tolist(), pools["response"].tolist()
        proxy = score_texts(rm, pool_prompts, pool_responses, progress=False).scores
        if gold_rm is not None:
            gold_bon = score_texts(gold_rm, pool_prompts, pool_responses, progress=False).scores
        else:
            gold_bon = pools["gold"].to_numpy(dtype=float)
        bres = best_of_n_curve(pools, proxy, gold_bon, n_boot=n_boot, seed=seed)

    # 5. relabel candidates: first vs last checkpoint
    pairs = relabel_candidates(samples, scores, order[0], order[-1], phrases, queue_size)
    return DriftAudit(
        model_name=rm.name,
        model_fingerprint=rm.fingerprint,
        samples=samples,
        scores=np.asarray(scores),
        drift=drift,
        flag=flag,
        gold_name=gold_name,
        golden_accuracy=golden_accuracy,
        golden_ci=golden_ci,
        golden_n_decided=golden_n,
        golden_note=golden_note,
        lexicon=lexicon,
        emerging=emerging,
        phrases=phrases,
        phrase_label=phrase_label,
        phrase_frequency=phrase_frequency,
        bon=bres,
        relabel_pairs=pairs,
    )
