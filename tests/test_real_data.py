"""Real data as users bring it: HH-RLHF quirks, the data-quality verdict, Hub and save_to_disk splits, data routing."""

from __future__ import annotations

import json
import math

import datasets
import pandas as pd
import pytest
from scipy import stats

from workbench.cli import build_parser, main
from workbench.data import (
    DataFormatError,
    best_of_n_accuracy,
    clopper_pearson,
    data_quality,
    load_data,
    load_preferences,
    parse_columns,
    parse_data_spec,
    parse_hh_transcript,
    rewardbench_section_scores,
)
from workbench.reports.pipeline import plan_audit
from workbench.reports.runner import ParameterError


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def hh(*turns):
    return "".join(f"\n\n{role}: {text}" for role, text in turns)


GOOD = {
    "chosen": hh(("Human", "How do I boil an egg?"), ("Assistant", "Put it in boiling water for 8 minutes.")),
    "rejected": hh(("Human", "How do I boil an egg?"), ("Assistant", "No idea.")),
}
# two Assistant turns in a row (as in the public test split)
DOUBLE_ASSISTANT = {
    "chosen": hh(("Human", "Hi"), ("Assistant", "Hello."), ("Assistant", "How can I help?")),
    "rejected": hh(("Human", "Hi"), ("Assistant", "Go away.")),
}
# a Human turn after a single line break instead of a blank line
NO_SEPARATOR = {
    "chosen": "\n\nHuman: Name a fruit\n\nAssistant: Apple.\nHuman: Another?\n\nAssistant: Pear.",
    "rejected": "\n\nHuman: Name a fruit\n\nAssistant: Apple.\nHuman: Another?\n\nAssistant: Rock.",
}
# chosen and rejected continue different conversations
MISMATCH = {
    "chosen": hh(("Human", "Tell me a joke"), ("Assistant", "Why did the chicken cross the road?")),
    "rejected": hh(("Human", "Tell me a story"), ("Assistant", "Once upon a time.")),
}
# the final Assistant turn is empty
EMPTY_FINAL = {
    "chosen": hh(("Human", "What is 2+2?"), ("Assistant", "4")),
    "rejected": "\n\nHuman: What is 2+2?\n\nAssistant:",
}


@pytest.fixture
def hh_file(tmp_path):
    return write_jsonl(tmp_path / "hh_test.jsonl", [GOOD, DOUBLE_ASSISTANT, NO_SEPARATOR, MISMATCH, EMPTY_FINAL])


# --------------------------------------------------------------------------- HH-RLHF quirks


def test_parse_hh_repairs_consecutive_turns_and_missing_separators():
    before, response = parse_hh_transcript(DOUBLE_ASSISTANT["chosen"])
    assert before == [{"role": "user", "content": "Hi"}]
    assert response == "Hello.\n\nHow can I help?"
    before, response = parse_hh_transcript(NO_SEPARATOR["chosen"])
    assert [m["content"] for m in before] == ["Name a fruit", "Apple.", "Another?"]
    assert response == "Pear."


def test_hh_quirks_skip_and_flag_by_default_policy(hh_file):
    ps = load_preferences(hh_file, on_error="skip")
    assert (ps.n_read, len(ps), ps.n_skipped) == (5, 4, 1)
    skipped = ps.skipped[0]
    assert (skipped.row, skipped.field) == (5, "rejected")
    assert "non-empty final assistant message" in skipped.reason
    frame = ps.frame.set_index("id")
    assert frame.loc["hh_test-2", "chosen"] == "Hello.\n\nHow can I help?"
    assert frame.loc["hh_test-3", "prompt"] == "Another?" and frame.loc["hh_test-3", "rejected"] == "Rock."
    # the mismatched pair is kept with the chosen transcript's context, and flagged
    assert frame.loc["hh_test-4", "prompt"] == "Tell me a joke"
    assert ps.flag_counts() == {"hh_missing_separator": 2, "hh_merged_turns": 1, "prompt_mismatch": 1}
    assert ps.n_flagged == 3
    flags = ps.flags_frame()
    mismatch = flags[flags["kind"] == "prompt_mismatch"].iloc[0]
    assert (mismatch["id"], mismatch["row"], mismatch["field"]) == ("hh_test-4", "line 4", "rejected")
    # the flags survive sampling
    assert ps.sample(2, seed=0).flag_counts() == ps.flag_counts()


