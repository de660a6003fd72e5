"""Tests for workbench.data (preferences): one schema, many input formats.

Every fixture file is written into ``tmp_path`` by the test that reads it.
"""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import pandas as pd
import pytest

from workbench.data import (
    SCHEMA_COLUMNS,
    DataFormatError,
    PreferenceSet,
    SkippedRow,
    from_frame,
    from_records,
    load_preferences,
    parse_hh_transcript,
    split_conversation,
)

# --------------------------------------------------------------------------- helpers

FLAT = [
    {"id": "a", "prompt": "What is 2+2?", "chosen": "4", "rejected": "5", "subset": "math", "category": "easy"},
    {"id": "b", "prompt": "Capital of France?", "chosen": "Paris", "rejected": "Lyon", "label": 0.8},
    {"id": "c", "prompt": "", "chosen": "Hello!", "rejected": "Go away.", "votes_chosen": 3, "votes_rejected": 1},
]


def write_jsonl(path: Path, rows: list, blank_after: int | None = None) -> Path:
    lines = []
    for i, row in enumerate(rows):
        lines.append(row if isinstance(row, str) else json.dumps(row))
        if blank_after is not None and i == blank_after:
            lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def msgs(*pairs: tuple[str, str]) -> list[dict]:
    return [{"role": role, "content": content} for role, content in pairs]


HH_CHOSEN = "\n\nHuman: Hi there\n\nAssistant: Hello! How can I help?\n\nHuman: Tell me a joke\n\nAssistant: Why did the chicken cross the road?"
HH_REJECTED = "\n\nHuman: Hi there\n\nAssistant: Hello! How can I help?\n\nHuman: Tell me a joke\n\nAssistant: No."


# --------------------------------------------------------------------------- JSON lines


def test_jsonl_flat_rows_schema_and_values(tmp_path):
    path = write_jsonl(tmp_path / "prefs.jsonl", [{**r, "annotator": f"ann{i}"} for i, r in enumerate(FLAT)])
    ps = load_preferences(path)
    assert isinstance(ps, PreferenceSet)
    df = ps.frame
    assert list(df.columns) == [*SCHEMA_COLUMNS, "annotator"]
    assert len(ps) == 3 and ps.n_read == 3 and ps.n_skipped == 0
    assert ps.source == str(path)
    assert df["id"].tolist() == ["a", "b", "c"]
    assert df["prompt"].tolist() == ["What is 2+2?", "Capital of France?", ""]
    assert df["chosen"].tolist() == ["4", "Paris", "Hello!"]
    assert df["label"].tolist() == [1.0, 0.8, 0.75]
    assert df["votes_chosen"].tolist()[2] == 3 and df["votes_chosen"].isna().tolist() == [True, True, False]
    assert df["subset"].tolist() == ["math", None, None]
    assert df["history"].tolist() == [None, None, None]
    assert df["annotator"].tolist() == ["ann0", "ann1", "ann2"]
    assert str(df["label"].dtype) == "float64"
    assert str(df["votes_chosen"].dtype) == "Int64" and str(df["step"].dtype) == "Int64"
    assert df["prompt"].dtype == object


def test_jsonl_generated_ids_use_stem_and_physical_line(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "id"} for r in FLAT]
    path = write_jsonl(tmp_path / "pairs.jsonl", rows, blank_after=0)  # line 2 is blank
    ps = load_preferences(path)
    assert ps.frame["id"].tolist() == ["pairs-1", "pairs-3", "pairs-4"]
    assert ps.n_read == 3


def test_jsonl_invalid_json_line_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "broken.jsonl", [FLAT[0], FLAT[1], '{"prompt": "x", "chosen": '])
    with pytest.raises(DataFormatError) as info:
        load_preferences(path)
    err = info.value
    assert err.row == 3 and err.field is None and err.source == str(path)
    assert "broken.jsonl, line 3: invalid JSON" in str(err)


def test_jsonl_non_object_line_is_a_row_error(tmp_path):
    path = write_jsonl(tmp_path / "lists.jsonl", [FLAT[0], "[1, 2]"])
    with pytest.raises(DataFormatError, match=r"lists\.jsonl, line 2: expected an object") as info:
        load_preferences(path)
    assert info.value.field is None


