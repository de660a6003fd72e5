"""The overview audit (workbench.audits.overview): headline numbers, groups, figure, result contract."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from workbench._utils.stats import percentile_ci, resample_indices  # noqa: E402
from workbench.audits.calibration import mean_reward_gap, pairwise_accuracy  # noqa: E402
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
    chosen_len = rng.integers(5, 60, n)
    rejected_len = rng.integers(5, 60, n)
    rejected_len[10:20] = chosen_len[10:20]  # equal lengths
    return pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(n)],
            "prompt": [f"Prompt {i // 3}" for i in range(n)],  # 100 prompts, 3 pairs each
            "chosen": ["c" * k for k in chosen_len],
            "rejected": ["r" * k for k in rejected_len],
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


def _cluster_ci(fn, codes, n_boot, seed):
    """An independent cluster-bootstrap percentile interval: whole prompts drawn, fn on the rows."""
    vals = [fn(idx) for idx in resample_indices(len(codes), n_boot, seed, clusters=codes)]
    return percentile_ci(np.asarray(vals), 0.95)


def test_overview_numbers(frame, result):
    m, y = frame["margin"].to_numpy(), frame["label"].to_numpy()
    acc = pairwise_accuracy(m, y)
    assert result.accuracy == acc.accuracy and result.tie_rate == acc.tie_rate
    assert result.n_label_ties == 4 and result.n_pairs == 300 and result.n_skipped == 2
    assert result.n_truncated == int((frame["chosen_truncated"] | frame["rejected_truncated"]).sum())
    assert result.mean_gap == pytest.approx(mean_reward_gap(m, y))
    assert result.cluster_unit == "prompt" and result.n_clusters == 100 and result.n_decided == 296
    codes = np.arange(300) // 3
    want = _cluster_ci(lambda i: pairwise_accuracy(m[i], y[i]).accuracy, codes, 200, 1)
    assert result.accuracy_ci == pytest.approx(want, rel=1e-12)
    assert result.accuracy_ci[0] < result.accuracy < result.accuracy_ci[1]
    want = _cluster_ci(lambda i: mean_reward_gap(m[i], y[i]), codes, 200, 1)
    assert result.mean_gap_ci == pytest.approx(want, rel=1e-12)
    # the length-only baseline by hand: longer response preferred, equal lengths count half
    lc, lr = frame["chosen"].str.len().to_numpy(), frame["rejected"].str.len().to_numpy()
    dec = y != 0.5
    base = np.where(lc == lr, 0.5, (lc > lr).astype(float))[dec].mean()
    rm = np.where(m == 0, 0.5, (m > 0).astype(float))[dec].mean()
    assert result.length_accuracy == pytest.approx(base) and result.accuracy_vs_length == pytest.approx(rm - base)

    def diff(i):
        d = dec[i]
        return (np.where(m[i] == 0, 0.5, m[i] > 0)[d] - np.where(lc[i] == lr[i], 0.5, lc[i] > lr[i])[d]).mean()

    assert result.accuracy_vs_length_ci == pytest.approx(_cluster_ci(diff, codes, 200, 1), rel=1e-9)
    table = result.to_frame()
    assert list(table.columns) == ["metric", "value", "ci_low", "ci_high"]
    assert table["value"].iloc[0] == result.accuracy
    assert table["value"].iloc[2] == result.accuracy_vs_length


def test_overview_takes_texts_and_prompts_from_the_scored_data(frame, result):
    scores = frame.drop(columns=["prompt", "chosen", "rejected"])
    data = frame[["id", "prompt", "chosen", "rejected"]].iloc[::-1]  # matched on id, not position
    again = overview(scores, data=data, n_skipped=2, n_boot=200, seed=1)
    assert again.summary() == result.summary()
    with pytest.warns(UserWarning, match="independent"):
        bare = overview(scores, n_boot=50)
    assert bare.cluster_unit == "pair" and np.isnan(bare.accuracy_vs_length)
    verdicts = {v.check: v.verdict for v in bare.verdicts()}
    assert verdicts["accuracy_vs_length"] == "n/a"
    by_topic = overview(frame.assign(topic_id=np.arange(300) % 7), n_boot=50)
    assert by_topic.cluster_unit == "topic" and by_topic.n_clusters == 7


def _pairs(n, accuracy, seed, length_bias=0.0, prompts=None):
    """n chosen-first pairs; the RM ranks a fraction ``accuracy`` right; longer chosen with prob 0.5 + length_bias."""
    rng = np.random.default_rng(seed)
    right = rng.random(n) < accuracy
    margin = np.where(right, 1.0, -1.0) * rng.uniform(0.1, 2.0, n)
    longer = rng.random(n) < 0.5 + length_bias
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "margin": margin,
            "label": np.ones(n),
            "prompt": [f"q{i % (prompts or n)}" for i in range(n)],
            "chosen": np.where(longer, "a long chosen answer", "short"),
            "rejected": np.where(longer, "short", "a long rejected answer"),
        }
    )


@pytest.mark.parametrize(
    "accuracy, n, length_bias, want_acc, want_len",
    [
        (0.8, 1000, 0.0, "pass", "pass"),  # a good RM, length uninformative
        (0.5, 3000, 0.0, "fail", "warn"),  # chance: fails; about as good as length -> not 5 points better
        (0.62, 150, 0.0, "inconclusive", "inconclusive"),  # too few pairs to tell
        (0.65, 2000, 0.3, "pass", "fail"),  # length alone gets 80%: the RM does worse than the baseline
    ],
)
def test_overview_verdicts_pass_fail_inconclusive(accuracy, n, length_bias, want_acc, want_len):
    from workbench.reports.verdicts import family_verdicts, worst

    res = overview(_pairs(n, accuracy, seed=3, length_bias=length_bias), n_boot=300, seed=0)
    v = {x.check: x for x in res.verdicts()}
    assert v["accuracy"].verdict == want_acc and v["accuracy_vs_length"].verdict == want_len
    assert family_verdicts(res.verdicts()) == {"accuracy": worst([want_acc, want_len])}
    assert all(x.family == "accuracy" and x.direction == "lower" and x.n == n for x in v.values())
    assert v["accuracy"].warn == 0.6 and v["accuracy"].fail == 0.55
    assert "chance is 50%" in v["accuracy"].sentence and "longer response" in v["accuracy_vs_length"].sentence


def test_overview_clusters_widen_the_interval():
    """The same pairs in 20 prompts (shared RM errors) give a wider interval than treated as independent."""
    rng = np.random.default_rng(5)
    prompt_acc = rng.uniform(0.3, 1.0, 20)  # prompts differ in how often the RM is right
    f = _pairs(600, 0.7, seed=4, prompts=20)
    right = rng.random(600) < prompt_acc[np.arange(600) % 20]
    f["margin"] = np.abs(f["margin"]) * np.where(right, 1, -1)
    clustered = overview(f, n_boot=300)
    independent = overview(f.drop(columns="prompt"), n_boot=300, cluster_column="id")
    assert clustered.n_clusters == 20 and independent.n_clusters == 600
    width = lambda r: r.accuracy_ci[1] - r.accuracy_ci[0]  # noqa: E731
    assert width(clustered) > 1.5 * width(independent)


def test_overview_by_group(frame, result):
    groups = result.by_group("category").set_index("category")
    assert groups["n"].sum() == 300
    part = frame[frame["category"] == "math"]
    assert groups.loc["math", "accuracy"] == pairwise_accuracy(part["margin"], part["label"]).accuracy
    with pytest.raises(KeyError, match="no column"):
        result.by_group("subset")


def test_overview_result_contract(result):
    from workbench.reports.verdicts import publish

    assert isinstance(result, AuditResult) and isinstance(result, OverviewResult)
    assert result.section == "overview"
    assert [v.check for v in result.verdicts()] == ["accuracy", "accuracy_vs_length"]
    s = result.summary()
    assert s["accuracy"] == result.accuracy and s["n_pairs"] == 300 and s["n_clusters"] == 100
    assert all(isinstance(v, (int, float)) for v in s.values())
    payload = result.publish()
    assert payload["section"] == "overview" and payload == publish("overview", result.verdicts(), s)
    table = result.verdicts_frame()
    assert table["check"].tolist() == ["accuracy", "accuracy_vs_length"]
    assert table["sentence"].str.contains("100 prompts").all()


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
