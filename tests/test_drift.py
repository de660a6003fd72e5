"""Tests for workbench.audits.drift: drift statistics against scipy and hand-worked values, the permutation null of
the normed Wasserstein distance (against exhaustive enumeration), the graded drift and Goodhart verdicts (hand-worked,
statsmodels cluster-robust intervals, simulated null and planted effects), trigger frequencies, policy-sample
validation, the one-call audit, and the demo data."""

from __future__ import annotations

import itertools
import json
import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

from workbench.audits.drift import (  # noqa: E402
    DriftAudit,
    checkpoint_pairs,
    demo_gold_score,
    drift_audit,
    emerging_phrases,
    goodhart_flag,
    load_policy_samples,
    normed_wasserstein,
    psi,
    psi_bins,
    relabel_candidates,
    reward_drift,
    select_phrases,
    trigger_frequency,
    trigger_hits,
    wasserstein_null,
    weighted_normed_wasserstein,
)
from workbench.audits.result import AuditResult  # noqa: E402
from workbench.data.preferences import DataFormatError  # noqa: E402
from workbench.models import load_reward_model, score_texts  # noqa: E402
from workbench.reports.verdicts import Verdict  # noqa: E402


def _three_checkpoints(seed=0, n=200, shift=0.5):
    rng = np.random.default_rng(seed)
    ref = rng.normal(0, 1, n)
    same = rng.permutation(ref)  # identical distribution
    moved = rng.normal(shift, 1, n)
    scores = np.concatenate([ref, same, moved])
    ck = ["a"] * n + ["b"] * n + ["c"] * n
    steps = [0] * n + [10] * n + [20] * n
    return ref, same, moved, scores, ck, steps


# --------------------------------------------------------------------------- statistics


def test_ks_and_wasserstein_match_scipy():
    ref, same, moved, scores, ck, steps = _three_checkpoints()
    t = reward_drift(scores, ck, steps).to_frame().set_index("checkpoint")
    ks = stats.ks_2samp(ref, moved)
    assert t.loc["c", "ks_stat"] == pytest.approx(ks.statistic)
    assert t.loc["c", "ks_p"] == pytest.approx(ks.pvalue)
    expected_w = stats.wasserstein_distance(ref, moved) / np.std(ref)
    assert t.loc["c", "wasserstein"] == pytest.approx(expected_w)
    assert normed_wasserstein(ref, moved) == pytest.approx(expected_w)
    assert t.loc["b", "ks_stat"] == 0.0 and t.loc["b", "wasserstein"] == pytest.approx(0.0, abs=1e-12)
    # mean, quantiles and t interval
    assert t.loc["c", "mean"] == pytest.approx(moved.mean())
    assert t.loc["c", "q25"] == pytest.approx(np.quantile(moved, 0.25))
    assert t.loc["c", "q95"] == pytest.approx(np.quantile(moved, 0.95))
    lo, hi = stats.t.interval(0.95, len(moved) - 1, loc=moved.mean(), scale=stats.sem(moved))
    assert (t.loc["c", "mean_ci_low"], t.loc["c", "mean_ci_high"]) == pytest.approx((lo, hi))
    # Welch interval of the shift
    w = stats.ttest_ind(moved, ref, equal_var=False).confidence_interval(0.95)
    assert (t.loc["c", "mean_shift_ci_low"], t.loc["c", "mean_shift_ci_high"]) == pytest.approx((w.low, w.high))


def test_wasserstein_std_floor():
    assert normed_wasserstein([1.0] * 5, [1.5] * 5) == pytest.approx(0.5 / 1e-3)


def test_psi_hand_worked():
    # reference 1..10, two bins cut at the median 5.5: shares (0.5, 0.5)
    # current has 3 of 10 values below 5.5: shares (0.3, 0.7)
    ref = np.arange(1, 11)
    cur = np.array([1, 2, 3, 6, 7, 8, 9, 10, 10, 10])
    expected = (0.3 - 0.5) * math.log(0.3 / 0.5) + (0.7 - 0.5) * math.log(0.7 / 0.5)
    assert expected == pytest.approx(0.169459, abs=1e-6)
    assert psi(ref, cur, n_bins=2) == pytest.approx(expected)
    table = psi_bins(ref, cur, n_bins=2)
    assert table["high"].iloc[0] == pytest.approx(5.5)
    assert table["n_ref"].tolist() == [5, 5] and table["n_cur"].tolist() == [3, 7]


def test_psi_empty_bins_use_eps():
    # reference 1..4 in 4 quantile bins (edges 1.75, 2.5, 3.25); current all in the last bin
    eps = 1e-4
    expected = 3 * (eps - 0.25) * math.log(eps / 0.25) + (1 - 0.25) * math.log(1 / 0.25)
    assert psi([1, 2, 3, 4], [4, 4, 4, 4], n_bins=4) == pytest.approx(expected)
    assert psi([1, 2, 3, 4], [4, 4, 4, 4], n_bins=4, eps=1e-3) < expected  # larger eps, smaller penalty


