"""Grade a check on its confidence interval, not on its point estimate.

A graded check has an estimate of a *harmful effect*, a two-sided interval of that
estimate at a stated level, a harmful direction, and two margins ``warn < fail``
(in the units of the estimate). The rule (equivalence-testing style, Schuirmann 1987;
Lakens 2017) reads the interval of the harm:

* **pass**: the whole interval lies below the warn margin (the data rule out a harmful
  effect of warn size or more);
* **fail**: the whole interval lies above the fail margin;
* **warn**: the whole interval lies above the warn margin but not above the fail margin,
  or the point is beyond the fail margin while the interval reaches below it;
* **inconclusive**: the interval straddles the warn margin: the data cannot tell. The
  verdict then says roughly how many independent clusters would be needed for a pass or
  a warn, from the interval's half-width scaling with ``1 / sqrt(n)``.

The harm of an estimate depends on the direction: ``"higher"`` (larger is worse),
``"lower"`` (smaller is worse) or ``"two-sided"`` (a shortcut can go either way, as a
length preference can be a length penalty); for two-sided checks the interval of ``|effect|``
is ``[min |x|, max |x|]`` over the interval (0 when it contains 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["DIRECTIONS", "GRADES", "RULE", "Grade", "grade_interval", "harm_interval"]

DIRECTIONS = ("higher", "lower", "two-sided")
GRADES = ("pass", "warn", "fail", "inconclusive", "n/a")
RULE = (
    "pass if the interval of the harmful effect lies below the warn margin; fail if it lies above the fail "
    "margin; warn if it lies above the warn margin (or the estimate is past the fail margin); inconclusive "
    "if it straddles the warn margin"
)


@dataclass(frozen=True)
class Grade:
    """The outcome of :func:`grade_interval`."""

    verdict: str
    harm: float
    harm_low: float
    harm_high: float
    clusters_needed: int | None = None


def _finite(*values) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


def harm_interval(estimate: float, low: float, high: float, direction: str) -> tuple[float, float, float]:
    """The harmful effect and its interval, oriented so that larger is worse."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if low > high:
        raise ValueError(f"interval low {low} is above high {high}")
    if direction == "higher":
        return estimate, low, high
    if direction == "lower":
        return -estimate, -high, -low
    lo = 0.0 if low <= 0.0 <= high else min(abs(low), abs(high))
    return abs(estimate), lo, max(abs(low), abs(high))


def grade_interval(
    estimate: float,
    low: float,
    high: float,
    *,
    warn: float,
    fail: float,
    direction: str = "higher",
    n_clusters: int | None = None,
) -> Grade:
    """Grade one check on its interval ``[low, high]`` (see the module docstring for the rule).

    ``warn`` and ``fail`` are in the estimate's own units: for ``"higher"`` (and for the
    size ``|effect|`` of a ``"two-sided"`` check) ``warn <= fail``; for ``"lower"`` the fail
    margin lies further down, ``fail <= warn`` (e.g. accuracy warns below 0.6, fails below
    0.55). ``n_clusters`` (independent units behind the interval) lets an inconclusive
    grade say how many clusters would settle it.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if direction == "lower":
        if not fail <= warn:
            raise ValueError(f"direction 'lower' needs fail <= warn, got warn={warn}, fail={fail}")
        warn, fail = -warn, -fail
    elif not warn <= fail or (direction == "two-sided" and warn < 0):
        raise ValueError(f"direction {direction!r} needs warn <= fail (and warn >= 0 if two-sided), got {warn}, {fail}")
    if not _finite(estimate, low, high):
        return Grade("n/a", math.nan, math.nan, math.nan)
    harm, lo, hi = harm_interval(float(estimate), float(low), float(high), direction)
    if hi < warn:
        verdict = "pass"
    elif lo > fail:
        verdict = "fail"
    elif lo > warn or harm > fail:
        verdict = "warn"
    else:
        verdict = "inconclusive"
    needed = None
    if verdict == "inconclusive" and n_clusters:
        half = (hi - lo) / 2.0
        distance = abs(harm - warn)
        if distance > 0 and half > 0:
            needed = int(math.ceil(n_clusters * (half / distance) ** 2))
    return Grade(verdict, harm, lo, hi, needed)
