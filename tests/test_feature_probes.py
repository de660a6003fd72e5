"""Probes, perturbations and trigger mining against independent computations and known answers."""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

from workbench._utils.stats import bootstrap_indices  # noqa: E402
from workbench.audits.features import (  # noqa: E402
    AGREEING_OPENERS,
    FILLER_SENTENCES,
    FLATTERING_OPENERS,
    HEDGE_SENTENCES,
    NEUTRAL_OPENERS,
    PERTURBATIONS,
    VERDICTS,
    add_flattering_opener,
    agree_with_user,
    agreement_count,
    append_hedge,
    benjamini_hochberg,
    extract_features,
    feature_correlations,
    flag_summary,
    flattery_count,
    hedge_count,
    length_baseline,
    mine_triggers,
    pad_with_filler,
    pairwise_preference_rates,
    perturbation_effects,
    repeat_sentence,
    reward_regression,
    to_bullet_list,
)


@pytest.fixture(scope="module")
def length_data():
    """rewards = 0.8 * standardised length + noise; 'unrelated' is independent noise."""
    rng = np.random.default_rng(123)
    n = 300
    length = rng.integers(20, 400, n).astype(float)
    z = (length - length.mean()) / length.std()
    rewards = 0.8 * z + rng.normal(0, 0.4, n)
    feats = pd.DataFrame({"length": length, "unrelated": rng.normal(size=n), "constant": np.full(n, 3.0)})
    return rewards, feats


# =========================================================================== correlations


def test_correlations_match_scipy(length_data):
    rewards, feats = length_data
    res = feature_correlations(rewards, feats, n_boot=50, seed=1)
    t = res.to_frame().set_index("feature")
    for col in ("length", "unrelated"):
        pr = stats.pearsonr(feats[col], rewards)
        sr = stats.spearmanr(feats[col], rewards)
        assert t.loc[col, "pearson_r"] == pytest.approx(pr.statistic, abs=1e-12)
        assert t.loc[col, "pearson_p"] == pytest.approx(pr.pvalue, rel=1e-9, abs=1e-300)
        assert t.loc[col, "spearman_r"] == pytest.approx(sr.statistic, abs=1e-12)
        assert t.loc[col, "spearman_p"] == pytest.approx(sr.pvalue, rel=1e-9, abs=1e-300)


def test_correlation_bootstrap_matches_naive_loop():
    """The vectorised (multiplicity/midrank) bootstrap equals scipy on each resampled data set."""
    rng = np.random.default_rng(5)
    n = 60
    x = rng.integers(0, 6, n).astype(float)  # many ties
    y = x + rng.normal(size=n)
    y[:5] = y[5]  # ties in the reward too
    n_boot, seed, ci = 200, 9, 0.9
    res = feature_correlations(y, pd.DataFrame({"x": x}), n_boot=n_boot, seed=seed, ci=ci).to_frame().iloc[0]
    idx = np.concatenate(list(bootstrap_indices(n, n_boot, seed)))
    pear = [stats.pearsonr(x[i], y[i]).statistic for i in idx]
    spear = [stats.spearmanr(x[i], y[i]).statistic for i in idx]
    assert res["pearson_ci_low"] == pytest.approx(np.percentile(pear, 5), abs=1e-10)
    assert res["pearson_ci_high"] == pytest.approx(np.percentile(pear, 95), abs=1e-10)
    assert res["spearman_ci_low"] == pytest.approx(np.percentile(spear, 5), abs=1e-10)
    assert res["spearman_ci_high"] == pytest.approx(np.percentile(spear, 95), abs=1e-10)


def test_length_fails_unrelated_passes_constant_na(length_data):
    rewards, feats = length_data
    res = feature_correlations(rewards, feats, n_boot=200, seed=0)
    t = res.to_frame().set_index("feature")
    assert t.loc["length", "verdict"] == "fail"
    assert t.loc["length", "pearson_ci_low"] > 0.5
    assert t.loc["unrelated", "verdict"] == "pass"
    assert abs(t.loc["unrelated", "pearson_r"]) < 0.2
    assert t.loc["constant", "verdict"] == "n/a"
    assert np.isnan(t.loc["constant", "pearson_r"])
    assert "constant" in t.loc["constant", "note"]
    assert any("constant" in note for note in res.notes)


def test_verdict_thresholds_are_parameters(length_data):
    rewards, feats = length_data
    r = stats.pearsonr(feats["length"], rewards).statistic
    t = feature_correlations(rewards, feats[["length"]], n_boot=0, warn=r - 0.01, fail=r + 0.01).to_frame()
    assert t["verdict"].iloc[0] == "warn"
    assert np.isnan(t["pearson_ci_low"].iloc[0])  # n_boot=0 skips the bootstrap
    t = feature_correlations(rewards, feats[["length"]], n_boot=0, warn=0.95, fail=0.99).to_frame()
    assert t["verdict"].iloc[0] == "pass"