def test_hh_strict_raises_on_first_bad_row_naming_file_line_field(hh_file):
    with pytest.raises(DataFormatError) as err:
        load_preferences(hh_file, on_error="raise")
    message = str(err.value)
    assert message.startswith(f"{hh_file}, line 4, field 'rejected': the conversation before the final assistant")
    only_empty = write_jsonl(hh_file.parent / "empty.jsonl", [GOOD, EMPTY_FINAL])
    with pytest.raises(DataFormatError, match=r"empty\.jsonl, line 2, field 'rejected': expected a non-empty final"):
        load_preferences(only_empty)


def test_shipped_data_loads_without_skips_or_flags():
    for name in ("golden", "demo-eval"):
        ps = load_data(name, on_error="skip")
        assert (ps.n_skipped, ps.n_flagged) == (0, 0), name


# --------------------------------------------------------------------------- data-quality verdict


@pytest.mark.parametrize("k, n", [(0, 50), (3, 1000), (40, 200), (200, 200)])
def test_clopper_pearson_matches_scipy_exact_interval(k, n):
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    low, high = clopper_pearson(k, n)
    assert low == pytest.approx(ref.low, abs=1e-9) and high == pytest.approx(ref.high, abs=1e-9)


def test_clopper_pearson_zero_successes_by_hand():
    # P(0 of n | p) = (1 - p)^n = 0.025  =>  p = 1 - 0.025^(1/n)
    assert clopper_pearson(0, 1200) == (0.0, pytest.approx(1 - 0.025 ** (1 / 1200)))
    with pytest.raises(ValueError, match="0 <= k <= n"):
        clopper_pearson(3, 2)


def test_data_quality_counts_and_verdict(hh_file):
    q = data_quality(load_preferences(hh_file, on_error="skip"))
    summary = q.summary()
    assert summary["n_read"] == 5 and summary["n_skipped"] == 1 and summary["skipped_share"] == 0.2
    assert summary["skipped_by_reason"] == {"expected a non-empty final assistant message": 1}
    assert summary["flagged_by_kind"]["prompt_mismatch"] == 1
    (v,) = q.verdicts()
    assert (v.family, v.section, v.n, v.warn, v.fail) == ("data_quality", "data_quality", 5, 0.01, 0.10)
    low, high = stats.binomtest(1, 5).proportion_ci(method="exact")
    assert v.ci_low == v.ci_high == pytest.approx(0.2)  # the exact share of this file
    assert f"{low:.2%} to {high:.2%}" in v.detail  # the source's rate, shown
    assert v.verdict == "fail"  # 20% of the file skipped: above the 10% fail margin
    assert "1 of 5 rows (20.0%)" in v.sentence
    assert set(q.to_frame()["what"]) >= {"rows read", "skipped: expected a non-empty final assistant message"}


def _quality(tmp_path, n_bad, n_good):
    rows = [EMPTY_FINAL] * n_bad + [{"prompt": f"q{i}", "chosen": "yes", "rejected": "no"} for i in range(n_good)]
    return data_quality(load_preferences(write_jsonl(tmp_path / "d.jsonl", rows), on_error="skip"))


@pytest.mark.parametrize(
    "n_bad, n_good, expected",
    [(0, 1200, "pass"), (0, 100, "pass"), (2, 98, "warn"), (40, 960, "warn"), (200, 800, "fail")],
)
def test_data_quality_grades_the_exact_skipped_share(tmp_path, n_bad, n_good, expected):
    q = _quality(tmp_path, n_bad, n_good)
    (v,) = q.verdicts()
    # a census of the file, no sampling error: graded on the share itself (hand-worked: 2/100 = 2% is above
    # the 1% warn margin, 40/1000 = 4% warns, 200/1000 = 20% fails)
    share = n_bad / (n_bad + n_good)
    assert v.value == v.ci_low == v.ci_high == pytest.approx(share)
    assert v.verdict == expected
    # the Clopper-Pearson interval of the source's rate is shown, equal to scipy's exact interval
    low, high = stats.binomtest(n_bad, n_bad + n_good).proportion_ci(method="exact")
    assert f"{low:.2%} to {high:.2%}" in v.detail


def test_data_quality_rejects_a_frame():
    with pytest.raises(TypeError, match="needs a PreferenceSet"):
        data_quality([1, 2])


# --------------------------------------------------------------------------- splits: save_to_disk and the Hub


@pytest.fixture
def dataset_dict(tmp_path):
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(5)]
    folder = tmp_path / "prefs"
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(rows), "test": datasets.Dataset.from_list(rows[:2])}
    ).save_to_disk(str(folder))
    return folder


