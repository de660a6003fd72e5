"""Tests for workbench.audits.calibration: metrics, reports, recalibration methods and the display.

Values are checked against independent computations: scikit-learn's
calibration_curve / brier_score_loss / log_loss, netcal's ECE and MCE, scipy's
Wilson interval, hand-worked examples, and reference numbers from
/work/shared/notes/calibration-landscape.md (section 7, which were themselves
cross-checked against netcal, torchmetrics and uncertainty-calibration).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy.special import expit  # noqa: E402
from scipy.stats import binomtest  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.metrics import brier_score_loss, log_loss  # noqa: E402

from workbench.audits.calibration import (  # noqa: E402
    REPORT_METRICS,
    IsotonicCalibration,
    PlattScaling,
    ReliabilityDisplay,
    TemperatureScaling,
    binned_reliability,
    bootstrap_ci,
    brier_decomposition,
    brier_score,
    calibration_report,
    calibration_uncertainty,
    cross_fit_calibrators,
    decision_boundary_report,
    expected_calibration_error,
    fit_calibrators,
    join_pair_data,
    margin_nll,
    maximum_calibration_error,
    mean_reward_gap,
    negative_log_likelihood,
    orient_pairs,
    pair_clusters,
    pairwise_accuracy,
    per_group_report,
    plot_reliability_comparison,
    symmetrize,
    temperature_slider,
    top_label,
    top_label_ece,
    validate_inputs,
)


def _bt_data(n, *, model_scale=2.5, sd=1.5, seed=0, bias=0.0):
    """True BT logit d ~ N(0, sd^2); the RM reports margin = model_scale * d (over-confident if > 1)."""
    rng = np.random.default_rng(seed)
    d = rng.normal(0.0, sd, n)
    y = (rng.random(n) < expit(d + bias)).astype(float)
    return model_scale * d, y


@pytest.fixture(scope="module")
def reference_split():
    """The notes' section-7 setup (seed 20240611): fit = first 10 000 draws, test = next 10 000."""
    rng = np.random.default_rng(20240611)
    d = rng.normal(0, 1.5, 20000)
    y = (rng.random(20000) < expit(d)).astype(float)
    m = 2.5 * d
    return (m[:10000], y[:10000]), (m[10000:], y[10000:])


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "margin, label, match",
    [
        (np.ones((3, 2)), np.ones(3), r"`margin` must be a 1-D array"),
        ([0.1, np.nan, 0.3], [1, 1, 1], r"`margin` contains 1 non-finite.*index 1"),
        ([0.1, 0.2, 0.3], [1, 1.5, 1], r"`label` must lie in \[0, 1\]"),
        ([0.1, 0.2, 0.3], [1, 1], r"`margin` has 3, `label` has 2"),
        ([], [], r"`margin` is empty"),
        (["a", "b"], [1, 1], r"`margin` must be numeric"),
        ([0.1, 0.2], [1, np.inf], r"`label` contains 1 non-finite"),
    ],
)
def test_validate_inputs_errors_name_the_argument(margin, label, match):
    with pytest.raises(ValueError, match=match):
        validate_inputs(margin, label)


def test_validate_inputs_returns_float_arrays():
    m, y = validate_inputs([1, -2, 3], [True, False, True])
    assert m.dtype == np.float64 and y.dtype == np.float64
    np.testing.assert_array_equal(y, [1.0, 0.0, 1.0])


def test_metric_argument_errors():
    with pytest.raises(ValueError, match=r"`prob` must lie in \[0, 1\].*not the margin"):
        expected_calibration_error([2.0, -1.0], [1, 0])
    with pytest.raises(ValueError, match=r"`n_bins` must be a positive integer"):
        expected_calibration_error([0.2, 0.7], [1, 0], n_bins=0)
    with pytest.raises(ValueError, match=r"`strategy` must be one of"):
        expected_calibration_error([0.2, 0.7], [1, 0], strategy="equal")
    with pytest.raises(ValueError, match=r"`orientation` must be one of"):
        calibration_report([1.0, -1.0], [1, 1], orientation="flip")
    with pytest.raises(ValueError, match=r"`temperature` must be a positive"):
        calibration_report([1.0, -1.0], [1, 1], temperature=0)
    with pytest.raises(ValueError, match=r"`groups` has 2"):
        per_group_report([1.0, -1.0, 2.0], [1, 1, 1], ["a", "b"])


# ---------------------------------------------------------------------------
# orientation, top-label, accuracy
# ---------------------------------------------------------------------------


def test_orient_pairs_flips_about_half_and_is_reproducible():
    m, y = _bt_data(4000, seed=1)
    m1, y1 = orient_pairs(m, y, seed=7)
    m2, y2 = orient_pairs(m, y, seed=7)
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_array_equal(y1, y2)
    flipped = m1 != m
    assert 0.45 < flipped.mean() < 0.55
    np.testing.assert_array_equal(m1[flipped], -m[flipped])
    np.testing.assert_array_equal(y1[flipped], 1 - y[flipped])
    np.testing.assert_array_equal(y1[~flipped], y[~flipped])
    m3, _ = orient_pairs(m, y, seed=8)
    assert not np.array_equal(m1, m3)


def test_orientation_invariants_of_proper_scores_accuracy_and_gap():
    m, y = _bt_data(3000, seed=2)
    y = np.clip(y * 0.8 + 0.1, 0, 1)  # soft labels 0.1 / 0.9
    mo, yo = orient_pairs(m, y, seed=3)
    ms, ys = symmetrize(m, y)
    for f in (brier_score, negative_log_likelihood):
        ref = f(expit(m), y)
        assert f(expit(mo), yo) == pytest.approx(ref, rel=1e-12)
        assert f(expit(ms), ys) == pytest.approx(ref, rel=1e-12)
    assert mean_reward_gap(mo, yo) == pytest.approx(mean_reward_gap(m, y), rel=1e-12)
    assert pairwise_accuracy(mo, yo) == pairwise_accuracy(m, y)
    # symmetrised data: doubled, mean label exactly 1/2, but binned ECE differs from the as-given one
    assert ms.size == 2 * m.size and ys.mean() == pytest.approx(0.5, abs=1e-15)
    chosen_first = np.abs(m), np.where(m >= 0, y, 1 - y)
    assert brier_score(expit(chosen_first[0]), chosen_first[1]) == pytest.approx(brier_score(expit(m), y))


def test_top_label_by_hand():
    conf, agree = top_label([0.8, 0.3, 0.5, 0.1], [1.0, 1.0, 0.6, 0.25])
    np.testing.assert_allclose(conf, [0.8, 0.7, 0.5, 0.9])
    np.testing.assert_allclose(agree, [1.0, 0.0, 0.6, 0.75])