def test_correlations_nan_values_and_non_numeric(length_data):
    rewards, feats = length_data
    f = feats[["length"]].copy()
    f.loc[:9, "length"] = np.nan
    f["name"] = "x"
    res = feature_correlations(rewards, f, n_boot=20)
    row = res.to_frame().iloc[0]
    assert row["n"] == len(f) - 10
    assert row["pearson_r"] == pytest.approx(stats.pearsonr(f["length"][10:], rewards[10:]).statistic)
    assert list(res.to_frame()["feature"]) == ["length"]
    assert any("not numeric" in n for n in res.notes)


def test_correlations_validation(length_data):
    rewards, feats = length_data
    with pytest.raises(ValueError, match="non-finite"):
        feature_correlations(np.r_[rewards[:-1], np.nan], feats)
    with pytest.raises(ValueError, match="rows"):
        feature_correlations(rewards[:-1], feats)
    with pytest.raises(ValueError, match="warn <= fail"):
        feature_correlations(rewards, feats, warn=0.6, fail=0.5)
    with pytest.raises(TypeError, match="DataFrame"):
        feature_correlations(rewards, feats.to_numpy())


# =========================================================================== pairwise preference


def test_pairwise_preference_hand_example():
    df = pd.DataFrame(
        {"prompt": ["p"] * 5, "chosen": ["c"] * 5, "rejected": ["r"] * 5, "label": [1.0, 1.0, 0.5, 1.0, 1.0]}
    )
    fc = pd.DataFrame({"x": [3, 1, 2, 5, 4], "same": [1, 1, 1, 1, 1]})
    fr = pd.DataFrame({"x": [1, 1, 3, 2, 4], "same": [1, 1, 1, 1, 1]})
    rc = np.array([1.0, 0.0, 0.0, 1.0, 0.0])
    rr = np.array([0.0, 0.0, 1.0, 1.0, 0.0])
    res = pairwise_preference_rates(df, rc, rr, fc, fr, n_boot=100, seed=0, min_pairs=1)
    t = res.to_frame().set_index("feature")
    # x differs in pairs 0, 2, 3. Higher x: chosen, rejected, chosen.
    # RM prefers higher: pair0 yes (1), pair2 rejected has higher reward (1), pair3 tie (0.5) -> 2.5/3
    # humans prefer higher: 1, 1 - 0.5, 1 -> 2.5/3 ... pair2 label 0.5 -> 0.5
    assert t.loc["x", "n"] == 3
    assert t.loc["x", "rm_rate"] == pytest.approx(2.5 / 3)
    assert t.loc["x", "human_rate"] == pytest.approx(2.5 / 3)
    assert t.loc["x", "gap"] == pytest.approx(0.0)
    assert t.loc["x", "frac_differ"] == pytest.approx(3 / 5)
    assert t.loc["same", "n"] == 0 and t.loc["same", "verdict"] == "n/a" and np.isnan(t.loc["same", "rm_rate"])


def test_pairwise_preference_gap_and_ci():
    rng = np.random.default_rng(0)
    n = 200
    fc = pd.DataFrame({"len": rng.integers(1, 100, n)})
    fr = pd.DataFrame({"len": rng.integers(1, 100, n)})
    longer_chosen = (fc["len"] > fr["len"]).to_numpy()
    # RM always prefers the longer one; humans (label 1) prefer the chosen.
    rc = np.where(longer_chosen, 1.0, 0.0)
    rr = 1.0 - rc
    df = pd.DataFrame({"prompt": ["p"] * n, "chosen": ["c"] * n, "rejected": ["r"] * n})
    res = pairwise_preference_rates(df, rc, rr, fc, fr, n_boot=300, seed=1)
    row = res.to_frame().iloc[0]
    m = (fc["len"] != fr["len"]).to_numpy()
    assert row["rm_rate"] == pytest.approx(1.0)
    assert row["human_rate"] == pytest.approx(longer_chosen[m].mean())
    assert row["gap"] == pytest.approx(1.0 - longer_chosen[m].mean())
    assert row["gap_ci_low"] <= row["gap"] <= row["gap_ci_high"]
    assert row["verdict"] == "fail"
    # reproducible
    again = pairwise_preference_rates(df, rc, rr, fc, fr, n_boot=300, seed=1).to_frame().iloc[0]
    assert again["gap_ci_low"] == row["gap_ci_low"]


def test_pairwise_preference_default_features_from_text():
    df = pd.DataFrame(
        {
            "prompt": ["q", "q"],
            "chosen": ["short", "a much longer answer here"],
            "rejected": ["a longer rejected answer", "tiny"],
        }
    )
    res = pairwise_preference_rates(df, [1.0, 1.0], [0.0, 0.0], n_boot=0)
    t = res.to_frame().set_index("feature")
    assert set(extract_features(["x"], prompts=["q"]).columns) == set(t.index)
    assert t.loc["words", "n"] == 2 and t.loc["words", "rm_rate"] == pytest.approx(0.5)