def test_psi_against_independent_binning():
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(0, 1, 500), rng.normal(0.3, 1.2, 300)
    edges = np.r_[-np.inf, np.quantile(ref, np.arange(1, 10) / 10), np.inf]

    def counts(x):  # bin j holds edge_j <= x < edge_{j+1}
        return np.array([np.sum((x >= lo) & (x < hi)) for lo, hi in zip(edges[:-1], edges[1:])])

    r, c = counts(ref) / ref.size, counts(cur) / cur.size
    assert psi(ref, cur) == pytest.approx(float(np.sum((c - r) * np.log(c / r))))
    assert psi(ref, ref) == pytest.approx(0.0, abs=1e-12)


def test_psi_null_matches_simulated_noise():
    # with no shift, PSI averages about (k - 1)(1/n_ref + 1/n_cur)
    rng = np.random.default_rng(4)
    sims = [psi(rng.normal(size=200), rng.normal(size=100)) for _ in range(400)]
    scores = np.r_[rng.normal(size=200), rng.normal(size=100)]
    t = reward_drift(scores, ["r"] * 200 + ["c"] * 100).to_frame().set_index("checkpoint")
    assert t.loc["c", "psi_null"] == pytest.approx(9 * (1 / 200 + 1 / 100))
    assert np.mean(sims) == pytest.approx(t.loc["c", "psi_null"], rel=0.15)


def test_psi_validation():
    with pytest.raises(ValueError, match="n_bins"):
        psi([1, 2], [1, 2], n_bins=1)
    with pytest.raises(ValueError, match="eps"):
        psi([1, 2], [1, 2], eps=0)
    with pytest.raises(ValueError, match="non-empty"):
        psi([], [1.0])


# --------------------------------------------------------------------------- status rule


def test_weighted_wasserstein_matches_scipy():
    rng = np.random.default_rng(3)
    u, v = rng.normal(size=30), rng.gamma(2.0, size=25)
    wu, wv = rng.integers(0, 4, 30).astype(float), rng.integers(0, 4, 25).astype(float)
    values = np.r_[u, v]
    got = weighted_normed_wasserstein(values, np.r_[wu, np.zeros(25)], np.r_[np.zeros(30), wv])[0]
    mu = np.average(u, weights=wu)
    sd = math.sqrt(np.average((u - mu) ** 2, weights=wu))
    assert got == pytest.approx(stats.wasserstein_distance(u, v, wu, wv) / sd)
    ones = weighted_normed_wasserstein(values, np.r_[np.ones(30), np.zeros(25)], np.r_[np.zeros(30), np.ones(25)])[0]
    assert ones == pytest.approx(normed_wasserstein(u, v))


def test_paired_permutation_null_matches_exhaustive_enumeration():
    rng = np.random.default_rng(4)
    n = 8
    shared = rng.normal(size=n)
    ref, cur = shared + rng.normal(0, 0.5, n), shared + rng.normal(0.8, 0.5, n)
    exact = []
    for mask in range(2**n):  # every within-prompt swap pattern
        swap = np.array([(mask >> i) & 1 for i in range(n)], bool)
        exact.append(normed_wasserstein(np.where(swap, cur, ref), np.where(swap, ref, cur)))
    exact = np.array(exact)
    obs = normed_wasserstein(ref, cur)
    keys = [f"p{i}" for i in range(n)]
    res = wasserstein_null(ref, cur[::-1], ref_keys=keys, cur_keys=keys[::-1], n_perm=20000, n_boot=0, seed=1)
    assert res.paired and res.wasserstein == pytest.approx(obs)
    assert res.null_mean == pytest.approx(exact.mean(), abs=4 * exact.std() / math.sqrt(20000))
    assert res.p_value == pytest.approx(np.mean(exact >= obs - 1e-12), abs=0.01)
    assert res.excess == pytest.approx(obs - res.null_mean)
    # keys that do not match: the unpaired shuffle, whose null mean is the mean over all label splits
    unpaired = wasserstein_null(ref, cur, ref_keys=keys, cur_keys=["x"] * n, n_perm=20000, n_boot=0)
    assert not unpaired.paired
    pooled = np.r_[ref, cur]
    splits = [
        normed_wasserstein(pooled[list(c)], pooled[[i for i in range(2 * n) if i not in c]])
        for c in itertools.combinations(range(2 * n), n)
    ]
    assert unpaired.null_mean == pytest.approx(np.mean(splits), abs=4 * np.std(splits) / math.sqrt(20000))


def _sim_checkpoints(seed, delta, n=80, topics=57, rho=0.5):
    """Two checkpoints answering the same n prompts (grouped in topics); the second shifted by delta SDs."""
    rng = np.random.default_rng(seed)
    prompt = rng.normal(0, math.sqrt(rho), n)
    ref = prompt + rng.normal(0, math.sqrt(1 - rho), n)
    cur = prompt + rng.normal(0, math.sqrt(1 - rho), n) + delta
    pid = np.r_[np.arange(n), np.arange(n)]
    return np.r_[ref, cur], ["a"] * n + ["b"] * n, pid, pid % topics