def test_pairwise_accuracy_with_ties_and_soft_labels():
    margin = [2.0, -1.0, 0.0, 3.0, -2.0, 1.0, 0.5, 0.0]
    label = [1.0, 1.0, 1.0, 0.0, 0.0, 0.5, 0.7, 0.0]
    # pair 0 correct, 1 wrong, 2 model tie, 3 wrong, 4 correct, 5 human tie (excluded),
    # 6 correct (0.7 > 0.5), 7 model tie (label 0: "margin <= 0" must not count as correct)
    acc = pairwise_accuracy(margin, label)
    assert (acc.n, acc.n_decided, acc.n_label_ties, acc.n_margin_ties) == (8, 7, 1, 2)
    assert (acc.n_correct, acc.n_wrong) == (3, 2)
    assert acc.accuracy == pytest.approx(3 / 5)
    assert acc.tie_rate == pytest.approx(2 / 7)
    assert acc.accuracy_ties_as_half == pytest.approx(4 / 7)
    # soft agreement over margin != 0 pairs (0,1,3,4,5,6): 1, 0, 0, 1, 0.5, 0.7
    assert acc.expected_agreement == pytest.approx(3.2 / 6)


def test_pairwise_accuracy_all_label_ties_is_nan_not_error():
    acc = pairwise_accuracy([1.0, -1.0], [0.5, 0.5])
    assert np.isnan(acc.accuracy) and acc.n_label_ties == 2


def test_mean_reward_gap_by_hand():
    # (2*1-1)*2 + (2*0-1)*(-1) + (2*0.5-1)*5 + (2*0.75-1)*4 = 2 + 1 + 0 + 2 = 5 -> mean 1.25
    assert mean_reward_gap([2.0, -1.0, 5.0, 4.0], [1.0, 0.0, 0.5, 0.75]) == pytest.approx(1.25)


# ---------------------------------------------------------------------------
# ECE, MCE, Brier decomposition: hand-worked examples
# ---------------------------------------------------------------------------

HAND_P = np.array([0.1, 0.3, 0.6, 0.8, 0.9])
HAND_Y = np.array([0.0, 1.0, 1.0, 0.0, 1.0])


def test_ece_and_mce_hand_worked():
    # 2 equal-width bins [0, .5], (.5, 1]:
    #   bin 0: p = .1, .3 -> conf .2, outcome 1/2 = .5, |gap| .3, n = 2
    #   bin 1: p = .6, .8, .9 -> conf 2.3/3 = .76667, outcome 2/3 = .66667, |gap| .1, n = 3
    # ECE = 2/5 * .3 + 3/5 * .1 = .12 + .06 = .18 ; MCE = .3
    assert expected_calibration_error(HAND_P, HAND_Y, n_bins=2) == pytest.approx(0.18)
    assert maximum_calibration_error(HAND_P, HAND_Y, n_bins=2) == pytest.approx(0.3)


def test_murphy_decomposition_hand_worked():
    # Brier = (.01 + .49 + .16 + .64 + .01) / 5 = .262 ; obar = .6 ; UNC = .6 * .4 = .24
    # REL = (2 * .3^2 + 3 * .1^2) / 5 = (.18 + .03) / 5 = .042
    # RES = (2 * (.5 - .6)^2 + 3 * (2/3 - .6)^2) / 5 = (.02 + .013333) / 5 = .0066667
    # REL - RES + UNC = .2753333 != .262 because p varies within bins:
    # WBV = ((-.1)^2 + .1^2 + (-1/6)^2 + (1/30)^2 + (2/15)^2) / 5 = (.02 + .046667) / 5 = .0133333
    # WBC = ((-.1)(-.5) + (.1)(.5) + (-1/6)(1/3) + (1/30)(-2/3) + (2/15)(1/3)) / 5 = (.1 - .033333) / 5 = .0133333
    # residual = WBV - 2 WBC = -.0133333 and .2753333 - .0133333 = .262
    dec = brier_decomposition(HAND_P, HAND_Y, n_bins=2)
    assert dec.brier == pytest.approx(0.262)
    assert dec.uncertainty == pytest.approx(0.24)
    assert dec.reliability == pytest.approx(0.042)
    assert dec.resolution == pytest.approx(0.02 / 3)
    assert dec.within_bin_variance == pytest.approx(0.04 / 3)
    assert dec.within_bin_covariance == pytest.approx(0.04 / 3)
    assert dec.residual == pytest.approx(-0.04 / 3)
    assert dec.reliability - dec.resolution + dec.uncertainty + dec.residual == pytest.approx(dec.brier, abs=1e-15)


def test_murphy_decomposition_exact_when_constant_within_bins():
    # p constant per bin: bin 0 p=.2 (labels 0, 1), bin 1 p=.8 (labels 1, 1, 0)
    # Brier = (.04 + .64 + .04 + .04 + .64) / 5 = .28 ; REL = (2*.09 + 3*(.8-2/3)^2)/5 = .0466667
    # RES = .0066667 ; UNC = .24 ; REL - RES + UNC = .28 exactly, residual 0
    dec = brier_decomposition([0.2, 0.2, 0.8, 0.8, 0.8], [0, 1, 1, 1, 0], n_bins=2)
    assert dec.residual == pytest.approx(0.0, abs=1e-15)
    assert dec.reliability == pytest.approx(0.07 / 1.5)
    assert dec.reliability - dec.resolution + dec.uncertainty == pytest.approx(0.28)


def test_decomposition_identity_soft_labels_and_symmetrised_uncertainty():
    m, y = _bt_data(2000, seed=4)
    q = np.clip(expit(m / 2.5) + np.random.default_rng(5).normal(0, 0.1, m.size), 0, 1)
    for strategy in ("uniform", "quantile"):
        dec = brier_decomposition(expit(m), q, 7, strategy)
        assert dec.reliability - dec.resolution + dec.uncertainty + dec.residual == pytest.approx(dec.brier, abs=1e-12)
        assert dec.uncertainty == pytest.approx(np.var(q))  # Brier of the base-rate forecast
    ms, ys = symmetrize(m, y)
    assert brier_decomposition(expit(ms), ys).uncertainty == pytest.approx(0.25, abs=1e-15)
    # chosen-first (all labels 1): UNC = RES = 0, so REL carries everything -- the degenerate case
    dec1 = brier_decomposition(expit(np.abs(m)), np.ones(m.size))
    assert dec1.uncertainty == 0 and dec1.resolution == 0


# ---------------------------------------------------------------------------
# against independent implementations
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
@pytest.mark.parametrize("n_bins", [5, 10, 15])
def test_reliability_table_matches_sklearn_calibration_curve(strategy, n_bins):
    m, y = _bt_data(1500, seed=6)
    p = expit(m)
    table = binned_reliability(p, y, n_bins, strategy)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    nonempty = table[table["count"] > 0]
    np.testing.assert_allclose(nonempty["mean_outcome"], prob_true, rtol=0, atol=1e-12)
    np.testing.assert_allclose(nonempty["mean_confidence"], prob_pred, rtol=0, atol=1e-12)
    assert table["count"].sum() == p.size
    if strategy == "quantile":  # equal-mass edges are the empirical percentiles
        edges = np.percentile(p, np.linspace(0, 100, n_bins + 1))
        np.testing.assert_allclose(np.r_[table["bin_lower"], table["bin_upper"].iloc[-1]], edges, atol=1e-12)
        assert table["count"].max() - table["count"].min() <= 1
    # ECE recomputed from sklearn's curve and our counts
    ece_from_sklearn = np.sum(nonempty["count"] / p.size * np.abs(prob_true - prob_pred))
    assert expected_calibration_error(p, y, n_bins, strategy) == pytest.approx(ece_from_sklearn, abs=1e-12)