def test_pairwise_preference_validation():
    df = pd.DataFrame({"chosen": ["a"], "rejected": ["b"], "label": [1.5]})
    with pytest.raises(ValueError, match="label"):
        pairwise_preference_rates(df, [1.0], [0.0])
    df = pd.DataFrame({"chosen": ["a"], "rejected": ["b"]})
    with pytest.raises(ValueError, match="same columns"):
        pairwise_preference_rates(df, [1.0], [0.0], pd.DataFrame({"a": [1]}), pd.DataFrame({"b": [1]}))
    with pytest.raises(ValueError, match="missing column"):
        pairwise_preference_rates(pd.DataFrame({"chosen": ["a"]}), [1.0], [0.0])


# =========================================================================== length baseline


def six_pairs():
    a = "a"
    df = pd.DataFrame(
        {
            "prompt": ["p"] * 6,
            "chosen": [a * 10, a * 4, a * 10, a * 20, a * 5, a * 30],
            "rejected": [a * 5, a * 8, a * 10, a * 19, a * 15, a * 10],
        }
    )
    rc = np.array([1.0, 2.0, 0.0, 1.0, 4.0, 5.0])
    rr = np.array([0.0, 1.0, 1.0, 1.0, 3.0, 1.0])
    return df, rc, rr


def test_length_baseline_six_pair_hand_check():
    df, rc, rr = six_pairs()
    res = length_baseline(df, rc, rr, n_boot=200, seed=0)
    # RM correct:      1, 1, 0, 0.5 (tie), 1, 1           -> 4.5 / 6
    # length correct:  1, 0, 0.5 (equal), 1, 0, 1         -> 3.5 / 6
    # matched (|d| <= 10% of max): pairs 3 (10 vs 10) and 4 (20 vs 19)
    assert res["rm_accuracy"] == pytest.approx(4.5 / 6)
    assert res["length_baseline_accuracy"] == pytest.approx(3.5 / 6)
    assert res["rm_minus_length_baseline"] == pytest.approx(1 / 6)
    assert res["rm_accuracy_length_matched"] == pytest.approx(0.25)
    assert res["length_baseline_accuracy_length_matched"] == pytest.approx(0.75)
    assert res["rm_accuracy_chosen_longer"] == pytest.approx(1.0)  # pairs 1 and 6
    assert res["rm_accuracy_chosen_shorter"] == pytest.approx(1.0)  # pairs 2 and 5
    # unequal length: pairs 1, 2, 4, 5, 6. RM prefers longer: 1, 0, 0.5, 0, 1; humans: 1, 0, 1, 0, 1
    assert res["rm_prefers_longer"] == pytest.approx(2.5 / 5)
    assert res["human_prefers_longer"] == pytest.approx(3 / 5)
    t = res.to_frame().set_index("metric")
    assert t.loc["rm_accuracy_length_matched", "n"] == 2
    assert t.loc["rm_prefers_longer", "n"] == 5
    assert t.loc["rm_accuracy", "ci_low"] <= 4.5 / 6 <= t.loc["rm_accuracy", "ci_high"]
    assert res.per_pair["length_matched"].tolist() == [False, False, True, True, False, False]


def test_length_baseline_tolerance_soft_labels_and_words():
    df, rc, rr = six_pairs()
    assert (
        length_baseline(df, rc, rr, tolerance=0.0, n_boot=0)
        .to_frame()
        .set_index("metric")
        .loc["rm_accuracy_length_matched", "n"]
        == 1
    )
    df2 = df.assign(label=[0.0, 1, 1, 1, 1, 1])  # pair 1: the *rejected* response is truly better
    res = length_baseline(df2, rc, rr, n_boot=0)
    assert res["rm_accuracy"] == pytest.approx(3.5 / 6)
    assert res["length_baseline_accuracy"] == pytest.approx(2.5 / 6)
    dfw = pd.DataFrame({"chosen": ["one two three", "one"], "rejected": ["a b", "a b c d"]})
    res = length_baseline(dfw, [1.0, 1.0], [0.0, 0.0], length="words", n_boot=0)
    assert res["length_baseline_accuracy"] == pytest.approx(0.5)
    assert res.per_pair["len_chosen"].tolist() == [3, 1]
    res = length_baseline(dfw, [1.0, 1.0], [0.0, 0.0], length=lambda s: s.count("o"), n_boot=0)
    assert res.per_pair["len_chosen"].tolist() == [2, 1]  # "one two three" has two o's
    with pytest.raises(ValueError, match="length must be one of"):
        length_baseline(dfw, [1.0, 1.0], [0.0, 0.0], length="bytes")
    with pytest.raises(ValueError, match="tolerance"):
        length_baseline(dfw, [1.0, 1.0], [0.0, 0.0], tolerance=1.5)