def test_jsonl_missing_chosen_message_format(tmp_path):
    rows = [FLAT[0], FLAT[1], {"id": "x", "prompt": "p", "chosen": None, "rejected": "r"}]
    path = write_jsonl(tmp_path / "data.jsonl", rows, blank_after=0)  # the bad row is on line 4
    with pytest.raises(DataFormatError) as info:
        load_preferences(path)
    assert str(info.value) == f"{path}, line 4, field 'chosen': expected a non-empty string, got null"
    assert (info.value.row, info.value.field, info.value.reason) == (
        4,
        "chosen",
        "expected a non-empty string, got null",
    )


def test_limit_reads_at_most_n_rows(tmp_path):
    path = write_jsonl(tmp_path / "prefs.jsonl", FLAT)
    ps = load_preferences(path, limit=2)
    assert ps.frame["id"].tolist() == ["a", "b"] and ps.n_read == 2
    with pytest.raises(ValueError, match="limit"):
        load_preferences(path, limit=0)


# --------------------------------------------------------------------------- JSON list


def test_json_list_of_objects(tmp_path):
    path = tmp_path / "prefs.json"
    path.write_text(json.dumps([{k: v for k, v in r.items() if k != "id"} for r in FLAT], indent=2))
    ps = load_preferences(path)
    assert ps.frame["id"].tolist() == ["prefs-1", "prefs-2", "prefs-3"]
    assert ps.frame["chosen"].tolist() == ["4", "Paris", "Hello!"]


def test_json_list_bad_item_reports_row(tmp_path):
    path = tmp_path / "prefs.json"
    path.write_text(json.dumps([FLAT[0], {"id": "z", "prompt": "p", "chosen": "c", "rejected": "  "}]))
    with pytest.raises(
        DataFormatError, match=r"prefs\.json, row 2, field 'rejected': expected a non-empty string, got a blank string"
    ):
        load_preferences(path)


def test_json_file_holding_json_lines(tmp_path):
    path = write_jsonl(tmp_path / "lines.json", FLAT)
    assert load_preferences(path).frame["id"].tolist() == ["a", "b", "c"]


# --------------------------------------------------------------------------- CSV


def test_csv_flat_with_multiline_quoted_field_and_coercion(tmp_path):
    path = write_csv(
        tmp_path / "prefs.csv",
        ["prompt", "chosen", "rejected", "label", "subset", "step", "checkpoint", "note"],
        [
            ["Write a poem", "Roses are red,\nviolets are blue.", "no", "0.9", "creative", "100", "ckpt-100", "x"],
            ["Cite it", "[citation needed] is a tag", "dunno", "", "", "", "", ""],
        ],
    )
    ps = load_preferences(path)
    df = ps.frame
    assert df["id"].tolist() == ["prefs-1", "prefs-2"]
    assert df["chosen"].tolist() == ["Roses are red,\nviolets are blue.", "[citation needed] is a tag"]
    assert df["label"].tolist() == [0.9, 1.0]
    assert df["step"].tolist()[0] == 100 and pd.isna(df["step"].iloc[1])
    assert df["subset"].tolist() == ["creative", None]
    assert df["checkpoint"].tolist() == ["ckpt-100", None]
    assert df["note"].tolist() == ["x", ""]


def test_csv_row_numbers_count_data_rows_not_lines(tmp_path):
    path = write_csv(
        tmp_path / "rows.csv",
        ["prompt", "chosen", "rejected", "label"],
        [["p1", "line one\nline two\nline three", "r", "1"], ["p2", "c", "r", "high"]],
    )
    with pytest.raises(DataFormatError) as info:
        load_preferences(path)
    assert str(info.value) == f"{path}, row 2, field 'label': expected a number, got the string 'high'"


def test_csv_messages_as_json_strings(tmp_path):
    chosen = msgs(("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello."))
    rejected = msgs(("system", "Be brief."), ("user", "Hi"), ("assistant", "Greetings, dear user, how are you?"))
    path = write_csv(tmp_path / "chat.csv", ["chosen", "rejected"], [[json.dumps(chosen), json.dumps(rejected)]])
    row = load_preferences(path).frame.iloc[0]
    assert row["prompt"] == "Hi"
    assert row["history"] == [{"role": "system", "content": "Be brief."}]
    assert (row["chosen"], row["rejected"]) == ("Hello.", "Greetings, dear user, how are you?")