@pytest.mark.parametrize("strategy, n_bins", [("uniform", 10), ("uniform", 4), ("quantile", 4), ("quantile", 7)])
def test_bin_edge_convention_matches_sklearn_on_ties(strategy, n_bins):
    # predictions exactly on the edges 0, .1, ..., 1 (and heavy ties for the quantile edges):
    # bins are right-closed, (e_k, e_k+1], like calibration_curve (netcal would differ here)
    rng = np.random.default_rng(33)
    p = np.round(rng.integers(0, 11, 400) / 10, 12)
    y = (rng.random(400) < p).astype(float)
    table = binned_reliability(p, y, n_bins, strategy)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy=strategy)
    nonempty = table[table["count"] > 0]
    np.testing.assert_allclose(nonempty["mean_outcome"], prob_true, atol=1e-12)
    np.testing.assert_allclose(nonempty["mean_confidence"], prob_pred, atol=1e-12)
    if strategy == "uniform" and n_bins == 10:
        # 0.5 sits on the edge between bins 4 and 5 and belongs to bin 4
        assert table.loc[4, "mean_confidence"] > 0.45 and table.loc[5, "mean_confidence"] == pytest.approx(0.6)


def test_empty_bins_are_kept_as_nan_rows():
    p = np.array([0.31, 0.35, 0.42, 0.55, 0.61, 0.66])
    table = binned_reliability(p, [0, 1, 0, 1, 1, 0], 10)
    assert len(table) == 10
    assert list(table.loc[table["count"] > 0, "bin"]) == [3, 4, 5, 6]
    assert table.loc[table["count"] == 0, "mean_outcome"].isna().all()
    np.testing.assert_allclose(table["bin_lower"], np.linspace(0, 0.9, 10))


def test_brier_and_nll_match_sklearn():
    m, y = _bt_data(2500, seed=7)
    p = expit(m)
    assert brier_score(p, y) == pytest.approx(brier_score_loss(y, p), rel=1e-12)
    assert negative_log_likelihood(p, y) == pytest.approx(log_loss(y, p), rel=1e-10)
    assert margin_nll(m, y) == pytest.approx(log_loss(y, p), rel=1e-10)
    assert margin_nll(m, y, temperature=2.0) == pytest.approx(log_loss(y, expit(m / 2)), rel=1e-10)


def test_nll_clips_saturated_probabilities():
    assert np.isfinite(negative_log_likelihood([1.0, 0.0], [0.0, 1.0]))
    assert negative_log_likelihood([1.0], [0.0], eps=1e-6) == pytest.approx(-np.log(1e-6))
    # the margin form needs no clipping: sigmoid(-50) vs label 1 -> NLL = softplus(50) ~ 50
    assert margin_nll([-50.0], [1.0]) == pytest.approx(50.0, rel=1e-12)


def test_soft_labels_equal_annotator_expanded_binary_data():
    k = 5
    m, _ = _bt_data(1200, seed=8)
    rng = np.random.default_rng(9)
    votes = rng.binomial(k, expit(m / 2.5))
    q = votes / k
    p = expit(m)
    # expanded: each pair repeated k times with `votes` ones and `k - votes` zeros
    p_exp = np.repeat(p, k)
    y_exp = np.concatenate([np.r_[np.ones(v), np.zeros(k - v)] for v in votes])
    for strategy in ("uniform",):  # equal-width edges do not depend on the repetition
        assert expected_calibration_error(p, q, 15, strategy) == pytest.approx(
            expected_calibration_error(p_exp, y_exp, 15, strategy), abs=1e-12
        )
    # Brier of the expanded data (sklearn) = Brier vs q + mean q(1-q)
    assert brier_score_loss(y_exp, p_exp) == pytest.approx(brier_score(p, q) + np.mean(q * (1 - q)), rel=1e-10)
    # cross-entropy vs q = sklearn log loss with weights q / 1-q on duplicated pairs
    yy = np.r_[np.ones(p.size), np.zeros(p.size)]
    assert negative_log_likelihood(p, q) == pytest.approx(
        log_loss(yy, np.r_[p, p], sample_weight=np.r_[q, 1 - q]), rel=1e-10
    )


@pytest.mark.parametrize("equal_intervals, strategy", [(True, "uniform"), (False, "quantile")])
def test_ece_and_mce_match_netcal(equal_intervals, strategy):
    netcal_metrics = pytest.importorskip("netcal.metrics")
    # netcal with a 1-D X and 0/1 labels measures *positive-class* reliability (accuracy := y),
    # bins are left-closed [a, b) and equal-mass edges are np.quantile(X) with the outer ones set
    # to 0 and 1. With n = 1000 and 10 bins the quantile positions (99.9 k) are never on a data
    # point, so the bin contents agree with our right-closed convention.
    m, y = _bt_data(1000, seed=10)
    p = expit(m)
    ours = expected_calibration_error(p, y, 10, strategy)
    theirs = netcal_metrics.ECE(bins=10, equal_intervals=equal_intervals).measure(p, y.astype(int))
    assert ours == pytest.approx(theirs, abs=1e-10)
    ours_mce = maximum_calibration_error(p, y, 10, strategy)
    theirs_mce = netcal_metrics.MCE(bins=10, equal_intervals=equal_intervals).measure(p, y.astype(int))
    assert ours_mce == pytest.approx(theirs_mce, abs=1e-10)


def test_reference_numbers_from_notes(reference_split):
    """Section 7 of calibration-landscape.md (test split, seed 20240611)."""
    (mf, yf), (mt, yt) = reference_split
    p = expit(mt)
    assert expected_calibration_error(p, yt, 15) == pytest.approx(0.138084, abs=1e-6)
    assert expected_calibration_error(p, yt, 15, "quantile") == pytest.approx(0.136165, abs=1e-6)
    assert maximum_calibration_error(p, yt, 15) == pytest.approx(0.208829, abs=1e-6)
    assert brier_score(p, yt) == pytest.approx(0.202108, abs=1e-6)
    assert negative_log_likelihood(p, yt) == pytest.approx(0.682823, abs=1e-6)
    ms, ys = symmetrize(mt, yt)
    assert expected_calibration_error(expit(ms), ys, 15) == pytest.approx(0.136004, abs=1e-6)
    # top-label ECE with 10 bins on [0.5, 1] == symmetrised ECE with 20 bins
    assert top_label_ece(p, yt, 10) == pytest.approx(0.136389, abs=1e-6)
    assert expected_calibration_error(expit(ms), ys, 20) == pytest.approx(top_label_ece(p, yt, 10), abs=1e-12)
    dec = brier_decomposition(expit(ms), ys, 10)
    assert (dec.reliability, dec.resolution, dec.uncertainty) == pytest.approx((0.020357, 0.066296, 0.25), abs=1e-6)
    assert dec.residual == pytest.approx(-0.001952, abs=1e-6)
    ts = TemperatureScaling().fit(mf, yf)
    assert ts.temperature_ == pytest.approx(2.50686, abs=1e-5)
    assert (ts.nll_before_, ts.nll_) == pytest.approx((0.665226, 0.526125), abs=1e-6)
    assert expected_calibration_error(ts.predict_proba(mt), yt, 15) == pytest.approx(0.014453, abs=1e-6)
    platt = PlattScaling().fit(*symmetrize(mf, yf))
    # Platt on symmetrised data is temperature scaling: a = 1 / T (the notes list a = 0.398907,
    # which matches 1 / 2.50686 = 0.3989054 only to 2e-6; their optimiser stopped a little early)
    assert platt.a_ == pytest.approx(1 / ts.temperature_, rel=1e-6)
    assert platt.a_ == pytest.approx(0.398907, abs=3e-6)
    assert platt.b_ == pytest.approx(0.0, abs=1e-8)


