"""``workbench doctor`` and :func:`workbench.data.diagnose` (issue 14, item 5).

One JSON lines file holds one of each problem; the expected counts and row numbers
are worked out by hand in the comments next to each line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from workbench.cli import main
from workbench.data import DOCTOR_CHECKS, DataFormatError, diagnose, load_preferences, skip_kind

CHAT_MISMATCH = {
    "id": "g",
    "chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "A"}],
    "rejected": [{"role": "user", "content": "another q"}, {"role": "assistant", "content": "B"}],
}
LINES = [
    {"id": "a", "prompt": "p1", "chosen": "good", "rejected": "bad"},  # 1 ok
    {"id": "b", "prompt": "p1", "chosen": "good", "rejected": "bad"},  # 2 repeats line 1
    {"id": "a", "prompt": "p2", "chosen": "x", "rejected": "y"},  # 3 duplicate id (skipped)
    {"id": "c", "prompt": "p3", "chosen": "same", "rejected": "same"},  # 4 identical (skipped)
    {"id": "d", "prompt": "p1", "chosen": "bad", "rejected": "good"},  # 5 prefers 'bad': contradicts line 1
    {"id": "e", "prompt": "p4", "chosen": "hello  world", "rejected": "hello world\n"},  # 6 whitespace only
    {"id": "f", "prompt": "p5", "chosen": "u", "rejected": "v", "votes_chosen": 1, "votes_rejected": 3, "label": 1},
    CHAT_MISMATCH,  # 8 chosen and rejected continue different conversations (skipped)
    None,  # 9 blank line
    "{not json",  # 10 invalid JSON (skipped)
    {"id": "h", "prompt": "p6", "chosen": "m", "rejected": "n", "label": 0.0},  # 11 prefers n
    {"id": "i", "prompt": "p6", "chosen": "n", "rejected": "m", "label": 1.0},  # 12 prefers n too: agrees
    {"id": "j", "prompt": "p6", "chosen": "m", "rejected": "n", "label": 0.5},  # 13 a tie: no contradiction; repeats 11
]
# line 7: label 1 with votes 1:3 contradicts its own votes (skipped)
EXPECTED = {
    "skipped": 5,  # lines 3, 4, 7, 8, 10
    "duplicate_ids": 1,  # line 3
    "duplicate_pairs": 2,  # line 2, and line 13 (same texts as line 11; labels are not compared)
    "identical_pairs": 2,  # line 4 (skipped) + line 6 (loaded, whitespace only)
    "contradicting_votes": 2,  # line 7 (skipped) + line 5 (loaded, opposite of line 1)
    "prompt_mismatches": 1,  # line 8
    "truncated": 0,  # not checked without a model
}


def write_jsonl(path: Path, lines) -> Path:
    text = "".join(("" if x is None else x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def messy(tmp_path) -> Path:
    return write_jsonl(tmp_path / "messy.jsonl", LINES)


def test_counts_and_rows_match_the_hand_worked_file(messy):
    report = diagnose(messy)
    assert report.counts == EXPECTED
    assert list(report.counts) == list(DOCTOR_CHECKS)
    assert (report.n_read, report.n_loaded) == (12, 7)  # 12 non-blank lines, 5 skipped
    assert not report.clean and report.exit_code == 1
    f = report.finding
    assert f("duplicate_pairs").examples == ["line 2 repeats line 1", "line 13 repeats line 11"]
    assert f("contradicting_votes").examples[1] == "line 5 prefers the other response than line 1"
    assert f("contradicting_votes").examples[0].startswith("line 7: label 1 contradicts the votes (1 for")
    assert f("identical_pairs").examples[0].startswith("line 4: identical to 'chosen'")
    assert f("identical_pairs").examples[1] == "line 6: chosen and rejected differ only in whitespace"
    assert f("duplicate_ids").examples == ["line 3: duplicate id 'a' (first used at line 1)"]
    assert f("prompt_mismatches").examples[0].startswith("line 8: the conversation before the final assistant turn")
    groups = {(g["field"], g["kind"]): (g["count"], g["rows"]) for g in f("skipped").groups}
    assert groups == {
        ("id", "duplicate_id"): (1, ["line 3"]),
        ("rejected", "identical_pair"): (1, ["line 4"]),
        ("label", "contradicting_votes"): (1, ["line 7"]),
        ("rejected", "prompt_mismatch"): (1, ["line 8"]),
        (None, "invalid_json"): (1, ["line 10"]),
    }
    assert f("truncated").note.startswith("not checked")
    # the same checks on a set loaded by hand
    assert diagnose(load_preferences(messy, on_error="skip")).counts == EXPECTED


def test_row_numbers_follow_sampling_and_other_formats(tmp_path):
    rows = [{"prompt": "p", "chosen": f"c{i}", "rejected": f"r{i}"} for i in range(6)]
    rows.append(dict(rows[4]))  # row 7 repeats row 5
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text(
        "prompt,chosen,rejected\n" + "".join(f"{r['prompt']},{r['chosen']},{r['rejected']}\n" for r in rows)
    )
    report = diagnose(csv_path)
    assert report.finding("duplicate_pairs").examples == ["row 7 repeats row 5"]
    ps = load_preferences(csv_path).sample(5, seed=1)
    kept = [int(i.rsplit("-", 1)[1]) for i in ps.frame["id"]]  # generated ids carry the row number
    assert ps.row_numbers == kept and [ps.row_label(k) for k in range(len(ps))] == [f"row {n}" for n in kept]


def test_clean_data_and_skip_kinds(tmp_path):
    clean = write_jsonl(tmp_path / "clean.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}])
    report = diagnose(clean)
    assert report.clean and report.exit_code == 0 and set(report.counts.values()) == {0}
    assert skip_kind("expected a non-empty string, got null") == "expected a non-empty string"
    assert skip_kind("expected a finite number, got NaN (leave the field out ...)") == "nan"


def test_truncation_with_a_tiny_model(tmp_path, tiny_models, capsys):
    long_text = " ".join(["water boils at one hundred degrees"] * 40)  # far over 32 tokens
    rows = [
        {"prompt": "hi", "chosen": "yes", "rejected": "no"},  # 1 short
        {"prompt": "hi", "chosen": "fine", "rejected": long_text},  # 2 rejected cut
        {"prompt": "hi", "chosen": long_text + " a", "rejected": long_text + " b"},  # 3 both cut
    ]
    path = write_jsonl(tmp_path / "long.jsonl", rows)
    # independently: token counts of prompt + response with the model's own tokenizer, far from 32 either way
    tok = AutoTokenizer.from_pretrained(tiny_models["bert"])
    counts = [[len(tok(r["prompt"], r[side])["input_ids"]) for side in ("chosen", "rejected")] for r in rows]
    assert [[n > 32 for n in pair] for pair in counts] == [[False, False], [False, True], [True, True]]
    assert max(counts[0] + counts[1][:1]) < 16 and min(counts[1][1:] + counts[2]) > 64

    code = main(["doctor", "--data", str(path), "--model", str(tiny_models["bert"]), "--max-length", "32", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["counts"]["truncated"] == 2
    truncated = report["findings"][DOCTOR_CHECKS.index("truncated")]
    assert truncated["examples"] == ["line 2: rejected", "line 3: chosen and rejected"]
    assert report["truncation"] == {"checked": True, "model": truncated["note"].split(",")[0], "max_length": 32}
    assert sum(report["counts"].values()) == 2  # nothing else is wrong with these rows


def test_cli_exit_codes_and_outputs(messy, tmp_path, capsys):
    assert main(["doctor", "--data", str(messy)]) == 1
    text = capsys.readouterr().out
    assert "FOUND exact duplicate pairs: 2" in text and "line 2 repeats line 1" in text
    assert "ok    pairs truncated at max_length: 0" in text
    assert "6 check(s) found problems" in text and "(exit status 1)" in text

    assert main(["doctor", "--data", str(messy), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["counts"] == EXPECTED and report["exit_code"] == 1 and report["rows_read"] == 12

    clean = write_jsonl(tmp_path / "clean.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}])
    assert main(["doctor", "--data", str(clean)]) == 0
    assert "clean: nothing found (exit status 0)" in capsys.readouterr().out

    missing = tmp_path / "nope.jsonl"
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    all_bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "p", "chosen": "x", "rejected": "x"}])
    for path, words in (
        (missing, "preference data not found"),
        (garbage, "not a readable Parquet file"),
        (all_bad, "no usable rows"),
    ):
        assert main(["doctor", "--data", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("workbench doctor: error:") and str(path) in err and words in err
    assert main(["doctor", "--data", str(clean), "--max-length", "8"]) == 2
    assert "--max-length needs --model" in capsys.readouterr().err


def test_text_report_escapes_terminal_control_characters(tmp_path, capsys):
    evil = "\x1b[2J\u202e"
    path = write_jsonl(
        tmp_path / "evil.jsonl",
        [
            {"id": evil, "prompt": "p", "chosen": "a", "rejected": "b"},
            {"id": evil, "prompt": "p", "chosen": "c", "rejected": "d"},
        ],
    )
    assert main(["doctor", "--data", str(path)]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "duplicate ids: 1" in out
    with pytest.raises(DataFormatError):
        load_preferences(path)


def test_kept_hh_prompt_mismatches_are_counted_with_their_rows(tmp_path, capsys):
    """HH-RLHF pairs whose transcripts continue different conversations are kept and flagged by the
    loader; doctor counts them as prompt mismatches and names their lines (issue 13 leftover)."""
    lines = [
        {"chosen": "\n\nHuman: What is 2+2?\n\nAssistant: 4", "rejected": "\n\nHuman: What is 2+2?\n\nAssistant: 5"},
        {
            "chosen": "\n\nHuman: Name a fruit.\n\nAssistant: Apple",
            "rejected": "\n\nHuman: Name a car.\n\nAssistant: Ford",
        },
        {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello", "rejected": "\n\nHuman: Hi\n\nAssistant: Go away"},
        {"chosen": "\n\nHuman: Say A\n\nAssistant: A", "rejected": "\n\nHuman: Say B\n\nAssistant: B"},
    ]
    path = write_jsonl(tmp_path / "hh.jsonl", lines)
    ps = load_preferences(path, on_error="skip")
    assert len(ps) == 4 and ps.n_skipped == 0  # the mismatching pairs (lines 2 and 4) are kept ...
    assert ps.flag_counts() == {"prompt_mismatch": 2}  # ... and flagged
    report = diagnose(path)
    finding = report.finding("prompt_mismatches")
    assert finding.count == 2
    assert [e.split(" ", 2)[:2] for e in finding.examples] == [["line", "2"], ["line", "4"]]
    assert all("kept" in e for e in finding.examples)
    assert "2 kept" in finding.note
    assert report.counts["skipped"] == 0 and not report.clean and report.exit_code == 1
    # the CLI reports them too, with the line numbers, and exits 1
    assert main(["doctor", "--data", str(path)]) == 1
    text = capsys.readouterr().out
    assert "FOUND chosen/rejected prompt mismatches: 2" in text and "line 2" in text and "line 4" in text
    assert main(["doctor", "--data", str(path), "--json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["counts"]["prompt_mismatches"] == 2
