"""Calibration audit on scored models (workbench.audits.calibration) and the label-smoothing effect.

* ``calibration_audit`` on pairs scored by a ``CallableRM`` reproduces the lower-level
  functions exactly and matches independent computations (numpy binning, sklearn's
  log_loss / brier_score_loss / GroupKFold, pandas groupby).
* Verdicts graded on intervals on synthetic margins with a known temperature: pass, warn,
  fail, inconclusive and n/a.
* Simulation at the shipped sizes (235 pairs, one per prompt; 500 pairs in 57 topics):
  false alarms of a perfectly calibrated RM and the power against a temperature of 2.
* Label smoothing on the real demo RM (trained once per module, demo-clean, eps = 0.1)
  shrinks the margins and lowers the fitted temperature.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy.optimize import minimize_scalar  # noqa: E402
from scipy.special import expit, log_expit  # noqa: E402
from sklearn.metrics import brier_score_loss, log_loss  # noqa: E402

from workbench.audits.calibration import (  # noqa: E402
    VERDICT_COLUMNS,
    calibration_audit,
    calibration_report,
    calibration_uncertainty,
    compare_audits,
    cross_fit_calibrators,
    decision_boundary_report,
    interactive_frontend,
    orient_pairs,
    per_group_report,
    plot_audits,
)
from workbench.data.preferences import from_records  # noqa: E402
from workbench.data.shipped import load_data  # noqa: E402
from workbench.models.adapters import CallableRM  # noqa: E402
from workbench.models.scoring import score_pairs  # noqa: E402

# ---------------------------------------------------------------------------
# a CallableRM-scored set
# ---------------------------------------------------------------------------

CATEGORIES = ["math", "coding", "advice"]
LIKED = np.array([1, 1, 1, 2, 3, 3, 2, 1, 0.5]) / 14.5


def _length_and_vowels(prompts, responses):
    """A deterministic toy RM: longer responses with more 'e's score higher."""
    return [0.02 * len(r) + 0.3 * r.count("e") - 0.1 * r.count("!") for r in responses]


@pytest.fixture(scope="module")
def toy_pairs():
    rng = np.random.default_rng(7)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "!"]
    records = []
    for i in range(240):
        # chosen responses lean towards words the toy RM likes, so the margins carry signal
        chosen = " ".join(rng.choice(words, rng.integers(2, 12), p=LIKED))
        rejected = " ".join(rng.choice(words, rng.integers(2, 12)))
        records.append(
            {
                "id": f"p{i}",
                "prompt": f"Question {i // 3}" if i % 2 else f"question  {i // 3}",  # 80 prompts, 3 pairs each
                "chosen": chosen,
                "rejected": rejected,
                "category": CATEGORIES[i % 3],
                "subset": "hard" if i % 4 == 0 else "standard",
            }
        )
    return from_records(records, source="toy")


@pytest.fixture(scope="module")
def toy_scores(toy_pairs):
    rm = CallableRM(_length_and_vowels, name="toy-rm")
    return score_pairs(rm, toy_pairs, cache=None, progress=False)


AUDIT_KW = dict(n_bins=8, strategy="uniform", orientation="random", seed=3, band=0.15, n_folds=4)
PROMPT_CODES = np.repeat(np.arange(80), 3)


@pytest.fixture(scope="module")
def toy_audit(toy_scores, toy_pairs):
    return calibration_audit(toy_scores, data=toy_pairs, n_boot=40, n_null=30, **AUDIT_KW)


def test_audit_reproduces_underlying_functions(toy_scores, toy_audit):
    m, y = toy_scores.margin, toy_scores.label
    a = toy_audit
    assert a.model_name == "toy-rm" and a.n_pairs == 240
    assert a.cluster_unit == "prompt" and a.n_clusters == 80  # normalised prompt text: case and spaces folded
    np.testing.assert_array_equal(a.clusters, PROMPT_CODES)

    kw = dict(n_bins=8, strategy="uniform", orientation="random", seed=3)
    rep = calibration_report(m, y, n_boot=40, clusters=PROMPT_CODES, **kw)
    pd.testing.assert_frame_equal(a.report.to_frame(), rep.to_frame())
    table = a.to_frame().iloc[: len(rep.to_frame())]
    pd.testing.assert_series_equal(table["value"], rep.to_frame()["value"])
    biased = table["metric"].isin(["ece_uniform", "ece_quantile", "mce", "top_label_ece", "brier_reliability"])
    assert table.loc[biased, "ci_low"].isna().all() and table.loc[~biased, "ci_low"].notna().all()

    u = calibration_uncertainty(m, y, PROMPT_CODES, n_boot=40, n_null=30, cluster_unit="prompt", **kw)
    assert a.uncertainty.to_dict() == u.to_dict()

    bnd = decision_boundary_report(m, y, 0.15)
    assert a.boundary.n == bnd.n and a.boundary.metrics == pytest.approx(bnd.metrics, nan_ok=True)

    for col in ("category", "subset"):
        want = per_group_report(
            m, y, toy_scores.frame[col].to_numpy(), n_bins=8, strategy="uniform", orientation="random", seed=3
        )
        pd.testing.assert_frame_equal(a.by_group(col), want.rename(columns={"group": col}))

    cmp_ = cross_fit_calibrators(m, y, PROMPT_CODES, n_folds=4, **kw)
    assert a.temperature == pytest.approx(cmp_.calibrators["temperature"].temperature_, rel=1e-6)
    pd.testing.assert_frame_equal(a.comparison.to_frame(), cmp_.to_frame())
    assert a.params["methods"] == ["temperature", "platt", "isotonic"] and a.params["n_folds"] == 4


def test_audit_matches_independent_computations(toy_scores, toy_audit):
    from sklearn.model_selection import GroupKFold

    m, y = toy_scores.margin, toy_scores.label
    a, s = toy_audit, toy_audit.summary()
    assert np.all(y == 1.0)  # chosen-first data: labels are all 1 before orientation
    assert s["accuracy"] == pytest.approx(np.mean(m[m != 0] > 0))
    assert s["mean_reward_gap"] == pytest.approx(m.mean())
    assert s["nll"] == pytest.approx(log_loss(y, expit(m), labels=[0, 1]), rel=1e-9)
    assert s["mean_abs_margin"] == pytest.approx(np.abs(m).mean())
    assert s["n_clusters"] == 80

    # ECE / Brier on the seeded random orientation, binned by hand with numpy
    mo, yo = orient_pairs(m, y, seed=3)
    assert 0.2 < yo.mean() < 0.8  # the flips really happened
    p = expit(mo)
    idx = np.clip(np.ceil(p * 8).astype(int) - 1, 0, 7)  # right-closed equal-width bins
    ece = sum(abs(yo[idx == k].sum() - p[idx == k].sum()) for k in range(8)) / p.size
    assert s["ece"] == pytest.approx(ece, abs=1e-12)
    assert s["brier"] == pytest.approx(brier_score_loss(yo, p), rel=1e-12)
    assert s["ece_excess"] == pytest.approx(s["ece"] - s["ece_null"])

    # cross-fitted NLL before / after temperature scaling: sklearn GroupKFold by prompt, scipy fits
    def t_fit(mm, yy):
        nll = lambda lt: -np.mean(yy * log_expit(mm / np.exp(lt)) + (1 - yy) * log_expit(-mm / np.exp(lt)))  # noqa: E731
        return float(np.exp(minimize_scalar(nll, bounds=(-6, 6), method="bounded", options={"xatol": 1e-10}).x))

    oof = np.empty(240)
    for train, test in GroupKFold(n_splits=4).split(mo, yo, PROMPT_CODES):
        oof[test] = expit(mo[test] / t_fit(mo[train], yo[train]))
    assert a.comparison.n_test == 240 and a.comparison.n_folds == 4
    assert s["heldout_nll_before"] == pytest.approx(log_loss(yo, expit(mo), labels=[0, 1]), rel=1e-9)
    assert s["heldout_nll_after_temperature"] == pytest.approx(log_loss(yo, oof, labels=[0, 1]), rel=1e-6)
    assert s["temperature"] == pytest.approx(t_fit(m, y), rel=1e-6)

    # per-category accuracy and decision-boundary count from pandas / numpy
    f = toy_scores.frame
    acc = f[f.margin != 0].groupby("category")["margin"].apply(lambda v: (v > 0).mean())
    got = a.by_group("category").set_index("category")["accuracy"]
    pd.testing.assert_series_equal(got.sort_index(), acc.sort_index(), check_names=False)
    assert a.boundary.n == int((np.abs(expit(m) - 0.5) <= 0.15).sum())


def test_audit_tables_and_figures(toy_audit):
    a = toy_audit
    cal = a.calibrators_frame()
    assert cal["method"].tolist() == ["uncalibrated", "temperature", "platt", "isotonic"]
    assert cal.loc[1, "parameters"] == f"T = {a.temperature:.4g}"
    assert cal.loc[1, "nll"] == pytest.approx(a.summary()["heldout_nll_after_temperature"])
    assert a.boundary_frame()["metric"].iloc[0] == "n"
    frame = a.to_frame().set_index("metric")
    assert frame.loc["temperature", "value"] == a.temperature
    assert frame.loc["temperature", "ci_low"] < a.temperature < frame.loc["temperature", "ci_high"]
    assert np.isfinite(frame.loc["accuracy", "ci_low"]) and np.isnan(frame.loc["ece_uniform", "ci_low"])
    for key in ("ece_null", "ece_null_q95", "ece_excess", "n_clusters"):
        assert np.isfinite(frame.loc[key, "value"])
    fig = a.plot()
    assert fig.axes and "toy-rm" in fig.axes[0].get_title()
    fig2 = a.plot_comparison()
    assert len([ax for ax in fig2.axes if ax.get_title()]) == 4
    with pytest.raises(KeyError, match="have"):
        a.by_group("nope")


def test_audit_input_validation(toy_scores):
    with pytest.raises(ValueError, match="pair_scores"):
        calibration_audit([1.0, 2.0])
    with pytest.raises(ValueError, match="label"):
        calibration_audit(pd.DataFrame({"margin": [1.0, -1.0]}))
    with pytest.raises(ValueError, match="band"):
        calibration_audit(toy_scores, band=0.7, n_boot=0)
    with pytest.raises(ValueError, match="n_folds"):
        calibration_audit(toy_scores, n_folds=1, n_boot=0)
    with pytest.raises(ValueError, match="cluster column 'nope'"):
        calibration_audit(toy_scores, cluster_column="nope", n_boot=0)
    # chosen/rejected scores are enough; all-missing group columns are skipped, partial ones filled
    f = toy_scores.to_frame().drop(columns="margin")
    f["subset"] = None
    f.loc[:9, "category"] = None
    with pytest.warns(UserWarning, match="independent"):  # no prompts: every pair its own cluster
        a = calibration_audit(f, n_boot=0, name="named")
    assert a.cluster_unit == "pair" and a.n_clusters == 240
    assert a.model_name == "named" and set(a.groups) == {"category"}
    assert a.by_group("category").set_index("category").loc["(missing)", "n"] == 10


# ---------------------------------------------------------------------------
# verdicts
# ---------------------------------------------------------------------------


def _synthetic(scale: float, n: int = 3000, seed: int = 0, prompts: int = 1000) -> pd.DataFrame:
    """Pairs whose true log-odds is ``z``; the RM reports ``scale * z`` (fitted T should be ~ scale)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, n)
    label = (rng.random(n) < expit(z)).astype(float)
    return pd.DataFrame({"margin": scale * z, "label": label, "prompt_id": np.arange(n) % prompts})