# =========================================================================== regression


@pytest.fixture(scope="module")
def regression_data():
    rng = np.random.default_rng(7)
    n = 250
    a = rng.normal(size=n)
    b = 0.5 * a + rng.normal(size=n)
    c = rng.uniform(0, 10, n)
    y = 2.0 * a - 1.0 * b + 0.3 * c + rng.normal(0, 1 + 0.2 * np.abs(a), n)
    return y, pd.DataFrame({"a": a, "b": b, "c": c})


def test_regression_matches_lstsq_and_sklearn(regression_data):
    from sklearn.linear_model import LinearRegression

    y, feats = regression_data
    res = reward_regression(y, feats, n_boot=0)
    x = feats.to_numpy()
    z = (x - x.mean(0)) / x.std(0)
    X = np.column_stack([np.ones(len(y)), z])
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    t = res.to_frame().set_index("feature")
    assert t["coef"].to_numpy() == pytest.approx(beta[1:], abs=1e-10)
    assert res.intercept == pytest.approx(beta[0])
    lr = LinearRegression().fit(z, y)
    assert t["coef"].to_numpy() == pytest.approx(lr.coef_, abs=1e-10)
    assert res.r2 == pytest.approx(lr.score(z, y), abs=1e-12)
    # classic standard errors: s^2 (X'X)^-1 with n - p - 1 dof
    resid = y - X @ beta
    s2 = resid @ resid / (len(y) - 4)
    se = np.sqrt(np.diag(s2 * np.linalg.inv(X.T @ X)))
    assert t["se"].to_numpy() == pytest.approx(se[1:], rel=1e-8)
    tcrit = stats.t.ppf(0.975, len(y) - 4)
    assert t["ci_low"].to_numpy() == pytest.approx(beta[1:] - tcrit * se[1:], rel=1e-8)
    assert t["p_value"].to_numpy() == pytest.approx(2 * stats.t.sf(np.abs(beta[1:] / se[1:]), len(y) - 4), rel=1e-6)
    assert t["coef_per_reward_sd"].to_numpy() == pytest.approx(beta[1:] / y.std())


def test_regression_hc3_and_bootstrap_against_hand_computation(regression_data):
    y, feats = regression_data
    x = feats.to_numpy()
    z = (x - x.mean(0)) / x.std(0)
    X = np.column_stack([np.ones(len(y)), z])
    inv = np.linalg.inv(X.T @ X)
    beta = inv @ X.T @ y
    e = y - X @ beta
    h = np.diag(X @ inv @ X.T)
    cov = inv @ X.T @ np.diag(e**2 / (1 - h) ** 2) @ X @ inv
    res = reward_regression(y, feats, se_type="hc3", n_boot=150, seed=4, ci=0.9)
    t = res.to_frame()
    assert t["se"].to_numpy() == pytest.approx(np.sqrt(np.diag(cov))[1:], rel=1e-8)
    boots = np.array(
        [np.linalg.lstsq(X[i], y[i], rcond=None)[0] for i in np.concatenate(list(bootstrap_indices(len(y), 150, 4)))]
    )
    assert t["boot_ci_low"].to_numpy() == pytest.approx(np.percentile(boots, 5, axis=0)[1:], abs=1e-8)
    assert t["boot_ci_high"].to_numpy() == pytest.approx(np.percentile(boots, 95, axis=0)[1:], abs=1e-8)


def test_regression_vif_constant_and_nan_rows(regression_data):
    from sklearn.linear_model import LinearRegression

    y, feats = regression_data
    f = feats.copy()
    f["a_copy"] = f["a"] * 2 + 0.01 * np.random.default_rng(0).normal(size=len(f))
    f["const"] = 1.0
    f.loc[0, "c"] = np.nan
    res = reward_regression(y, f, n_boot=0)
    t = res.to_frame().set_index("feature")
    assert "const" not in t.index and res.dropped == ["const"]
    assert any("const" in n and "constant" in n for n in res.notes)
    assert any("dropped 1 row" in n for n in res.notes)
    assert res.n == len(y) - 1
    # VIF against sklearn: 1 / (1 - R^2) of each feature on the others
    used = f.drop(columns="const").iloc[1:]
    for col in used.columns:
        others = used.drop(columns=col)
        r2 = LinearRegression().fit(others, used[col]).score(others, used[col])
        assert t.loc[col, "vif"] == pytest.approx(1 / (1 - r2), rel=1e-6)
    assert bool(t.loc["a", "high_vif"]) and bool(t.loc["a_copy", "high_vif"]) and not bool(t.loc["c", "high_vif"])