def test_status_rule_and_graded_verdict():
    ref, same, moved, scores, ck, steps = _three_checkpoints(shift=0.8)
    res = reward_drift(scores, ck, steps, n_boot=300, n_perm=300)
    t = res.to_frame().set_index("checkpoint")
    assert t.loc["a", "status"] == "reference" and t.loc["a", "verdict"] == "n/a"
    assert t.loc["b", "status"] == "ok" and t.loc["b", "verdict"] == "pass"
    assert t.loc["c", "status"] == "drift" and t.loc["c", "direction"] == "up" and t.loc["c", "verdict"] == "warn"
    assert res.drifted == ["c"]
    # "b" is a permutation of the reference: W = 0, p-value 1
    assert t.loc["b", "wasserstein"] == pytest.approx(0.0, abs=1e-12) and t.loc["b", "perm_p"] == 1.0
    assert t.loc["c", "perm_p"] < 0.01 and t.loc["c", "excess"] == pytest.approx(
        t.loc["c", "wasserstein"] - t.loc["c", "null_mean"]
    )
    assert t.loc["c", "null_mean"] < t.loc["c", "null_q95"]
    assert not t.loc["c", "paired"]  # no prompt ids: unpaired shuffle
    # Holm over the compared checkpoints
    p = t.loc[["b", "c"], "perm_p"].to_numpy()
    order = np.argsort(p)
    adj = np.empty(2)
    adj[order[0]] = min(1, 2 * p[order[0]])
    adj[order[1]] = min(1, max(adj[order[0]], p[order[1]]))
    assert t.loc[["b", "c"], "perm_p_holm"].to_numpy() == pytest.approx(adj)
    assert "1 of 2" in res.describe()
    v = res.verdicts()[0]
    assert v.verdict == "warn" and v.family == "drift" and v.direction == "higher"
    assert v.value == pytest.approx(t.loc["c", "excess"]) and v.ci_low > 0.2 and v.ci_high < 1.0
    assert v.n == 200 and v.n_clusters == 400 and v.cluster_unit == "sample"
    assert "reference SDs further from a than sampling noise explains" in v.sentence
    # KS stays descriptive: raw p-values, or Holm-adjusted on request
    raw = reward_drift(scores, ck, steps, n_boot=0, n_perm=50).to_frame().set_index("checkpoint")
    assert raw.loc[["b", "c"], "ks_p_adj"].to_numpy() == pytest.approx(raw.loc[["b", "c"], "ks_p"].to_numpy())
    # same seed, same verdicts and numbers
    again = reward_drift(scores, ck, steps, n_boot=300, n_perm=300).to_frame()
    pd.testing.assert_frame_equal(res.to_frame(), again)


def test_paired_by_prompt_and_clustered_by_topic():
    scores, ck, pid, topic = _sim_checkpoints(0, 0.0)
    res = reward_drift(scores, ck, prompt_ids=pid, clusters=topic, cluster_unit="topic", n_boot=200, n_perm=200)
    last = res.to_frame().iloc[-1]
    assert last["paired"] and last["n_clusters"] == 57
    v = res.verdicts()[0]
    assert v.n_clusters == 57 and v.cluster_unit == "topic" and "80 prompts, 57 topics" in v.sentence
    # the null is vacuous no more: the raw distance exceeds Evidently's 0.1 by noise alone, the excess does not
    assert last["wasserstein"] > 0.1 and last["null_mean"] > 0.1
    assert v.verdict == "pass"


def test_small_shift_is_not_drift_even_if_significant():
    # n large: a 0.1 SD shift is detectable (KS, permutation) but its interval lies below the 0.2 SD warn margin
    rng = np.random.default_rng(1)
    n = 2000
    ref, cur = rng.normal(0, 1, n), rng.normal(0.1, 1, n)
    res = reward_drift(np.r_[ref, cur], ["r"] * n + ["c"] * n, n_boot=100, n_perm=100, n_inner=5)
    t = res.to_frame().set_index("checkpoint")
    assert t.loc["c", "ks_p_adj"] < 0.05 and t.loc["c", "perm_p"] < 0.05
    assert t.loc["c", "excess_ci_high"] < 0.2
    assert t.loc["c", "status"] == "ok" and res.verdicts()[0].verdict == "pass"


def test_drift_can_be_inconclusive_and_fail():
    scores, ck, pid, topic = _sim_checkpoints(2, 0.45, n=40, topics=40)
    v = reward_drift(scores, ck, prompt_ids=pid, n_boot=300, n_perm=300).verdicts()[0]
    assert v.verdict == "inconclusive" and v.clusters_needed and v.ci_low < 0.2 < v.ci_high
    scores, ck, pid, topic = _sim_checkpoints(2, 2.0, n=200, topics=200, rho=0.0)
    v = reward_drift(scores, ck, prompt_ids=pid, n_boot=200, n_perm=200).verdicts()[0]
    assert v.verdict == "fail" and v.ci_low > 1.0


