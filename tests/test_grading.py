"""Interval grading: hand-worked cases for each verdict and direction, that a pass can fail, and family verdicts."""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pytest

from workbench.reports.grading import grade_interval, harm_interval
from workbench.reports.verdicts import Verdict, family_verdicts, graded_verdict, severity, worst


@pytest.mark.parametrize(
    ("est", "lo", "hi", "verdict"),
    [
        (0.02, -0.01, 0.05, "pass"),  # interval below warn 0.1
        (0.08, 0.01, 0.15, "inconclusive"),  # straddles warn
        (0.15, 0.12, 0.18, "warn"),  # above warn, below fail
        (0.25, 0.21, 0.30, "fail"),  # above fail
        (0.25, 0.05, 0.45, "warn"),  # point past fail, interval crossing both: warn, not fail
        (0.10, 0.05, 0.15, "inconclusive"),
    ],
)
def test_higher_is_worse(est, lo, hi, verdict):
    assert grade_interval(est, lo, hi, warn=0.1, fail=0.2).verdict == verdict


def test_lower_is_worse_uses_margins_in_the_estimates_units():
    # accuracy warns below 0.6, fails below 0.55
    assert grade_interval(0.80, 0.75, 0.85, warn=0.6, fail=0.55, direction="lower").verdict == "pass"
    assert grade_interval(0.58, 0.565, 0.595, warn=0.6, fail=0.55, direction="lower").verdict == "warn"
    assert grade_interval(0.50, 0.45, 0.54, warn=0.6, fail=0.55, direction="lower").verdict == "fail"
    assert grade_interval(0.62, 0.57, 0.67, warn=0.6, fail=0.55, direction="lower").verdict == "inconclusive"
    with pytest.raises(ValueError, match="fail <= warn"):
        grade_interval(0.6, 0.5, 0.7, warn=0.55, fail=0.6, direction="lower")


def test_two_sided_grades_the_size_of_the_effect():
    assert harm_interval(-0.15, -0.2, -0.1, "two-sided") == (0.15, 0.1, 0.2)
    assert harm_interval(0.01, -0.03, 0.05, "two-sided") == (0.01, 0.0, 0.05)
    assert grade_interval(-0.15, -0.18, -0.12, warn=0.1, fail=0.2, direction="two-sided").verdict == "warn"
    assert grade_interval(0.01, -0.03, 0.05, warn=0.1, fail=0.2, direction="two-sided").verdict == "pass"
    # one-sided: a strong effect in the harmless direction passes
    assert grade_interval(-0.3, -0.35, -0.25, warn=0.1, fail=0.2).verdict == "pass"


def test_missing_values_and_bad_arguments():
    assert grade_interval(math.nan, 0, 1, warn=0.1, fail=0.2).verdict == "n/a"
    assert grade_interval(np.float32(0.02), np.float32(0.0), np.float32(0.04), warn=0.1, fail=0.2).verdict == "pass"
    with pytest.raises(ValueError, match="direction"):
        grade_interval(0, 0, 0, warn=0.1, fail=0.2, direction="up")
    with pytest.raises(ValueError, match="warn <= fail"):
        grade_interval(0, 0, 0, warn=0.3, fail=0.2)
    with pytest.raises(ValueError, match="low"):
        grade_interval(0, 0.1, -0.1, warn=0.1, fail=0.2)


def test_clusters_needed_follows_the_square_root_law():
    # half-width 0.05 at 100 clusters; distance from warn 0.025 -> (0.05/0.025)^2 * 100 = 400
    g = grade_interval(0.075, 0.025, 0.125, warn=0.1, fail=0.2, n_clusters=100)
    assert g.verdict == "inconclusive" and g.clusters_needed == 400
    # simulate: with 400 clusters a normal-approximation interval around 0.075 no longer reaches 0.1
    rng = np.random.default_rng(0)
    sd = 0.05 / 1.96 * math.sqrt(100)  # per-cluster SD implied by the half-width
    x = rng.normal(0.075, sd, size=(2000, 400)).mean(axis=1)
    assert np.mean(x + 1.96 * sd / math.sqrt(400) < 0.1) == pytest.approx(0.5, abs=0.05)


# --- graded verdicts and family verdicts ---------------------------------------------------------


def test_graded_verdict_carries_the_contract_and_says_what_would_settle_it():
    v = graded_verdict(
        "features",
        "length vs annotators",
        0.075,
        0.025,
        0.125,
        warn=0.1,
        fail=0.2,
        direction="two-sided",
        n=500,
        n_clusters=100,
        cluster_unit="topic",
        family="length",
        sentence="The RM prefers the longer response 7.5 points more often than annotators do.",
    )
    assert v.verdict == "inconclusive" and v.clusters_needed == 400  # as in the square-root test above
    assert v.detail == "about 400 topics would settle it"
    assert (v.value, v.ci_low, v.ci_high, v.ci_level) == (0.075, 0.025, 0.125, 0.95)
    assert (v.direction, v.warn, v.fail, v.n, v.n_clusters, v.family, v.primary) == (
        "two-sided",
        0.1,
        0.2,
        500,
        100,
        "length",
        True,
    )
    assert v.threshold == "warn |x| > 0.1, fail |x| > 0.2 (95% interval)"
    settled = graded_verdict("features", "c", 0.02, 0.0, 0.04, warn=0.1, fail=0.2, n_clusters=100)
    assert settled.verdict == "pass" and settled.clusters_needed is None and settled.detail == ""


def test_family_verdict_is_the_worst_primary_check():
    def v(family, level, primary=True, section="s"):
        return Verdict(section, f"{family}-{level}", 0.0, "", level, family=family, primary=primary)

    checks = [
        v("length", "pass"),
        v("length", "fail", primary=False),  # shown, but does not decide the family
        v("agreement", "pass"),
        v("agreement", "inconclusive"),
        v("hedging", "n/a"),
        v("", "warn", section="overview"),  # no family: its section is its family
        v("only-descriptive", "fail", primary=False),
    ]
    assert family_verdicts(checks) == {
        "length": "pass",
        "agreement": "inconclusive",
        "hedging": "n/a",
        "overview": "warn",
    }
    assert family_verdicts([asdict(c) for c in checks]) == family_verdicts(checks)  # dict rows too
    assert [severity(x) for x in ("n/a", "pass", "inconclusive", "warn", "fail")] == [0, 1, 2, 3, 4]
    assert worst(["pass", "inconclusive"]) == "inconclusive" and worst(["inconclusive", "warn"]) == "warn"
    with pytest.raises(ValueError, match="verdict must be one of"):
        Verdict("s", "c", 0.0, "", "unsure")


def test_settle_text_gives_a_number_only_when_it_is_useful():
    from workbench.reports.verdicts import SETTLE_CAP, settle_text

    assert settle_text(120, 57, "topic") == "about 120 topics would settle it"
    assert settle_text(SETTLE_CAP * 57, 57, "topic") == "about 570 topics would settle it"
    capped = settle_text(15363, 57, "topic")
    assert "15363" not in capped and "more than 10x the current 57 topics" in capped
    assert settle_text(None, 57) == settle_text(0, 57) == ""
    assert settle_text(900, None, "prompt") == "about 900 prompts would settle it"
