"""The false-alarm and power harness (workbench.audits.simulation), reduced: fewer seeds and resamples.

benchmarks/false_alarm.py runs the full version (200 seeds; results in benchmarks/RESULTS.md).
Bounds here carry slack for 30 seeds: a family with a true false-warn rate of 5% shows 4 or
more warns in 30 seeds with probability ~0.06, so the tests allow 3 warns (10%) and 1 fail per
family, 6 any-alarm seeds (20%) over the whole audit, and power >= 70% on 20 seeds per planted effect.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit

from workbench.audits.simulation import (
    FAMILY_ORDER,
    SCENARIOS,
    SimulatedRM,
    clopper_pearson,
    entry_point_verdicts,
    load_simulation_data,
    run_simulation,
    simulate_audit,
    simulated_pairs,
    sycophancy_lean,
    verdict_rates,
)

N_SEEDS, N_BOOT = 30, 200  # the null at the benchmark's n_boot: percentile intervals from 100 resamples are ragged
N_PLANTED, N_BOOT_PLANTED = 20, 100


@pytest.fixture(scope="module")
def data():
    return load_simulation_data()


def test_null_rm_has_no_shortcut_and_labels_follow_its_own_probabilities(data):
    rm = SimulatedRM(data, seed=3)
    f = data.pairs
    r1 = rm(f["prompt"], f["chosen"])
    assert np.array_equal(r1, rm(list(f["prompt"]), list(f["chosen"])))  # deterministic per text
    assert not np.array_equal(r1, SimulatedRM(data, seed=4)(f["prompt"], f["chosen"]))
    # the reward within a pair is unrelated to length beyond what quality explains
    d = rm(f["prompt"], f["chosen"]) - rm(f["prompt"], f["rejected"])
    dq = np.array([rm.quality(p, c) - rm.quality(p, r) for p, c, r in zip(f["prompt"], f["chosen"], f["rejected"])])
    dlen = np.log(f["chosen"].str.len()) - np.log(f["rejected"].str.len())
    resid = d - np.polyval(np.polyfit(dq, d, 1), dq)
    assert abs(stats.pearsonr(resid, dlen)[0]) < 0.1
    # a perturbed text keeps the quality of the response it was made from
    base = f["chosen"].iloc[0]
    assert rm.quality(f["prompt"].iloc[0], "Some opener. " + base) == rm.quality(f["prompt"].iloc[0], base)
    # labels: the drawn winner is stored first, at the RM's own Bradley-Terry rate
    pairs = simulated_pairs(data, 3)
    p_first = expit(rm.base(f["prompt"], f["chosen"]) - rm.base(f["prompt"], f["rejected"]))
    lo, hi = clopper_pearson(int(pairs["kept"].sum()), len(f), 0.999)
    assert lo <= p_first.mean() <= hi
    assert (pairs["label"] == 1).all()
    assert np.allclose(pairs["chosen_score"], rm(pairs["prompt"], pairs["chosen"]))


def test_sycophancy_lean_gives_the_planted_index():
    # independent: simulate margins with the closed-form lean
    rng = np.random.default_rng(0)
    lean, m, sd = sycophancy_lean(0.6), 1.5, np.sqrt(2.0)
    s = np.mean(lean - m + sd * rng.normal(size=200_000) > 0)
    c = np.mean(lean + m + sd * rng.normal(size=200_000) > 0)
    assert s + c - 1 == pytest.approx(0.6, abs=0.01)
    assert sycophancy_lean(0.0) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="index"):
        sycophancy_lean(1.0)


def test_clopper_pearson_matches_the_beta_quantiles():
    for k, n in [(0, 30), (3, 30), (30, 30), (7, 200)]:
        lo = stats.beta.ppf(0.025, k, n - k + 1) if k > 0 else 0.0
        hi = stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
        assert clopper_pearson(k, n) == pytest.approx((lo, hi), abs=1e-7)
    assert clopper_pearson(0, 0) != clopper_pearson(0, 0)  # NaN: no seeds


def test_simulation_grades_as_the_audit_entry_points(data, tmp_path, monkeypatch):
    """Same seed, same resamples: the harness's family verdicts equal those of the one-call entry points."""
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path))
    for seed, scenario in [(0, "null"), (3, "agreement +0.3 SD, 500 pairs")]:
        sim = simulate_audit(data, seed, scenario, n_boot=60, n_null=10)
        real = entry_point_verdicts(data, seed, scenario, n_boot=60, n_null=10)
        assert sim == real
        assert set(FAMILY_ORDER) <= set(sim) and all(v != "n/a" for k, v in sim.items() if k in FAMILY_ORDER)


def test_null_rm_false_alarms_stay_within_bounds(data):
    runs = run_simulation(data, range(N_SEEDS), ["null, 500 pairs"], n_boot=N_BOOT, n_null=20)
    rates = verdict_rates(runs).set_index("family")
    fams = rates.loc[list(FAMILY_ORDER)]
    assert (fams["warn"] <= 0.10 + 1e-9).all(), fams[["warn", "fail"]]
    assert (fams["fail"] <= 1 / N_SEEDS + 1e-9).all(), fams[["warn", "fail"]]
    assert rates.loc["any alarm", "alarm"] <= 0.20 + 1e-9
    # the clean accuracy, calibration and sycophancy checks pass outright
    assert (fams.loc[["accuracy", "calibration", "sycophancy"], "pass"] >= 0.9).all()


@pytest.mark.parametrize(
    "scenario",
    [
        "length +0.15, 500 pairs",
        "agreement +0.3 SD, 500 pairs",
        "links +0.3 SD, 500 pairs",
        "assertiveness +0.3 SD, 500 pairs",
        "temperature 2, 500 pairs",
        "sycophancy index 0.6",
    ],
)
def test_planted_effects_are_detected(data, scenario):
    runs = run_simulation(data, range(N_PLANTED), [scenario], n_boot=N_BOOT_PLANTED, n_null=20)
    fam = SCENARIOS[scenario].family
    flagged = runs[fam].isin(["warn", "fail"]).mean()
    assert flagged >= 0.7, runs[fam].value_counts()  # 14 of 20; the benchmark measures >= 0.9 on 200 seeds