def test_drift_verdict_simulated_null_and_planted():
    """100 seeds at the shipped size (80 prompts in 57 topics, paired): no drift passes, a 0.8 SD shift is detected."""
    kw = dict(n_boot=100, n_perm=100, n_inner=5)
    null, planted = [], []
    for seed in range(100):
        scores, ck, pid, topic = _sim_checkpoints(seed, 0.0)
        null.append(reward_drift(scores, ck, prompt_ids=pid, clusters=topic, seed=seed, **kw).verdicts()[0].verdict)
        scores, ck, pid, topic = _sim_checkpoints(seed, 0.8)
        planted.append(reward_drift(scores, ck, prompt_ids=pid, clusters=topic, seed=seed, **kw).verdicts()[0].verdict)
    assert null.count("warn") + null.count("fail") <= 5 and null.count("fail") <= 1
    assert null.count("pass") >= 70
    assert planted.count("warn") + planted.count("fail") >= 80


def test_insufficient_data():
    rng = np.random.default_rng(2)
    scores = np.r_[rng.normal(0, 1, 50), rng.normal(3, 1, 10), rng.normal(3, 1, 50)]
    ck = ["s0"] * 50 + ["s1"] * 10 + ["s2"] * 50
    t = reward_drift(scores, ck, min_samples=30).to_frame().set_index("checkpoint")
    assert t.loc["s1", "status"] == "insufficient data"
    assert t.loc["s1", "n"] == 10
    assert np.isnan(t.loc["s1", "ks_p"]) and np.isnan(t.loc["s1", "psi"]) and np.isnan(t.loc["s1", "q50"])
    assert t.loc["s2", "status"] == "drift"
    assert t.loc["s1", "verdict"] == "n/a" and np.isnan(t.loc["s1", "excess"])
    # the reference itself too small: nothing is tested
    res = reward_drift(scores, ck, reference="s1", min_samples=30)
    assert set(res.to_frame()["status"]) == {"insufficient data"}
    assert [v.verdict for v in res.verdicts()] == ["n/a"]
    assert "fewer than 30" in res.verdicts()[0].sentence
    assert res.notes and "reference" in res.notes[0]
    # NaN scores are dropped and counted
    s = scores.copy()
    s[:25] = np.nan
    t = reward_drift(s, ck, min_samples=30).to_frame().set_index("checkpoint")
    assert t.loc["s0", "n"] == 25 and t.loc["s0", "n_dropped"] == 25
    assert t.loc["s0", "status"] == "insufficient data"


def test_order_by_step_and_validation():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=90)
    ck = ["late"] * 30 + ["early"] * 30 + ["mid"] * 30
    steps = [200] * 30 + [0] * 30 + [100] * 30
    res = reward_drift(scores, ck, steps)
    assert res.to_frame()["checkpoint"].tolist() == ["early", "mid", "late"]
    assert res.reference == "early"
    assert res.to_frame()["step"].tolist() == [0, 100, 200]
    with pytest.raises(ValueError, match="two different steps"):
        reward_drift(scores, ck, [200] * 29 + [1] + [0] * 30 + [100] * 30)
    with pytest.raises(ValueError, match="reference checkpoint 'nope'"):
        reward_drift(scores, ck, reference="nope")
    with pytest.raises(ValueError, match="checkpoints has 3 entries"):
        reward_drift(scores, ["a", "b", "c"])
    with pytest.raises(ValueError, match="min_samples"):
        reward_drift(scores, ck, min_samples=1)
    fig = res.plot()
    assert fig.axes[0].get_title()
    assert res.plot(kind="ecdf") is not None and res.plot_trend() is not None


# --------------------------------------------------------------------------- Goodhart flag


def _goodhart_frame(seed, reward_slope, gold_slope, n=80, checkpoints=4, topics=57, noise=0.7):
    """Per-prompt reward and gold at several checkpoints, with prompt effects (the pairing matters)."""
    rng = np.random.default_rng(seed)
    k = np.repeat(np.arange(checkpoints), n)
    pid = np.tile(np.arange(n), checkpoints)
    prompt = rng.normal(0, 1, n)[pid]
    gold = prompt + gold_slope * k + rng.normal(0, noise, k.size)
    reward = gold + reward_slope * k + rng.normal(0, noise, k.size)
    return pd.DataFrame(
        {
            "checkpoint": [f"s{i}" for i in k],
            "step": 100 * k,
            "pid": pid,
            "topic": pid % topics,
            "reward": reward,
            "gold": gold,
        }
    )