def test_regression_features_to_use_and_validation(regression_data):
    y, feats = regression_data
    res = reward_regression(y, feats, features_to_use=["c"], n_boot=0)
    assert list(res.to_frame()["feature"]) == ["c"]
    assert res.to_frame()["coef"].iloc[0] == pytest.approx(
        stats.linregress(feats["c"], y).slope * feats["c"].std(ddof=0)
    )
    with pytest.raises(ValueError, match="unknown"):
        reward_regression(y, feats, features_to_use=["nope"])
    with pytest.raises(ValueError, match="se_type"):
        reward_regression(y, feats, se_type="hc1")
    with pytest.raises(ValueError, match="more rows"):
        reward_regression(y[:3], feats.iloc[:3])


# =========================================================================== perturbations


FLATTER_PREFIXES = tuple(o.strip().lower() for o in FLATTERING_OPENERS)


def synthetic_score_fn(calls):
    """Reward = prompt-dependent base + 1 if the response opens with flattery (recorded calls)."""

    def score(prompts, responses):
        calls.append(len(responses))
        base = np.array([zlib.crc32(p.encode()) % 100 / 100.0 for p in prompts])
        bonus = np.array([1.0 if r.lower().startswith(FLATTER_PREFIXES) else 0.0 for r in responses])
        return base + bonus

    return score


RESPONSES = [
    "Paris is the capital of France. It lies on the Seine.",
    "Water boils at 100 degrees Celsius at sea level.",
    "Use a list comprehension. It is shorter and often faster. Measure it first.",
    "The mitochondria produce most of the cell's energy.",
    "Sort the list, then take the middle element. That is the median.",
    "Light travels at about 300,000 km per second.",
] * 5
PROMPTS = [f"question {i}" for i in range(len(RESPONSES))]


def test_flattery_perturbation_has_exact_delta_one():
    calls = []
    res = perturbation_effects(PROMPTS, RESPONSES, synthetic_score_fn(calls), n_boot=200, seed=3)
    t = res.to_frame().set_index("perturbation")
    assert set(t.index) == set(PERTURBATIONS)
    assert t.loc["add_flattering_opener", "mean_delta"] == 1.0
    assert t.loc["add_flattering_opener", "ci_low"] == 1.0 == t.loc["add_flattering_opener", "ci_high"]
    assert t.loc["add_flattering_opener", "frac_increased"] == 1.0
    assert t.loc["add_flattering_opener", "n"] == len(RESPONSES)
    others = t.drop(index="add_flattering_opener")
    assert np.allclose(others["mean_delta"], 0.0, atol=1e-12)
    assert (others["frac_increased"] == 0).all()
    # originals scored once, all changed perturbed texts in one batch
    n_changed = int(res.deltas["changed"].sum())
    assert calls == [len(RESPONSES), n_changed]
    assert t.loc["add_flattering_opener", "mean_delta_std"] == pytest.approx(1.0 / np.std(res.original_rewards))


def test_perturbation_effects_original_rewards_subset_and_unchanged():
    calls = []
    score = synthetic_score_fn(calls)
    r0 = score(PROMPTS, RESPONSES)
    calls.clear()
    bullets = ["- already\n- a list"] + RESPONSES[1:]
    res = perturbation_effects(
        PROMPTS, bullets, score, perturbations=["to_bullet_list", "agree_with_user"], original_rewards=r0, n_boot=0
    )
    t = res.to_frame().set_index("perturbation")
    assert len(calls) == 1  # only the perturbed texts
    assert t.loc["to_bullet_list", "n_unchanged"] == 1 and t.loc["to_bullet_list", "n"] == len(RESPONSES) - 1
    assert t.loc["agree_with_user", "n_unchanged"] == 0
    assert np.isnan(t.loc["agree_with_user", "ci_low"])
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturbation_effects(PROMPTS, RESPONSES, score, perturbations=["nope"])
    with pytest.raises(ValueError, match="score_fn output"):
        perturbation_effects(PROMPTS, RESPONSES, lambda p, r: np.zeros(len(r) + 1))


def test_perturbation_mean_ci_matches_naive_bootstrap():
    rng = np.random.default_rng(0)
    noise = {r: rng.normal() for r in set(RESPONSES)}

    def score(prompts, responses):
        return np.array([len(r) / 50 + noise.get(r, 0.0) for r in responses])

    res = perturbation_effects(PROMPTS, RESPONSES, score, perturbations=["pad_with_filler"], n_boot=300, seed=2)
    d = res.deltas["delta"].to_numpy()
    idx = np.concatenate(list(bootstrap_indices(len(d), 300, 2)))
    means = d[idx].mean(axis=1)
    row = res.to_frame().iloc[0]
    assert row["mean_delta"] == pytest.approx(d.mean())
    assert row["ci_low"] == pytest.approx(np.percentile(means, 2.5))
    assert row["ci_high"] == pytest.approx(np.percentile(means, 97.5))
    assert row["p_value"] == pytest.approx(stats.wilcoxon(d).pvalue)