@pytest.fixture(scope="module")
def synthetic_audits():
    return {s: calibration_audit(_synthetic(s, n=2000), n_boot=100, n_null=30, seed=1) for s in (1.0, 3.0, 0.3, 1.7)}


def _grades(audit, **kw):
    return audit.verdicts_frame(**kw).set_index("check")


def test_verdicts_known_temperatures(synthetic_audits):
    good, over, under, mild = (synthetic_audits[s] for s in (1.0, 3.0, 0.3, 1.7))
    assert good.temperature == pytest.approx(1.0, abs=0.15)
    assert over.temperature == pytest.approx(3.0, rel=0.15)
    assert under.temperature == pytest.approx(0.3, rel=0.15)
    assert good.cluster_unit == "prompt" and good.n_clusters == 1000

    v = _grades(good)
    assert list(good.verdicts_frame().columns) == VERDICT_COLUMNS
    assert v.index.tolist() == ["ece_excess", "log_temperature"]
    assert v["verdict"].tolist() == ["pass", "pass"]
    assert all(
        x.family == "calibration" and x.primary and x.n == 2000 and x.n_clusters == 1000 for x in good.verdicts()
    )

    v = _grades(over)
    assert over.uncertainty.ece_excess_ci[0] > 0.075  # the whole interval past the warn margin
    assert v.loc["ece_excess", "verdict"] in ("warn", "fail") and v.loc["log_temperature", "verdict"] == "fail"
    assert "over-confident" in v.loc["log_temperature", "sentence"]
    assert v.loc["log_temperature", "value"] == pytest.approx(over.temperature)  # the table shows T itself
    lo, hi = over.uncertainty.temperature_ci
    assert (v.loc["log_temperature", "ci_low"], v.loc["log_temperature", "ci_high"]) == pytest.approx((lo, hi))
    assert v.loc["ece_excess", "value"] == pytest.approx(over.uncertainty.ece_excess, rel=1e-5)
    raw = {x.check: x for x in over.verdicts()}["log_temperature"]
    assert raw.value == pytest.approx(np.log(over.temperature)) and raw.direction == "two-sided"

    v = _grades(under)
    assert v.loc["log_temperature", "verdict"] == "fail" and "under-confident" in v.loc["log_temperature", "sentence"]

    # T = 1.7: interval straddles the warn margin 1.6 but not the fail margin -> warn or inconclusive
    t = mild.uncertainty.temperature_ci
    assert t[0] < 1.8 < t[1] or t[0] < 1.6 < t[1]
    assert _grades(mild).loc["log_temperature", "verdict"] in ("warn", "inconclusive")
    g = _grades(mild, temperature_warn=1.3, temperature_fail=3.0).loc["log_temperature", "verdict"]
    assert g == "warn"  # the interval lies above 1.3 and below 3