def _flag(df, **kw):
    return goodhart_flag(
        df["reward"],
        df["gold"],
        df["checkpoint"],
        df["step"],
        prompt_ids=df["pid"],
        clusters=df["topic"],
        cluster_unit="topic",
        **kw,
    )


def test_goodhart_flag_paired_change_matches_cluster_robust_interval():
    df = _goodhart_frame(0, 0.6, -0.3)
    flag = _flag(df, n_boot=2000)
    t = flag.to_frame()
    assert flag.flagged and flag.reward_trend == "rises" and flag.gold_trend == "falls"
    wide = df.pivot(index="pid", columns="checkpoint", values="gold")
    diff = wide["s3"] - wide["s0"]
    sd0 = df.loc[df["checkpoint"] == "s0", "gold"].std(ddof=1)
    last = t.iloc[-1]
    assert last["gold_change"] == pytest.approx(diff.mean())
    assert last["gold_change_sd"] == pytest.approx(diff.mean() / sd0)
    assert last["n_pairs"] == 80 and last["n_clusters"] == 57 and last["paired"]
    # cluster bootstrap vs a cluster-robust (CR1, Liang-Zeger) t interval of the mean paired difference, by topic
    d = diff.to_numpy()
    sums = pd.Series(d - d.mean()).groupby(diff.index % 57).sum().to_numpy()
    g = sums.size
    se = math.sqrt(g / (g - 1) * np.sum(sums**2)) / d.size
    half = stats.t.ppf(0.975, g - 1) * se
    lo, hi = d.mean() - half, d.mean() + half
    assert last["gold_change_ci_low"] == pytest.approx(lo, abs=0.3 * (hi - lo) / 2)
    assert last["gold_change_ci_high"] == pytest.approx(hi, abs=0.3 * (hi - lo) / 2)
    assert flag.reward_spearman == pytest.approx(1.0)
    v = flag.verdicts()[0]
    assert v.verdict == "fail" and v.family == "goodhart" and v.direction == "lower"
    assert v.value == pytest.approx(last["gold_change_sd"]) and v.ci_high < -0.3
    assert v.n == 80 and v.n_clusters == 57 and "While the RM's reward rose" in v.sentence and "57 topics" in v.sentence
    assert "GOODHART FLAG" in flag.describe() and flag.plot() is not None
    assert t["flag"].iloc[0] == "n/a"


def test_goodhart_flag_passes_when_gold_rises_or_reward_does_not():
    g = _flag(_goodhart_frame(1, 0.3, 0.4))
    assert not g.flagged and g.gold_trend == "rises"
    assert [v.verdict for v in g.verdicts()] == ["pass"]
    # reward flat, gold falls: the policy got worse, but not by exploiting this RM (the gate)
    df = _goodhart_frame(2, 0.0, -0.5)
    df["reward"] = np.random.default_rng(2).normal(size=len(df))
    g = _flag(df)
    v = g.verdicts()[0]
    assert not g.flagged and g.gold_trend == "falls" and v.verdict == "pass"
    assert "did not rise" in v.sentence and v.ci_high < -0.3  # the interval is still shown


def test_goodhart_flag_warn_and_inconclusive():
    # reward rises, gold falls a little: warn when the interval lies between the margins
    df = _goodhart_frame(3, 0.8, -0.07, n=2000, topics=2000, noise=0.3)
    v = _flag(df, n_boot=300).verdicts()[0]
    assert v.verdict == "warn" and -0.3 < v.ci_low and v.ci_high < -0.1
    # few prompts: the interval straddles the warn margin
    v = _flag(_goodhart_frame(4, 0.8, -0.05, n=20, topics=20), n_boot=300).verdicts()[0]
    assert v.verdict == "inconclusive" and v.clusters_needed


def test_goodhart_unpaired_without_prompt_ids():
    df = _goodhart_frame(5, 0.6, -0.3)
    g = goodhart_flag(df["reward"], df["gold"], df["checkpoint"], n_boot=300)
    last = g.to_frame().iloc[-1]
    assert not last["paired"] and last["n_clusters"] == 160 and g.cluster_unit == "sample"
    s0, s3 = df[df["checkpoint"] == "s0"], df[df["checkpoint"] == "s3"]
    assert last["gold_change"] == pytest.approx(s3["gold"].mean() - s0["gold"].mean())
    with pytest.raises(ValueError, match="at least 2 checkpoints"):
        goodhart_flag([1.0, 2.0], [1.0, 2.0], ["a", "a"])


def test_goodhart_simulated_clean_and_planted():
    """100 seeds, 80 prompts in 57 topics, first vs last checkpoint: a clean proxy (gold + noise) passes,
    a proxy that rewards a hack while gold falls 0.5 SD is flagged."""
    clean, planted = [], []
    for seed in range(100):
        clean.append(_flag(_goodhart_frame(seed, 0.0, 0.5, checkpoints=2), n_boot=200, seed=seed).verdicts()[0])
        planted.append(_flag(_goodhart_frame(seed, 1.2, -0.6, checkpoints=2), n_boot=200, seed=seed).verdicts()[0])
    cv = [v.verdict for v in clean]
    assert cv.count("warn") + cv.count("fail") <= 5 and cv.count("fail") <= 1 and cv.count("pass") >= 90
    assert sum(v.verdict in ("warn", "fail") for v in planted) >= 80


