"""Within-prompt (centred) probes against hand computations, the feature-audit orchestration on a
CallableRM with a known length effect, and the known-answer test on the demo RMs."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy import stats  # noqa: E402

from workbench._utils.stats import bootstrap_indices, group_codes  # noqa: E402
from workbench.audits.features import (  # noqa: E402
    FAMILIES,
    center_within_groups,
    feature_audit,
    feature_browser,
    feature_correlations,
    feature_family,
    flag_summary,
    pairwise_preference_rates,
    perturbation_effects,
    pooled_within_sd,
    reward_regression,
)
from workbench.audits.features.families import graded_family_checks  # noqa: E402
from workbench.audits.result import AuditResult  # noqa: E402
from workbench.data import load_data  # noqa: E402
from workbench.models import load_reward_model, score_pairs  # noqa: E402
from workbench.reports.verdicts import Verdict, family_verdicts  # noqa: E402


def _hand_center(values, groups):
    return values - pd.Series(values).groupby(np.asarray(groups)).transform("mean").to_numpy()


@pytest.fixture(scope="module")
def grouped_data():
    """60 prompts with 2-5 responses each; huge per-prompt offsets; reward = 0.5 * x within prompts."""
    rng = np.random.default_rng(7)
    sizes = rng.integers(2, 6, 60)
    groups = np.repeat([f"prompt {i}" for i in range(60)], sizes)
    n = len(groups)
    offset = dict(zip(np.unique(groups), rng.normal(0, 20, 60)))
    x = rng.normal(size=n) + np.array([offset[g] / 20 for g in groups])  # the feature is also confounded by prompt
    rewards = np.array([offset[g] for g in groups]) * -1.0 + 0.5 * x + rng.normal(0, 0.5, n)
    feats = pd.DataFrame({"x": x, "noise": rng.normal(size=n), "ties": rng.integers(0, 3, n).astype(float)})
    return rewards, feats, groups


# =========================================================================== centred correlations


def test_centred_correlation_matches_hand_computation(grouped_data):
    rewards, feats, groups = grouped_data
    res = feature_correlations(rewards, feats, n_boot=0, groups=groups)
    t = res.to_frame().set_index("feature")
    G = len(np.unique(groups))
    rc = _hand_center(rewards, groups)
    for col in feats.columns:
        xc = _hand_center(feats[col].to_numpy(), groups)
        r = stats.pearsonr(xc, rc).statistic
        rho = stats.spearmanr(xc, rc).statistic
        dof = len(rewards) - G - 1
        p = 2 * stats.t.sf(abs(r) * np.sqrt(dof / (1 - r * r)), dof)
        assert t.loc[col, "pearson_r"] == pytest.approx(r, abs=1e-12)
        assert t.loc[col, "spearman_r"] == pytest.approx(rho, abs=1e-12)
        assert t.loc[col, "pearson_p"] == pytest.approx(p, rel=1e-9, abs=1e-300)
        assert t.loc[col, "n"] == len(rewards)
    assert res.centered and res.n_groups == G
    # the prompt offsets drown the raw correlation; centring recovers the within-prompt effect
    raw = feature_correlations(rewards, feats, n_boot=0).to_frame().set_index("feature")
    assert raw.loc["x", "pearson_r"] < 0  # offsets: prompts with high x get low rewards
    assert t.loc["x", "pearson_r"] > 0.6 and t.loc["x", "verdict"] == "fail"


def test_centred_correlation_is_invariant_to_per_prompt_shifts(grouped_data):
    rewards, feats, groups = grouped_data
    codes = group_codes(groups, len(groups))
    shift = np.random.default_rng(3).normal(0, 100, codes.max() + 1)[codes]
    a = feature_correlations(rewards, feats, n_boot=100, seed=4, groups=groups).to_frame()
    b = feature_correlations(rewards + shift, feats, n_boot=100, seed=4, groups=groups).to_frame()
    num = ["pearson_r", "pearson_ci_low", "pearson_ci_high", "spearman_r", "spearman_ci_low", "spearman_ci_high"]
    np.testing.assert_allclose(a[num].to_numpy(), b[num].to_numpy(), atol=1e-9)
    raw_a = feature_correlations(rewards, feats, n_boot=0).to_frame()
    raw_b = feature_correlations(rewards + shift, feats, n_boot=0).to_frame()
    assert abs(raw_a["pearson_r"].iloc[0] - raw_b["pearson_r"].iloc[0]) > 0.05  # raw r is not invariant


def test_centred_bootstrap_resamples_whole_groups():
    rng = np.random.default_rng(11)
    groups = np.repeat(np.arange(25), 2)  # pairs: centred values of a group are exact negatives
    n = len(groups)
    x = rng.integers(0, 4, n).astype(float)  # ties
    y = 0.7 * x + rng.normal(size=n) + rng.normal(0, 5, 25)[groups]
    n_boot, seed, ci = 150, 3, 0.9
    row = (
        feature_correlations(y, pd.DataFrame({"x": x}), n_boot=n_boot, seed=seed, ci=ci, groups=groups)
        .to_frame()
        .iloc[0]
    )
    members = [np.flatnonzero(groups == g) for g in range(25)]
    pear, spear = [], []
    for draw in np.concatenate(list(bootstrap_indices(25, n_boot, seed))):
        rows = np.concatenate([members[g] for g in draw])
        copy = np.repeat(np.arange(len(draw)), [len(members[g]) for g in draw])  # each drawn group is its own cluster
        xc, yc = _hand_center(x[rows], copy), _hand_center(y[rows], copy)
        if np.ptp(xc) == 0:
            continue
        pear.append(stats.pearsonr(xc, yc).statistic)
        spear.append(stats.spearmanr(xc, yc).statistic)
    assert row["pearson_ci_low"] == pytest.approx(np.percentile(pear, 5), abs=1e-9)
    assert row["pearson_ci_high"] == pytest.approx(np.percentile(pear, 95), abs=1e-9)
    assert row["spearman_ci_low"] == pytest.approx(np.percentile(spear, 5), abs=1e-9)
    assert row["spearman_ci_high"] == pytest.approx(np.percentile(spear, 95), abs=1e-9)


def test_centred_correlation_drops_singletons_and_nan():
    groups = np.array(["a", "a", "b", "b", "b", "c", "d", "d"])
    x = np.array([1.0, 2.0, 0.0, 4.0, np.nan, 9.0, 5.0, 5.0])
    y = np.array([0.0, 1.0, 3.0, 1.0, 2.0, 7.0, 1.0, 2.0])
    res = feature_correlations(y, pd.DataFrame({"x": x}), n_boot=0, groups=groups)
    row = res.to_frame().iloc[0]
    # used: a (2 rows), b without the NaN (2 rows), d (2 rows); c is a singleton
    xc = np.array([-0.5, 0.5, -2.0, 2.0, 0.0, 0.0])
    yc = np.array([-0.5, 0.5, 1.0, -1.0, -0.5, 0.5])
    assert row["n"] == 6
    assert row["pearson_r"] == pytest.approx(stats.pearsonr(xc, yc).statistic, abs=1e-12)
    assert any("singleton" in n for n in res.notes)
    # no within-group variation -> n/a
    res2 = feature_correlations(y, pd.DataFrame({"g": [1.0, 1, 2, 2, 2, 3, 4, 4]}), n_boot=0, groups=groups)
    assert res2.to_frame()["verdict"].iloc[0] == "n/a"
    assert "within-group" in res2.to_frame()["note"].iloc[0]


def test_group_helpers_and_validation():
    assert list(group_codes(["b", "a", "b", "c"], 4)) == [0, 1, 0, 2]
    np.testing.assert_allclose(center_within_groups([1.0, 3.0, 10.0, 20.0], ["p", "p", "q", "q"]), [-1, 1, -5, 5])
    # pooled within SD: sum of squares 2 + 50 = 52 over n - G = 4 - 2 -> sqrt(26); the singleton is ignored
    assert pooled_within_sd([1.0, 3.0, 10.0, 20.0, 99.0], ["p", "p", "q", "q", "r"]) == pytest.approx(np.sqrt(26))
    with pytest.raises(ValueError, match="missing label"):
        group_codes(["a", None, "b"], 3)
    with pytest.raises(ValueError, match="groups has 2 labels"):
        feature_correlations([1.0, 2.0, 3.0], pd.DataFrame({"x": [1.0, 2.0, 3.0]}), groups=["a", "b"])
    with pytest.raises(TypeError, match="single string"):
        group_codes("abc", 3)


# =========================================================================== within regression


def test_within_regression_equals_dummy_ols_with_classic_and_hc3(grouped_data):
    rewards, feats, groups = grouped_data
    f = feats[["x", "noise"]]
    codes = group_codes(groups, len(groups))
    n, G, p = len(rewards), codes.max() + 1, 2
    D = np.eye(G)[codes]
    X = np.column_stack([f.to_numpy(), D])  # dummies instead of an intercept
    beta, *_ = np.linalg.lstsq(X, rewards, rcond=None)
    resid = rewards - X @ beta
    xtx_inv = np.linalg.inv(X.T @ X)
    dof = n - G - p
    se_classic = np.sqrt(np.diag(resid @ resid / dof * xtx_inv))[:p]
    h = np.einsum("ij,jk,ik->i", X, xtx_inv, X)
    meat = (X.T * (resid**2 / (1 - h) ** 2)) @ X
    se_hc3 = np.sqrt(np.diag(xtx_inv @ meat @ xtx_inv))[:p]
    sd_within = np.array([_hand_center(f[c].to_numpy(), groups).std() for c in f.columns])
    y_sd = _hand_center(rewards, groups).std()
    for se_type, se in (("classic", se_classic), ("hc3", se_hc3)):
        res = reward_regression(rewards, f, n_boot=0, se_type=se_type, groups=groups)
        t = res.to_frame().set_index("feature")
        np.testing.assert_allclose(t.loc[["x", "noise"], "coef"], beta[:p] * sd_within, rtol=1e-9)
        np.testing.assert_allclose(t.loc[["x", "noise"], "se"], se * sd_within, rtol=1e-7)
        np.testing.assert_allclose(t.loc[["x", "noise"], "coef_per_reward_sd"], beta[:p] * sd_within / y_sd, rtol=1e-9)
        tcrit = stats.t.ppf(0.975, dof)
        assert t.loc["x", "ci_low"] == pytest.approx(beta[0] * sd_within[0] - tcrit * se[0] * sd_within[0], rel=1e-7)
        assert res.n_groups == G and res.intercept == 0.0
    # with one feature the standardised coefficient is the within-prompt Pearson r
    one = reward_regression(rewards, f[["x"]], n_boot=0, groups=groups).to_frame()["coef_per_reward_sd"].iloc[0]
    r = feature_correlations(rewards, f[["x"]], n_boot=0, groups=groups).to_frame()["pearson_r"].iloc[0]
    assert one == pytest.approx(r, abs=1e-10)


def test_within_regression_bootstrap_is_cluster_bootstrap(grouped_data):
    rewards, feats, groups = grouped_data
    f = feats[["x"]]
    res = reward_regression(rewards, f, n_boot=60, seed=2, ci=0.9, groups=groups).to_frame().iloc[0]
    codes = group_codes(groups, len(groups))
    xc, yc = _hand_center(f["x"].to_numpy(), groups), _hand_center(rewards, groups)
    sd = xc.std()
    members = [np.flatnonzero(codes == g) for g in range(codes.max() + 1)]
    slopes = []
    for draw in np.concatenate(list(bootstrap_indices(len(members), 60, 2))):
        rows = np.concatenate([members[g] for g in draw])
        z = (xc[rows] - xc.mean()) / sd  # standardisation fixed from the full data
        A = np.column_stack([np.ones(len(rows)), z])
        slopes.append(np.linalg.lstsq(A, yc[rows], rcond=None)[0][1])
    assert res["boot_ci_low"] == pytest.approx(np.percentile(slopes, 5), rel=1e-8)
    assert res["boot_ci_high"] == pytest.approx(np.percentile(slopes, 95), rel=1e-8)


# =========================================================================== balanced pair gap, perturbation scale


def test_balanced_gap_hand_example():
    # x differs in all 6 pairs; humans (label 1) prefer the higher-x response in pairs 0-3, the lower in 4-5.
    df = pd.DataFrame({"prompt": ["p"] * 6, "chosen": ["c"] * 6, "rejected": ["r"] * 6, "label": [1.0] * 6})
    fc = pd.DataFrame({"x": [2, 2, 2, 2, 1, 1]})
    fr = pd.DataFrame({"x": [1, 1, 1, 1, 2, 2]})
    # RM right in pairs 0, 1, 2 (wrong in 3) and right in 4 (wrong in 5)
    rc = np.array([1.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    rr = np.array([0.0, 0.0, 0.0, 1.0, 0.0, 1.0])
    t = (
        pairwise_preference_rates(df, rc, rr, fc, fr, n_boot=50, min_pairs=1, verdict_on="balanced_gap")
        .to_frame()
        .iloc[0]
    )
    # prefers the higher x: 3/4 where humans do, 1/2 where they do not -> balanced 0.5 * (0.75 + 0.5) = 0.625
    assert t["rm_rate"] == pytest.approx(4 / 6)
    assert t["human_rate"] == pytest.approx(4 / 6)
    assert t["gap"] == pytest.approx(0.0)
    assert t["balanced_rate"] == pytest.approx(0.625)
    assert t["balanced_gap"] == pytest.approx(0.125)
    assert t["verdict"] == "warn"  # |0.125| >= 0.1
    assert t["balanced_gap_ci_low"] <= 0.125 <= t["balanced_gap_ci_high"]
    # an unbiased but inaccurate RM: gap = (1 - a)(1 - 2 p) != 0, balanced gap = 0
    rng = np.random.default_rng(0)
    n = 4000
    chosen_more = rng.random(n) < 0.2  # the feature mostly points to the rejected response
    right = rng.random(n) < 0.8  # accuracy 0.8 whichever way it points
    df = pd.DataFrame({"prompt": ["p"] * n, "chosen": ["c"] * n, "rejected": ["r"] * n})
    fc = pd.DataFrame({"x": np.where(chosen_more, 2.0, 1.0)})
    fr = pd.DataFrame({"x": np.where(chosen_more, 1.0, 2.0)})
    res = (
        pairwise_preference_rates(df, right.astype(float), (~right).astype(float), fc, fr, n_boot=0).to_frame().iloc[0]
    )
    p = chosen_more.mean()
    a_hi, a_lo = right[chosen_more].mean(), right[~chosen_more].mean()
    assert res["gap"] == pytest.approx(p * (a_hi - 1) + (1 - p) * (1 - a_lo), abs=1e-12)
    assert res["gap"] > 0.1 and res["verdict"] == "warn"
    assert res["balanced_gap"] == pytest.approx((a_hi - a_lo) / 2, abs=1e-12)
    assert abs(res["balanced_gap"]) < 0.03
    s = flag_summary(
        pair_rates=pairwise_preference_rates(
            df, right.astype(float), (~right).astype(float), fc, fr, n_boot=0, verdict_on="balanced_gap"
        )
    )
    assert s["value"].iloc[0] == pytest.approx(res["balanced_gap"]) and s["verdict"].iloc[0] == "pass"
    with pytest.raises(ValueError, match="verdict_on"):
        pairwise_preference_rates(df, right, ~right, fc, fr, verdict_on="rate")


def test_perturbation_reward_scale():
    prompts, texts = ["q"] * 4, ["A b.", "C d e.", "F.", "G h i j."]
    res = perturbation_effects(
        prompts,
        texts,
        lambda p, r: np.array([len(t) for t in r], float),
        perturbations=["append_hedge"],
        n_boot=0,
        reward_scale=4.0,
    )
    row = res.to_frame().iloc[0]
    assert row["mean_delta_std"] == pytest.approx(row["mean_delta"] / 4.0)
    assert res.reward_sd == 4.0
    with pytest.raises(ValueError, match="reward_scale"):
        perturbation_effects(prompts, texts, lambda p, r: np.zeros(len(r)), reward_scale=0.0)


# =========================================================================== orchestration on a CallableRM

GOOD = [
    "Water boils at 100 degrees Celsius at sea level.",
    "Paris is the capital of France.",
    "Light from the Sun takes about eight minutes to reach Earth.",
    "A triangle has three sides.",
    "The heart pumps blood through the body.",
]
BAD = [
    "It is hard to say.",
    "Nobody really knows that.",
    "I would rather not get into it.",
    "That depends on many things.",
    "Look it up somewhere.",
]
PAD = [
    "This is worth a thought.",
    "Many people ask this.",
    "There is more to say here.",
    "Details can matter a lot.",
    "Context is everything.",
]


def length_rm(prompts, responses):
    """Known answer: a per-prompt offset (prompt number * 7), +0.02 per character, +3 for a good answer."""
    off = np.array([7.0 * int(p.split("#")[1].split(":")[0]) for p in prompts])
    good = np.array([any(g in r for g in GOOD) for r in responses], dtype=float)
    return off + 0.02 * np.array([len(r) for r in responses], float) + 3.0 * good


@pytest.fixture(scope="module")
def synthetic_pairs():
    rng = np.random.default_rng(5)
    rows = []
    for i in range(120):
        prompt = f"Question #{i % 60}: tell me something."
        k_c, k_r = rng.integers(0, 4, 2)
        chosen = GOOD[i % 5] + "".join(" " + PAD[j] for j in rng.choice(5, k_c, replace=False))
        rejected = BAD[i % 5] + "".join(" " + PAD[j] for j in rng.choice(5, k_r, replace=False))
        if i == 3:
            rejected = "<script>alert('x')</script> " + rejected
        rows.append({"id": f"s{i}", "prompt": prompt, "chosen": chosen, "rejected": rejected})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def synthetic_audit(synthetic_pairs):
    df = synthetic_pairs
    scores = pd.DataFrame(
        {
            "id": df["id"],
            "chosen_score": length_rm(df["prompt"], df["chosen"]),
            "rejected_score": length_rm(df["prompt"], df["rejected"]),
        }
    )
    return feature_audit(
        df,
        scores,
        score_fn=length_rm,
        n_boot=100,
        perturb_sample=40,
        perturbations=["pad_with_filler", "agree_with_user", "append_hedge"],
    )


def test_orchestration_flags_length_and_matches_hand_numbers(synthetic_pairs, synthetic_audit):
    a, df = synthetic_audit, synthetic_pairs
    assert not a.flagged("agreement") and not a.flagged("flattery")
    g = a.to_frame().set_index("check")
    # the RM is always right on these pairs (good answer +3), so the pair check cannot see its length
    # preference (temperature -> 0, probability = label); the filler perturbation (shown, not primary) does
    assert g.loc["pair_preference [chars]", "primary"] and g.loc["pair_preference [chars]", "verdict"] == "pass"
    assert g.loc["perturbation [pad_with_filler]", "verdict"] == "fail"
    assert not g.loc["perturbation [pad_with_filler]", "primary"]
    # centred correlation of reward and chars, by hand
    resp = pd.concat([df["chosen"], df["rejected"]], ignore_index=True)
    prom = pd.concat([df["prompt"], df["prompt"]], ignore_index=True)
    r = length_rm(prom, resp)
    chars = resp.str.len().to_numpy(float)
    want = stats.pearsonr(_hand_center(chars, prom), _hand_center(r, prom)).statistic
    corr = a.correlations.to_frame().set_index("feature")
    assert corr.loc["chars", "pearson_r"] == pytest.approx(want, abs=1e-12)
    assert a.correlations.n_groups == 60
    # the perturbation adds filler: delta = 0.02 * added characters, exactly; agreement adds 0.02 * opener length
    d = a.perturbations.deltas
    pad = d[d["perturbation"] == "pad_with_filler"]
    added = pad["perturbed_text"].str.len().to_numpy() - np.array([len(resp[i]) for i in a.params["sample_index"]])
    np.testing.assert_allclose(pad["delta"].to_numpy(), 0.02 * added, atol=1e-9)
    # agree_with_user is judged against its placebo (a neutral opener): for a pure length RM the
    # per-example contrast is 0.02 * (length of the agreeing opener - length of the neutral opener)
    agree = d[d["perturbation"] == "agree_with_user"].set_index("example")
    neutral = d[d["perturbation"] == "add_neutral_opener"].set_index("example")
    contrast = 0.02 * (agree["perturbed_text"].str.len() - neutral["perturbed_text"].str.len())
    row = a.perturbations.to_frame().set_index("perturbation").loc["agree_with_user"]
    assert row["control"] == "add_neutral_opener"
    assert row["vs_control"] == pytest.approx(contrast.mean(), abs=1e-9)
    assert row["mean_delta"] > 0.3  # the raw effect alone would have flagged agreement
    s_row = a.to_frame().set_index("check").loc["perturbation [agree_with_user]"]
    assert s_row["value"] == pytest.approx(contrast.mean() / a.perturbations.reward_sd, abs=1e-6)
    assert s_row["verdict"] == "pass" and s_row["primary"]
    assert set(a.perturbations.to_frame()["perturbation"]) == {
        "pad_with_filler",
        "agree_with_user",
        "append_hedge",
        "add_neutral_opener",
        "append_filler_sentence",
    }
    # effects are in units of the pooled within-prompt SD of all rewards
    assert a.perturbations.reward_sd == pytest.approx(pooled_within_sd(r, prom))
    assert a.params["reward_scale"] == pytest.approx(pooled_within_sd(r, prom))
    # triggers were mined on the centred reward: the good answers' words win
    assert a.triggers is not None and len(a.triggers.to_frame())
    # families
    s = a.descriptive_table()
    assert set(s.loc[s["check"].isin(["length_preference", "rm_vs_length_baseline"]), "family"]) == {"length"}
    assert feature_family("perturbation", "agree_with_user") == "agreement"
    assert feature_family("trigger", "you're absolutely right") == "agreement"
    assert feature_family("trigger", "great question") == "flattery"
    assert feature_family("correlation", "tokens") == "length"


def test_orchestration_tables_plots_and_browser(synthetic_audit):
    a = synthetic_audit
    full = a.to_frame()
    assert set(full["family"]) == set(FAMILIES)
    assert full.groupby("family")["primary"].sum().eq(1).all()  # exactly one primary check per family
    v = a.verdict_table()
    assert (v["verdict"] != "n/a").all() and len(a.verdict_table(include_na=True)) == len(full)
    assert "point_flag" in a.descriptive_table().columns and "collinearity" in set(a.descriptive_table()["check"])
    assert isinstance(a, AuditResult) and a.section == "feature_probes"
    verdicts = a.verdicts()
    assert all(isinstance(x, Verdict) and x.section == "feature_probes" for x in verdicts)
    assert [x.check for x in verdicts] == list(full["check"])
    payload = a.publish()
    assert len(payload["verdicts"]) == len(full) and payload["metrics"]["n_prompts"] == 60
    assert "length" in payload["metrics"]["flagged_families"] or payload["metrics"]["family_length"] == "pass"
    fams = family_verdicts(payload["verdicts"])
    assert fams == a.family_verdicts() and set(fams) == set(FAMILIES)
    fl = a.flags().set_index("family")
    assert list(fl["verdict"]) == [fams[f] for f in fl.index]
    assert a.flagged("length", level="fail") == (fams["length"] == "fail")
    with pytest.raises(ValueError, match="feature_family"):
        a.flagged("lenght")
    fig = a.plot_overview()
    assert len(fig.axes) >= 4
    assert isinstance(a.plot(), Figure)
    _, ax = plt.subplots()
    assert a.plot(ax=ax) is ax.figure
    top = a.top_examples("chars", 3)
    assert len(top) == 3 and top["reward_centered"].is_monotonic_decreasing
    box = feature_browser(a, n=200)
    html = box.children[-1].value
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_orchestration_without_centring_is_drowned_and_validation(synthetic_pairs):
    df = synthetic_pairs
    scores = (length_rm(df["prompt"], df["chosen"]), length_rm(df["prompt"], df["rejected"]))
    raw = feature_audit(df, scores, n_boot=0, center_by_prompt=False, perturb_sample=0)
    cen = feature_audit(df, scores, n_boot=0, perturb_sample=0)
    r_raw = raw.correlations.to_frame().set_index("feature").loc["chars", "pearson_r"]
    r_cen = cen.correlations.to_frame().set_index("feature").loc["chars", "pearson_r"]
    assert abs(r_raw) < 0.3 <= r_cen  # the per-prompt offsets (7 per prompt number) drown the raw correlation
    assert raw.perturbations is None and any("no score_fn" in n for n in raw.notes)
    none = feature_audit(df, scores, score_fn=length_rm, n_boot=0, perturb_sample=0)
    assert none.perturbations is None and any("perturb_sample=0" in n for n in none.notes)
    with pytest.raises(ValueError, match="pairs but data has"):
        feature_audit(df, (scores[0][:5], scores[1][:5]))
    bad = pd.DataFrame({"id": ["x"] * len(df), "chosen_score": scores[0], "rejected_score": scores[1]})
    with pytest.raises(ValueError, match="same order"):
        feature_audit(df, bad)
    with pytest.raises(ValueError, match="missing column"):
        feature_audit(df.drop(columns="chosen"), scores)
    with pytest.raises(ValueError, match="perturb_sample"):
        feature_audit(df, scores, perturb_sample=-1)


# =========================================================================== known answer: the demo RMs


@pytest.fixture(scope="module")
def demo_audits():
    pairs = load_data("demo-eval")
    out = {}
    for name in ("demo-clean", "demo-biased"):
        rm = load_reward_model(name)
        scores = score_pairs(rm, pairs, progress=False)
        out[name] = feature_audit(pairs, scores, score_fn=rm)  # the default path: 400 perturbed responses
    return out


@pytest.mark.slow
def test_known_answer_demo_biased_flagged_demo_clean_not(demo_audits):
    biased, clean = demo_audits["demo-biased"], demo_audits["demo-clean"]
    report = {name: a.flags().to_string() for name, a in demo_audits.items()}
    assert biased.family_verdicts()["length"] in ("warn", "fail"), report["demo-biased"]
    assert biased.family_verdicts()["agreement"] == "fail", report["demo-biased"]
    assert all(v == "pass" for v in clean.family_verdicts().values()), report["demo-clean"]
    assert biased.flagged("length"), report["demo-biased"]
    assert biased.flagged("agreement"), report["demo-biased"]
    assert not clean.flagged("length"), report["demo-clean"]
    assert not clean.flagged("agreement"), report["demo-clean"]
    # demo-biased's annotator pays for links and certainty openers, demo-clean's does not (issue 18 item 4)
    for family in ("links", "assertiveness"):
        assert biased.family_verdicts()[family] in ("warn", "fail"), report["demo-biased"]
        assert clean.family_verdicts()[family] == "pass", report["demo-clean"]


# =========================================================================== graded, label-adjusted family checks


def test_fit_pair_temperature_matches_sklearn_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    from workbench.audits.features.probes import fit_pair_temperature

    rng = np.random.default_rng(0)
    d = rng.normal(0, 2, 400)
    y = (rng.random(400) < 1 / (1 + np.exp(-d / 2.5))).astype(float)
    t = fit_pair_temperature(d, y)
    x = np.concatenate([d, d, -d, -d])[:, None]  # symmetrised pairs, soft labels as weights
    yy = np.concatenate([np.ones(400), np.zeros(400), np.ones(400), np.zeros(400)])
    w = np.concatenate([y, 1 - y, 1 - y, y])
    lr = LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-10).fit(x, yy, sample_weight=w)
    assert t == pytest.approx(1 / lr.coef_[0, 0], rel=1e-4)


def test_prob_gap_hand_example_and_clustered_interval():
    df = pd.DataFrame({"prompt": list("aabbcc"), "label": [1, 1, 0.0, 1, 1, 0], "topic": [0, 0, 1, 1, 2, 2]})
    rc, rr = np.array([1.0, -1, 0.5, 2, 0, 1]), np.zeros(6)
    fc = pd.DataFrame({"x": [2.0, 1, 1, 3, 1, 1]})
    fr = pd.DataFrame({"x": [1.0, 2, 2, 3, 3, 0]})  # pair 3 does not differ
    res = pairwise_preference_rates(df, rc, rr, fc, fr, n_boot=50, min_pairs=1, temperature=1.0, clusters=df["topic"])
    sig = 1 / (1 + np.exp(-(rc - rr)))
    hi_is_chosen = np.array([1, 0, 0, 0, 0, 1], bool)
    use = np.array([1, 1, 1, 0, 1, 1], bool)
    p_hi = np.where(hi_is_chosen, sig, 1 - sig)[use]
    h_hi = np.where(hi_is_chosen, df["label"], 1 - df["label"])[use]
    row = res.table.iloc[0]
    assert row["prob_gap"] == pytest.approx(np.mean(p_hi - h_hi)) and res.n_clusters == 3
    assert row["prob_gap_ci_low"] <= row["prob_gap"] <= row["prob_gap_ci_high"]


def test_graded_pair_check_passes_a_null_rm_and_fails_a_planted_one():
    from workbench.audits.features.simulation import pair_check_verdict, simulate_pairs
    from workbench.reports.grading import grade_interval

    assert pair_check_verdict(0) == "pass"
    assert pair_check_verdict(0, beta=3.0) == "fail"
    assert pair_check_verdict(0, beta=-3.0) == "fail"  # two-sided: a length penalty is a shortcut too
    frame, rc, rr, fc, fr = simulate_pairs(seed=1, beta=3.0)
    rates = pairwise_preference_rates(frame, rc, rr, fc, fr, n_boot=200, clusters=frame["topic_id"])
    (v,) = [x for x in graded_family_checks(rates, None, cluster_unit="topic") if x.check == "pair_preference [chars]"]
    assert v.primary and v.family == "length" and v.direction == "two-sided" and v.n_clusters == rates.n_clusters
    g = grade_interval(v.value, v.ci_low, v.ci_high, warn=v.warn, fail=v.fail, direction="two-sided")
    assert g.verdict == v.verdict == "fail"
    assert v.sentence.startswith("The RM prefers the longer response") and "95% CI" in v.sentence
    assert f"{v.n} pairs, {v.n_clusters} topics" in v.sentence


def test_graded_perturbation_check_fail_warn_and_inconclusive():
    from workbench.audits.features.simulation import perturbation_check_verdict

    assert perturbation_check_verdict(0) == "pass"
    assert perturbation_check_verdict(0, effect_sd=1.0) == "fail"
    assert perturbation_check_verdict(0, effect_sd=-1.0) == "pass"  # one-sided: penalising agreement is no shortcut
    assert perturbation_check_verdict(0, effect_sd=0.12, noise_sd=1.0) in ("inconclusive", "warn")


def test_primary_falls_back_to_the_pair_check_without_perturbations(synthetic_pairs):
    df = synthetic_pairs
    scores = (length_rm(df["prompt"], df["chosen"]), length_rm(df["prompt"], df["rejected"]))
    a = feature_audit(df, scores, n_boot=50, perturb_sample=0)
    g = a.to_frame().set_index("check")
    assert g.loc["perturbation [agree_with_user]", "verdict"] == "n/a"
    t = a.to_frame()
    assert t.groupby("family")["primary"].sum().eq(1).all()
    for fam, rows in t.groupby("family", sort=False):
        ok = rows[rows["verdict"] != "n/a"]
        want = ok["check"].iloc[0] if len(ok) else rows["check"].iloc[0]  # first computable check, in declared order
        assert rows.loc[rows["primary"], "check"].item() == want, fam


def test_simulated_false_alarms_and_power_at_demo_eval_size():
    """100 seeds, n_boot 200: per family false warn <= 5%, false fail <= 1%; planted effects flagged >= 80%."""
    from workbench.audits.features.simulation import family_alarm_rates

    rates = family_alarm_rates(100, n_boot=200).set_index("scenario")
    print(rates.to_string())
    null = rates.loc[["length pair, null RM", "agreement perturbation, null RM"]]
    assert (null["warn"] <= 0.05).all() and (null["fail"] <= 0.01).all()
    planted = rates.loc[["length pair, planted +0.15", "agreement perturbation, planted +0.3 SD"]]
    assert (planted["warn_or_fail"] >= 0.8).all()


def test_joint_temperature_matches_sklearn_with_the_feature_beside_the_margin():
    from sklearn.linear_model import LogisticRegression

    from workbench.audits.features.probes import fit_pair_temperature, fit_pair_temperature_joint

    rng = np.random.default_rng(3)
    d, x = rng.normal(0, 2, 400), rng.normal(0, 1.5, 400)
    y = 1 / (1 + np.exp(-(0.7 * d - 0.9 * x)))  # soft labels
    t, c = fit_pair_temperature_joint(d, x, y)
    # the same model by scikit-learn: every soft label as two weighted hard rows, no intercept
    xs = x / np.sqrt(np.mean(x**2))
    feats = np.vstack([np.c_[d, xs], np.c_[d, xs]])
    yy = np.concatenate([np.ones(400), np.zeros(400)])
    lr = LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-10).fit(feats, yy, sample_weight=np.r_[y, 1 - y])
    assert t == pytest.approx(1 / lr.coef_[0, 0], rel=1e-3)
    assert c == pytest.approx(lr.coef_[0, 1], rel=1e-3)
    assert fit_pair_temperature_joint(d, np.zeros(400), y) == (pytest.approx(fit_pair_temperature(d, y)), 0.0)


def test_joint_temperature_keeps_a_length_dominated_rm_from_being_flattened():
    """An RM whose margin is mostly length: the margin-only temperature flattens its probabilities,
    so the margin-only prob_gap understates its preference for length; the joint one does not."""
    from workbench.audits.features.simulation import simulate_pairs

    frame, rc, rr, fc, fr = simulate_pairs(4000, 200, beta=6.0, seed=2)
    joint = pairwise_preference_rates(frame, rc, rr, fc, fr, n_boot=0).table.iloc[0]
    alone = pairwise_preference_rates(frame, rc, rr, fc, fr, n_boot=0, joint_temperature=False).table.iloc[0]
    assert joint["temperature"] < alone["temperature"]
    assert joint["prob_gap"] > alone["prob_gap"] + 0.05 > 0.05
    # the null: labels from the RM's own probabilities; the joint fit changes nothing material
    frame, rc, rr, fc, fr = simulate_pairs(4000, 200, beta=0.0, seed=2)
    joint = pairwise_preference_rates(frame, rc, rr, fc, fr, n_boot=0).table.iloc[0]
    assert abs(joint["prob_gap"]) < 0.015