def test_csv_broken_json_message_list_is_an_error(tmp_path):
    good = json.dumps(msgs(("user", "Hi"), ("assistant", "Hello.")))
    other = json.dumps(msgs(("user", "Hi"), ("assistant", "Hey.")))
    path = write_csv(
        tmp_path / "chat.csv", ["chosen", "rejected"], [[good, other], [good, '[{"role": "user", "content"']]
    )
    with pytest.raises(
        DataFormatError,
        match=r"chat\.csv, row 2, field 'rejected': looks like a JSON message list but is not valid JSON",
    ):
        load_preferences(path)


def test_csv_wrong_number_of_fields(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("prompt,chosen,rejected\np,c,r\np,c,r,extra\n")
    with pytest.raises(DataFormatError, match=r"ragged\.csv, row 2: expected 3 fields, got 4"):
        load_preferences(path)


# --------------------------------------------------------------------------- Parquet


def test_parquet_with_chat_lists_and_integer_ids(tmp_path):
    df = pd.DataFrame(
        {
            "id": [10, 11],
            "prompt": ["Hi", "Name a color"],
            "chosen": [
                msgs(("user", "Hi"), ("assistant", "Hello!")),
                msgs(("user", "Name a color"), ("assistant", "Blue")),
            ],
            "rejected": [
                msgs(("user", "Hi"), ("assistant", "Bye.")),
                msgs(("user", "Name a color"), ("assistant", "Seven")),
            ],
            "score_chosen": [8.5, 7.0],
        }
    )
    path = tmp_path / "uf.parquet"
    df.to_parquet(path, index=False)
    ps = load_preferences(path)
    out = ps.frame
    assert out["id"].tolist() == ["10", "11"]
    assert out["prompt"].tolist() == ["Hi", "Name a color"]
    assert out["chosen"].tolist() == ["Hello!", "Blue"]
    assert out["rejected"].tolist() == ["Bye.", "Seven"]
    assert out["history"].tolist() == [None, None]
    assert out["score_chosen"].tolist() == [8.5, 7.0]


def test_parquet_bad_row_reports_row_and_field(tmp_path):
    path = tmp_path / "flat.parquet"
    pd.DataFrame({"prompt": ["a", None, "c"], "chosen": ["x", "y", "z"], "rejected": ["u", "v", "w"]}).to_parquet(path)
    with pytest.raises(DataFormatError) as info:
        load_preferences(path)
    assert (
        str(info.value)
        == f"{path}, row 2, field 'prompt': expected a string, got null (and 'chosen' is not an HH-RLHF transcript)"
    )


# --------------------------------------------------------------------------- save_to_disk folders


def test_hf_disk_dataset(tmp_path):
    import datasets

    folder = tmp_path / "hf_prefs"
    rows = [
        {"prompt": "p1", "chosen": "c1", "rejected": "r1", "label": None},
        {"prompt": "p2", "chosen": "c2", "rejected": "r2", "label": 0.8},
    ]
    datasets.Dataset.from_list(rows).save_to_disk(str(folder))
    ps = load_preferences(folder)
    assert ps.source == str(folder)
    assert ps.frame["id"].tolist() == ["hf_prefs-1", "hf_prefs-2"]
    assert ps.frame["label"].tolist() == [1.0, 0.8]
    with pytest.raises(ValueError, match="single Dataset"):
        load_preferences(folder, split="train")


def test_hf_disk_dataset_dict_splits(tmp_path):
    import datasets

    folder = tmp_path / "dd"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list([{"prompt": "p1", "chosen": "c1", "rejected": "r1"}]),
            "test": datasets.Dataset.from_list(
                [{"prompt": "p2", "chosen": "c2", "rejected": "r2"}, {"prompt": "p3", "chosen": "c3", "rejected": ""}]
            ),
        }
    ).save_to_disk(str(folder))
    ps = load_preferences(folder, split="train")
    assert ps.frame["prompt"].tolist() == ["p1"] and ps.frame["id"].tolist() == ["dd-train-1"]
    assert ps.source == f"{folder}[train]"
    with pytest.raises(ValueError, match=r"several splits \['train', 'test'\]"):
        load_preferences(folder)
    with pytest.raises(ValueError, match=r"no split 'validation'; available splits: \['train', 'test'\]"):
        load_preferences(folder, split="validation")
    with pytest.raises(DataFormatError, match=r"dd\[test\], row 2, field 'rejected'"):
        load_preferences(folder, split="test")