def test_top_label_ece_equals_symmetrised_ece_with_twice_the_bins_soft_labels():
    m, y = _bt_data(3000, seed=11)
    q = np.clip(y * 0.7 + 0.15, 0, 1)
    ms, qs = symmetrize(m, q)
    for b in (3, 5, 8):
        assert top_label_ece(expit(m), q, b) == pytest.approx(
            expected_calibration_error(expit(ms), qs, 2 * b), abs=1e-12
        )


# ---------------------------------------------------------------------------
# confidence intervals
# ---------------------------------------------------------------------------


def test_wilson_intervals_match_scipy():
    m, y = _bt_data(800, seed=12)
    table = binned_reliability(expit(m), y, 8, ci=0.95)
    for row in table[table["count"] > 0].itertuples():
        k = int(round(row.mean_outcome * row.count))
        ci = binomtest(k, int(row.count)).proportion_ci(confidence_level=0.95, method="wilson")
        assert (row.ci_low, row.ci_high) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_soft_label_bin_intervals_are_bootstrap_and_sensible():
    m, y = _bt_data(3000, seed=13)
    q = np.clip(expit(m / 2.5) + np.random.default_rng(1).normal(0, 0.05, m.size), 0, 1)
    t1 = binned_reliability(expit(m), q, 5, n_boot=400, seed=3)
    t2 = binned_reliability(expit(m), q, 5, n_boot=400, seed=3)
    pd.testing.assert_frame_equal(t1, t2)
    p = expit(m)
    idx = np.searchsorted(np.linspace(0, 1, 6)[1:-1], p)
    for row in t1.itertuples():
        assert row.ci_low <= row.mean_outcome <= row.ci_high
        sd = q[idx == row.bin].std() / np.sqrt(row.count)
        # percentile bootstrap of a mean ~ normal interval +-1.96 sd for these bin sizes
        assert (row.ci_high - row.ci_low) == pytest.approx(2 * 1.96 * sd, rel=0.25)


def test_bootstrap_ci_contains_estimate_and_narrows_with_n():
    widths = {}
    for n in (200, 5000):
        m, y = _bt_data(n, seed=14)
        p = expit(m)
        est = brier_score(p, y)
        lo, hi = bootstrap_ci(brier_score, p, y, n_boot=400, seed=0)
        assert lo < est < hi
        widths[n] = hi - lo
    # width scales ~ 1/sqrt(n): sqrt(25) = 5x narrower
    assert widths[5000] < widths[200] / 3
    m, y = _bt_data(200, seed=14)
    assert bootstrap_ci(brier_score, expit(m), y, n_boot=400, seed=0) == bootstrap_ci(
        brier_score, expit(m), y, n_boot=400, seed=0
    )


def test_cluster_bootstrap_accounts_for_duplicated_pairs():
    m, y = _bt_data(300, seed=15)
    p = expit(m)
    # each pair appears 4 times (e.g. four rejected responses for one prompt): naive
    # resampling of the 1200 rows is overconfident by ~sqrt(4)
    p4, y4, cl = np.repeat(p, 4), np.repeat(y, 4), np.repeat(np.arange(300), 4)
    naive = np.subtract(*bootstrap_ci(brier_score, p4, y4, n_boot=400, seed=1)[::-1])
    clustered = np.subtract(*bootstrap_ci(brier_score, p4, y4, n_boot=400, seed=1, clusters=cl)[::-1])
    original = np.subtract(*bootstrap_ci(brier_score, p, y, n_boot=400, seed=1)[::-1])
    assert clustered > 1.5 * naive
    assert clustered == pytest.approx(original, rel=0.25)


def test_bootstrap_ci_validation():
    with pytest.raises(ValueError, match="same length"):
        bootstrap_ci(brier_score, [0.1, 0.2], [1, 0, 1])
    with pytest.raises(ValueError, match="`n_boot`"):
        bootstrap_ci(brier_score, [0.1, 0.2], [1, 0], n_boot=0)


# ---------------------------------------------------------------------------
# reports
# ---------------------------------------------------------------------------


def test_calibration_report_values_match_standalone_functions():
    m, y = _bt_data(2000, seed=16)
    rep = calibration_report(m, y, n_bins=12, strategy="quantile", orientation="both", n_boot=150)
    frame = rep.to_frame()
    assert list(frame.columns) == ["metric", "value", "ci_low", "ci_high"]
    assert list(frame["metric"]) == list(REPORT_METRICS)
    ms, ys = symmetrize(m, y)
    ps = expit(ms)
    assert rep["ece_uniform"].value == pytest.approx(expected_calibration_error(ps, ys, 12, "uniform"))
    assert rep["ece_quantile"].value == pytest.approx(expected_calibration_error(ps, ys, 12, "quantile"))
    assert rep["mce"].value == pytest.approx(maximum_calibration_error(ps, ys, 12, "quantile"))
    assert rep["brier"].value == pytest.approx(brier_score(expit(m), y))
    assert rep["nll"].value == pytest.approx(log_loss(y, expit(m)), rel=1e-9)
    assert rep["brier_uncertainty"].value == pytest.approx(0.25)
    assert rep["accuracy"].value == pytest.approx(pairwise_accuracy(m, y).accuracy)
    assert rep["top_label_ece"].value == pytest.approx(top_label_ece(expit(m), y, 12, "quantile"))
    assert rep.n_pairs == 2000 and rep.prob.size == 4000
    # this RM is clearly over-confident, so all the CIs bracket their point estimates
    for name in ("accuracy", "ece_uniform", "brier", "nll", "brier_reliability", "mean_reward_gap"):
        v = rep[name]
        assert v.ci_low <= v.value <= v.ci_high, name
    # symmetrised CIs are resampled over pairs, so they are not spuriously narrow
    half = calibration_report(m, y, orientation="random", n_boot=150)
    w_both = rep["brier"].ci_high - rep["brier"].ci_low
    w_rand = half["brier"].ci_high - half["brier"].ci_low
    assert w_both == pytest.approx(w_rand, rel=0.3)