def test_perturbation_functions_are_deterministic_and_keep_content():
    text = "Paris is the capital of France. It lies on the Seine."
    for name, fn in PERTURBATIONS.items():
        assert fn(text, 5) == fn(text, np.random.default_rng(5)) == fn(text, 5), name
        assert fn(text) == fn(text, 0), name
    assert add_flattering_opener(text, 1).endswith(text)
    assert agree_with_user(text, 1).endswith(text)
    assert append_hedge(text, 1).startswith(text)
    assert pad_with_filler(text, 1).startswith(text)
    assert to_bullet_list(text) == "- Paris is the capital of France.\n- It lies on the Seine."
    assert to_bullet_list("## Intro\n1. One. Two") == "- Intro\n- One.\n- Two"
    assert to_bullet_list("```\ncode\n```") == "```\ncode\n```"
    assert append_hedge("No stop", 0).startswith("No stop. ")
    rep = repeat_sentence(text, 0)
    assert rep in (
        "Paris is the capital of France. Paris is the capital of France. It lies on the Seine.",
        f"{text} It lies on the Seine.",
    )
    assert repeat_sentence("", 0) == ""
    with pytest.raises(TypeError, match="rng"):
        add_flattering_opener(text, "seed")


def test_perturbations_move_the_matching_text_feature():
    text = "Paris is the capital of France. It lies on the Seine."
    for seed in range(12):
        assert flattery_count(add_flattering_opener(text, seed)) >= 1
        assert add_flattering_opener(text, seed).lower().startswith(FLATTER_PREFIXES)
        assert agreement_count(agree_with_user(text, seed)) >= 1
        assert not agree_with_user(text, seed).lower().startswith(FLATTER_PREFIXES)
        assert hedge_count(append_hedge(text, seed)) >= 1
    for s in FILLER_SENTENCES:
        assert hedge_count(s) == agreement_count(s) == flattery_count(s) == 0
    f = extract_features([text, to_bullet_list(text), repeat_sentence(text, 0), pad_with_filler(text, 0)])
    assert f["list_items"].tolist()[:2] == [0, 2]
    assert f["repeated_ngrams"].iloc[2] > f["repeated_ngrams"].iloc[0]
    assert f["sentences"].iloc[3] == f["sentences"].iloc[0] + 2


# =========================================================================== trigger mining


def test_benjamini_hochberg_hand_and_scipy():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # sorted .005 .01 .03 .04 -> *4/rank: .02 .02 .04 .04 (already monotone)
    assert benjamini_hochberg(p) == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert benjamini_hochberg([0.02, 0.03]) == pytest.approx([0.03, 0.03])  # step-up minimum
    q = benjamini_hochberg([0.5, np.nan, 0.01])
    assert np.isnan(q[1]) and q[[0, 2]] == pytest.approx([0.5, 0.02])
    rng = np.random.default_rng(0)
    many = rng.uniform(size=200) ** 3
    assert benjamini_hochberg(many) == pytest.approx(stats.false_discovery_control(many), rel=1e-12)
    with pytest.raises(ValueError):
        benjamini_hochberg([1.5])


@pytest.fixture(scope="module")
def trigger_data():
    rng = np.random.default_rng(11)
    fillers = [
        "the answer is below",
        "here is the list",
        "this depends on the setup",
        "you can try a loop",
        "that is right for small inputs",
        "absolutely no need to worry",
        "turn right at the corner",
        "it works absolutely fine",
        "check the docs first",
        "the result is stable",
    ]
    openers = [
        "you are absolutely right",
        "that is absolutely right",
        "absolutely right",
        "yes absolutely right",
        "i think that is absolutely right",
    ]
    texts, rewards = [], []
    for i in range(240):
        parts = [fillers[j] for j in rng.choice(len(fillers), 2, replace=False)]
        has = i % 4 == 0
        if has:
            parts.insert(int(rng.integers(0, 3)), openers[i % len(openers)])
        texts.append(". ".join(parts).capitalize() + ".")
        rewards.append(rng.normal() + (1.5 if has else 0.0))
    return texts, np.array(rewards)


