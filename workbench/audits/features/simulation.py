"""False-alarm and power simulation of the graded feature checks (:mod:`workbench.audits.features.families`).

Synthetic data at the shipped demo-eval size (500 pairs from 57 topics; 200 perturbed
responses), run through the real probes and the real grading:

* **Null RM** (no shortcut): rewards are ``scale * quality`` and the pair labels are drawn
  from the RM's *own* Bradley-Terry probabilities ``sigmoid(r_a - r_b)``; the feature
  (a length) is correlated with quality (``feature_quality_corr``), so the check must not
  flag an RM for tracking quality. A null perturbation changes the reward only by the
  RM's text-to-text noise (the same for the probe and its placebo).
* **Planted length preference**: the RM adds ``beta * length`` to its reward while the
  annotators' labels come from quality only; ``beta`` is set (:func:`length_beta_for_gap`)
  so that the RM prefers the longer response ``gap`` (default 0.15) more often than the
  annotators on label-balanced pairs.
* **Planted agreement** (and, with ``family=``, a planted documentation link or certainty
  marker): the family's perturbation raises the reward by ``effect_sd`` pooled within-prompt
  SDs more than its placebo (:data:`PLANTED_DETECTORS` says which texts carry the effect).

:func:`family_alarm_rates` returns the share of seeds that end in each verdict.
"""

from __future__ import annotations

import zlib
from collections import Counter

import numpy as np
import pandas as pd

from workbench.audits.features.families import FAMILIES, FamilySpec, graded_family_checks
from workbench.audits.features.perturbations import (
    AGREEING_OPENERS,
    ASSERTIVE_OPENERS,
    DOC_LINK_SENTENCES,
    PLACEBO_CONTROLS,
    perturbation_effects,
)
from workbench.audits.features.probes import pairwise_preference_rates

__all__ = ["simulate_pairs", "length_beta_for_gap", "pair_check_verdict", "perturbation_check_verdict",
           "family_alarm_rates", "PLANTED_DETECTORS"]  # fmt: skip

#: Family -> which perturbed texts carry a planted effect (the family's inserted strings).
PLANTED_DETECTORS = {
    "agreement": lambda text: text.startswith(AGREEING_OPENERS),
    "links": lambda text: any(s in text for s in DOC_LINK_SENTENCES),
    "assertiveness": lambda text: text.startswith(ASSERTIVE_OPENERS),
}


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def simulate_pairs(
    n_pairs: int = 500,
    n_topics: int = 57,
    *,
    beta: float = 0.0,
    scale: float = 2.0,
    feature_quality_corr: float = 0.3,
    topic_sd: float = 0.5,
    seed: int = 0,
):
    """One synthetic data set: ``(frame, rc, rr, fc, fr)`` for :func:`pairwise_preference_rates`.

    Quality ``q`` of each response (N(0, 1) plus a per-topic shift of the quality gap), a
    standardised length ``z = rho q + sqrt(1 - rho^2) e`` with a per-topic shift, RM reward
    ``scale q + beta z``. Labels: from the RM's own BT probabilities when ``beta == 0``
    (the null), else from the annotators' quality-only probabilities ``sigmoid(scale dq)``.
    Pairs are stored as (chosen, rejected) with ``label`` = 1.
    """
    rng = np.random.default_rng(seed)
    topic = rng.integers(0, n_topics, n_pairs)
    t_len = rng.normal(0, topic_sd, n_topics)
    t_gap = np.exp(rng.normal(0, topic_sd, n_topics))  # some topics have larger quality gaps
    rho = feature_quality_corr
    q = rng.normal(size=(2, n_pairs)) * t_gap[topic]
    z = rho * q / t_gap[topic] + np.sqrt(1 - rho**2) * rng.normal(size=(2, n_pairs)) + t_len[topic]
    r = scale * q + beta * z
    p_first = _sigmoid(r[0] - r[1]) if beta == 0 else _sigmoid(scale * (q[0] - q[1]))
    first_wins = rng.random(n_pairs) < p_first
    c = np.where(first_wins, 0, 1)
    idx = np.arange(n_pairs)
    frame = pd.DataFrame({"topic_id": topic, "label": np.ones(n_pairs)})
    fc = pd.DataFrame({"chars": z[c, idx]})
    fr = pd.DataFrame({"chars": z[1 - c, idx]})
    return frame, r[c, idx], r[1 - c, idx], fc, fr


def length_beta_for_gap(gap: float = 0.15, *, n: int = 200_000, seed: int = 12345, **kwargs) -> float:
    """The ``beta`` of :func:`simulate_pairs` whose population balanced gap is ``gap`` (bisection)."""
    lo, hi = 0.0, 10.0
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        frame, rc, rr, fc, fr = simulate_pairs(n, 500, beta=mid, seed=seed, **kwargs)
        g = pairwise_preference_rates(frame, rc, rr, fc, fr, n_boot=0).table["balanced_gap"].iloc[0]
        lo, hi = (mid, hi) if g < gap else (lo, mid)
    return 0.5 * (lo + hi)


