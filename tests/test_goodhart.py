"""Tests for workbench.audits.drift.goodhart: the exact best-of-n estimator against brute-force enumeration,
KL_bon against numerical integration, the Gao et al. fit on synthetic data, pool loading, and the graded
best-of-n verdict (gold lost past the peak) on hand-worked pools and in simulation (clean vs over-optimised proxy)."""

from __future__ import annotations

import itertools
import json
import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import integrate  # noqa: E402

from workbench._utils.stats import group_codes, resample_indices  # noqa: E402
from workbench.audits.drift import (  # noqa: E402
    best_of_n_curve,
    bon_expectation,
    bon_weights,
    fit_gao_bon,
    kl_bon,
    load_bon_pools,
)
from workbench.data.preferences import DataFormatError  # noqa: E402


def brute_force_bon(proxy, gold, n):
    """Average over every n-subset of the gold of the proxy-argmax, ties broken uniformly."""
    vals = []
    for sub in itertools.combinations(range(len(proxy)), n):
        best = max(proxy[i] for i in sub)
        tied = [i for i in sub if proxy[i] == best]
        vals.append(np.mean([gold[i] for i in tied]))
    return float(np.mean(vals))


def test_weights_are_probabilities_and_match_enumeration():
    N = 7
    for n in range(1, N + 1):
        w = bon_weights(N, n)
        assert w.sum() == pytest.approx(1.0)
        # count, over all n-subsets, how often rank i (0-based) is the smallest index in the subset
        counts = np.zeros(N)
        for sub in itertools.combinations(range(N), n):
            counts[min(sub)] += 1
        assert w == pytest.approx(counts / math.comb(N, n))
    assert bon_weights(5, 1) == pytest.approx([0.2] * 5)
    assert bon_weights(5, 5) == pytest.approx([1, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="exceeds the pool size"):
        bon_weights(3, 4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_expectation_matches_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    N = 8
    proxy = rng.integers(0, 4, N).astype(float)  # many ties
    gold = rng.normal(size=N)
    for n in range(1, N + 1):
        assert bon_expectation(proxy, gold, n) == pytest.approx(brute_force_bon(proxy, gold, n), abs=1e-12)


def test_curve_matches_brute_force_per_pool_average():
    rng = np.random.default_rng(5)
    rows = []
    for p in range(4):
        for _ in range(6):
            rows.append({"prompt_id": f"p{p}", "proxy": float(rng.integers(0, 5)), "gold": float(rng.normal())})
    pools = pd.DataFrame(rows)
    res = best_of_n_curve(pools, "proxy", "gold", n_boot=50, seed=0)
    for n in range(1, 7):
        per_pool = [brute_force_bon(g["proxy"].tolist(), g["gold"].tolist(), n) for _, g in pools.groupby("prompt_id")]
        proxy_pool = [
            brute_force_bon(g["proxy"].tolist(), g["proxy"].tolist(), n) for _, g in pools.groupby("prompt_id")
        ]
        row = res.curve.loc[res.curve["n"] == n].iloc[0]
        assert row["gold_mean"] == pytest.approx(np.mean(per_pool))
        assert row["proxy_mean"] == pytest.approx(np.mean(proxy_pool))
        assert row["gold_ci_low"] <= row["gold_mean"] + 1e-12 <= row["gold_ci_high"] + 2e-12
    assert res.curve["gold_mean"].iloc[0] == pytest.approx(pools["gold"].mean())  # n=1: a random candidate
    assert res.best_n == int(res.curve["n"].iloc[int(np.argmax(res.curve["gold_mean"]))])
    # proxy of the pick never decreases with n
    assert np.all(np.diff(res.curve["proxy_mean"]) >= -1e-12)
    assert res.gold_oracle == pytest.approx(pools.groupby("prompt_id")["gold"].max().mean())


def test_kl_bon_matches_numerical_integration():
    # best-of-n of a continuous distribution has density n F^(n-1) f; with U = F(X) ~ Beta(n, 1)
    # KL = E[log(n U^(n-1))] = integral_0^1 n u^(n-1) log(n u^(n-1)) du
    for n in (1, 2, 4, 16, 64):
        numeric, _ = integrate.quad(
            lambda u, n=n: n * u ** (n - 1) * (math.log(n) + (n - 1) * math.log(u)) if u > 0 else 0.0, 0, 1
        )
        assert kl_bon(n) == pytest.approx(numeric, abs=1e-8)
    assert kl_bon(2) == pytest.approx(math.log(2) - 0.5)
    with pytest.raises(ValueError):
        kl_bon(0)


def test_gao_fit_recovers_known_coefficients():
    a, b = 0.8, 0.6
    d = np.sqrt(kl_bon(np.arange(1, 65)))
    fit = fit_gao_bon(d, d * (a - b * d))
    assert (fit.a, fit.b) == pytest.approx((a, b), abs=1e-10)
    assert fit.d_star == pytest.approx(a / (2 * b))
    assert fit.kl_star == pytest.approx((a / (2 * b)) ** 2)
    assert fit.gain_star == pytest.approx(a * a / (4 * b))
    assert kl_bon(fit.n_star) == pytest.approx(fit.kl_star)
    assert fit.r2 == pytest.approx(1.0)
    # with noise the estimates stay close
    rng = np.random.default_rng(0)
    noisy = fit_gao_bon(d, d * (a - b * d) + rng.normal(0, 0.01, d.size))
    assert noisy.a == pytest.approx(a, abs=0.05) and noisy.b == pytest.approx(b, abs=0.05)
    # independent least-squares solution
    X = np.column_stack([d, -(d**2)])
    y = d * (a - b * d) + rng.normal(0, 0.01, d.size)
    ref = np.linalg.solve(X.T @ X, X.T @ y)
    f2 = fit_gao_bon(d, y)
    assert (f2.a, f2.b) == pytest.approx(tuple(ref))


def test_gao_fit_without_peak():
    d = np.sqrt(kl_bon(np.arange(1, 17)))
    fit = fit_gao_bon(d, 0.5 * d + 0.1 * d**2)  # b = -0.1: keeps rising
    assert not fit.has_peak and math.isinf(fit.kl_star) and math.isinf(fit.n_star)
    with pytest.raises(ValueError, match="two points"):
        fit_gao_bon([0.0, 0.5], [0.0, 1.0])


def test_curve_on_synthetic_overoptimisation_finds_the_peak():
    """Proxy = quality + hack; gold = quality - hack penalty: gold first rises, then falls."""
    rng = np.random.default_rng(11)
    rows = []
    for p in range(300):
        q = rng.normal(size=32)
        hack = rng.exponential(1.0, size=32)
        proxy = q + hack
        gold = q - 0.1 * hack**2
        rows += [{"prompt_id": p, "proxy": x, "gold": g} for x, g in zip(proxy, gold)]
    res = best_of_n_curve(pd.DataFrame(rows), "proxy", "gold", n_boot=100, seed=1)
    c = res.curve
    assert 1 < res.best_n < 32
    assert c["gold_mean"].iloc[-1] < c["gold_mean"].max()
    assert res.fit.has_peak
    assert 0 < res.fit.kl_star < 10
    s = res.summary()
    assert s["best_n"] == res.best_n and s["fit_b"] > 0
    assert (
        res.fit_ci.set_index("parameter").loc["b", "ci_low"]
        <= res.fit.b
        <= res.fit_ci.set_index("parameter").loc["b", "ci_high"]
    )
    fig = res.plot()
    assert "Goodhart" in fig.axes[0].get_title()
    v = res.verdicts()[0]
    frame = pd.DataFrame(rows)
    sd = math.sqrt(frame.groupby("prompt_id")["gold"].var(ddof=1).mean())  # pooled within-pool SD
    assert res.gold_sd == pytest.approx(sd)
    assert v.value == pytest.approx((c["gold_mean"].max() - c["gold_mean"].iloc[-1]) / sd, abs=1e-6)
    assert v.verdict in ("warn", "fail") and v.family == "best_of_n" and v.ci_low > 0.05
    assert v.n == 300 and v.n_clusters == 300 and "loses" in v.sentence


def test_verdict_warn_on_a_hand_worked_pool():
    # proxy order best first: gold 0.5, 1.0, 0, 0. n=1: 0.375; n=2: 0.5*0.5 + 1/3*1.0 = 0.5833;
    # n=3: 3/4*0.5 + 1/4*1.0 = 0.625 (the peak); n=4: 0.5
    pools = pd.DataFrame({"prompt_id": ["p"] * 4, "proxy": [4.0, 3.0, 2.0, 1.0], "gold": [0.5, 1.0, 0.0, 0.0]})
    res = best_of_n_curve(pools, "proxy", "gold", n_boot=0)
    assert res.curve["gold_mean"].tolist() == pytest.approx([0.375, 0.5 * 0.5 + 1.0 / 3, 0.75 * 0.5 + 0.25 * 1.0, 0.5])
    assert res.best_n == 3
    v = res.verdicts()[0]
    sd = np.std([0.5, 1.0, 0.0, 0.0], ddof=1)
    assert v.value == pytest.approx((0.625 - 0.5) / sd, abs=1e-6)
    assert v.verdict == "n/a"  # no bootstrap, no interval: not graded


def _pools(seed, planted, pools=114, size=16, c=3.0):
    """Shipped sizes (114 pools x 16). Clean: proxy = gold + noise. Planted: proxy = q + h, gold = q - c h^2
    (c = 3: a drop of about 0.7 gold SD past the peak, above the 0.5 SD fail margin)."""
    rng = np.random.default_rng(seed)
    pid = np.repeat(np.arange(pools), size)
    base = rng.normal(0, 0.5, pools)[pid]
    q, h = rng.normal(size=pid.size), rng.normal(size=pid.size)
    if planted:
        gold, proxy = base + q - c * h**2, base + q + h
    else:
        gold = base + q
        proxy = gold + rng.normal(size=pid.size)
    return pd.DataFrame({"prompt_id": pid, "topic_id": pid % 57, "proxy": proxy, "gold": gold})


def test_drop_interval_resamples_topics():
    pools = _pools(3, planted=True)
    res = best_of_n_curve(pools, "proxy", "gold", n_boot=300, seed=5)
    assert res.cluster_unit == "topic" and res.n_clusters == 57
    # independent path: the same cluster draws as row indices over pools, curve recomputed from per-pool values
    first = pools.groupby("prompt_id", sort=False).head(1)
    codes = group_codes(first["topic_id"], len(first))
    G = res.per_pool_gold / res.gold_sd
    drops = [G[i].mean(0).max() - G[i].mean(0)[-1] for i in resample_indices(len(G), 300, 5, clusters=codes)]
    assert res.drop_ci == pytest.approx(tuple(np.percentile(drops, [2.5, 97.5])))
    # clusters given explicitly: every pool its own cluster
    own = best_of_n_curve(pools, "proxy", "gold", n_boot=50, clusters="prompt_id")
    assert own.n_clusters == 114 and own.cluster_unit == "prompt"


def test_best_of_n_verdict_simulated_clean_and_overoptimised():
    """Over 100 seeds at the shipped sizes: a clean proxy passes, a planted over-optimisation is detected."""
    clean = [best_of_n_curve(_pools(s, False), "proxy", "gold", n_boot=100, seed=s).verdicts()[0] for s in range(100)]
    hacked = [best_of_n_curve(_pools(s, True), "proxy", "gold", n_boot=100, seed=s).verdicts()[0] for s in range(100)]
    clean_v = [v.verdict for v in clean]
    assert clean_v.count("warn") + clean_v.count("fail") <= 5 and clean_v.count("fail") <= 1
    assert clean_v.count("pass") >= 90
    detected = sum(v.verdict in ("warn", "fail") for v in hacked)
    assert detected >= 80
    # a weak clean proxy (correlation 0.3 with gold): the exact-argmax rule it replaces warned whenever the flat
    # end of the curve peaked early by noise; the interval never warns, it says inconclusive instead
    early, alarms = 0, 0
    for s in range(50):
        pools = _pools(s, False)
        pools["proxy"] = pools["gold"] + 3.0 * np.random.default_rng(s + 1000).normal(size=len(pools))
        res = best_of_n_curve(pools, "proxy", "gold", n_boot=100, seed=s)
        early += res.best_n < 16
        alarms += res.verdicts()[0].verdict in ("warn", "fail")
    assert early >= 5 and alarms == 0


def test_curve_validation():
    pools = pd.DataFrame({"prompt_id": ["a"] * 3 + ["b"] * 4, "gold": np.arange(7.0)})
    with pytest.raises(ValueError, match="smallest pool"):
        best_of_n_curve(pools, np.arange(7.0), n_max=4)
    with pytest.raises(ValueError, match="7 candidates"):
        best_of_n_curve(pools, np.arange(6.0))
    with pytest.raises(ValueError, match="not finite"):
        best_of_n_curve(pools, np.r_[np.arange(6.0), np.nan])
    with pytest.raises(ValueError, match="not a column"):
        best_of_n_curve(pools, "nope")
    res = best_of_n_curve(pools, np.arange(7.0), n_boot=0)
    assert res.curve["n"].tolist() == [1, 2, 3] and res.curve["gold_ci_low"].isna().all()
    assert any("pool sizes vary" in n for n in res.notes)


def test_load_bon_pools(tmp_path):
    p = tmp_path / "pools.jsonl"
    recs = [
        {
            "prompt_id": "x1",
            "prompt": "P",
            "category": "c",
            "candidates": [{"response": "a", "gold": 1, "q": 1}, {"response": "b", "gold": 0.5}],
        },
        {"prompt_id": "x2", "prompt": "Q", "candidates": ["plain text", {"response": "d"}]},
    ]
    p.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    f = load_bon_pools(p)
    assert f["prompt_id"].tolist() == ["x1", "x1", "x2", "x2"]
    assert f["candidate"].tolist() == [0, 1, 0, 1]
    assert f["gold"].iloc[:2].tolist() == [1.0, 0.5] and f["gold"].iloc[2:].isna().all()
    assert f["category"].iloc[0] == "c"
    bad = recs[:1] + [{"prompt_id": "x2", "prompt": "Q", "candidates": [{"response": "ok"}, {"response": ""}]}]
    p.write_text("\n".join(json.dumps(r) for r in bad) + "\n")
    with pytest.raises(DataFormatError) as exc:
        load_bon_pools(p)
    assert "line 2" in str(exc.value) and "candidates[1].response" in str(exc.value) and str(p) in str(exc.value)
    bad = recs[:1] + [{"prompt_id": "x1", "prompt": "Q", "candidates": [{"response": "ok"}]}]
    p.write_text("\n".join(json.dumps(r) for r in bad) + "\n")
    with pytest.raises(DataFormatError, match="duplicate prompt_id 'x1'"):
        load_bon_pools(p)
    bad = [{"prompt_id": "x1", "prompt": "Q", "candidates": [{"response": "ok", "gold": "high"}]}]
    p.write_text(json.dumps(bad[0]) + "\n")
    with pytest.raises(DataFormatError, match=r"candidates\[0\]\.gold"):
        load_bon_pools(p)


def test_demo_pools_with_length_proxy():
    """The shipped pools: a length-loving proxy over-optimises against the demo gold judge at once."""
    pools = load_bon_pools("demo-bon")
    assert pools["prompt_id"].nunique() == 114 and len(pools) == 1824
    res = best_of_n_curve(pools, pools["response"].str.len().to_numpy(dtype=float), n_boot=100)
    assert res.best_n == 1 and res.curve["gold_mean"].iloc[-1] < res.curve["gold_mean"].iloc[0]
    assert res.cluster_unit == "topic" and res.n_clusters == pools["topic_id"].nunique()
    assert [v.verdict for v in res.verdicts()] == ["fail"]
    gold_proxy = best_of_n_curve(pools, pools["gold"].to_numpy(), n_boot=100)
    assert gold_proxy.curve["gold_mean"].iloc[-1] == pytest.approx(gold_proxy.gold_oracle)
    assert [v.verdict for v in gold_proxy.verdicts()] == ["pass"]
