"""Tests for workbench.data.relabel: export/import round trips with provenance, spreadsheet-safe CSV,
and errors that name the file, the row and the field."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from workbench.data.preferences import DataFormatError, from_frame
from workbench.data.relabel import QUEUE_COLUMNS, export_relabel_queue, import_relabels


@pytest.fixture
def pairs():
    frame = pd.DataFrame(
        {
            "id": ["s1", "s2", "s3", "s4", "s5"],
            "prompt": ["p1", "p2", "p3", "p4", "p5"],
            "chosen": ["c1", "=SUM(A1:A9)", 'c3\nsecond line, with "quotes"', "'quoted", "c5"],
            "rejected": ["r1", "r2", "-dash start", "r4", "@r5"],
            "category": ["x", "y", "x", None, "y"],
            "label": [1.0, 1.0, 1.0, 0.0, 1.0],
            "margin": [0.5, -1.0, 2.0, 0.0, np.nan],
        }
    )
    return from_frame(frame, source="orig")


def _fill(path, labels):
    if path.suffix == ".csv":
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        df["human_label"] = labels
        df["annotator"] = "ann-1"
        df.to_csv(path, index=False)
    else:
        recs = [json.loads(line) for line in path.read_text().splitlines()]
        for r, lab in zip(recs, labels):
            r["human_label"] = lab
        path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")


@pytest.mark.parametrize("ext", ["csv", "jsonl"])
def test_round_trip_with_provenance(tmp_path, pairs, ext):
    path = tmp_path / f"queue.{ext}"
    q = export_relabel_queue(pairs, path, reason="ensemble disagreement", seed=1)
    assert list(q.columns) == list(QUEUE_COLUMNS)
    assert q["queue_id"].tolist() == [f"queue-000{i}" for i in range(1, 6)]
    assert (q["human_label"] == "").all()
    # the RM preference follows the shown order: margin is chosen - rejected
    for _, row in q.iterrows():
        m = pairs.frame.set_index("id").loc[row["source_id"], "margin"]
        if np.isnan(m):
            assert row["rm_preference"] == ""
            continue
        shown = m if row["a_source"] == "chosen" else -m
        assert row["rm_margin"] == pytest.approx(shown)
        assert row["rm_preference"] == ("a" if shown > 0 else "b" if shown < 0 else "tie")
    assert set(q["a_source"]) == {"chosen", "rejected"}  # shuffled

    _fill(path, ["a", "B", " tie ", "", "b"])
    ps = import_relabels(path, pairs, date="2024-06-01")
    assert len(ps) == 4 and ps.n_skipped == 1 and ps.n_read == 5
    assert ps.skipped[0].field == "human_label" and ps.skipped[0].row == 4
    f = ps.frame.set_index("source_id")
    for sid, lab in zip(q["source_id"], ["a", "b", "tie", "", "b"]):
        if not lab:
            assert sid not in f.index
            continue
        row = q.set_index("source_id").loc[sid]
        winner = row["response_a"] if lab in ("a", "tie") else row["response_b"]
        loser = row["response_b"] if lab in ("a", "tie") else row["response_a"]
        assert f.loc[sid, "chosen"] == winner and f.loc[sid, "rejected"] == loser
        assert f.loc[sid, "label"] == (0.5 if lab == "tie" else 1.0)
        assert f.loc[sid, "queue_id"] == row["queue_id"]
        assert f.loc[sid, "id"] == f"{sid}~{row['queue_id']}"
    assert set(f["label_source"]) == {"relabel"}
    assert set(f["relabel_file"]) == {str(path)} and set(f["relabel_date"]) == {"2024-06-01"}
    assert set(f["reason"]) == {"ensemble disagreement"}
    assert f.loc["s1", "category"] == "x"
    # texts survive the round trip exactly (formula guard removed again, newlines and quotes kept)
    orig = pairs.frame.set_index("id")
    for sid in f.index:
        assert {f.loc[sid, "chosen"], f.loc[sid, "rejected"]} == {orig.loc[sid, "chosen"], orig.loc[sid, "rejected"]}
    # agreement with the original label: s5 label 1 -> human "b"; original s4 had label 0 (rejected preferred)
    for sid in f.index:
        if f.loc[sid, "label"] == 0.5:
            assert np.isnan(f.loc[sid, "agrees_with_original"])
        else:
            ol = orig.loc[sid, "label"]
            winner = orig.loc[sid, "chosen"] if ol > 0.5 else orig.loc[sid, "rejected"]
            assert f.loc[sid, "agrees_with_original"] == float(f.loc[sid, "chosen"] == winner)


def test_csv_cells_are_formula_safe(tmp_path, pairs):
    path = tmp_path / "q.csv"
    export_relabel_queue(pairs, path, reason="r", shuffle=False)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert raw.loc[1, "response_a"] == "'=SUM(A1:A9)"
    assert raw.loc[2, "response_b"] == "'-dash start"
    assert raw.loc[3, "response_a"] == "''quoted"
    assert raw.loc[4, "response_b"] == "'@r5"
    for col in ("response_a", "response_b", "prompt"):
        assert not raw[col].str.match(r"^[=+\-@]").any()


def test_checkpoint_pair_items_and_reason_column(tmp_path):
    items = pd.DataFrame(
        {
            "id": ["a|b", "c|d"],
            "prompt": ["P", "Q"],
            "response_a": ["early", "early2"],
            "response_b": ["late", "late2"],
            "score_a": [1.0, 3.0],
            "score_b": [2.0, 1.0],
            "reason": ["drift trigger", None],
        }
    )
    q = export_relabel_queue(items, tmp_path / "d.jsonl", reason="fallback", shuffle=False)
    assert q["rm_preference"].tolist() == ["b", "a"]
    assert q["reason"].tolist() == ["drift trigger", "fallback"]
    assert q["a_source"].tolist() == ["response_a", "response_a"]
    _fill(tmp_path / "d.jsonl", ["b", "a"])
    ps = import_relabels(tmp_path / "d.jsonl", items, date="2024-01-02")
    assert ps.frame["chosen"].tolist() == ["late", "early2"]
    assert ps.frame["agrees_with_original"].isna().all()


def test_export_validation(tmp_path, pairs):
    with pytest.raises(ValueError, match="reason"):
        export_relabel_queue(pairs, tmp_path / "q.csv")
    with pytest.raises(ValueError, match=r"\.csv or \.jsonl"):
        export_relabel_queue(pairs, tmp_path / "q.txt", reason="r")
    with pytest.raises(ValueError, match="chosen"):
        export_relabel_queue(
            pd.DataFrame({"id": [1], "prompt": ["p"], "response": ["r"]}), tmp_path / "q.csv", reason="r"
        )
    with pytest.raises(ValueError, match="duplicate ids"):
        export_relabel_queue(
            pd.DataFrame({"id": [1, 1], "prompt": ["p", "q"], "chosen": ["a", "b"], "rejected": ["c", "d"]}),
            tmp_path / "q.csv",
            reason="r",
        )


@pytest.fixture
def labelled(tmp_path, pairs):
    path = tmp_path / "queue.csv"
    export_relabel_queue(pairs, path, reason="r")
    return path, pd.read_csv(path, dtype=str, keep_default_na=False)


def _expect_error(path, df, pairs, row, field, text):
    df.to_csv(path, index=False)
    with pytest.raises(DataFormatError) as exc:
        import_relabels(path, pairs)
    msg = str(exc.value)
    assert str(path) in msg and f"row {row}" in msg and f"field {field!r}" in msg and text in msg
    assert exc.value.row == row and exc.value.field == field


def test_import_bad_label(labelled, pairs):
    path, df = labelled
    df.loc[2, "human_label"] = "maybe"
    _expect_error(path, df, pairs, 3, "human_label", "expected one of ['a', 'b', 'tie']")


def test_import_unknown_id(labelled, pairs):
    path, df = labelled
    df["human_label"] = "a"
    df.loc[1, "source_id"] = "nope"
    _expect_error(path, df, pairs, 2, "source_id", "unknown source_id 'nope'")


def test_import_mismatched_response(labelled, pairs):
    path, df = labelled
    df["human_label"] = "a"
    df.loc[0, "response_b"] = "edited text"
    _expect_error(path, df, pairs, 1, "response_b", "does not match the responses of source item 's1'")


def test_import_duplicate_queue_id_and_missing_column(labelled, pairs):
    path, df = labelled
    df["human_label"] = "a"
    df.loc[4, "queue_id"] = df.loc[0, "queue_id"]
    _expect_error(path, df, pairs, 5, "queue_id", "duplicate queue_id")
    df.drop(columns=["human_label"]).to_csv(path, index=False)
    with pytest.raises(DataFormatError, match="field 'human_label': missing column"):
        import_relabels(path, pairs)


def test_import_nothing_labelled(labelled, pairs):
    path, df = labelled
    with pytest.raises(DataFormatError, match=r"no labelled rows \(5 unlabelled of 5\)"):
        import_relabels(path, pairs)


def test_jsonl_errors_use_line_numbers(tmp_path, pairs):
    path = tmp_path / "q.jsonl"
    export_relabel_queue(pairs, path, reason="r")
    lines = path.read_text().splitlines()
    rec = json.loads(lines[3])
    rec["human_label"] = "x"
    lines[3] = json.dumps(rec)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"line 4, field 'human_label'"):
        import_relabels(path, pairs)