def test_verdict_margins_are_parameters(synthetic_audits):
    a = synthetic_audits[3.0]
    lo, hi = a.uncertainty.ece_excess_ci
    assert _grades(a, ece_warn=lo - 0.01, ece_fail=hi + 0.01).loc["ece_excess", "verdict"] == "warn"
    assert _grades(a, ece_warn=hi + 0.01, ece_fail=hi + 0.02).loc["ece_excess", "verdict"] == "pass"
    assert _grades(a, ece_warn=lo - 0.02, ece_fail=lo - 0.01).loc["ece_excess", "verdict"] == "fail"
    v = _grades(a, ece_warn=(lo + hi) / 2, ece_fail=hi + 0.1).loc["ece_excess"]
    assert v["verdict"] == "inconclusive" and "settle it" in v["detail"]
    tlo, thi = a.uncertainty.temperature_ci
    assert (
        _grades(a, temperature_warn=thi + 0.1, temperature_fail=thi + 0.2).loc["log_temperature", "verdict"] == "pass"
    )
    thr = _grades(a, ece_warn=0.02, ece_fail=0.2).loc["ece_excess", "threshold"]
    assert thr == "warn > 0.02, fail > 0.2 (95% interval)"
    for kw, msg in [
        (dict(ece_warn=0.2, ece_fail=0.1), "ece_warn"),
        (dict(ece_warn=-1), "ece_warn"),
        (dict(temperature_warn=0.5), "temperature_warn"),
        (dict(temperature_warn=3, temperature_fail=2), "temperature_warn"),
    ]:
        with pytest.raises(ValueError, match=msg):
            a.verdicts(**kw)