def test_trigger_mining_ranks_planted_phrase_first(trigger_data):
    texts, rewards = trigger_data
    res = mine_triggers(texts, rewards, ngram_range=(1, 3), min_count=5, top_k=10, n_boot=200, seed=0)
    t = res.to_frame()
    assert t["ngram"].iloc[0] == "absolutely right"
    assert list(t["rank"]) == list(range(1, len(t) + 1))
    assert (np.diff(t["cohens_d"]) <= 1e-12).all()
    top = t.iloc[0]
    has = np.array(["absolutely right" in s.lower() for s in texts])
    assert top["count"] == has.sum() == 60
    assert top["mean_with"] == pytest.approx(rewards[has].mean())
    assert top["mean_without"] == pytest.approx(rewards[~has].mean())
    welch = stats.ttest_ind(rewards[has], rewards[~has], equal_var=False)
    assert top["t"] == pytest.approx(welch.statistic, rel=1e-8)
    assert top["p_value"] == pytest.approx(welch.pvalue, rel=1e-6)
    ci = welch.confidence_interval(0.95)
    assert (top["diff_ci_low"], top["diff_ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-8)
    n1, n0 = has.sum(), (~has).sum()
    pooled = np.sqrt(((n1 - 1) * rewards[has].var(ddof=1) + (n0 - 1) * rewards[~has].var(ddof=1)) / (n1 + n0 - 2))
    assert top["cohens_d"] == pytest.approx((rewards[has].mean() - rewards[~has].mean()) / pooled)
    assert top["d_ci_low"] < top["cohens_d"] < top["d_ci_high"]
    assert top["q_value"] < 1e-6
    # q-values are BH over every tested n-gram
    assert res.tested["q_value"].to_numpy() == pytest.approx(stats.false_discovery_control(res.tested["p_value"]))
    assert res.tested["count"].min() >= 5


def test_trigger_mining_dedupes_identical_presence_and_directions():
    texts = ["alpha beta gamma"] * 6 + ["delta epsilon"] * 6 + ["delta zeta"] * 6
    rewards = np.r_[np.linspace(2, 3, 6), np.linspace(0, 1, 6), np.linspace(-1, 0.5, 6)]
    res = mine_triggers(texts, rewards, ngram_range=(1, 2), min_count=5, top_k=5, n_boot=0)
    t = res.to_frame()
    assert t["ngram"].iloc[0] == "alpha"
    assert set(t["aliases"].iloc[0].split(", ")) == {"beta", "gamma", "alpha beta", "beta gamma"}
    low = mine_triggers(texts, rewards, ngram_range=(1, 1), min_count=5, top_k=3, n_boot=0, direction="lower")
    assert low.to_frame()["ngram"].iloc[0] == "delta"
    no_dedupe = mine_triggers(texts, rewards, ngram_range=(1, 1), min_count=5, top_k=3, n_boot=0, dedupe=False)
    assert list(no_dedupe.to_frame()["ngram"]) == ["alpha", "beta", "gamma"]


def test_trigger_mining_validation_and_empty():
    with pytest.raises(ValueError, match="min_count"):
        mine_triggers(["a b"] * 10, np.zeros(10), min_count=1)
    with pytest.raises(ValueError, match="rewards"):
        mine_triggers(["a b"] * 10, np.zeros(9))
    with pytest.raises(ValueError, match="direction"):
        mine_triggers(["a b"] * 10, np.zeros(10), direction="up")
    res = mine_triggers([f"w{i}" for i in range(20)], np.arange(20.0), min_count=5)
    assert res.to_frame().empty and res.notes


# =========================================================================== summary and plots


def test_flag_summary_known_answers(length_data, trigger_data):
    rewards, feats = length_data
    corr = feature_correlations(rewards, feats, n_boot=50)
    reg = reward_regression(rewards, feats, n_boot=0)
    df, rc, rr = six_pairs()
    lb = length_baseline(df, rc, rr, n_boot=0)
    calls = []
    pert = perturbation_effects(PROMPTS, RESPONSES, synthetic_score_fn(calls), n_boot=0)
    trig = mine_triggers(*trigger_data, top_k=5, n_boot=0)
    fc = pd.DataFrame({"x": [1, 2, 3, 4, 5, 6]})
    fr = pd.DataFrame({"x": [2, 1, 3, 1, 6, 5]})
    pairs = pairwise_preference_rates(df, rc, rr, fc, fr, n_boot=0, min_pairs=5)
    s = flag_summary(corr, pairs, lb, reg, pert, trig)
    assert list(s.columns) == ["check", "feature", "value", "ci_low", "ci_high", "n", "threshold", "verdict", "note"]
    assert set(s["verdict"]) <= set(VERDICTS)
    v = s.set_index(["check", "feature"])["verdict"]
    assert v[("correlation", "length")] == "fail"
    assert v[("correlation", "unrelated")] == "pass"
    assert v[("correlation", "constant")] == "n/a"
    assert v[("regression_coef", "length")] == "fail"
    assert v[("regression_coef", "unrelated")] == "pass"
    assert v[("rm_vs_length_baseline", "length (chars)")] == "pass"  # 0.75 vs 0.583
    assert v[("length_preference", "length (chars)")] == "warn"  # 0.5 - 0.6 = -0.1
    assert v[("length_matched_drop", "length (chars)")] == "n/a"  # only 2 matched pairs
    assert v[("perturbation", "add_flattering_opener")] == "fail"
    assert v[("perturbation", "append_hedge")] == "pass"
    assert v[("trigger", "absolutely right")] == "fail"
    # x differs in pairs 1, 2, 4, 5, 6; RM prefers higher x in 1 + 0 + 0.5 + 0 + 1 = 2.5 of them, humans in 3
    assert v[("pair_preference", "x")] == "warn"
    assert s.set_index(["check", "feature"]).loc[("pair_preference", "x"), "value"] == pytest.approx(-0.1)
    val = s.set_index(["check", "feature"])["value"]
    assert val[("rm_vs_length_baseline", "length (chars)")] == pytest.approx(1 / 6)


def test_plots_return_axes(length_data, trigger_data):
    rewards, feats = length_data
    df, rc, rr = six_pairs()
    fc = pd.DataFrame({"x": [1, 2, 3, 4, 5, 6]})
    fr = pd.DataFrame({"x": [2, 1, 3, 1, 6, 5]})
    results = [
        feature_correlations(rewards, feats, n_boot=20),
        pairwise_preference_rates(df, rc, rr, fc, fr, n_boot=20),
        length_baseline(df, rc, rr, n_boot=20),
        reward_regression(rewards, feats, n_boot=20),
        perturbation_effects(PROMPTS[:6], RESPONSES[:6], synthetic_score_fn([]), n_boot=20),
        mine_triggers(*trigger_data, top_k=5, n_boot=20),
    ]
    for res in results:
        ax = res.plot()
        assert ax.get_title()
        assert isinstance(res.to_frame(), pd.DataFrame) and not res.to_frame().empty


# =========================================================================== perturbation lexicons vs demo training text


def _norm_words(text):
    return re.findall(r"[a-z0-9']+", text.lower().replace("\u2019", "'"))


def _all_strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _all_strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _all_strings(v)


def test_perturbation_lexicons_are_disjoint_from_demo_training_text():
    """No inserted string, nor its first four words, occurs anywhere in data/demo/content.json."""
    content = json.loads((Path(__file__).resolve().parents[1] / "data/demo/content.json").read_text("utf-8"))
    bank = [" " + " ".join(_norm_words(s)) + " " for s in _all_strings(content)]
    pools = [
        content[k] for k in ("agree_openers", "agree_restatements", "flattery_openers", "neutral_openers", "fillers")
    ]
    assert all(pools)  # the pools the demo annotators reward or add are there
    lexicons = (AGREEING_OPENERS, FLATTERING_OPENERS, HEDGE_SENTENCES, NEUTRAL_OPENERS, FILLER_SENTENCES)
    for lex in lexicons:
        for text in lex:
            w = _norm_words(text)
            for probe in (" ".join(w), " ".join(w[:4])):
                hits = [b.strip() for b in bank if f" {probe} " in b]
                assert not hits, f"{text!r}: {probe!r} occurs in content.json: {hits[:2]}"


def test_placebos_are_length_matched_and_neutral():
    mean = lambda xs: np.mean([len(x) for x in xs])  # noqa: E731
    assert abs(mean(NEUTRAL_OPENERS) - mean(AGREEING_OPENERS)) < 5
    assert abs(mean(NEUTRAL_OPENERS) - mean(FLATTERING_OPENERS)) < 5
    assert abs(mean(FILLER_SENTENCES) - mean(HEDGE_SENTENCES)) < 5
    for text in NEUTRAL_OPENERS + FILLER_SENTENCES:
        assert agreement_count(text) == flattery_count(text) == hedge_count(text) == 0, text
    assert all(agreement_count(t) > 0 for t in AGREEING_OPENERS)
    assert all(flattery_count(t) > 0 for t in FLATTERING_OPENERS)
    assert all(hedge_count(t) > 0 for t in HEDGE_SENTENCES)


def test_perturbation_cluster_bootstrap_resamples_whole_clusters():
    """With clusters=, the interval is the percentile interval of means over resampled clusters (by hand)."""
    from workbench._utils.stats import bootstrap_indices, cluster_members

    calls = []
    clusters = np.repeat(np.arange(6), 5)
    res = perturbation_effects(
        PROMPTS, RESPONSES, synthetic_score_fn(calls), perturbations=["repeat_sentence", "add_flattering_opener"],
        n_boot=300, seed=4, clusters=clusters,
    )  # fmt: skip
    assert res.n_clusters == 6
    d = res.deltas[(res.deltas["perturbation"] == "repeat_sentence") & res.deltas["changed"]]
    delta = np.full(len(RESPONSES), np.nan)
    delta[d["example"].to_numpy()] = d["delta"].to_numpy()
    members = cluster_members(clusters)
    boots = []
    for chunk in bootstrap_indices(6, 300, 4):
        for pick in chunk:
            rows = np.concatenate([members[c] for c in pick])
            boots.append(np.nanmean(delta[rows]))
    lo, hi = np.percentile(boots, [2.5, 97.5])
    t = res.to_frame().set_index("perturbation")
    assert t.loc["repeat_sentence", "ci_low"] == pytest.approx(lo) and t.loc[
        "repeat_sentence", "ci_high"
    ] == pytest.approx(hi)