def test_hf_disk_single_split_dict_needs_no_split(tmp_path):
    import datasets

    folder = tmp_path / "one"
    datasets.DatasetDict(
        {"test": datasets.Dataset.from_list([{"prompt": "p", "chosen": "c", "rejected": "r"}])}
    ).save_to_disk(str(folder))
    assert load_preferences(folder).source == f"{folder}[test]"


def test_folder_that_is_not_a_dataset(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="save_to_disk"):
        load_preferences(tmp_path / "empty")


# --------------------------------------------------------------------------- HH-RLHF transcripts


def test_parse_hh_transcript_multi_turn():
    messages, response = parse_hh_transcript(HH_CHOSEN)
    assert messages == msgs(("user", "Hi there"), ("assistant", "Hello! How can I help?"), ("user", "Tell me a joke"))
    assert response == "Why did the chicken cross the road?"


def test_parse_hh_transcript_errors():
    with pytest.raises(ValueError, match="no '\\\\n\\\\nAssistant:' turn"):
        parse_hh_transcript("\n\nHuman: hello there")
    with pytest.raises(ValueError, match="ends with a 'Human:' turn"):
        parse_hh_transcript("\n\nHuman: a\n\nAssistant: b\n\nHuman: c")
    assert parse_hh_transcript("Human: a\n\nAssistant: b") == (msgs(("user", "a")), "b")


def test_hh_single_and_multi_turn_rows(tmp_path):
    rows = [
        {"chosen": "\n\nHuman: What is 1+1?\n\nAssistant: 2", "rejected": "\n\nHuman: What is 1+1?\n\nAssistant: 3"},
        {"chosen": HH_CHOSEN, "rejected": HH_REJECTED},
    ]
    ps = load_preferences(write_jsonl(tmp_path / "hh.jsonl", rows))
    df = ps.frame
    assert df["prompt"].tolist() == ["What is 1+1?", "Tell me a joke"]
    assert df["chosen"].tolist() == ["2", "Why did the chicken cross the road?"]
    assert df["rejected"].tolist() == ["3", "No."]
    assert df["history"].iloc[0] is None
    assert df["history"].iloc[1] == msgs(("user", "Hi there"), ("assistant", "Hello! How can I help?"))


def test_hh_mismatched_prefix_names_rejected(tmp_path):
    bad = HH_REJECTED.replace("Tell me a joke", "Tell me a story")
    path = write_jsonl(
        tmp_path / "hh.jsonl", [{"chosen": HH_CHOSEN, "rejected": HH_REJECTED}, {"chosen": HH_CHOSEN, "rejected": bad}]
    )
    with pytest.raises(
        DataFormatError,
        match=r"hh\.jsonl, line 2, field 'rejected': the conversation before the final assistant turn differs",
    ) as info:
        load_preferences(path)
    assert "first difference at message 2" in info.value.reason


def test_hh_transcript_without_assistant_names_field(tmp_path):
    path = write_jsonl(tmp_path / "hh.jsonl", [{"chosen": HH_CHOSEN, "rejected": "\n\nHuman: Hi there"}])
    with pytest.raises(DataFormatError, match=r"hh\.jsonl, line 1, field 'rejected': not an HH-RLHF transcript"):
        load_preferences(path)
    path = write_jsonl(tmp_path / "hh2.jsonl", [{"chosen": "\n\nHuman: Hi there", "rejected": HH_REJECTED}])
    with pytest.raises(DataFormatError, match=r"hh2\.jsonl, line 1, field 'chosen': not an HH-RLHF transcript"):
        load_preferences(path)


# --------------------------------------------------------------------------- chat-message lists


def test_split_conversation():
    history, prompt, response = split_conversation(
        msgs(("system", "S"), ("user", "u1"), ("assistant", "a1"), ("user", "u2"), ("assistant", "a2"))
    )
    assert history == msgs(("system", "S"), ("user", "u1"), ("assistant", "a1"))
    assert (prompt, response) == ("u2", "a2")
    assert split_conversation(msgs(("user", "u"), ("assistant", "a"))) == (None, "u", "a")
    with pytest.raises(ValueError, match="must end with an assistant message"):
        split_conversation(msgs(("user", "u")))
    with pytest.raises(ValueError, match="directly follow a user message"):
        split_conversation(msgs(("user", "u"), ("assistant", "a"), ("assistant", "b")))
    with pytest.raises(ValueError, match="message 0: role must be one of system, user, assistant, got 'human'"):
        split_conversation(msgs(("human", "u"), ("assistant", "a")))