def test_verdicts_without_intervals_are_na():
    a = calibration_audit(_synthetic(1.0, n=400), n_boot=0, n_null=10)
    assert _grades(a)["verdict"].tolist() == ["n/a", "n/a"]
    assert np.isfinite(a.temperature) and np.isfinite(a.uncertainty.ece_excess)


def test_audit_result_contract_and_publish(synthetic_audits):
    from workbench.audits.result import AuditResult
    from workbench.reports.verdicts import Verdict, family_verdicts, publish

    a = synthetic_audits[3.0]
    assert isinstance(a, AuditResult) and a.section == "calibration"
    verdicts = a.verdicts()
    assert all(isinstance(v, Verdict) and v.section == "calibration" for v in verdicts)
    assert family_verdicts(verdicts) == {"calibration": "fail"}
    assert family_verdicts(synthetic_audits[1.0].verdicts()) == {"calibration": "pass"}
    frame = a.verdicts_frame()
    assert [v.check for v in verdicts] == frame["check"].tolist()
    assert [v.verdict for v in verdicts] == frame["verdict"].tolist()
    assert a.publish() == publish("calibration", verdicts, a.summary())
    s = a.summary()
    for key in ("ece", "ece_null", "ece_null_q95", "ece_excess", "ece_excess_ci_low", "ece_excess_ci_high"):
        assert np.isfinite(s[key])
    assert s["temperature_ci_low"] < s["temperature"] < s["temperature_ci_high"]
    assert s["accuracy_ci_low"] < s["accuracy"] < s["accuracy_ci_high"]
    twin = synthetic_audits[1.0]
    payload = a.publish(smoothed=twin, label_smoothing=0.1)
    want = dict(a.summary(), **{f"smoothed_{k}": v for k, v in twin.summary().items() if k != "n_pairs"})
    want["label_smoothing"] = 0.1
    assert payload == publish("calibration", verdicts, want)
    assert list(payload["metrics"])[-1] == "label_smoothing"


