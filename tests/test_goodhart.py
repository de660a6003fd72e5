"""Tests for workbench.audits.drift.goodhart: the exact best-of-n estimator against brute-force enumeration,
KL_bon against numerical integration, the Gao et al. fit on synthetic data, and pool loading."""

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
    assert c["gold_mean"].iloc[-1] < c["gold_mean"].iloc[0] and v.verdict == "fail"
    assert v.value == pytest.approx(c["gold_mean"].max() - c["gold_mean"].iloc[-1])


def test_verdict_warn_on_a_hand_worked_pool():
    # proxy order best first: gold 0.5, 1.0, 0, 0. n=1: 0.375; n=2: 0.5*0.5 + 1/3*1.0 = 0.5833;
    # n=3: 3/4*0.5 + 1/4*1.0 = 0.625 (the peak); n=4: 0.5
    pools = pd.DataFrame({"prompt_id": ["p"] * 4, "proxy": [4.0, 3.0, 2.0, 1.0], "gold": [0.5, 1.0, 0.0, 0.0]})
    res = best_of_n_curve(pools, "proxy", "gold", n_boot=0)
    assert res.curve["gold_mean"].tolist() == pytest.approx([0.375, 0.5 * 0.5 + 1.0 / 3, 0.75 * 0.5 + 0.25 * 1.0, 0.5])
    assert res.best_n == 3
    v = res.verdicts()[0]
    assert v.verdict == "warn" and v.value == pytest.approx(0.625 - 0.5)


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
    assert pools["prompt_id"].nunique() == 60 and len(pools) == 960
    res = best_of_n_curve(pools, pools["response"].str.len().to_numpy(dtype=float), n_boot=100)
    assert res.best_n == 1 and res.curve["gold_mean"].iloc[-1] < res.curve["gold_mean"].iloc[0]
    assert [v.verdict for v in res.verdicts()] == ["fail"]
    gold_proxy = best_of_n_curve(pools, pools["gold"].to_numpy(), n_boot=0)
    assert gold_proxy.curve["gold_mean"].iloc[-1] == pytest.approx(gold_proxy.gold_oracle)
    assert [v.verdict for v in gold_proxy.verdicts()] == ["pass"]