def test_calibration_report_soft_labels():
    m, y = _bt_data(1500, seed=34)
    q = np.clip(expit(m / 2.5) + np.random.default_rng(2).normal(0, 0.05, m.size), 0, 1)
    rep = calibration_report(m, q, orientation="both", n_boot=100)
    ms, qs = symmetrize(m, q)
    assert rep["ece_uniform"].value == pytest.approx(expected_calibration_error(expit(ms), qs))
    assert rep["brier_uncertainty"].value == pytest.approx(np.var(qs))  # < 0.25 for soft labels
    assert rep["brier_uncertainty"].value < 0.25
    nonempty = rep.reliability[rep.reliability["count"] > 0]
    assert np.isfinite(nonempty[["ci_low", "ci_high"]].to_numpy()).all()


def test_calibration_report_random_orientation_and_temperature():
    m, y = _bt_data(1500, seed=17)
    rep = calibration_report(m, y, orientation="random", seed=5, n_boot=0, temperature=2.5)
    mo, yo = orient_pairs(m, y, seed=5)
    assert rep["ece_uniform"].value == pytest.approx(expected_calibration_error(expit(mo / 2.5), yo))
    assert rep["nll"].value == pytest.approx(margin_nll(m, y, 2.5))
    assert np.isnan(rep["ece_uniform"].ci_low)
    tab = binned_reliability(expit(mo / 2.5), yo)
    pd.testing.assert_frame_equal(rep.reliability, tab)


def test_calibration_report_as_given_on_chosen_first_is_degenerate_and_warns():
    m, y = _bt_data(2000, seed=18)
    cm = np.where(y == 1, m, -m)  # chosen first: label 1 everywhere
    ones = np.ones_like(m)
    with pytest.warns(UserWarning, match="degenerate"):
        given = calibration_report(cm, ones, orientation="as_given", n_boot=0)
    fixed = calibration_report(cm, ones, orientation="random", n_boot=0)
    # degenerate: every bin's outcome is 1, so ECE collapses to 1 - mean(p) and UNC = 0
    assert given["ece_uniform"].value == pytest.approx(1 - expit(cm).mean())
    assert given["brier_uncertainty"].value == 0.0
    assert fixed["ece_uniform"].value < given["ece_uniform"].value - 0.05
    # orientation-free scores agree
    for name in ("brier", "nll", "accuracy", "mean_reward_gap"):
        assert given[name].value == pytest.approx(fixed[name].value)


def test_decision_boundary_report():
    m, y = _bt_data(4000, seed=19)
    rep = decision_boundary_report(m, y, band=0.1)
    inside = np.abs(expit(m) - 0.5) <= 0.1
    assert rep.n == inside.sum() and rep.n_total == 4000 and rep.sufficient
    assert rep.metrics["accuracy"] == pytest.approx(pairwise_accuracy(m[inside], y[inside]).accuracy)
    assert rep.metrics["brier"] == pytest.approx(brier_score(expit(m[inside]), y[inside]))
    conf, agree = top_label(expit(m[inside]), y[inside])
    assert rep.metrics["agreement_minus_confidence"] == pytest.approx(agree.mean() - conf.mean())
    assert rep.metrics["mean_confidence"] <= 0.6
    frame = rep.to_frame()
    assert frame.loc[frame["metric"] == "n", "value"].item() == rep.n

    few = decision_boundary_report([0.1, 5.0, -6.0, 0.05], [1, 1, 0, 0], band=0.05, min_pairs=30)
    assert few.n == 2 and not few.sufficient and "only 2" in few.message
    none = decision_boundary_report([5.0, -6.0], [1, 0], band=0.01)
    assert none.n == 0 and not none.sufficient and np.isnan(none.metrics["accuracy"])
    assert "no pair" in none.message


def test_per_group_report():
    m1, y1 = _bt_data(1500, seed=20, model_scale=1.0)  # calibrated
    m2, y2 = _bt_data(1000, seed=21, model_scale=4.0)  # over-confident
    m, y = np.r_[m2, m1], np.r_[y2, y1]
    groups = np.array(["b"] * 1000 + ["a"] * 1500)
    df = per_group_report(m, y, groups, orientation="both", n_bins=10)
    assert list(df["group"]) == ["a", "b"]
    assert list(df["n"]) == [1500, 1000]
    a = df.set_index("group").loc["a"]
    ms, ys = symmetrize(m1, y1)
    assert a["ece"] == pytest.approx(expected_calibration_error(expit(ms), ys, 10))
    assert a["brier"] == pytest.approx(brier_score(expit(m1), y1))
    assert a["nll"] == pytest.approx(negative_log_likelihood(expit(m1), y1))
    assert a["accuracy"] == pytest.approx(pairwise_accuracy(m1, y1).accuracy)
    assert a["mean_reward_gap"] == pytest.approx(mean_reward_gap(m1, y1))
    assert df.set_index("group").loc["b", "ece"] > a["ece"] + 0.1
    with_ci = per_group_report(m, y, groups, n_boot=50)
    assert {"ece_ci_low", "ece_ci_high", "accuracy_ci_low", "accuracy_ci_high"} <= set(with_ci.columns)
    assert (with_ci["accuracy_ci_low"] <= with_ci["accuracy"]).all()


# ---------------------------------------------------------------------------
# calibrators
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("t_true", [0.5, 2.0])
def test_temperature_scaling_known_answer(t_true):
    rng = np.random.default_rng(int(t_true * 100))
    m = rng.normal(0.0, 2.0, 20000)
    y = (rng.random(m.size) < expit(m / t_true)).astype(float)
    fit, test = slice(0, 10000), slice(10000, None)
    ts = TemperatureScaling().fit(m[fit], y[fit])
    assert ts.temperature_ == pytest.approx(t_true, rel=0.05)
    before = expected_calibration_error(expit(m[test]), y[test], 15)
    after = expected_calibration_error(ts.predict_proba(m[test]), y[test], 15)
    assert after < before / 2
    assert ts.nll_ < ts.nll_before_


def test_temperature_is_orientation_invariant_and_accepts_soft_labels():
    m, y = _bt_data(3000, seed=22)
    t_raw = TemperatureScaling().fit(m, y).temperature_
    t_flip = TemperatureScaling().fit(*orient_pairs(m, y, seed=1)).temperature_
    t_first = TemperatureScaling().fit(np.where(y == 1, m, -m), np.ones_like(y)).temperature_
    assert t_flip == pytest.approx(t_raw, rel=1e-6) and t_first == pytest.approx(t_raw, rel=1e-6)
    # soft labels equal to the true BT probability: T ~ model_scale = 2.5 with little noise
    q = expit(m / 2.5)
    assert TemperatureScaling().fit(m, q).temperature_ == pytest.approx(2.5, rel=1e-4)


def test_temperature_scaling_warns_at_bound_for_separable_data():
    with pytest.warns(UserWarning, match="edge of bounds"):
        ts = TemperatureScaling(bounds=(0.01, 100)).fit([1.0, 2.0, -1.0, -3.0], [1, 1, 0, 0])
    assert ts.at_bound_ and ts.temperature_ < 0.02