def test_chat_shapes_ultrafeedback_trl_and_implicit_prompt(tmp_path):
    rows = [
        # UltraFeedback-binarized: prompt string, full conversations.
        {
            "prompt": "Hi",
            "chosen": msgs(("user", "Hi"), ("assistant", "Hello!")),
            "rejected": msgs(("user", "Hi"), ("assistant", "What?")),
        },
        # TRL conversational: prompt messages, assistant-only completions.
        {
            "prompt": msgs(("system", "Be nice."), ("user", "Hey")),
            "chosen": msgs(("assistant", "Hi, friend.")),
            "rejected": msgs(("assistant", "Meh.")),
        },
        # TRL implicit prompt: no prompt field.
        {
            "chosen": msgs(("user", "a"), ("assistant", "b"), ("user", "c"), ("assistant", "good")),
            "rejected": msgs(("user", "a"), ("assistant", "b"), ("user", "c"), ("assistant", "bad")),
        },
        # Prompt messages with plain string responses.
        {"prompt": msgs(("user", "Q?")), "chosen": "A.", "rejected": "B."},
    ]
    df = load_preferences(write_jsonl(tmp_path / "chat.jsonl", rows)).frame
    assert df["prompt"].tolist() == ["Hi", "Hey", "c", "Q?"]
    assert df["chosen"].tolist() == ["Hello!", "Hi, friend.", "good", "A."]
    assert df["rejected"].tolist() == ["What?", "Meh.", "bad", "B."]
    assert df["history"].tolist() == [None, msgs(("system", "Be nice.")), msgs(("user", "a"), ("assistant", "b")), None]


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        (
            {
                "chosen": [{"role": "user", "content": "q"}, {"role": "assistant"}],
                "rejected": msgs(("user", "q"), ("assistant", "r")),
            },
            "chosen",
            "message 1: missing 'content' key",
        ),
        (
            {
                "chosen": msgs(("user", "q"), ("assistant", "c")),
                "rejected": [{"content": "q"}, {"role": "assistant", "content": "r"}],
            },
            "rejected",
            "message 0: missing 'role' key",
        ),
        (
            {"chosen": msgs(("user", "q"), ("bot", "c")), "rejected": msgs(("user", "q"), ("assistant", "r"))},
            "chosen",
            "message 1: role must be one of system, user, assistant, got 'bot'",
        ),
        (
            {
                "chosen": msgs(("user", "q"), ("assistant", "c")),
                "rejected": msgs(("user", "other"), ("assistant", "r")),
            },
            "rejected",
            "the conversation before the final assistant turn differs from 'chosen' (first difference at message 0; 1 vs 1 messages)",
        ),
        (
            {"chosen": msgs(("user", "q"), ("assistant", "c")), "rejected": "r"},
            "rejected",
            "expected a list of messages like 'chosen', got the string 'r'",
        ),
        (
            {
                "prompt": "different",
                "chosen": msgs(("user", "q"), ("assistant", "c")),
                "rejected": msgs(("user", "q"), ("assistant", "r")),
            },
            "prompt",
            "does not match the final user message of 'chosen'",
        ),
        (
            {"chosen": msgs(("user", "q"), ("assistant", " ")), "rejected": msgs(("user", "q"), ("assistant", "r"))},
            "chosen",
            "expected a non-empty final assistant message, got a blank string",
        ),
    ],
)
def test_chat_row_errors(tmp_path, row, field, reason):
    path = write_jsonl(tmp_path / "chat.jsonl", [row])
    with pytest.raises(DataFormatError) as info:
        load_preferences(path)
    assert str(info.value) == f"{path}, line 1, field '{field}': {reason}"


# --------------------------------------------------------------------------- column mapping