# ---------------------------------------------------------------------------
# false alarms and power at the shipped sizes
# ---------------------------------------------------------------------------


def _simulated_pairs(n: int, n_clusters: int, temperature: float, seed: int):
    """A Bradley-Terry RM whose true log-odds z vary in scale by topic; labels drawn from sigmoid(z).

    The RM reports ``temperature * z`` (1: perfectly calibrated), stored chosen-first.
    """
    rng = np.random.default_rng(seed)
    codes = np.sort(rng.integers(0, n_clusters, n)) if n_clusters < n else np.arange(n)
    z = rng.normal(0.0, 1.5, n) * np.exp(rng.normal(0.0, 0.4, n_clusters))[codes]
    y = rng.random(n) < expit(z)
    return np.where(y, temperature * z, -temperature * z), np.ones(n), codes


def _family_rates(n, n_clusters, temperature, seeds):
    from workbench.audits.calibration.audit import ECE_FAIL, ECE_WARN, TEMPERATURE_FAIL, TEMPERATURE_WARN
    from workbench.reports.grading import grade_interval
    from workbench.reports.verdicts import worst

    out = []
    for seed in seeds:
        m, y, codes = _simulated_pairs(n, n_clusters, temperature, seed)
        u = calibration_uncertainty(m, y, codes, n_boot=200, n_null=20, seed=seed)
        ece = grade_interval(u.ece_excess, *u.ece_excess_ci, warn=ECE_WARN, fail=ECE_FAIL).verdict
        t = grade_interval(
            *np.log([u.temperature, *u.temperature_ci]),
            warn=np.log(TEMPERATURE_WARN),
            fail=np.log(TEMPERATURE_FAIL),
            direction="two-sided",
        ).verdict
        out.append(worst([ece, t]))
    out = np.array(out)
    return {k: float(np.mean(out == k)) for k in ("pass", "inconclusive", "warn", "fail")}


def test_simulated_false_alarms_and_power_at_shipped_sizes():
    """100 seeds each (n_boot 200, 20 null draws): the rates the default margins were chosen for.

    Measured when the margins were set (seeds 0-99): calibrated RM at 500 pairs / 57 topics
    pass 0.99, inconclusive 0.01, warn 0, fail 0; at 235 pairs / 235 prompts pass ~0.68,
    inconclusive ~0.32, warn 0, fail 0; T = 2 at 500 pairs warn or fail ~0.90.
    """
    seeds = range(100)
    null500 = _family_rates(500, 57, 1.0, seeds)
    null235 = _family_rates(235, 235, 1.0, seeds)
    power500 = _family_rates(500, 57, 2.0, seeds)
    # a calibrated RM: no false warn or fail at either size
    assert null500["warn"] + null500["fail"] <= 0.05 and null500["fail"] <= 0.01
    assert null235["warn"] + null235["fail"] <= 0.05 and null235["fail"] <= 0.01
    assert null500["pass"] >= 0.95
    # at 235 pairs the temperature cannot be pinned to a factor 1.6: inconclusive, not a false alarm
    assert null235["pass"] >= 0.55
    # T = 2 is detected at 500 pairs
    assert power500["warn"] + power500["fail"] >= 0.80


def test_simulation_grades_as_the_audit_does():
    """The simulation above grades calibration_uncertainty as CalibrationAudit.verdicts() does."""
    from workbench.reports.verdicts import family_verdicts

    for temperature, seed in [(1.0, 3), (2.0, 4), (1.4, 5)]:
        m, y, codes = _simulated_pairs(500, 57, temperature, seed)
        audit = calibration_audit(
            pd.DataFrame({"margin": m, "label": y, "topic_id": codes}), n_boot=200, n_null=20, seed=seed
        )
        assert audit.cluster_unit == "topic" and audit.n_clusters == len(set(codes))
        rates = _family_rates(500, 57, temperature, [seed])
        assert rates[family_verdicts(audit.verdicts())["calibration"]] == 1.0