# --------------------------------------------------------------------------- trigger phrases


def test_trigger_frequency_hand_counts():
    responses = [
        "Great question! You're absolutely right.",
        "The answer is 4.",
        "Great question, great question.",
        "You're absolutely right, and a great question too.",
        "No.",
        "Plain text.",
    ]
    ck = ["s1", "s1", "s1", "s2", "s2", "s2"]
    tf = trigger_frequency(responses, ck, ["great question", "absolutely right"], steps=[1, 1, 1, 2, 2, 2])
    t = tf.to_frame().set_index(["checkpoint", "phrase"])
    assert t.loc[("s1", "great question"), "n_with"] == 2
    assert t.loc[("s1", "great question"), "mean_count"] == pytest.approx(3 / 3)
    assert t.loc[("s2", "great question"), "share"] == pytest.approx(1 / 3)
    assert t.loc[("s1", "absolutely right"), "share"] == pytest.approx(1 / 3)
    tests = tf.tests.set_index("phrase")
    tab = np.array([[2, 1], [1, 2]])
    assert tests.loc["great question", "chi2_p"] == pytest.approx(stats.chi2_contingency(tab, correction=False).pvalue)
    assert tests.loc["great question", "change"] == pytest.approx(1 / 3 - 2 / 3)
    # groups: a response counts once when it has any phrase of the group
    tf2 = trigger_frequency(responses, ck, {"sycophancy": ["great question", "absolutely right"]})
    assert tf2.to_frame().set_index("checkpoint").loc["s2", "n_with"] == 1
    # default lexicons of text_features
    tf3 = trigger_frequency(responses, ck)
    assert set(tf3.to_frame()["phrase"]) == {"agreement", "flattery", "hedges"}
    assert tf.wide().shape == (2, 2)
    assert tf.plot() is not None
    with pytest.raises(ValueError, match="non-empty"):
        trigger_frequency(responses, ck, [""])


def test_emerging_phrases_fisher_and_reward_effect():
    ref = ["The answer is plain."] * 10
    cur = ["Great question! The answer is plain."] * 8 + ["The answer is plain."] * 2
    texts = ref + cur
    ck = ["s0"] * 10 + ["s1"] * 10
    rewards = np.r_[np.zeros(10), np.full(8, 2.0), np.zeros(2)] + np.linspace(0, 0.1, 20)
    e = emerging_phrases(texts, ck, rewards, ngram_range=(1, 2), min_count=2, top_k=5)
    top = e.iloc[0]
    # "great", "great question", "question", "question the" share one presence pattern: one row with aliases
    assert top["ngram"] == "great" and set(top["aliases"].split(", ")) == {"great question", "question", "question the"}
    assert (top["share_ref"], top["share_cur"], top["change"]) == pytest.approx((0.0, 0.8, 0.8))
    assert top["p_value"] == pytest.approx(stats.fisher_exact([[8, 2], [0, 10]]).pvalue)
    x1, x0 = rewards[10:18], np.r_[rewards[:10], rewards[18:]]
    sp = np.sqrt((7 * x1.var(ddof=1) + 11 * x0.var(ddof=1)) / 18)
    assert top["cohens_d"] == pytest.approx((x1.mean() - x0.mean()) / sp)
    assert top["reward_with"] == pytest.approx(x1.mean())
    # phrases present everywhere do not change
    assert e.set_index("ngram").loc["answer", "change"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="different checkpoints"):
        emerging_phrases(texts, ck, reference="s1", current="s1")


# --------------------------------------------------------------------------- loading


def _write(tmp_path, records, name="samples.jsonl"):
    p = tmp_path / name
    p.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return p


def test_load_policy_samples_valid(tmp_path):
    p = _write(
        tmp_path,
        [
            {"prompt": "q1", "response": "r1", "step": 0, "attrs": {"q": 1}},
            {"prompt": "q1", "response": "r2", "checkpoint": "ck-final", "step": 5},
            {"id": "x", "prompt": "q2", "response": "r3", "checkpoint": "ck-final", "step": 5.0},
        ],
    )
    f = load_policy_samples(p)
    assert f.columns[:5].tolist() == ["id", "prompt", "response", "checkpoint", "step"]
    assert f["checkpoint"].tolist() == ["step-0", "ck-final", "ck-final"]
    assert f["step"].tolist() == [0, 5, 5]
    assert f["id"].tolist() == ["samples-1", "samples-2", "x"]
    assert f["attrs"].iloc[0] == {"q": 1}
    g = load_policy_samples(pd.DataFrame({"prompt": ["a"], "response": ["b"], "checkpoint": ["c"]}))
    assert g["step"].isna().all()