def test_column_mapping(tmp_path):
    rows = [{"question": "Q1", "response_a": "good", "response_b": "bad", "prompt": "template {q}", "pair": "p-1"}]
    ps = load_preferences(
        write_jsonl(tmp_path / "m.jsonl", rows),
        columns={"prompt": "question", "chosen": "response_a", "rejected": "response_b", "id": "pair"},
    )
    df = ps.frame
    assert df[["id", "prompt", "chosen", "rejected"]].iloc[0].tolist() == ["p-1", "Q1", "good", "bad"]
    # An unconsumed input column that shares a schema name is kept under a suffixed name.
    assert df["prompt_input"].tolist() == ["template {q}"]
    assert "question" not in df.columns and "response_a" not in df.columns


def test_column_mapping_errors_name_the_input_column(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [{"question": "Q", "response_a": "", "rejected": "r"}])
    with pytest.raises(DataFormatError, match=r"m\.jsonl, line 1, field 'response_a': expected a non-empty string"):
        load_preferences(path, columns={"prompt": "question", "chosen": "response_a"})
    with pytest.raises(ValueError, match=r"'chosen' -> 'answer', but the input has no such column"):
        load_preferences(path, columns={"prompt": "question", "chosen": "answer"})
    with pytest.raises(ValueError, match="unknown schema names \\['answer'\\]"):
        load_preferences(path, columns={"answer": "response_a"})


# --------------------------------------------------------------------------- labels and votes


def test_votes_to_label_and_label_precedence():
    ps = from_records(
        [
            {"prompt": "p", "chosen": "c", "rejected": "r", "votes_chosen": "2", "votes_rejected": "2"},
            {"prompt": "p", "chosen": "c", "rejected": "r", "votes_chosen": 0, "votes_rejected": 4},
            {"prompt": "p", "chosen": "c", "rejected": "r", "votes_chosen": 3, "votes_rejected": 1, "label": 0.9},
            {"prompt": "p", "chosen": "c", "rejected": "r", "label": "0.25"},
        ]
    )
    assert ps.frame["label"].tolist() == [0.5, 0.0, 0.9, 0.25]
    assert ps.frame["votes_rejected"].tolist()[:3] == [2, 4, 1]


@pytest.mark.parametrize(
    ("extra", "field", "reason"),
    [
        ({"label": 1.5}, "label", "expected a probability in [0, 1], got 1.5"),
        ({"label": -0.1}, "label", "expected a probability in [0, 1], got -0.1"),
        ({"label": "yes"}, "label", "expected a number, got the string 'yes'"),
        ({"label": True}, "label", "expected a number, got the boolean True"),
        (
            {"votes_chosen": 2},
            "votes_rejected",
            "expected a vote count because 'votes_chosen' is given, got a missing field",
        ),
        (
            {"votes_chosen": 0, "votes_rejected": 0},
            "votes_chosen",
            "votes_chosen + votes_rejected must be > 0, got 0 votes in total",
        ),
        (
            {"votes_chosen": -1, "votes_rejected": 3},
            "votes_chosen",
            "expected a non-negative whole number, got the number -1",
        ),
        (
            {"votes_chosen": "2.5", "votes_rejected": 3},
            "votes_chosen",
            "expected a non-negative whole number, got the string '2.5'",
        ),
        ({"step": "ten"}, "step", "expected a non-negative whole number, got the string 'ten'"),
        ({"subset": 3}, "subset", "expected a string or null, got the number 3"),
    ],
)
def test_numeric_and_optional_field_errors(extra, field, reason):
    with pytest.raises(DataFormatError) as info:
        from_records(
            [{"prompt": "p", "chosen": "c", "rejected": "r"}, {"prompt": "p", "chosen": "c", "rejected": "r", **extra}]
        )
    assert str(info.value) == f"<records>, row 2, field '{field}': {reason}"


def test_checkpoint_and_step_for_policy_samples():
    ps = from_records(
        [
            {
                "prompt": "p",
                "chosen": "c",
                "rejected": "r",
                "checkpoint": "run1/ckpt-200",
                "step": "200.0",
                "rationale": "why",
            }
        ]
    )
    row = ps.frame.iloc[0]
    assert (row["checkpoint"], int(row["step"]), row["rationale"]) == ("run1/ckpt-200", 200, "why")


# --------------------------------------------------------------------------- skip mode, duplicates, bad arguments