def test_platt_recovers_position_bias_and_beats_temperature():
    # a position bias: the first-listed response wins more often than the margin says
    rng = np.random.default_rng(23)
    m = rng.normal(0, 3, 16000)
    y = (rng.random(m.size) < expit(0.5 * m + 0.8)).astype(float)
    platt = PlattScaling().fit(m[:8000], y[:8000])
    assert platt.a_ == pytest.approx(0.5, rel=0.1)
    assert platt.b_ == pytest.approx(0.8, abs=0.12)
    ts = TemperatureScaling().fit(m[:8000], y[:8000])
    ece = {
        name: expected_calibration_error(c.predict_proba(m[8000:]), y[8000:], 10)
        for name, c in (("platt", platt), ("temperature", ts))
    }
    assert ece["platt"] < expected_calibration_error(expit(m[8000:]), y[8000:], 10) / 3
    assert ece["platt"] < ece["temperature"]


def test_platt_intercept_near_zero_for_random_orientation_and_warns_on_chosen_first():
    m, y = _bt_data(6000, seed=24)
    platt = PlattScaling().fit(m, y)
    assert abs(platt.b_) < 0.1
    assert platt.temperature_ == pytest.approx(TemperatureScaling().fit(m, y).temperature_, rel=0.03)
    with pytest.warns(UserWarning, match="orient the pairs"):
        PlattScaling().fit(np.abs(m), np.ones_like(m))


def test_isotonic_is_antisymmetric_orientation_free_and_reduces_ece():
    # non-logistic miscalibration: true P = 0.5 + 0.4 tanh(m / 3), RM says sigmoid(m)
    rng = np.random.default_rng(25)
    m = rng.normal(0, 3, 12000)
    y = (rng.random(m.size) < 0.5 + 0.4 * np.tanh(m / 3)).astype(float)
    iso = IsotonicCalibration().fit(m[:6000], y[:6000])
    grid = np.linspace(-15, 15, 3001)
    np.testing.assert_allclose(iso.predict_proba(-grid), 1 - iso.predict_proba(grid), atol=1e-12)
    chosen_first = IsotonicCalibration().fit(np.where(y[:6000] == 1, m[:6000], -m[:6000]), np.ones(6000))
    np.testing.assert_allclose(chosen_first.predict_proba(grid), iso.predict_proba(grid), atol=1e-12)
    before = expected_calibration_error(expit(m[6000:]), y[6000:], 10)
    after = expected_calibration_error(iso.predict_proba(m[6000:]), y[6000:], 10)
    assert after < before / 3


def test_calibrators_not_fitted():
    for cal in (TemperatureScaling(), PlattScaling(), IsotonicCalibration()):
        with pytest.raises(NotFittedError):
            cal.predict_proba([0.0, 1.0])


def test_fit_calibrators_comparison():
    m, y = _bt_data(8000, seed=26)
    comp = fit_calibrators(
        m, y, test_size=0.25, seed=3, methods=("temperature", "platt", "isotonic", TemperatureScaling(bounds=(0.1, 10)))
    )
    assert comp.n_fit == 6000 and comp.n_test == 2000
    assert set(comp.calibrators) == {"temperature", "platt", "isotonic", "TemperatureScaling"}
    df = comp.to_frame()
    assert list(df.columns) == ["method", "metric", "before", "after", "change"]
    ece = df[df["metric"] == "ece_uniform"].set_index("method")
    assert (ece["after"] < ece["before"] / 2).all()
    acc = df[(df["metric"] == "accuracy") & (df["method"] == "temperature")].iloc[0]
    assert acc["after"] == acc["before"]
    nll = df[df["metric"] == "nll"].set_index("method")
    assert (nll["change"] < 0).all()
    # the held-out "before" numbers are those of the raw model on the test split
    assert comp.before["brier"] == pytest.approx(brier_score(expit(comp.test_margin), comp.test_label))
    assert comp.calibrators["temperature"].temperature_ == pytest.approx(2.5, rel=0.1)


def test_fit_calibrators_validation():
    m, y = _bt_data(100, seed=27)
    with pytest.raises(ValueError, match="`test_size`"):
        fit_calibrators(m, y, test_size=1.5)
    with pytest.raises(ValueError, match="unknown method 'beta'"):
        fit_calibrators(m, y, methods=("beta",))


def _fit_t_scipy(m, y):
    """NLL-optimal temperature by an independent bounded search with scipy."""
    from scipy.optimize import minimize_scalar
    from scipy.special import log_expit

    nll = lambda lt: -np.mean(y * log_expit(m / np.exp(lt)) + (1 - y) * log_expit(-m / np.exp(lt)))  # noqa: E731
    return float(np.exp(minimize_scalar(nll, bounds=(-6, 6), method="bounded", options={"xatol": 1e-10}).x))


@pytest.mark.parametrize("orientation", ["both", "random"])
def test_cross_fit_is_grouped_out_of_fold_and_matches_sklearn_groupkfold(orientation):
    from sklearn.model_selection import GroupKFold

    m, y = _bt_data(600, seed=40)
    groups = np.repeat(np.arange(120), 5)  # 120 prompts with 5 pairs each
    comp = cross_fit_calibrators(m, y, groups, n_folds=4, seed=2, orientation=orientation)
    assert comp.n_folds == 4 and comp.n_clusters == 120 and comp.n_test == 600 and comp.n_fit == 450
    mo, yo = (m, y) if orientation == "both" else orient_pairs(m, y, seed=2)
    oof = np.empty(600)
    for train, test in GroupKFold(n_splits=4).split(mo, yo, groups):
        assert not set(groups[train]) & set(groups[test])  # no prompt on both sides
        oof[test] = expit(mo[test] / _fit_t_scipy(mo[train], yo[train]))
    got = comp.oof["temperature"][:600]
    np.testing.assert_allclose(got, oof, rtol=1e-6)  # every pair predicted once, out of fold
    if orientation == "both":
        np.testing.assert_allclose(comp.oof["temperature"][600:], 1 - oof, rtol=1e-6)  # its mirrored row
        np.testing.assert_allclose(comp.oof["isotonic"][600:], 1 - comp.oof["isotonic"][:600], atol=1e-12)
        assert abs(comp.calibrators["platt"].b_) < 1e-6  # symmetrised: Platt is temperature scaling
        yt = np.concatenate([yo, 1 - yo])
        assert comp.after["temperature"]["nll"] == pytest.approx(
            log_loss(yt, np.concatenate([oof, 1 - oof]), labels=[0, 1]), rel=1e-6
        )
    else:
        assert comp.after["temperature"]["nll"] == pytest.approx(log_loss(yo, oof, labels=[0, 1]), rel=1e-6)
    # the full-data calibrator describes all pairs; the raw model is over-confident (scale 2.5)
    assert comp.calibrators["temperature"].temperature_ == pytest.approx(_fit_t_scipy(m, y), rel=1e-5)
    assert comp.after["temperature"]["ece_uniform"] < comp.before["ece_uniform"] / 2
    assert len(comp.fold_calibrators["platt"]) == 4
    with pytest.raises(ValueError, match="n_folds"):
        cross_fit_calibrators(m, y, groups, n_folds=1)
    with pytest.raises(ValueError, match="2 clusters"):
        cross_fit_calibrators(m, y, np.zeros(600))
    with pytest.raises(ValueError, match="one code per pair"):
        cross_fit_calibrators(m, y, groups[:10])


