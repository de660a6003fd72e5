"""The overview audit (workbench.audits.overview): headline numbers, groups, figure, result contract."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from workbench.audits.calibration import bootstrap_ci, mean_reward_gap, pairwise_accuracy  # noqa: E402
from workbench.audits.overview import OverviewResult, overview  # noqa: E402
from workbench.audits.result import AuditResult  # noqa: E402


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    n = 300
    chosen = rng.normal(1.0, 1.0, n)
    rejected = rng.normal(0.0, 1.0, n)
    rejected[:5] = chosen[:5]  # RM ties
    label = np.ones(n)
    label[5:9] = 0.5  # human ties
    return pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(n)],
            "chosen_score": chosen,
            "rejected_score": rejected,
            "margin": chosen - rejected,
            "label": label,
            "category": np.array(["math", "code", "chat"])[np.arange(n) % 3],
            "chosen_truncated": np.arange(n) % 50 == 0,
            "rejected_truncated": np.arange(n) % 75 == 1,
        }
    )


@pytest.fixture(scope="module")
def result(frame):
    return overview(frame, n_skipped=2, n_boot=200, seed=1)


def test_overview_numbers(frame, result):
    m, y = frame["margin"].to_numpy(), frame["label"].to_numpy()
    acc = pairwise_accuracy(m, y)
    assert result.accuracy == acc.accuracy and result.tie_rate == acc.tie_rate
    assert result.n_label_ties == 4 and result.n_pairs == 300 and result.n_skipped == 2
    assert result.n_truncated == int((frame["chosen_truncated"] | frame["rejected_truncated"]).sum())
    assert result.mean_gap == pytest.approx(mean_reward_gap(m, y))
    want = bootstrap_ci(lambda a, b: pairwise_accuracy(a, b).accuracy, m, y, n_boot=200, seed=1)
    assert result.accuracy_ci == (want.low, want.high)
    assert result.accuracy_ci[0] < result.accuracy < result.accuracy_ci[1]
    table = result.to_frame()
    assert list(table.columns) == ["metric", "value", "ci_low", "ci_high"]
    assert table["value"].iloc[0] == result.accuracy


def test_overview_by_group(frame, result):
    groups = result.by_group("category").set_index("category")
    assert groups["n"].sum() == 300
    part = frame[frame["category"] == "math"]
    assert groups.loc["math", "accuracy"] == pairwise_accuracy(part["margin"], part["label"]).accuracy
    with pytest.raises(KeyError, match="no column"):
        result.by_group("subset")


def test_overview_result_contract(result):
    assert isinstance(result, AuditResult) and isinstance(result, OverviewResult)
    assert result.section == "overview" and result.verdicts() == []
    s = result.summary()
    assert s["accuracy"] == result.accuracy and s["n_pairs"] == 300
    assert all(isinstance(v, (int, float)) for v in s.values())
    payload = result.publish()
    assert payload["section"] == "overview" and payload["verdicts"] == []


def test_overview_plot(result):
    fig = result.plot()
    assert len(fig.axes) == 2
    left, right = fig.axes
    assert "rewards of chosen vs rejected" in left.get_title()
    assert [t.get_text() for t in left.get_legend().get_texts()] == ["chosen", "rejected"]
    assert sum(p.get_height() for p in left.patches) == 2 * result.n_pairs  # both histograms, every response
    assert sum(p.get_height() for p in right.patches) == result.n_pairs
    assert right.get_title().startswith("accuracy")
    plt.close(fig)
    fig, ax = plt.subplots()
    assert result.plot(ax=ax) is fig and len(fig.axes) == 1
    plt.close(fig)
    fig, axes = plt.subplots(1, 2)
    assert result.plot(ax=axes) is fig
    plt.close(fig)