def _mixed_rows():
    return [
        FLAT[0],
        {"id": "n1", "prompt": "p", "chosen": None, "rejected": "r"},
        FLAT[1],
        {"id": "n2", "prompt": "p", "chosen": "c", "rejected": "r", "label": 7},
        "not json",
        {"id": "n3", "prompt": "p", "chosen": "", "rejected": "r"},
        {"id": "a", "prompt": "dup", "chosen": "c", "rejected": "r"},
        {"id": "n4", "prompt": "p", "chosen": None, "rejected": "r"},
    ]


def test_skip_mode_records_every_dropped_row(tmp_path):
    path = write_jsonl(tmp_path / "mixed.jsonl", _mixed_rows())
    ps = load_preferences(path, on_error="skip")
    assert ps.frame["id"].tolist() == ["a", "b"]
    assert (ps.n_read, len(ps), ps.n_skipped) == (8, 2, 6)
    assert [(s.row, s.field) for s in ps.skipped] == [
        (2, "chosen"),
        (4, "label"),
        (5, None),
        (6, "chosen"),
        (7, "id"),
        (8, "chosen"),
    ]
    first = ps.skipped[0]
    assert first == SkippedRow(str(path), 2, "chosen", "expected a non-empty string, got null", "line")
    assert first.location == "line 2"
    assert ps.skipped[4].reason == "duplicate id 'a' (first used at line 1)"
    assert str(first) == f"{path}, line 2, field 'chosen': expected a non-empty string, got null"


def test_skip_summary_counts_field_and_reason(tmp_path):
    ps = load_preferences(write_jsonl(tmp_path / "mixed.jsonl", _mixed_rows()), on_error="skip")
    summary = ps.skip_summary()
    assert list(summary.columns) == ["field", "reason", "count"]
    assert summary.iloc[0].tolist() == ["chosen", "expected a non-empty string, got null", 2]
    assert summary["count"].sum() == 6 and len(summary) == 5
    empty = load_preferences(write_jsonl(tmp_path / "ok.jsonl", FLAT)).skip_summary()
    assert list(empty.columns) == ["field", "reason", "count"] and len(empty) == 0


def test_skip_mode_matches_raise_mode_error(tmp_path):
    path = write_jsonl(tmp_path / "mixed.jsonl", _mixed_rows())
    with pytest.raises(DataFormatError) as info:
        load_preferences(path)
    skipped = load_preferences(path, on_error="skip").skipped[0]
    assert (info.value.source, info.value.row, info.value.field, info.value.reason) == (
        skipped.source,
        skipped.row,
        skipped.field,
        skipped.reason,
    )


def test_no_usable_rows_reports_skip_counts(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "p", "chosen": None, "rejected": "r"}] * 3)
    with pytest.raises(
        DataFormatError,
        match=r"bad\.jsonl: no usable rows \(read 3, skipped 3\); most common problems: 3 x field 'chosen'",
    ):
        load_preferences(path, on_error="skip")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(DataFormatError, match=r"empty\.jsonl: no usable rows \(read 0, skipped 0\)"):
        load_preferences(tmp_path / "empty.jsonl")


def test_duplicate_ids_raise(tmp_path):
    path = write_csv(
        tmp_path / "dups.csv",
        ["id", "prompt", "chosen", "rejected"],
        [["x", "p", "c", "r"], ["y", "p", "c", "r"], ["x", "q", "c", "r"]],
    )
    with pytest.raises(DataFormatError) as info:
        load_preferences(path)
    assert str(info.value) == f"{path}, row 3, field 'id': duplicate id 'x' (first used at row 1)"


def test_invalid_arguments():
    records = [{"prompt": "p", "chosen": "c", "rejected": "r"}]
    with pytest.raises(ValueError, match="on_error must be one of"):
        from_records(records, on_error="ignore")
    with pytest.raises(ValueError, match="format must be one of"):
        load_preferences("x.jsonl", format="xml")


def test_missing_file_names_path(tmp_path):
    missing = tmp_path / "nope" / "prefs.jsonl"
    with pytest.raises(FileNotFoundError, match="nope/prefs.jsonl"):
        load_preferences(missing)


def test_unknown_suffix_needs_format(tmp_path):
    path = write_jsonl(tmp_path / "prefs.txt", FLAT)
    with pytest.raises(ValueError, match="cannot tell the format"):
        load_preferences(path)
    assert len(load_preferences(path, format="jsonl")) == 3