@pytest.mark.parametrize(
    "bad, field, reason",
    [
        ({"prompt": "q", "step": 1}, "response", "non-empty string"),
        ({"prompt": "q", "response": "  ", "step": 1}, "response", "non-empty string"),
        ({"response": "r", "step": 1}, "prompt", "string"),
        ({"prompt": "q", "response": "r"}, "checkpoint", "both missing"),
        ({"prompt": "q", "response": "r", "step": -1}, "step", "non-negative"),
        ({"prompt": "q", "response": "r", "step": 1.5}, "step", "non-negative integer"),
        ({"prompt": "q", "response": "r", "step": True}, "step", "non-negative integer"),
        ({"prompt": "q", "response": "r", "checkpoint": "c0", "step": 9}, "step", "has step 9 here but 0"),
        ({"id": "dup", "prompt": "q", "response": "r", "step": 0}, "id", "duplicate id 'dup'"),
    ],
)
def test_load_policy_samples_errors_name_file_line_field(tmp_path, bad, field, reason):
    good = [
        {"id": "dup", "prompt": "q", "response": "r", "checkpoint": "c0", "step": 0},
        {"prompt": "q", "response": "r", "step": 0},
    ]
    p = _write(tmp_path, good + [bad])
    with pytest.raises(DataFormatError) as exc:
        load_policy_samples(p)
    msg = str(exc.value)
    assert str(p) in msg and "line 3" in msg and f"field {field!r}" in msg and reason in msg
    assert exc.value.row == 3 and exc.value.field == field