def test_save_to_disk_folder_with_split_in_spec_or_argument(dataset_dict):
    test = load_preferences(f"{dataset_dict}@test")
    assert len(test) == 2 and test.source == f"{dataset_dict}[test]"
    assert list(test.frame["id"]) == ["prefs-test-1", "prefs-test-2"]
    train = load_data(str(dataset_dict), split="train")
    assert list(train.frame["prompt"]) == [f"q{i}" for i in range(5)]
    with pytest.raises(ValueError, match=r"several splits \['train', 'test'\].*prefs@train"):
        load_preferences(dataset_dict)
    with pytest.raises(ValueError, match=r"names split 'test' but split='train' was also given; pass one"):
        load_preferences(f"{dataset_dict}@test", split="train")
    with pytest.raises(ValueError, match=r"has no split 'dev'; available splits: \['train', 'test'\]"):
        load_preferences(f"{dataset_dict}@dev")


@pytest.fixture
def hub_folder(tmp_path):
    """A folder ``datasets.load_dataset`` reads offline: two configs, each with train and test splits."""
    folder = tmp_path / "hub"
    folder.mkdir()
    for config, n in (("small", 2), ("large", 4)):
        for split, k in (("train", n), ("test", n - 1)):
            rows = [{"question": f"{config}-{split}-{i}", "good": "yes", "bad": "no"} for i in range(k)]
            write_jsonl(folder / f"{config}_{split}.jsonl", rows)
    lines = ["---", "configs:"]
    for config in ("small", "large"):
        lines += [f"- config_name: {config}", "  data_files:"]
        lines += [f"  - split: {s}\n    path: {config}_{s}.jsonl" for s in ("train", "test")]
    (folder / "README.md").write_text("\n".join(lines + ["---", ""]), encoding="utf-8")
    return folder