def test_compare_and_plot_audits(synthetic_audits):
    t = compare_audits({"x1": synthetic_audits[1.0], "x3": synthetic_audits[3.0]})
    assert t["model"].tolist() == ["x1", "x3"]
    assert t.loc[1, "temperature"] == synthetic_audits[3.0].temperature
    assert t.loc[1, "mean_abs_margin"] == pytest.approx(3 * t.loc[0, "mean_abs_margin"])
    fig = plot_audits({"x1": synthetic_audits[1.0], "x3": synthetic_audits[3.0]})
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles[0].startswith("x1") and titles[1].startswith("x3")
    with pytest.raises(ValueError, match="audits"):
        compare_audits({})


def test_interactive_frontend(monkeypatch):
    import IPython

    assert interactive_frontend() is False  # plain pytest process

    class Shell:
        kernel = object()

    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell())
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert interactive_frontend() is False  # a kernel without a Jupyter server (papermill)
    monkeypatch.setenv("JPY_SESSION_NAME", "/lab/01_calibration.ipynb")
    assert interactive_frontend() is True


def test_notebook_source_has_parameters():
    import ast
    import re
    from pathlib import Path

    source = (Path(__file__).resolve().parent.parent / "notebooks" / "01_calibration.py").read_text(encoding="utf-8")
    cells = re.split(r"^# %%", source, flags=re.M)
    params = [c.split("\n", 1)[1] for c in cells if c.split("\n", 1)[0].strip() == 'tags=["parameters"]']
    assert len(params) == 1
    names = {t.id: ast.literal_eval(node.value) for node in ast.parse(params[0]).body for t in node.targets}
    assert names["model"] == "demo-biased" and names["data"] == "demo-eval"  # in distribution for the demo RMs
    assert "test_size" not in names  # calibrators are cross-fitted over all pairs
    for key, want in dict(
        sample_size=0,
        seed=0,
        n_bins=10,
        strategy="uniform",
        orientation="both",
        band=0.1,
        n_folds=5,
        n_boot=1000,
        n_null=100,
        cluster_column=None,
        label_smoothing=0.1,
        compare_smoothing=True,
    ).items():
        assert names[key] == want


# ---------------------------------------------------------------------------
# label smoothing on the real demo RM
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smoothing_audits():
    """demo-clean with and without label smoothing (eps = 0.1) on 200 demo-eval pairs; trained once."""
    from workbench.models.demo import load_demo_model

    pairs = load_data("demo-eval").sample(200, seed=0)
    out = {}
    for eps in (0.0, 0.1):
        rm = load_demo_model("demo-clean", label_smoothing=eps)
        out[eps] = calibration_audit(score_pairs(rm, pairs, progress=False), data=pairs, n_boot=0, n_null=10, seed=0)
    return out


@pytest.mark.slow
def test_label_smoothing_shrinks_margins_and_temperature(smoothing_audits):
    raw, smooth = smoothing_audits[0.0].summary(), smoothing_audits[0.1].summary()
    assert smoothing_audits[0.1].model_name.endswith("-ls0.1")
    assert smooth["accuracy"] > 0.65 and raw["accuracy"] > 0.65  # both still rank far better than chance
    # smoothing caps the Bradley-Terry target at 0.9, so typical margins shrink
    assert smooth["median_abs_margin"] < 0.8 * raw["median_abs_margin"]
    assert smooth["mean_abs_margin"] < 0.8 * raw["mean_abs_margin"]
    # calibration changes measurably: the fitted temperature drops (margins less over-confident) ...
    assert smooth["temperature"] < 0.8 * raw["temperature"]

    # ... also when T is fitted independently on all pairs with scipy
    def t_opt(a):
        m, y = a.pairs["margin"].to_numpy(), a.pairs["label"].to_numpy()
        nll = lambda lt: -np.mean(y * log_expit(m / np.exp(lt)) + (1 - y) * log_expit(-m / np.exp(lt)))  # noqa: E731
        return float(np.exp(minimize_scalar(nll, bounds=(-5, 5), method="bounded").x))

    assert t_opt(smoothing_audits[0.1]) < 0.8 * t_opt(smoothing_audits[0.0])
