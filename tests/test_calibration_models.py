"""Calibration audit on scored models (workbench.audits.calibration) and the label-smoothing effect.

* ``calibration_audit`` on pairs scored by a ``CallableRM`` reproduces the lower-level
  functions exactly and matches independent computations (numpy binning, sklearn's
  log_loss / brier_score_loss, pandas groupby).
* Verdict thresholds on synthetic margins with a known temperature.
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
    compare_audits,
    decision_boundary_report,
    fit_calibrators,
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
def toy_scores():
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
                "prompt": f"question {i}",
                "chosen": chosen,
                "rejected": rejected,
                "category": CATEGORIES[i % 3],
                "subset": "hard" if i % 4 == 0 else "standard",
            }
        )
    pairs = from_records(records, source="toy")
    rm = CallableRM(_length_and_vowels, name="toy-rm")
    return score_pairs(rm, pairs, cache=None, progress=False)


AUDIT_KW = dict(n_bins=8, strategy="uniform", orientation="random", seed=3, band=0.15, test_size=0.4)


@pytest.fixture(scope="module")
def toy_audit(toy_scores):
    return calibration_audit(toy_scores, n_boot=40, **AUDIT_KW)


def test_audit_reproduces_underlying_functions(toy_scores, toy_audit):
    m, y = toy_scores.margin, toy_scores.label
    a = toy_audit
    assert a.model_name == "toy-rm" and a.n_pairs == 240

    rep = calibration_report(m, y, n_bins=8, strategy="uniform", orientation="random", seed=3, n_boot=40)
    pd.testing.assert_frame_equal(a.report.to_frame(), rep.to_frame())
    pd.testing.assert_frame_equal(a.to_frame().iloc[: len(rep.to_frame())], rep.to_frame())

    bnd = decision_boundary_report(m, y, 0.15)
    assert a.boundary.n == bnd.n and a.boundary.metrics == pytest.approx(bnd.metrics, nan_ok=True)

    for col in ("category", "subset"):
        want = per_group_report(
            m, y, toy_scores.frame[col].to_numpy(), n_bins=8, strategy="uniform", orientation="random", seed=3
        )
        pd.testing.assert_frame_equal(a.by_group(col), want.rename(columns={"group": col}))

    cmp_ = fit_calibrators(m, y, test_size=0.4, seed=3, n_bins=8, strategy="uniform", orientation="random")
    assert a.temperature == pytest.approx(cmp_.calibrators["temperature"].temperature_, rel=1e-12)
    pd.testing.assert_frame_equal(a.comparison.to_frame(), cmp_.to_frame())
    assert a.params["methods"] == ["temperature", "platt", "isotonic"]


def test_audit_matches_independent_computations(toy_scores, toy_audit):
    m, y = toy_scores.margin, toy_scores.label
    a, s = toy_audit, toy_audit.summary()
    assert np.all(y == 1.0)  # chosen-first data: labels are all 1 before orientation
    assert s["accuracy"] == pytest.approx(np.mean(m[m != 0] > 0))
    assert s["mean_reward_gap"] == pytest.approx(m.mean())
    assert s["nll"] == pytest.approx(log_loss(y, expit(m), labels=[0, 1]), rel=1e-9)
    assert s["mean_abs_margin"] == pytest.approx(np.abs(m).mean())

    # ECE / Brier on the seeded random orientation, binned by hand with numpy
    mo, yo = orient_pairs(m, y, seed=3)
    assert 0.2 < yo.mean() < 0.8  # the flips really happened
    p = expit(mo)
    idx = np.clip(np.ceil(p * 8).astype(int) - 1, 0, 7)  # right-closed equal-width bins
    ece = sum(abs(yo[idx == k].sum() - p[idx == k].sum()) for k in range(8)) / p.size
    assert s["ece"] == pytest.approx(ece, abs=1e-12)
    assert s["brier"] == pytest.approx(brier_score_loss(yo, p), rel=1e-12)

    # held-out NLL before / after temperature scaling, recomputed with sklearn
    tm, tl = a.comparison.test_margin, a.comparison.test_label
    assert tm.size == round(0.4 * 240) == a.comparison.n_test
    assert s["heldout_nll_before"] == pytest.approx(log_loss(tl, expit(tm), labels=[0, 1]), rel=1e-9)
    assert s["heldout_nll_after_temperature"] == pytest.approx(
        log_loss(tl, expit(tm / s["temperature"]), labels=[0, 1]), rel=1e-9
    )

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
    assert np.isfinite(frame.loc["ece_uniform", "ci_low"])  # bootstrap CIs present
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
    with pytest.raises(ValueError, match="test_size"):
        calibration_audit(toy_scores, test_size=1.5, n_boot=0)
    # chosen/rejected scores are enough; all-missing group columns are skipped, partial ones filled
    f = toy_scores.to_frame().drop(columns="margin")
    f["subset"] = None
    f.loc[:9, "category"] = None
    a = calibration_audit(f, n_boot=0, name="named")
    assert a.model_name == "named" and set(a.groups) == {"category"}
    assert a.by_group("category").set_index("category").loc["(missing)", "n"] == 10


# ---------------------------------------------------------------------------
# verdicts
# ---------------------------------------------------------------------------


def _synthetic(scale: float, n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Pairs whose true log-odds is ``z``; the RM reports ``scale * z`` (fitted T should be ~ scale)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.0, n)
    label = (rng.random(n) < expit(z)).astype(float)
    return pd.DataFrame({"margin": scale * z, "label": label})


@pytest.fixture(scope="module")
def synthetic_audits():
    return {s: calibration_audit(_synthetic(s), n_boot=0, seed=1) for s in (1.0, 3.0, 0.3)}


def test_verdicts_known_temperatures(synthetic_audits):
    good, over, under = (synthetic_audits[s] for s in (1.0, 3.0, 0.3))
    assert good.temperature == pytest.approx(1.0, abs=0.15)
    assert over.temperature == pytest.approx(3.0, rel=0.15)
    assert under.temperature == pytest.approx(0.3, rel=0.15)

    v = good.verdicts_frame().set_index("check")
    assert list(good.verdicts_frame().columns) == VERDICT_COLUMNS
    assert v.index.tolist() == ["ece", "temperature", "ece_after_temperature"]
    assert v["verdict"].tolist() == ["pass", "pass", "pass"]

    v = over.verdicts_frame().set_index("check")
    assert v.loc["ece", "verdict"] == "fail" and v.loc["temperature", "verdict"] == "fail"
    assert v.loc["ece_after_temperature", "verdict"] == "pass"  # one scale factor fixes it
    assert v.loc["temperature", "detail"].startswith("over-confident")
    assert v.loc["ece", "value"] == over.ece and v.loc["temperature", "value"] == over.temperature

    v = under.verdicts_frame().set_index("check")
    assert v.loc["temperature", "verdict"] == "fail"
    assert v.loc["temperature", "detail"].startswith("under-confident")


def test_verdict_thresholds_are_parameters_and_strict(synthetic_audits):
    a = synthetic_audits[3.0]
    ece, t = a.ece, a.temperature
    grade = lambda **kw: a.verdicts_frame(**kw).set_index("check")["verdict"]  # noqa: E731
    assert grade(ece_warn=ece - 1e-9, ece_fail=ece + 1e-9)["ece"] == "warn"
    assert grade(ece_warn=ece, ece_fail=ece + 1e-9)["ece"] == "pass"  # equal does not trip
    assert grade(ece_warn=0.0, ece_fail=ece)["ece"] == "warn"
    assert grade(ece_warn=ece + 0.1, ece_fail=ece + 0.2)["ece"] == "pass"
    assert grade(temperature_warn=t - 0.01, temperature_fail=t + 0.01)["temperature"] == "warn"
    assert grade(temperature_warn=t + 0.01, temperature_fail=t + 0.02)["temperature"] == "pass"
    # T < 1 is graded on 1 / T
    u = synthetic_audits[0.3]
    inv = 1.0 / u.temperature
    assert (
        u.verdicts_frame(temperature_warn=inv - 0.01, temperature_fail=inv + 0.01)
        .set_index("check")
        .loc["temperature", "verdict"]
        == "warn"
    )
    thr = a.verdicts_frame(ece_warn=0.02, ece_fail=0.2).set_index("check").loc["ece", "threshold"]
    assert thr == "> 0.02 warn, > 0.2 fail"

    for kw, msg in [
        (dict(ece_warn=0.2, ece_fail=0.1), "ece_warn"),
        (dict(ece_warn=-1), "ece_warn"),
        (dict(temperature_warn=0.5), "temperature_warn"),
        (dict(temperature_warn=3, temperature_fail=2), "temperature_warn"),
    ]:
        with pytest.raises(ValueError, match=msg):
            a.verdicts(**kw)


def test_verdict_without_temperature_is_na():
    a = calibration_audit(_synthetic(1.0, n=400), n_boot=0, methods=("platt",))
    v = a.verdicts_frame().set_index("check")
    assert np.isnan(a.temperature)
    assert v.loc["temperature", "verdict"] == "n/a" and v.loc["ece_after_temperature", "verdict"] == "n/a"


def test_audit_result_contract_and_publish(synthetic_audits):
    from workbench.audits.result import AuditResult
    from workbench.reports.verdicts import Verdict, publish

    a = synthetic_audits[3.0]
    assert isinstance(a, AuditResult) and a.section == "calibration"
    verdicts = a.verdicts()
    assert all(isinstance(v, Verdict) and v.section == "calibration" for v in verdicts)
    frame = a.verdicts_frame()
    assert [v.check for v in verdicts] == frame["check"].tolist()
    assert [v.verdict for v in verdicts] == frame["verdict"].tolist()
    # the payload is the one the notebook published before verdicts() returned Verdict objects
    assert a.publish() == publish("calibration", frame, a.summary())
    twin = synthetic_audits[1.0]
    payload = a.publish(smoothed=twin, label_smoothing=0.1)
    want = dict(a.summary(), **{f"smoothed_{k}": v for k, v in twin.summary().items() if k != "n_pairs"})
    want["label_smoothing"] = 0.1
    assert payload == publish("calibration", frame, want)
    assert list(payload["metrics"])[-1] == "label_smoothing"


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
    assert names["model"] == "demo-biased" and names["data"] == "golden"
    for key, want in dict(
        sample_size=0,
        seed=0,
        n_bins=10,
        strategy="uniform",
        orientation="random",
        band=0.1,
        test_size=0.5,
        n_boot=1000,
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
        out[eps] = calibration_audit(score_pairs(rm, pairs, progress=False), n_boot=0, seed=0, test_size=0.2)
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