def test_hub_spec_with_config_and_split_through_load_dataset(hub_folder, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    columns = {"prompt": "question", "chosen": "good", "rejected": "bad"}
    ps = load_preferences(f"hf:{hub_folder}:large@test", columns=columns)
    assert ps.source == f"hf:{hub_folder}:large[test]"
    assert list(ps.frame["prompt"]) == [f"large-test-{i}" for i in range(3)]
    ps = load_data(f"hf:{hub_folder}:small", split="train", columns=columns)
    assert list(ps.frame["prompt"]) == ["small-train-0", "small-train-1"]


def test_parse_data_spec_forms(dataset_dict):
    assert parse_data_spec("hf:Anthropic/hh-rlhf@test") == {
        "hub": True,
        "name": "Anthropic/hh-rlhf",
        "config": None,
        "split": "test",
        "path": None,
    }
    spec = parse_data_spec("hf:allenai/reward-bench:default@filtered")
    assert (spec["name"], spec["config"], spec["split"]) == ("allenai/reward-bench", "default", "filtered")
    assert parse_data_spec(f"{dataset_dict}@test")["path"] == str(dataset_dict)
    assert parse_data_spec("no/such@dir")["path"] == "no/such@dir"  # not an existing folder: left alone
    with pytest.raises(ValueError, match="names no split"):
        parse_data_spec("hf:x@")


# --------------------------------------------------------------------------- routing data by kind


def test_plan_routes_each_data_kind_to_its_notebooks(tmp_path):
    plan = plan_audit(
        "demo-clean",
        "golden",
        split="test",
        on_error="raise",
        sycophancy_data="shipped",
        samples="demo-policy",
    )
    params = {nb.stem: p for nb, p in plan.parameters.items()}
    for stem in ("00_overview", "01_calibration", "02_feature_probes", "03_attribution", "06_ensemble"):
        assert params[stem]["data"] == "golden" and params[stem]["split"] == "test", stem
        assert params[stem]["on_error"] == "raise", stem
    assert params["04_sycophancy"]["data"] == "shipped" and "split" not in params["04_sycophancy"]
    assert params["05_drift"]["data"] == "demo-policy"
    assert plan.notebooks["00_overview"]["data"] == "golden@test"  # hashed as the notebook loads it


def test_plan_without_data_keeps_each_notebook_default_and_rejects_unroutable():
    plan = plan_audit("demo-clean", "golden", notebooks=["00", "04", "05"])
    params = {nb.stem: p for nb, p in plan.parameters.items()}
    assert "data" not in params["04_sycophancy"] and "data" not in params["05_drift"]
    with pytest.raises(ParameterError, match=r"--data: no selected notebook takes pairs data \(selected: 04_syco"):
        plan_audit("demo-clean", "golden", notebooks=["04"])
    with pytest.raises(ParameterError, match=r"--samples: no selected notebook takes samples data"):
        plan_audit("demo-clean", notebooks=["00"], samples="x.jsonl")


def test_cli_parses_data_flags():
    args = build_parser().parse_args(
        ["audit", "--model", "m", "--out", "o", "--data", "hf:Anthropic/hh-rlhf", "--split", "test", "--strict"]
        + ["--sycophancy-data", "syc.jsonl", "--samples", "s.parquet"]
    )
    assert (args.split, args.strict, args.sycophancy_data, args.samples) == ("test", True, "syc.jsonl", "s.parquet")
    args = build_parser().parse_args(["audit", "--model", "m", "--out", "o"])
    assert (args.split, args.strict, args.sycophancy_data, args.samples) == (None, False, None, None)


# --------------------------------------------------------------------------- formats users bring (hand-written fixtures)


def test_rewardbench_rows_load_and_section_scores_by_hand(tmp_path):
    rows = [
        {"id": 1, "prompt": "p1", "chosen": "c1", "rejected": "r1", "subset": "alpacaeval-easy"},
        {"id": 2, "prompt": "p2", "chosen": "c2", "rejected": "r2", "subset": "alpacaeval-easy"},
        {"id": 3, "prompt": "p3", "chosen": "c3", "rejected": "r3", "subset": "mt-bench-easy"},
        {"id": 4, "prompt": "p4", "chosen": "c4", "rejected": "r4", "subset": "llmbar-natural"},
        {"id": 5, "prompt": "p5", "chosen": "c5", "rejected": "r5", "subset": "xstest-should-refuse"},
        {"id": 6, "prompt": "p6", "chosen": "c6", "rejected": "r6", "subset": "donotanswer"},
        {"id": 7, "prompt": "p7", "chosen": "c7", "rejected": "r7", "subset": "math-prm"},
        {"id": 8, "prompt": "p8", "chosen": "c8", "rejected": "r8", "subset": "hep-python"},
    ]
    ps = load_preferences(write_jsonl(tmp_path / "rb.jsonl", rows))
    assert list(ps.frame["id"]) == [str(i) for i in range(1, 9)] and ps.frame["subset"].iloc[6] == "math-prm"
    correct = [True, False, True, False, True, False, True, False]
    scores = rewardbench_section_scores(ps.frame["subset"], correct)
    # by hand: subset accuracy weighted by RewardBench's EXAMPLE_COUNTS within each section
    assert scores["Chat"] == pytest.approx(100 * (0.5 * 100 + 1.0 * 28) / (100 + 28))
    assert scores["Chat Hard"] == 0.0
    assert scores["Safety"] == pytest.approx(100 * 250 / (250 + 136))
    assert scores["Reasoning"] == pytest.approx(100 * 984 / (984 + 164))
    sections = [scores[s] for s in ("Chat", "Chat Hard", "Safety", "Reasoning")]
    assert scores["Score"] == pytest.approx(sum(sections) / 4)
    assert math.isnan(rewardbench_section_scores(["alpacaeval-easy"], [True])["Safety"])


def test_rewardbench2_best_of_four_expands_and_scores_all_beaten(tmp_path):
    rows = [
        {
            "id": "a",
            "prompt": "q",
            "chosen": ["right"],
            "rejected": ["w1", "w2", "w3"],
            "subset": "Focus",
            "num_correct": 1,
        },
        {
            "id": "b",
            "prompt": "q2",
            "chosen": ["ok"],
            "rejected": ["x1", "x2", "x3"],
            "subset": "Math",
            "num_correct": 1,
        },
    ]
    ps = load_preferences(write_jsonl(tmp_path / "rb2.jsonl", rows))
    assert list(ps.frame["id"]) == ["a-1", "a-2", "a-3", "b-1", "b-2", "b-3"]
    assert list(ps.frame["group"]) == ["a"] * 3 + ["b"] * 3
    assert list(ps.frame["rejected"][:3]) == ["w1", "w2", "w3"] and set(ps.frame["chosen"][:3]) == {"right"}
    assert ps.row_label(4) == "line 2"
    acc = best_of_n_accuracy(ps.frame["group"], [True, True, False, True, True, True])
    assert acc.to_dict() == {"a": False, "b": True}


def test_ultrafeedback_binarized_row(tmp_path):
    question = "What is 2+2?"
    user = {"role": "user", "content": question}
    row = {
        "prompt": question,
        "prompt_id": "abc",
        "chosen": [user, {"role": "assistant", "content": "4"}],
        "rejected": [user, {"role": "assistant", "content": "5"}],
        "messages": [user, {"role": "assistant", "content": "4"}],
        "score_chosen": 9.0,
        "score_rejected": 2.0,
    }
    ps = load_preferences(write_jsonl(tmp_path / "uf.jsonl", [row]))
    r = ps.frame.iloc[0]
    assert (r["prompt"], r["chosen"], r["rejected"], r["history"]) == (question, "4", "5", None)
    assert (r["prompt_id"], r["score_chosen"], r["score_rejected"]) == ("abc", 9.0, 2.0)


def test_trl_conversational_and_implicit_prompt_formats(tmp_path):
    sky = {"role": "user", "content": "What color is the sky?"}
    explicit = {
        "prompt": [sky],
        "chosen": [{"role": "assistant", "content": "Blue."}],
        "rejected": [{"role": "assistant", "content": "Green."}],
    }
    implicit = {
        "chosen": [sky, {"role": "assistant", "content": "Blue."}],
        "rejected": [sky, {"role": "assistant", "content": "Green."}],
    }
    ps = load_preferences(write_jsonl(tmp_path / "trl.jsonl", [explicit, implicit]))
    assert list(ps.frame["prompt"]) == ["What color is the sky?"] * 2
    assert list(ps.frame["chosen"]) == ["Blue.", "Blue."] and list(ps.frame["rejected"]) == ["Green.", "Green."]
    standard = [{"chosen": "The sky is blue.", "rejected": "The sky is green."}, {"chosen": "x", "rejected": "y"}]
    path = write_jsonl(tmp_path / "implicit.jsonl", standard)
    ps = load_preferences(path, adapter="trl_implicit", on_error="skip")
    r = ps.frame.iloc[0]
    assert (r["prompt"], r["chosen"], r["rejected"]) == ("The sky is", " blue.", " green.")
    assert ps.n_skipped == 1 and ps.skipped[0].field == "rejected" and "share no prompt prefix" in ps.skipped[0].reason
    with pytest.raises(ValueError, match=r"adapter must be None or one of \('rewardbench2', 'trl_implicit'\)"):
        load_preferences(path, adapter="nope")


def test_csv_and_parquet_with_column_mapping(tmp_path):
    frame = pd.DataFrame({"question": ["q1", "q2"], "good": ["yes", "sure"], "bad": ["no", "never"]})
    mapping = parse_columns("prompt=question, chosen=good,rejected=bad")
    assert mapping == {"prompt": "question", "chosen": "good", "rejected": "bad"}
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    for name in ("t.csv", "t.parquet"):
        ps = load_preferences(tmp_path / name, columns=mapping)
        assert list(ps.frame["prompt"]) == ["q1", "q2"] and list(ps.frame["rejected"]) == ["no", "never"]
    with pytest.raises(ValueError, match=r"--columns item 'prompt' must look like SCHEMA=INPUT"):
        parse_columns("prompt,chosen=good")
    with pytest.raises(ValueError, match=r"columns maps 'chosen' -> 'best', but the input has no such column"):
        load_preferences(tmp_path / "t.csv", columns={"chosen": "best"})


def test_plan_routes_columns_and_cli_doctor_reads_them(tmp_path, capsys):
    plan = plan_audit("demo-clean", notebooks=["00", "04"], columns="prompt=question")
    params = {nb.stem: p for nb, p in plan.parameters.items()}
    assert params["00_overview"]["columns"] == "prompt=question" and "columns" not in params["04_sycophancy"]
    frame = pd.DataFrame({"question": ["q1", "q2"], "good": ["yes", "sure"], "bad": ["no", "never"]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    code = main(["doctor", "--data", str(tmp_path / "t.csv"), "--columns", "prompt=question,chosen=good,rejected=bad"])
    assert code == 0, capsys.readouterr()
    assert main(["doctor", "--data", str(tmp_path / "t.csv"), "--columns", "prompt"]) == 2
    assert "--columns item 'prompt' must look like SCHEMA=INPUT" in capsys.readouterr().err


def test_cli_audit_rejects_data_no_notebook_takes_before_running(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["audit", "--model", "demo-clean", "--out", str(out), "--notebooks", "04", "--data", "golden"])
    assert code == 2
    assert "--data: no selected notebook takes pairs data (selected: 04_sycophancy)" in capsys.readouterr().err
    code = main(["audit", "--model", "demo-clean", "--out", str(out), "--notebooks", "05", "--strict"])
    assert code == 2
    assert "on_error='raise': no selected notebook declares 'on_error'" in capsys.readouterr().err
    assert not out.exists()