def test_hub_spec_offline_gives_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(ConnectionError) as info:
        load_preferences("hf:rm-workbench-tests/does-not-exist", split="train")
    message = str(info.value)
    assert "hf:rm-workbench-tests/does-not-exist" in message
    assert "offline" in message and "save_to_disk" in message


# --------------------------------------------------------------------------- in-memory constructors


def test_from_frame_keeps_extra_dtypes_and_numbers_rows():
    df = pd.DataFrame({"prompt": ["p", "q"], "chosen": ["c", "d"], "rejected": ["r", "s"], "score": [1, 2]})
    ps = from_frame(df)
    assert ps.frame["id"].tolist() == ["dataframe-1", "dataframe-2"]
    assert str(ps.frame["score"].dtype) == "int64"
    bad = df.assign(rejected=["r", None])
    with pytest.raises(DataFormatError, match=r"^<dataframe>, row 2, field 'rejected'"):
        from_frame(bad)
    skipped = from_frame(bad, on_error="skip")
    assert skipped.frame["score"].tolist() == [1] and skipped.n_read == 2


def test_to_frame_is_a_copy():
    ps = from_records([{"prompt": "p", "chosen": "c", "rejected": "r"}])
    copy = ps.to_frame()
    copy.loc[0, "chosen"] = "changed"
    assert ps.frame.loc[0, "chosen"] == "c"


def test_data_format_error_pickles():
    err = DataFormatError("f.csv", 3, "label", "bad", unit="row")
    back = pickle.loads(pickle.dumps(err))
    assert (back.source, back.row, back.field, back.reason, str(back)) == (
        "f.csv",
        3,
        "label",
        "bad",
        "f.csv, row 3, field 'label': bad",
    )


# --------------------------------------------------------------------------- content_hash and sample


def test_content_hash_stable_across_formats_and_sensitive_to_content(tmp_path):
    jsonl = load_preferences(write_jsonl(tmp_path / "h.jsonl", FLAT))
    rows = [
        [
            r["id"],
            r["prompt"],
            r["chosen"],
            r["rejected"],
            str(r.get("label", "")),
            str(r.get("votes_chosen", "")),
            str(r.get("votes_rejected", "")),
        ]
        for r in FLAT
    ]
    csv_set = load_preferences(
        write_csv(
            tmp_path / "h.csv", ["id", "prompt", "chosen", "rejected", "label", "votes_chosen", "votes_rejected"], rows
        )
    )
    h = jsonl.content_hash()
    assert len(h) == 64 and int(h, 16) >= 0
    assert h == csv_set.content_hash() == load_preferences(tmp_path / "h.jsonl").content_hash()
    assert from_records([{**FLAT[0], "label": 0.9}, *FLAT[1:]]).content_hash() != h
    assert from_records([{**FLAT[0], "chosen": "four"}, *FLAT[1:]]).content_hash() != h
    assert from_records(FLAT[:2]).content_hash() != h
    # Source name and extra columns do not matter.
    assert from_records([{**r, "extra": 1} for r in FLAT], source="elsewhere").content_hash() == h


def test_sample_is_seeded_ordered_and_keeps_skip_record():
    records = [{"prompt": f"p{i}", "chosen": "c", "rejected": "r"} for i in range(20)] + [
        {"prompt": "x", "chosen": "", "rejected": "r"}
    ]
    ps = from_records(records, on_error="skip")
    sub = ps.sample(5, seed=3)
    ids = sub.frame["id"].tolist()
    assert len(sub) == 5 and ids == sorted(ids, key=lambda s: int(s.split("-")[1]))
    assert ids == ps.sample(5, seed=3).frame["id"].tolist()
    assert any(ps.sample(5, seed=s).frame["id"].tolist() != ids for s in range(4, 10))
    assert sub.frame.index.tolist() == [0, 1, 2, 3, 4]
    assert (sub.n_skipped, sub.n_read, sub.source) == (1, 21, "<records>")
    assert ps.sample(None).frame["id"].tolist() == ps.frame["id"].tolist()
    assert ps.sample(100).frame["id"].tolist() == ps.frame["id"].tolist()
    with pytest.raises(ValueError, match="non-negative"):
        ps.sample(-1)