def test_ece_kernel_matches_netcal_and_resampled_rows():
    from netcal.metrics import ECE

    from workbench.audits.calibration.uncertainty import ece_design, ece_from_weights

    m, y = _bt_data(400, seed=41)
    p = expit(m)
    sym_p, sym_y = np.concatenate([p, 1 - p]), np.concatenate([y, 1 - y])
    for strategy in ("uniform", "quantile"):
        design = ece_design(p, 10, strategy, symmetric=True)
        got = ece_from_weights(design, (y - p)[:, None], np.ones((1, 400)))[0, 0]
        assert got == pytest.approx(expected_calibration_error(sym_p, sym_y, 10, strategy), abs=1e-12)
    design = ece_design(p, 10, "uniform", symmetric=True)
    assert ece_from_weights(design, (y - p)[:, None], np.ones((1, 400)))[0, 0] == pytest.approx(
        float(ECE(bins=10).measure(sym_p, sym_y.astype(int))), abs=1e-9
    )
    # integer weights = the ECE of the repeated rows (each pair's two orders repeated together)
    rng = np.random.default_rng(0)
    w = rng.integers(0, 4, (3, 400)).astype(float)
    got = ece_from_weights(design, (y - p)[:, None], w)[:, 0]
    for r in range(3):
        idx = np.repeat(np.arange(400), w[r].astype(int))
        want = expected_calibration_error(np.concatenate([p[idx], 1 - p[idx]]), np.concatenate([y[idx], 1 - y[idx]]))
        assert got[r] == pytest.approx(want, abs=1e-12)
    one = ece_design(p, 10, "uniform", symmetric=False)
    assert ece_from_weights(one, (y - p)[:, None], np.ones((1, 400)))[0, 0] == pytest.approx(
        expected_calibration_error(p, y), abs=1e-12
    )


def test_vectorised_temperature_matches_brent_on_weighted_rows():
    from workbench.audits.calibration.uncertainty import fit_inverse_temperature

    for scale, seed in [(0.4, 1), (1.0, 2), (2.5, 3), (6.0, 4)]:
        m, y = _bt_data(300, model_scale=scale, seed=seed)
        w = np.random.default_rng(seed).integers(0, 3, (4, 300)).astype(float)
        beta = fit_inverse_temperature(m, y, w)
        for r in range(4):
            idx = np.repeat(np.arange(300), w[r].astype(int))
            assert 1 / beta[r] == pytest.approx(TemperatureScaling().fit(m[idx], y[idx]).temperature_, rel=1e-6)
            assert 1 / beta[r] == pytest.approx(_fit_t_scipy(m[idx], y[idx]), rel=1e-5)
    # separable data runs to the bound instead of diverging
    assert fit_inverse_temperature(np.array([1.0, 2.0, -1.0]), np.array([1.0, 1.0, 0.0]), np.ones((1, 3)))[0] == 1e3


def test_calibration_uncertainty_null_excess_and_temperature():
    m, y = _bt_data(2000, model_scale=1.0, seed=42)  # calibrated
    u = calibration_uncertainty(m, y, n_boot=200, n_null=200, seed=5)
    sym = lambda a, b: (np.concatenate([a, 1 - a]), np.concatenate([b, 1 - b]))  # noqa: E731
    assert u.ece == pytest.approx(expected_calibration_error(*sym(expit(m), y)), abs=1e-12)
    # the null by an independent Monte Carlo (labels drawn from the model's own probabilities)
    rng = np.random.default_rng(99)
    p = expit(m)
    null = [expected_calibration_error(*sym(p, (rng.random(2000) < p).astype(float))) for _ in range(300)]
    assert u.ece_null_mean == pytest.approx(np.mean(null), abs=0.003)
    assert u.ece_null_q95 == pytest.approx(np.quantile(null, 0.95), abs=0.006)
    assert u.ece_excess == pytest.approx(u.ece - u.ece_null_mean)
    assert u.ece_excess_ci[0] < 0 < u.ece_excess_ci[1]  # no excess for a calibrated model
    assert u.temperature == pytest.approx(_fit_t_scipy(m, y), rel=1e-6)
    assert u.temperature_ci[0] < 1 < u.temperature_ci[1]
    assert u.n_clusters == 2000 and u.cluster_unit == "pair"
    # over-confident by 2.5: a clear excess, and T's interval excludes 1
    m2, y2 = _bt_data(2000, model_scale=2.5, seed=42)
    v = calibration_uncertainty(m2, y2, n_boot=200, n_null=50, seed=5)
    assert v.ece_excess_ci[0] > 0.05 and v.temperature_ci[0] > 2.0
    # same seed, same numbers
    again = calibration_uncertainty(m2, y2, n_boot=200, n_null=50, seed=5)
    assert again.to_dict() == v.to_dict()
    # the orientation changes the binned numbers but not T
    r = calibration_uncertainty(m2, y2, n_boot=0, n_null=20, seed=5, orientation="random")
    assert r.temperature == pytest.approx(v.temperature) and np.isnan(r.ece_excess_ci[0])
    assert r.ece == pytest.approx(expected_calibration_error(*_oriented(m2, y2, 5)), abs=1e-12)
    for kw, match in [(dict(n_null=1), "n_null"), (dict(clusters=[0, 1]), "one code per pair")]:
        with pytest.raises(ValueError, match=match):
            calibration_uncertainty(m2, y2, **kw)


def _oriented(m, y, seed):
    mo, yo = orient_pairs(m, y, seed=seed)
    return expit(mo), yo


def test_cluster_bootstrap_keeps_clusters_whole():
    """Each pair copied 4 times in one cluster gives exactly the intervals of the pairs alone."""
    m, y = _bt_data(150, model_scale=1.8, seed=43)
    a = calibration_uncertainty(m, y, np.arange(150), n_boot=100, n_null=20, seed=1)
    b = calibration_uncertainty(np.tile(m, 4), np.tile(y, 4), np.tile(np.arange(150), 4), n_boot=100, n_null=20, seed=1)
    assert b.n_pairs == 600 and b.n_clusters == 150
    assert b.temperature_ci == pytest.approx(a.temperature_ci, rel=1e-9)
    assert b.ece == pytest.approx(a.ece)
    # treating the copies as independent pairs narrows the interval (the bug this guards against)
    c = calibration_uncertainty(np.tile(m, 4), np.tile(y, 4), None, n_boot=100, n_null=20, seed=1)
    assert (c.temperature_ci[1] - c.temperature_ci[0]) < 0.7 * (b.temperature_ci[1] - b.temperature_ci[0])