def _family(name: str, checks_kind: str) -> dict[str, FamilySpec]:
    fam = FAMILIES[name]
    return {name: FamilySpec(tuple(c for c in fam.checks if c.kind == checks_kind), fam.direction, fam.why)}


def pair_check_verdict(seed: int, *, beta: float = 0.0, n_boot: int = 200, margins=None, **kwargs) -> str:
    """The graded length pair check on one synthetic data set (two-sided, clustered by topic)."""
    frame, rc, rr, fc, fr = simulate_pairs(beta=beta, seed=seed, **kwargs)
    rates = pairwise_preference_rates(
        frame, rc, rr, fc, fr, n_boot=n_boot, seed=seed, verdict_on="balanced_gap", clusters=frame["topic_id"]
    )
    (v,) = graded_family_checks(rates, None, margins=margins, cluster_unit="topic", families=_family("length", "pair"))
    return v.verdict


def perturbation_check_verdict(
    seed: int,
    *,
    effect_sd: float = 0.0,
    n_responses: int = 200,
    n_topics: int = 57,
    noise_sd: float = 0.5,
    topic_sd: float = 0.1,
    n_boot: int = 200,
    margins=None,
    family: str = "agreement",
) -> str:
    """The graded perturbation of ``family`` (minus its placebo) on synthetic texts and a synthetic RM.

    The RM's reward of a text is a base quality, plus per-text noise (``noise_sd`` reward
    SDs, a deterministic function of the text: any edit draws new noise, as for a real
    network), plus a per-topic sensitivity to edits (``topic_sd``), plus ``effect_sd`` when
    the text carries the family's inserted string (:data:`PLANTED_DETECTORS`: an agreeing
    opener, a documentation-link sentence, a certainty marker). The reward unit is 1.
    """
    if family not in PLANTED_DETECTORS:
        raise ValueError(f"family must be one of {sorted(PLANTED_DETECTORS)}, got {family!r}")
    planted = PLANTED_DETECTORS[family]
    pert_name = next(c.key for c in FAMILIES[family].checks if c.kind == "perturbation")
    ctrl_name = PLACEBO_CONTROLS[pert_name]
    rng = np.random.default_rng(seed)
    topic = rng.integers(0, n_topics, n_responses)
    t_eff = rng.normal(0, topic_sd, n_topics)
    texts = [f"Answer {i} on topic {t}: the facts are as follows." for i, t in enumerate(topic)]
    prompts = [f"Question on topic {t}?" for t in topic]
    base = dict(zip(texts, rng.normal(size=n_responses)))
    t_of = dict(zip(texts, topic))
    noise_rng_seed = int(rng.integers(2**31))

    def score(_prompts, responses):
        out = []
        for text in responses:
            key = text if text in base else next(k for k in base if k in text)
            h = np.random.default_rng([noise_rng_seed, zlib.crc32(text.encode())])
            r = base[key]
            if text != key:
                r += noise_sd * h.normal() + t_eff[t_of[key]]
                if planted(text):
                    r += effect_sd
            out.append(r)
        return np.array(out)

    pert = perturbation_effects(
        prompts,
        texts,
        score,
        perturbations=[pert_name, ctrl_name],
        n_boot=n_boot,
        seed=seed,
        controls={pert_name: ctrl_name},
        reward_scale=1.0,
        clusters=topic,
    )
    (v,) = graded_family_checks(
        None, pert, margins=margins, cluster_unit="topic", families=_family(family, "perturbation")
    )
    return v.verdict


def family_alarm_rates(n_seeds: int = 100, *, n_boot: int = 200, margins=None, gap: float = 0.15,
                       effect_sd: float = 0.3,
                       perturbation_families=("agreement", "links", "assertiveness")) -> pd.DataFrame:  # fmt: skip
    """Share of seeds per verdict: length pair (null / planted) and each perturbation family (null / planted)."""
    beta = length_beta_for_gap(gap)
    runs = {
        "length pair, null RM": [pair_check_verdict(s, n_boot=n_boot, margins=margins) for s in range(n_seeds)],
        f"length pair, planted +{gap:g}": [
            pair_check_verdict(s, beta=beta, n_boot=n_boot, margins=margins) for s in range(n_seeds)
        ],
    }
    for fam in perturbation_families:
        runs[f"{fam} perturbation, null RM"] = [
            perturbation_check_verdict(s, n_boot=n_boot, margins=margins, family=fam) for s in range(n_seeds)
        ]
        runs[f"{fam} perturbation, planted +{effect_sd:g} SD"] = [
            perturbation_check_verdict(s, effect_sd=effect_sd, n_boot=n_boot, margins=margins, family=fam)
            for s in range(n_seeds)
        ]
    rows = []
    for name, verdicts in runs.items():
        c = Counter(verdicts)
        row = {"scenario": name, "n_seeds": n_seeds}
        row.update({v: c.get(v, 0) / n_seeds for v in ("pass", "inconclusive", "warn", "fail", "n/a")})
        row["warn_or_fail"] = (c.get("warn", 0) + c.get("fail", 0)) / n_seeds
        rows.append(row)
    return pd.DataFrame(rows)
