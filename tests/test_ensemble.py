"""Tests for workbench.audits.ensemble: hand-checked z-scoring and aggregators, the disagreement AUROC
against sklearn and a brute-force pair count, pair evaluation, and bootstrap members."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from workbench.audits.ensemble import (  # noqa: E402
    ACCURACY_MARGINS,
    EnsembleResult,
    bootstrap_interval,
    disagreement_auroc,
    ensemble_audit,
    ensemble_pairs,
    ensemble_scores,
    parse_members,
    train_bootstrap_members,
    weighted_auroc,
    zscore_matrix,
)
from workbench.audits.result import AuditResult  # noqa: E402
from workbench.reports.grading import grade_interval  # noqa: E402
from workbench.reports.verdicts import Verdict, family_verdicts  # noqa: E402


def test_zscore_and_aggregators_by_hand():
    # column 1: [1, 2, 3] -> mean 2, std sqrt(2/3): z = [-1.2247, 0, 1.2247]
    # column 2: [1, 1, 4] -> mean 2, std sqrt(2):   z = [-0.7071, -0.7071, 1.4142]
    m = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 4.0]])
    z, mu, sd = zscore_matrix(m)
    assert mu == pytest.approx([2, 2]) and sd == pytest.approx([np.sqrt(2 / 3), np.sqrt(2)])
    assert z[:, 0] == pytest.approx([-1.224745, 0, 1.224745], abs=1e-6)
    assert z[:, 1] == pytest.approx([-0.707107, -0.707107, 1.414214], abs=1e-6)
    es = ensemble_scores(m, lam=0.5, names=["x", "y"])
    assert es.mean == pytest.approx([(-1.224745 - 0.707107) / 2, -0.707107 / 2, (1.224745 + 1.414214) / 2], abs=1e-6)
    assert es.std == pytest.approx(
        [abs(-1.224745 + 0.707107) / 2, 0.707107 / 2, abs(1.224745 - 1.414214) / 2], abs=1e-6
    )
    assert es.worst == pytest.approx([-1.224745, -0.707107, 1.224745], abs=1e-6)
    assert es.penalized == pytest.approx(es.mean - 0.5 * es.std)
    f = es.to_frame()
    assert list(f.columns) == ["z_x", "z_y", "mean", "std", "worst", "penalized"]
    # two members, lam = 1: mean - std (ddof=0) is the minimum
    es1 = ensemble_scores(m, lam=1.0)
    assert es1.penalized == pytest.approx(es1.worst)
    # no z-scoring: raw values
    raw = ensemble_scores(m, zscore=False)
    assert raw.mean == pytest.approx(m.mean(1)) and raw.std == pytest.approx(m.std(1))
    # a constant member gets std 1 (z = 0), not a division by zero
    zc, _, sdc = zscore_matrix(np.array([[1.0, 5.0], [2.0, 5.0]]))
    assert sdc[1] == 1.0 and np.all(zc[:, 1] == 0)


def test_ensemble_scores_validation():
    with pytest.raises(ValueError, match="at least 2 members"):
        ensemble_scores(np.ones((3, 1)))
    with pytest.raises(ValueError, match="lam"):
        ensemble_scores(np.ones((3, 2)), lam=-1)
    with pytest.raises(ValueError, match="non-finite"):
        ensemble_scores(np.array([[1.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="prompts and responses"):
        ensemble_scores(["demo-clean", "demo-biased"])
    assert parse_members(" a , b,") == ["a", "b"]
    with pytest.raises(ValueError, match="at least 2"):
        parse_members("a")


def test_disagreement_auroc_vs_sklearn_and_pair_count():
    rng = np.random.default_rng(0)
    std = np.round(rng.exponential(1, 200), 1)  # rounded: ties
    mistakes = rng.random(200) < 1 / (1 + np.exp(-(std - 1)))
    auc = disagreement_auroc(std, mistakes)
    assert auc == pytest.approx(roc_auc_score(mistakes, std))
    pos, neg = std[mistakes], std[~mistakes]
    brute = np.mean([(p > q) + 0.5 * (p == q) for p in pos for q in neg])
    assert auc == pytest.approx(brute)
    assert auc > 0.5
    assert disagreement_auroc(std, mistakes.astype(int)) == pytest.approx(auc)
    assert np.isnan(disagreement_auroc([0.1, 0.2], [1, 1]))
    with pytest.raises(ValueError, match="0/1"):
        disagreement_auroc([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="differ in length"):
        disagreement_auroc([0.1], [0, 1])


def _pairs(n):
    return pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(n)],
            "prompt": [f"question {i}" for i in range(n)],
            "chosen": [f"good answer {i}" for i in range(n)],
            "rejected": [f"bad {i}" for i in range(n)],
            "label": [1.0] * n,
        }
    )


def test_ensemble_pairs_by_hand():
    pairs = _pairs(4)
    pairs.loc[3, "label"] = 0.5  # a human tie: no mistake defined
    C = np.array([[2.0, 1.0, 3.0], [0.0, 2.0, 1.0], [1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    R = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 3.0], [2.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    res = ensemble_pairs((C, R), pairs, zscore=False, lam=1.0, names=["m1", "m2", "m3"], n_boot=0)
    it = res.items
    margins = C - R
    assert it[["margin:m1", "margin:m2", "margin:m3"]].to_numpy() == pytest.approx(margins)
    assert it["mean_margin"].to_numpy() == pytest.approx(C.mean(1) - R.mean(1))
    assert it["worst_margin"].to_numpy() == pytest.approx(C.min(1) - R.min(1))
    assert it["uncertainty_margin"].to_numpy() == pytest.approx((C.mean(1) - C.std(1)) - (R.mean(1) - R.std(1)))
    assert it["std_margin"].to_numpy() == pytest.approx(margins.std(1))
    # signs per pair: (+,+,+), (-,+,-), (-,-,-), (+,+,+)
    assert it["disagree"].tolist() == [False, True, False, False]
    assert res.disagreement_rate == pytest.approx(0.25)
    # mean margins 2, -1/3, -1, 1 with labels 1, 1, 1, tie -> mistakes 0, 1, 1, NaN
    assert it["mistake"].iloc[:3].tolist() == [0.0, 1.0, 1.0] and np.isnan(it["mistake"].iloc[3])
    acc = res.accuracy.set_index("scorer")["accuracy"]
    assert acc["mean"] == pytest.approx(1 / 3)
    assert acc["m2"] == pytest.approx(2 / 3)  # m2 margins 1, 2, -1 on the decided pairs
    # AUROC: the correct pair has std of (2,1,3) = 0.8165; the mistakes have std(-1,2,-2)=1.6997, std(-1,-1,-1)=0
    assert res.auroc == pytest.approx(0.5)
    assert res.member_disagreement.loc["m1", "m2"] == pytest.approx(0.25)
    top = res.top_disagreements(2)
    assert top["id"].tolist() == ["p1", "p0"]
    v = res.verdicts_frame().set_index("check")
    assert v.loc["disagreement predicts the ensemble's mistakes (AUROC)", "verdict"] == "n/a"  # n_boot=0: no CI
    assert v.loc["mean aggregator minus the best member (accuracy)", "value"] == pytest.approx(1 / 3 - 2 / 3)
    assert v.loc["mean aggregator minus the best member (accuracy)", "verdict"] == "n/a"
    assert v["primary"].all()  # no audited member: the ensemble-level checks decide the family
    assert res.plot() is not None


def test_ensemble_pairs_with_callable_members_matches_matrix():
    pairs = _pairs(12)
    pairs.loc[[2, 5, 7], ["chosen", "rejected"]] = pairs.loc[[2, 5, 7], ["rejected", "chosen"]].to_numpy()

    def by_length(prompts, responses):
        return np.array([len(r) for r in responses], dtype=float)

    def by_good(prompts, responses):
        return np.array([("good" in r) * 1.0 + 0.01 * len(p) for p, r in zip(prompts, responses)])

    res = ensemble_pairs([by_length, by_good], pairs, n_boot=100, cache=None)
    C = np.column_stack([by_length(pairs["prompt"], pairs["chosen"]), by_good(pairs["prompt"], pairs["chosen"])])
    R = np.column_stack([by_length(pairs["prompt"], pairs["rejected"]), by_good(pairs["prompt"], pairs["rejected"])])
    ref = ensemble_pairs((C, R), pairs, n_boot=100)
    assert res.items["mean_margin"].to_numpy() == pytest.approx(ref.items["mean_margin"].to_numpy())
    # z-scoring pools the chosen and rejected texts of each member
    both = np.r_[C[:, 0], R[:, 0]]
    zc = (C[:, 0] - both.mean()) / both.std()
    zr = (R[:, 0] - both.mean()) / both.std()
    assert res.items.iloc[:, res.items.columns.get_loc(f"margin:{res.members[0]}")].to_numpy() == pytest.approx(zc - zr)
    row = res.accuracy.set_index("scorer").loc["mean"]
    assert row["ci_low"] <= row["accuracy"] <= row["ci_high"]
    assert res.summary()["n_pairs"] == 12


def test_train_bootstrap_members_small():
    from workbench.data.shipped import load_data
    from workbench.models.scoring import score_texts
    from workbench.models.training import TrainingConfig

    pairs = load_data("demo-train-biased").sample(24, seed=0)
    members, results = train_bootstrap_members(
        pairs, k=2, seed=3, config=TrainingConfig(epochs=20, validation_fraction=0.0), return_results=True
    )
    assert [m.name for m in members] == ["boot1-s3", "boot2-s3"]
    rows = [r.extra["bootstrap_rows"] for r in results]
    assert rows[0] != rows[1] and all(len(r) == 24 for r in rows)
    assert len(set(rows[0])) < 24  # drawn with replacement
    assert members[0].fingerprint != members[1].fingerprint
    f = pairs.frame.head(3)
    s = [score_texts(m, f["prompt"].tolist(), f["chosen"].tolist(), cache=None, progress=False).scores for m in members]
    assert all(np.all(np.isfinite(x)) for x in s) and not np.allclose(s[0], s[1])
    with pytest.raises(ValueError, match="k must be"):
        train_bootstrap_members(pairs, k=1)


def test_result_contract():
    import matplotlib.pyplot as plt

    pairs = _pairs(30)
    rng = np.random.default_rng(1)
    C, R = rng.normal(size=(30, 3)) + 0.5, rng.normal(size=(30, 3))
    res = ensemble_pairs((C, R), pairs, names=["a", "b", "c"], n_boot=50)
    assert isinstance(res, EnsembleResult) and isinstance(res, AuditResult) and res.section == "ensemble"
    assert res.to_frame()["scorer"].tolist() == ["a", "b", "c", "mean", "worst-case", "mean - 1*std"]
    s = res.summary()
    assert list(s)[:5] == ["n_pairs", "lam", "zscored", "disagreement_rate", "auroc_std_vs_mistake"]
    assert all(not isinstance(v, (list, tuple, dict)) for v in s.values())  # flat
    v = res.verdicts()
    assert all(isinstance(x, Verdict) and x.section == "ensemble" and x.family == "ensemble" for x in v)
    assert len(v) == 2 and all(x.primary for x in v)  # no audited member
    assert v[1].threshold == "warn < 0.6, fail < 0.5 (95% interval)" and v[1].direction == "lower"
    assert res.verdicts_frame().columns.tolist()[:5] == ["check", "verdict", "value", "ci_low", "ci_high"]
    assert s["n_clusters"] == 30 and s["cluster_unit"] == "prompt" and s["audited"] == ""
    fig = res.plot()
    assert len(fig.axes) == 2
    plt.close(fig)
    fig, ax = plt.subplots()
    assert res.plot(ax=ax, kind="disagreement") is fig
    plt.close(fig)
    with pytest.raises(ValueError, match="panel"):
        res.plot(ax=ax)
    flagged = res.relabel_candidates(5)
    assert len(flagged) == 5 and set(flagged["reason"]) == {"ensemble disagreement"}
    assert flagged["margin"].tolist() == flagged["mean_margin"].tolist()  # no audited member
    res.audited = "b"
    assert res.relabel_candidates(5)["margin"].tolist() == res.relabel_candidates(5)["margin:b"].tolist()
    assert len(res.verdicts()) == 6 and [x.primary for x in res.verdicts()].count(True) == 1  # re-computed


def test_bootstrap_interval_matches_per_resample_draws():
    # the draws of the old per-resample loop: rng.integers(0, n, n) once per resample
    rng = np.random.default_rng(4)
    m, y = rng.normal(size=40), np.ones(40)
    ref_rng = np.random.default_rng(7)
    ref = []
    for _ in range(200):
        idx = ref_rng.integers(0, 40, 40)
        ref.append(np.mean(m[idx] > 0))
    lo, hi = bootstrap_interval(lambda a, b: np.mean(a > 0), m, y, n_boot=200, seed=7)
    np.testing.assert_allclose([lo, hi], np.percentile(ref, [2.5, 97.5]), rtol=1e-12)
    assert np.isnan(bootstrap_interval(np.mean, m, n_boot=0)[0])


def test_ensemble_audit_one_call_matches_ensemble_pairs():
    def by_length(prompts, responses):
        return np.array([len(r) for r in responses], dtype=float)

    def by_good(prompts, responses):
        return np.array([("good" in r) * 1.0 + 0.01 * len(p) for p, r in zip(prompts, responses)])

    pairs = _pairs(12)
    res = ensemble_audit(pairs, [by_length, by_good], model=by_good, n_boot=50, cache=None)
    assert res.members[1] == res.audited  # already a member: not added twice
    ref = ensemble_pairs([by_length, by_good], pairs, n_boot=50, cache=None)
    pd.testing.assert_frame_equal(res.to_frame(), ref.to_frame())
    flagged = res.relabel_candidates(3)
    assert flagged["margin"].tolist() == flagged[f"margin:{res.audited}"].tolist()
    added = ensemble_audit(pairs, [by_length, by_good], model=lambda p, r: by_good(p, r) * 2, n_boot=0, cache=None)
    assert len(added.members) == 3 and added.members[0] == added.audited  # a new model goes first
    assert res.source == "<frame>" and res.origin.startswith("members `")


# --------------------------------------------------------------------------- graded checks about the audited model


def _members_on_pairs(rng, n, *, quality=(1.0, 1.0), prompts=None, label_noise=1.0):
    """Pairs with labels from a latent preference ``d`` (Bradley-Terry), members seeing ``d`` with
    member-specific noise scaled by 1 / quality. Returns (chosen matrix, rejected matrix, pairs)."""
    d = rng.normal(size=n) * 1.5
    label = (d + label_noise * rng.logistic(size=n) > 0).astype(float)
    common = rng.normal(size=n) * 0.5
    chosen = np.stack([d + common + rng.normal(size=n) * 0.7 / q for q in quality], axis=1)
    pairs = _pairs(n).assign(label=label)
    if prompts is not None:
        pairs["prompt"] = prompts
    return chosen, np.zeros_like(chosen), pairs


def test_weighted_auroc_matches_sklearn_with_sample_weights():
    rng = np.random.default_rng(0)
    s, y = np.round(rng.normal(size=60), 1), rng.random(60) < 0.3  # rounded: tied scores count 1/2
    w = rng.integers(0, 4, size=(6, 60)).astype(float)
    np.testing.assert_allclose(weighted_auroc(s, y, w), [roc_auc_score(y, s, sample_weight=r) for r in w], rtol=1e-12)
    assert weighted_auroc(s, y, np.ones(60))[0] == pytest.approx(roc_auc_score(y, s))
    assert np.isnan(weighted_auroc(s, np.zeros(60, bool), np.ones((1, 60)))[0])


def test_audited_checks_by_hand_and_depend_on_the_audited_model():
    rng = np.random.default_rng(3)
    C, R, pairs = _members_on_pairs(rng, 120, quality=(1.0, 0.3, 1.0))
    names = ["a", "b", "c"]
    res_a = ensemble_pairs((C, R), pairs, names=names, n_boot=300, seed=5, audited="a")
    res_b = ensemble_pairs((C, R), pairs, names=names, n_boot=300, seed=5, audited="b")
    acc = res_a.accuracy.set_index("scorer")["accuracy"]
    label = pairs["label"].to_numpy()
    z = {m: res_a.items[f"margin:{m}"].to_numpy() for m in names}

    def accuracy(m):
        return np.mean((m > 0) == (label > 0.5))

    assert acc["a"] == pytest.approx(accuracy(z["a"]))
    ca, cb = res_a.checks(), res_b.checks()
    assert ca["audited_minus_others"][0] == pytest.approx(accuracy(z["a"]) - (accuracy(z["b"]) + accuracy(z["c"])) / 2)
    assert ca["audited_minus_mean"][0] == pytest.approx(accuracy(z["a"]) - acc["mean"])
    rest = (z["b"] + z["c"]) / 2
    assert ca["audited_agreement"][0] == pytest.approx(np.mean(np.sign(z["a"]) == np.sign(rest)))
    std = res_a.items["std_margin"].to_numpy()
    assert ca["audited_auroc"][0] == pytest.approx(roc_auc_score((z["a"] > 0) != (label > 0.5), std))
    # the verdicts are about the audited model: they change with it
    va, vb = res_a.verdicts(), res_b.verdicts()
    assert [v.value for v in va[:4]] != [v.value for v in vb[:4]]
    assert va[0].check == "audited accuracy minus the other members'" and va[0].primary
    assert [v.primary for v in va] == [True, False, False, False, False, False]
    assert cb["audited_minus_others"][0] < 0 < ca["audited_minus_others"][0]
    assert "a ranks" in va[0].sentence and "120 pairs, 120 prompts" in va[0].sentence
    assert (va[0].warn, va[0].fail, va[0].direction) == (*ACCURACY_MARGINS, "lower")
    assert (
        va[0].verdict == grade_interval(*ca["audited_minus_others"], warn=-0.12, fail=-0.2, direction="lower").verdict
    )


def test_audited_accuracy_interval_is_the_prompt_clustered_paired_bootstrap():
    rng = np.random.default_rng(8)
    n_prompts, per = 40, 3
    prompts = [f"prompt {i // per}" for i in range(n_prompts * per)]
    C, R, pairs = _members_on_pairs(rng, n_prompts, quality=(1.0, 0.5))
    # every prompt has `per` pairs that share its preference and its members' errors (small extra noise)
    C = np.repeat(C, per, axis=0) + rng.normal(scale=0.05, size=(n_prompts * per, 2))
    R = np.zeros_like(C)
    pairs = _pairs(n_prompts * per).assign(label=np.repeat(pairs["label"].to_numpy(), per), prompt=prompts)
    res = ensemble_pairs((C, R), pairs, names=["a", "b"], n_boot=400, seed=2, audited="a")
    assert res.n_clusters == n_prompts and res.cluster_unit == "prompt"
    label = pairs["label"].to_numpy()
    ca = (res.items["margin:a"].to_numpy() > 0) == (label > 0.5)
    cb = (res.items["margin:b"].to_numpy() > 0) == (label > 0.5)
    codes = np.repeat(np.arange(n_prompts), per)
    diffs = []
    for draw in np.random.default_rng(2).integers(0, n_prompts, size=(400, n_prompts)):
        rows = np.concatenate([np.flatnonzero(codes == c) for c in draw])
        diffs.append(ca[rows].mean() - cb[rows].mean())
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    d, got_lo, got_hi = res.checks()["audited_minus_others"]
    assert d == pytest.approx(ca.mean() - cb.mean())
    assert (got_lo, got_hi) == (pytest.approx(lo, abs=1e-9), pytest.approx(hi, abs=1e-9))
    # the same pairs with one prompt each: resampling pairs gives a narrower interval
    single = ensemble_pairs(
        (C, R),
        pairs.assign(prompt=[f"q{i}" for i in range(len(pairs))]),
        names=["a", "b"],
        n_boot=400,
        seed=2,
        audited="a",
    )
    assert single.n_clusters == len(pairs)
    s_lo, s_hi = single.checks()["audited_minus_others"][1:]
    assert s_hi - s_lo < got_hi - got_lo


def test_audited_checks_pass_fail_and_inconclusive():
    rng = np.random.default_rng(1)
    # a good audited RM among equally good members, many pairs: pass
    C, R, pairs = _members_on_pairs(rng, 2000, quality=(1.0, 1.0))
    good = ensemble_pairs((C, R), pairs, names=["a", "b"], n_boot=200, audited="a")
    assert family_verdicts(good.verdicts()) == {"ensemble": "pass"}
    # an audited RM that ranks pairs at random against a good member: fail
    C, R, pairs = _members_on_pairs(rng, 2000, quality=(1.0, 5.0), label_noise=0.1)
    C[:, 0] = rng.normal(size=2000)
    bad = ensemble_pairs((C, R), pairs, names=["a", "b"], n_boot=200, audited="a")
    assert bad.verdicts()[0].verdict == "fail" and family_verdicts(bad.verdicts()) == {"ensemble": "fail"}
    # few pairs and a modest deficit: inconclusive, with the prompts needed
    C, R, pairs = _members_on_pairs(np.random.default_rng(1), 60, quality=(0.3, 1.0))
    small = ensemble_pairs((C, R), pairs, names=["a", "b"], n_boot=300, audited="a")
    v = small.verdicts()[0]
    assert v.verdict == "inconclusive" and v.clusters_needed > 60


def test_simulated_null_audited_rm_passes_at_the_golden_size():
    """235 pairs, one prompt each (the golden set), the audited RM as good as the other member
    (correlated errors, labels drawn from a Bradley-Terry model): pass in >= 95% of seeds, never fail."""
    out = []
    for seed in range(40):
        C, R, pairs = _members_on_pairs(np.random.default_rng(seed), 235)
        res = ensemble_pairs((C, R), pairs, names=["a", "b"], n_boot=200, seed=seed, audited="a")
        out.append(family_verdicts(res.verdicts())["ensemble"])
    assert out.count("pass") / len(out) >= 0.95 and "fail" not in out