def test_pair_clusters_from_scores_and_data():
    scores = pd.DataFrame({"id": ["a", "b", "c", "d"], "margin": [1.0, 2, 3, 4], "label": [1.0] * 4})
    data = pd.DataFrame(
        {
            "id": ["d", "c", "b", "a"],
            "prompt": ["Why?", "How", "how ", "why?"],
            "chosen": ["xx", "x", "y", "yyy"],
            "rejected": ["z", "z", "z", "z"],
        }
    )
    codes, unit = pair_clusters(scores, data)
    assert unit == "prompt" and codes.tolist() == [0, 1, 1, 0]  # matched on id, normalised prompt text
    assert join_pair_data(scores, data)["chosen"].tolist() == ["yyy", "y", "x", "xx"]
    codes, unit = pair_clusters(scores.assign(topic_id=["t1", "t2", "t1", "t1"]), data)
    assert unit == "topic_id" and codes.tolist() == [0, 1, 0, 0]
    with pytest.warns(UserWarning, match="independent"):
        codes, unit = pair_clusters(scores)
    assert unit == "pair" and codes.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="scored"):
        pair_clusters(scores.drop(columns="id"), data.iloc[:3])


# ---------------------------------------------------------------------------
# displays
# ---------------------------------------------------------------------------


def test_reliability_display_artists():
    rng = np.random.default_rng(28)
    p = rng.uniform(0.3, 0.7, 500)
    y = (rng.random(500) < p).astype(float)
    disp = ReliabilityDisplay.from_predictions(p, y, n_bins=10, title="demo")
    table = binned_reliability(p, y, 10)
    n_nonempty = int((table["count"] > 0).sum())
    assert n_nonempty == 4
    assert len(disp.bars_.patches) == n_nonempty
    heights = [b.get_height() for b in disp.bars_.patches]
    assert heights == list(table.loc[table["count"] > 0, "count"])
    xs = disp.line_.lines[0].get_xdata()
    np.testing.assert_allclose(xs, table.loc[table["count"] > 0, "mean_confidence"])
    ece = expected_calibration_error(p, y, 10)
    legend = [t.get_text() for t in disp.ax_.get_legend().get_texts()]
    assert f"observed (ECE = {ece:.3f})" in legend
    assert "over-confident" in legend and "under-confident" in legend
    assert len(disp.regions_["over"]) == 2 and len(disp.regions_["under"]) == 2
    for coll in disp.regions_["over"] + disp.regions_["under"]:
        assert coll in disp.ax_.collections

    def shaded(kind, point):
        return any(c.get_paths()[0].contains_point(point) for c in disp.regions_[kind])

    # predicted .8, observed .3 (and mirrored .2 / .7) is over-confident; .8 / .95 is under-confident
    assert shaded("over", (0.8, 0.3)) and shaded("over", (0.2, 0.7))
    assert shaded("under", (0.8, 0.95)) and shaded("under", (0.2, 0.05))
    assert not shaded("under", (0.8, 0.3)) and not shaded("over", (0.8, 0.95))
    assert disp.ax_.get_title() == "demo"
    assert disp.hist_ax_ is not None and disp.hist_ax_ in disp.figure_.axes
    np.testing.assert_allclose(disp.diagonal_.get_xdata(), [0, 1])


def test_reliability_display_quantile_and_no_histogram():
    m, y = _bt_data(600, seed=29)
    disp = ReliabilityDisplay.from_predictions(expit(m), y, n_bins=6, strategy="quantile")
    assert len(disp.bars_.patches) == 6
    fig, ax = plt.subplots()
    d2 = ReliabilityDisplay(disp.table, ece=None, n_bins=6, strategy="quantile").plot(ax=ax, histogram=False)
    assert d2.bars_ is None and len(fig.axes) == 1
    with pytest.raises(ValueError, match="lacks column"):
        ReliabilityDisplay(pd.DataFrame({"count": [1]}))


def test_report_and_comparison_plots():
    m, y = _bt_data(3000, seed=30)
    rep = calibration_report(m, y, n_boot=0, n_bins=8)
    disp = rep.plot()
    assert len(disp.bars_.patches) == int((rep.reliability["count"] > 0).sum())
    assert "random orientation" in disp.ax_.get_title()
    comp = fit_calibrators(m, y, seed=1)
    fig = comp.plot()
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[0] == "uncalibrated (held-out)" and len(titles) == 4
    assert titles[1].startswith("temperature (T = ")
    assert len(fig.axes) == 8  # 4 diagrams + 4 count strips


def test_plot_reliability_comparison_side_by_side():
    m, y = _bt_data(800, seed=31)
    mo, yo = orient_pairs(m, y)
    d1 = ReliabilityDisplay(binned_reliability(expit(mo), yo), ece=0.1)
    d2 = ReliabilityDisplay(binned_reliability(expit(mo / 2.5), yo), ece=0.01)
    fig = plot_reliability_comparison([d1, d2], ["raw", "T = 2.5"])
    assert d1.ax_.get_title() == "raw" and d2.ax_.get_title() == "T = 2.5"
    assert d1.ax_.figure is fig and d2.ax_.figure is fig
    x0, x1 = d1.ax_.get_position().x0, d2.ax_.get_position().x0
    assert x1 > x0
    with pytest.raises(ValueError, match="`titles` has 1"):
        plot_reliability_comparison([d1, d2], ["only one"])


def test_temperature_slider_redraws():
    widgets = pytest.importorskip("ipywidgets")
    m, y = _bt_data(1500, seed=32)
    box = temperature_slider(m, y, n_bins=8, orientation="both")
    assert isinstance(box, widgets.VBox)
    slider, button, info, out = box.children
    assert isinstance(slider, widgets.FloatLogSlider) and isinstance(out, widgets.Output)
    assert box.display_.ax_.get_title() == "T = 1"
    ece1 = box.display_.ece
    slider.value = 2.5
    assert box.display_.ax_.get_title() == "T = 2.5"
    ms, ys = symmetrize(m, y)
    assert box.display_.ece == pytest.approx(expected_calibration_error(expit(ms / 2.5), ys, 8))
    assert box.display_.ece < ece1
    assert "ECE = " in info.value and "T = 2.5" in info.value
    button.click()
    assert slider.value == pytest.approx(TemperatureScaling().fit(m, y).temperature_, rel=0.02)


# ---------------------------------------------------------------------------
# package structure
# ---------------------------------------------------------------------------


def test_calibration_modules_import_one_way_and_at_top_level():
    """validation <- core <- metrics <- uncertainty <- display <- report / methods <- interactive <- audit."""
    import ast
    import importlib
    from pathlib import Path

    import workbench.audits.calibration as pkg

    order = ["validation", "core", "metrics", "uncertainty", "display", "report", "methods", "interactive", "audit"]
    root = Path(pkg.__file__).parent
    assert sorted(p.stem for p in root.glob("*.py") if p.stem != "__init__") == sorted(order)
    prefix = "workbench.audits.calibration."
    for name in order:
        tree = ast.parse((root / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("workbench"):
                assert node.col_offset == 0, f"{name}.py imports {node.module} inside a function"
                assert not any(a.name.startswith("_") for a in node.names), f"{name}.py imports a private name"
                if node.module.startswith(prefix):
                    dep = node.module[len(prefix) :]
                    assert order.index(dep) < order.index(name), f"{name}.py imports {dep}.py"
                assert node.module != "workbench.audits.calibration", f"{name}.py imports the package __init__"
    for name in pkg.__all__:
        assert getattr(pkg, name) is not None
    assert importlib.import_module("workbench.audits.overview").__all__ == ["OverviewResult", "overview"]