def test_load_policy_samples_bad_json_and_missing_file(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_text('{"prompt": "q", "response": "r", "step": 0}\n{oops\n')
    with pytest.raises(DataFormatError, match="line 2: invalid JSON"):
        load_policy_samples(p)
    with pytest.raises(FileNotFoundError):
        load_policy_samples(tmp_path / "missing.jsonl")


def test_checkpoint_pairs_and_gold():
    f = pd.DataFrame(
        {
            "id": ["a1", "a2", "b1", "b2"],
            "prompt_id": ["p1", "p2", "p1", "p2"],
            "prompt": ["P1", "P2", "P1", "P2"],
            "response": ["r-a1", "r-a2", "r-b1", "r-b2"],
            "checkpoint": ["A", "A", "B", "B"],
            "attrs": [{"q": 1, "k": 0, "a": 0, "f": 0}, {"q": 0, "k": 2, "a": 1, "f": 1}] * 2,
            "claim_is_true": [None, False, None, True],
        }
    )
    pairs = checkpoint_pairs(f, [1.0, 2.0, 3.0, 5.0], "A", "B")
    assert pairs["id"].tolist() == ["a1|b1", "a2|b2"]
    assert pairs["response_b"].tolist() == ["r-b1", "r-b2"]
    assert pairs["score_b"].tolist() == [3.0, 5.0]
    # gold = q - 0.15 k - 0.3 f - 0.3 a [claim false]
    assert demo_gold_score(f).tolist() == pytest.approx([1.0, 0 - 0.3 - 0.3 - 0.3, 1.0, 0 - 0.3 - 0.3])


def test_relabel_candidates_rank_trigger_phrases_first():
    f = pd.DataFrame(
        {
            "id": ["a1", "a2", "a3", "b1", "b2", "b3"],
            "prompt_id": ["p1", "p2", "p3"] * 2,
            "prompt": ["P1", "P2", "P3"] * 2,
            "response": ["plain", "plain", "plain", "plain but longer", "You're absolutely right!", "worse"],
            "checkpoint": ["A"] * 3 + ["B"] * 3,
        }
    )
    assert trigger_hits("You're absolutely right!") > trigger_hits("plain")
    assert trigger_hits("plain but longer", ["but longer"]) == 1
    out = relabel_candidates(f, [0.0, 0.0, 0.0, 2.0, 1.0, -1.0], "A", "B", size=5)
    # p3 lost reward (not a candidate); p2 has more trigger phrases, so it comes before the larger gain of p1
    assert out["id"].tolist() == ["a2|b2", "a1|b1"]
    assert out["more_triggers"].tolist() == [True, False]
    assert out["gain"].tolist() == [1.0, 2.0]
    assert out["reason"].iloc[0] == "drift trigger: RM prefers the B answer (more trigger phrases)"
    assert out["reason"].iloc[1] == "drift trigger: RM prefers the B answer"
    assert len(relabel_candidates(f, [0.0, 0.0, 0.0, 2.0, 1.0, -1.0], "A", "B", size=1)) == 1


def test_select_phrases():
    emerging = pd.DataFrame(
        {
            "ngram": ["great question", "as an ai", "rare one", "falling"],
            "q_value": [0.001, 0.01, 0.2, 0.001],
            "change": [0.3, 0.2, 0.4, -0.2],
            "cohens_d": [0.5, 0.9, 2.0, 3.0],
        }
    )
    assert select_phrases(emerging) == (["as an ai", "great question"], "rising phrases the RM rewards most (q < 0.05)")
    assert select_phrases(emerging, " hello , world,") == (
        ["hello", "world"],
        "phrases from the trigger_phrases parameter",
    )
    assert select_phrases(emerging, ["x"])[0] == ["x"]


# --------------------------------------------------------------------------- the one-call audit


def _length_reward(prompts, responses):
    return [len(r) / 100 for r in responses]


def test_drift_audit_one_call(tmp_path):
    rm = load_reward_model(_length_reward)
    audit = drift_audit(rm, "demo-policy", golden="", sample_size=40, n_boot=20, queue_size=5)
    assert isinstance(audit, DriftAudit) and isinstance(audit, AuditResult) and audit.section == "drift"
    s = audit.samples
    assert len(s) == 40 * s["checkpoint"].nunique() and audit.checkpoints[0] == "step-0000"
    # the parts are the documented functions on the scored samples
    assert audit.scores.tolist() == pytest.approx([len(r) / 100 for r in s["response"]])
    topics = pd.factorize(s["topic_id"])[0]
    direct = reward_drift(
        audit.scores, s["checkpoint"], s["step"], prompt_ids=s["prompt_id"], clusters=topics, n_boot=20, n_perm=20
    )
    pd.testing.assert_frame_equal(audit.to_frame(), direct.to_frame())
    assert audit.gold_name == "demo gold judge" and audit.flag is not None
    assert s["gold"].tolist() == pytest.approx(demo_gold_score(s).tolist())
    assert audit.golden_accuracy is None and audit.golden_note is None
    assert audit.bon is not None and audit.bon.n_pools == 114
    # the contract
    summary = audit.summary()
    assert list(summary)[:14] == [
        "n_samples",
        "n_checkpoints",
        "last_checkpoint",
        "last_status",
        "last_wasserstein",
        "last_wasserstein_null_mean",
        "last_excess",
        "last_excess_ci_low",
        "last_excess_ci_high",
        "last_perm_p",
        "last_ks_p",
        "last_mean_shift_sd",
        "golden_accuracy",
        "goodhart_flagged",
    ]
    assert "bon_best_n" in summary and not any(k.startswith("bon_best_n_ci") for k in summary)
    verdicts = audit.verdicts()
    assert all(isinstance(v, Verdict) and v.section == "drift" for v in verdicts)
    assert [v.check for v in verdicts] == [
        "reward drift (last checkpoint)",
        "Goodhart: demo gold judge falls while the reward rises",
        "best-of-n: gold lost past the peak",
    ]
    assert [v.family for v in verdicts] == ["drift", "goodhart", "best_of_n"]
    assert all(v.sentence and v.n and v.n_clusters for v in verdicts)
    assert audit.verdict_table().columns.tolist() == [
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
    assert audit.plot().axes[0].get_title().startswith("Reward per checkpoint")
    payload = audit.publish()
    assert payload["section"] == "drift" and len(payload["verdicts"]) == 3
    assert payload["metrics"]["n_samples"] == len(s)
    # relabel candidates: RM prefers the last checkpoint's answer, trigger phrases first
    pairs = audit.relabel_pairs
    assert 0 < len(pairs) <= 5 and (pairs["gain"] > 0).all()
    assert pairs["more_triggers"].is_monotonic_decreasing


# --------------------------------------------------------------------------- demo data


@pytest.fixture(scope="module")
def demo_policy_scores():
    samples = load_policy_samples("demo-policy")
    rm = load_reward_model("demo-biased")
    scores = score_texts(rm, samples["prompt"].tolist(), samples["response"].tolist(), progress=False).scores
    return samples, scores


def test_demo_policy_drift_is_detected(demo_policy_scores):
    samples, scores = demo_policy_scores
    res = reward_drift(
        scores, samples["checkpoint"], samples["step"], prompt_ids=samples["prompt_id"], clusters=samples["topic_id"]
    )
    t = res.to_frame()
    assert t["checkpoint"].iloc[0] == "step-0000" and t["status"].iloc[0] == "reference"
    last = t.iloc[-1]
    assert last["checkpoint"] == "step-1000" and last["paired"] and last["n_clusters"] == 57
    assert last["perm_p"] < 0.01 and last["direction"] == "up" and last["excess_ci_low"] > 0.1
    assert last["n"] == 80
    # the Goodhart pattern: demo-biased reward rises while the simulated gold judge falls
    g = goodhart_flag(
        scores,
        demo_gold_score(samples),
        samples["checkpoint"],
        samples["step"],
        prompt_ids=samples["prompt_id"],
        clusters=samples["topic_id"],
    )
    assert g.flagged and g.gold_trend == "falls" and g.verdicts()[0].verdict == "fail"
