"""Property-based tests (Hypothesis) for the preference loaders (issue 14, item 4).

Rows with arbitrary Unicode (control characters, RTL overrides, BOMs, astral
characters, lone surrogates), huge and empty fields and values of mixed types are
written as real JSON lines, JSON, CSV and Parquet files, and files of valid rows
are cut at arbitrary bytes or given invalid UTF-8. Every outcome must be one of

* the rows read back, equal to the input (ids, texts, labels, categories, extra
  columns), or
* a :class:`DataFormatError` naming the file, the row or line and a field that is
  really at fault (or the whole file when it cannot be read),

and never another exception. An independent oracle (:func:`expect`) decides from
the input alone whether a row is valid and which fields may be named.

Settings are bounded and derandomised so that CI runs the same examples every time.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from workbench.data import DataFormatError, load_preferences

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
MISSING = object()  # a field left out of the row
TEXT_FIELDS = ("prompt", "chosen", "rejected")

# --------------------------------------------------------------------------- strategies

# every code point, control characters (Cc) and format characters (RTL overrides, BOM, ZWJ) included
any_char = st.characters(codec=None, exclude_categories=("Cs",))
surrogate = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
odd_char = st.sampled_from(["\x00", "\x1b", "\r", "\n", "\u2028", "\u202e", "\ufeff", "\u200d", "\x85", "🙂"])


def huge(pieces=None):
    """A field of 40k-200k characters (CSV's default 128 KiB field limit included)."""
    pieces = st.text(any_char, min_size=1, max_size=4) if pieces is None else pieces
    return st.builds(lambda s, n: (s * n)[:n], pieces, st.integers(40_000, 200_000))


plain_text = st.one_of(
    st.text(any_char, max_size=40),
    st.text(st.one_of(any_char, odd_char), max_size=12),
    st.sampled_from(["", " ", "\t\n", "\u3000", "0.5", "NaN", "null", "[1, 2]", "007", "true"]),
)
text_value = st.one_of(plain_text, plain_text, huge().filter(bool))
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    plain_text,
)
mixed = st.one_of(scalar, st.lists(scalar, max_size=3), st.dictionaries(st.text(max_size=3), scalar, max_size=2))
label_value = st.one_of(
    st.floats(0, 1),
    st.sampled_from([0, 1, 0.5, float("nan"), float("inf"), -0.1, 1.5, True, None, "0.25", " ", "high", "1e-3"]),
    mixed,
)


def mostly(good, bad, tenths=8):
    """``good`` in about ``tenths``/10 of the draws, else ``bad`` (so that whole files of valid rows come up)."""
    return st.integers(0, 9).flatmap(lambda k: good if k < tenths else bad)


def field(values, missing_ok=True):
    return st.one_of(values, st.just(MISSING)) if missing_ok else values


response = st.one_of(
    st.text(st.one_of(any_char, odd_char), min_size=1, max_size=40), huge(st.text(any_char, min_size=1, max_size=3))
).filter(str.strip)


@st.composite
def json_rows(draw, min_size=1, max_size=6, unicode_errors=True):
    """Rows with mixed types in every schema field, an optional extra column and (rarely) a lone surrogate."""
    rows = []
    good = 10 if draw(st.booleans()) else 7  # half the files hold only valid rows
    for i in range(draw(st.integers(min_size, max_size))):
        row = {
            "id": draw(mostly(st.sampled_from([f"r{i}", i, float(i), MISSING, None, " "]), mixed, good)),
            "prompt": draw(mostly(text_value, field(mixed), good)),
            "chosen": draw(mostly(response, st.one_of(text_value, mixed), good)),
            "rejected": draw(mostly(response, st.one_of(text_value, mixed), good)),
            "label": draw(mostly(field(st.floats(0, 1)), label_value, good)),
            "category": draw(mostly(field(st.one_of(st.none(), plain_text)), mixed, good)),
            "x_extra": draw(field(mixed)),
        }
        if unicode_errors and good < 10 and draw(st.integers(0, 4)) == 0:
            key = draw(st.sampled_from(["prompt", "chosen", "category", "x_extra"]))
            row[key] = draw(plain_text) + draw(surrogate) + draw(plain_text)
        rows.append({k: v for k, v in row.items() if v is not MISSING})
    return rows


csv_text = st.one_of(plain_text, plain_text, huge().filter(bool)).filter(lambda s: not s.lstrip().startswith("["))
csv_response = response.filter(lambda s: not s.lstrip().startswith("["))


@st.composite
def csv_rows(draw):
    """All-text rows (CSV has no types): ids, texts, labels and categories as strings, some empty."""
    rows = []
    for i in range(draw(st.integers(1, 6))):
        rows.append(
            {
                "id": draw(st.one_of(st.just(f"r{i}"), st.just(""), plain_text)),
                "prompt": draw(csv_text),
                "chosen": draw(mostly(csv_response, csv_text, 9)),
                "rejected": draw(mostly(csv_response, csv_text, 9)),
                "label": draw(
                    mostly(st.sampled_from(["", "0", "1", "0.75", " 0.5 "]), st.sampled_from(["NaN", "2", "x", "inf"]))
                ),
                "category": draw(plain_text),
            }
        )
    return rows


# --------------------------------------------------------------------------- the oracle


def _bad_unicode(value) -> bool:
    if isinstance(value, str):
        return re.search("[\ud800-\udfff]", value) is not None
    if isinstance(value, dict):
        return any(_bad_unicode(k) or _bad_unicode(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_bad_unicode(v) for v in value)
    return False


def _number(value):
    """The label as a float, ``MISSING`` for the default, or ``None`` when invalid."""
    if value is MISSING or value is None:
        return MISSING
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not value.strip():
            return MISSING
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return value if math.isfinite(value) and 0 <= value <= 1 else None


def _row_id(value, default):
    if value is MISSING or value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return None


def expect(row: dict, default_id: str, csv_cells: bool = False):
    """``(expected loaded row or None, fields that may be named when the row is bad)``.

    Written from the schema's rules, not from the loader: text fields are strings
    (responses not blank and different), the label a finite number in [0, 1] or a
    numeric string (blank or null: the default 1.0), the category a string (blank:
    ``None``), the id a string or a whole number; nothing may hold a lone surrogate.
    """
    get = lambda k: row.get(k, MISSING)  # noqa: E731
    if csv_cells:  # an empty CSV cell is a missing value
        get = lambda k: MISSING if row.get(k, "") == "" else row[k]  # noqa: E731
    bad = set()
    unicode = {k for k, v in row.items() if _bad_unicode(k) or _bad_unicode(v)}
    if unicode:
        return None, unicode
    prompt, chosen, rejected = get("prompt"), get("chosen"), get("rejected")
    if csv_cells and prompt is MISSING:
        prompt = ""  # the prompt may be empty
    if any(isinstance(v, list) for v in (chosen, rejected)):
        bad |= {"prompt", "chosen", "rejected"}  # a chat-message row that is not one
    elif isinstance(prompt, list):
        bad |= {"prompt", "chosen", "rejected"}
    else:
        if not isinstance(prompt, str):
            bad.add("prompt")
        for key, value in (("chosen", chosen), ("rejected", rejected)):
            if not isinstance(value, str) or not value.strip():
                bad.add(key)
        if not bad and chosen == rejected:
            bad.add("rejected")
    label = _number(get("label"))
    if label is None:
        bad.add("label")
    category = get("category")
    if category is not MISSING and category is not None and not isinstance(category, str):
        bad.add("category")
    row_id = _row_id(get("id"), default_id)
    if row_id is None:
        bad.add("id")
    if bad:
        return None, bad
    out = {
        "id": row_id,
        "prompt": prompt,
        "chosen": chosen,
        "rejected": rejected,
        "label": 1.0 if label is MISSING else label,
        "category": category if isinstance(category, str) and category.strip() else None,
    }
    return out, set()


def check_outcome(path: Path, rows: list[dict], unit: str, csv_cells: bool = False) -> None:
    """Load ``path`` both ways and compare with the oracle, row by row."""
    expected, bad = [], []
    for n, row in enumerate(rows, start=1):
        exp, fields = expect(row, f"{path.stem}-{n}", csv_cells)
        expected.append(exp)
        bad.append(fields)
    # duplicate ids: the second use of an id is a bad row (field 'id')
    seen = set()
    for n, exp in enumerate(expected):
        if exp is None:
            continue
        if exp["id"] in seen:
            expected[n], bad[n] = None, {"id"}
        else:
            seen.add(exp["id"])
    first_bad = next((n for n, e in enumerate(expected) if e is None), None)

    try:
        ps = load_preferences(path)
    except DataFormatError as exc:
        event(f"error naming field {exc.field!r}")
        assert first_bad is not None, f"valid rows rejected: {exc}"
        assert exc.source == str(path) and str(exc).startswith(str(path))
        assert (exc.row, exc.unit) == (first_bad + 1, unit), str(exc)
        assert exc.field in bad[first_bad], f"{exc} (the oracle expects one of {bad[first_bad]})"
        assert f"{unit} {first_bad + 1}" in str(exc)
    else:
        event("every row loaded")
        assert first_bad is None, f"row {first_bad + 1} should be rejected ({bad[first_bad]}): {rows[first_bad]!r}"
        check_frame(ps, expected, rows, csv_cells)

    n_good = sum(e is not None for e in expected)
    try:
        ps = load_preferences(path, on_error="skip")
    except DataFormatError as exc:
        assert n_good == 0 and exc.row is None and str(exc).startswith(f"{path}: no usable rows")
        return
    assert [s.row for s in ps.skipped] == [n + 1 for n, e in enumerate(expected) if e is None]
    for s in ps.skipped:
        assert s.field in bad[s.row - 1] and s.unit == unit and s.source == str(path)
    check_frame(ps, [e for e in expected if e is not None], [r for r, e in zip(rows, expected) if e is not None])
    assert ps.n_read == len(rows)


def check_frame(ps, expected: list[dict], rows: list[dict], csv_cells: bool = False) -> None:
    cols = ["id", "prompt", "chosen", "rejected", "label", "category"]
    got = ps.frame[cols].to_dict("records")
    assert got == expected
    if "x_extra" in ps.frame and not csv_cells:  # extra columns come back unchanged
        for value, row in zip(ps.frame["x_extra"], rows):
            want = row.get("x_extra")
            if want is None or (isinstance(want, float) and math.isnan(want)):
                assert value is None or value != value  # None or NaN
            else:
                assert value == want


# --------------------------------------------------------------------------- writers


def write_jsonl(path: Path, rows: list[dict], ensure_ascii: bool) -> Path:
    lines = [json.dumps(r, ensure_ascii=ensure_ascii or _bad_unicode(r)) for r in rows]
    path.write_bytes("".join(line + "\n" for line in lines).encode("utf-8"))
    return path


def write_csv(path: Path, rows: list[dict], crlf: bool) -> Path:
    """CRLF lines with minimal quoting (the csv module's default), or LF lines with every field quoted."""
    buf = io.StringIO(newline="")
    quoting = csv.QUOTE_MINIMAL if crlf else csv.QUOTE_ALL
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\r\n" if crlf else "\n", quoting=quoting)
    writer.writeheader()
    writer.writerows(rows)
    path.write_bytes(buf.getvalue().encode("utf-8"))
    return path


# --------------------------------------------------------------------------- properties


@SETTINGS
@given(rows=json_rows(), ensure_ascii=st.booleans())
def test_jsonl_rows_load_equal_or_fail_by_name(tmp_path_factory, rows, ensure_ascii):
    path = write_jsonl(tmp_path_factory.mktemp("jsonl") / "data.jsonl", rows, ensure_ascii)
    check_outcome(path, rows, "line")


@SETTINGS
@given(rows=json_rows())
def test_json_list_rows_load_equal_or_fail_by_name(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("json") / "data.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    check_outcome(path, rows, "row")


@SETTINGS
@given(rows=csv_rows(), crlf=st.booleans())
def test_csv_rows_load_equal_or_fail_by_name(tmp_path_factory, rows, crlf):
    path = write_csv(tmp_path_factory.mktemp("csv") / "data.csv", rows, crlf)
    check_outcome(path, rows, "row", csv_cells=True)


cr_text = st.lists(
    st.one_of(st.text(any_char, max_size=6), st.sampled_from(["\r", "\r\n", "\n", '"', ","])), max_size=5
)


@SETTINGS
@given(texts=st.lists(st.tuples(cr_text, cr_text, cr_text, cr_text), min_size=1, max_size=5))
def test_csv_with_unquoted_carriage_returns_never_loads_a_fragment(tmp_path_factory, texts):
    """pandas writes a field holding a lone \\r unquoted with \\n line ends: CSV splits that row in two.

    Every row that loads is an input row, unchanged; a split row is a named error (never two half rows).
    """
    rows = [
        {
            "id": f"r{i}",
            "prompt": "".join(p),
            "chosen": "c" + "".join(c),
            "rejected": "r" + "".join(r),
            "category": "k" + "".join(k) + "k",  # the last column: a \\r in it leaves a whole first half
        }
        for i, (p, c, r, k) in enumerate(texts)
    ]
    path = tmp_path_factory.mktemp("cr") / "data.csv"
    pd.DataFrame(rows).to_csv(path, index=False)  # LF line ends, minimal quoting
    by_id = {r["id"]: r for r in rows}
    for on_error in ("raise", "skip"):
        try:
            ps = load_preferences(path, on_error=on_error)
        except DataFormatError as exc:
            assert str(exc).startswith(f"{path}"), str(exc)
            if exc.row is not None and "carriage return" in exc.reason:
                assert "quoting=csv.QUOTE_ALL" in exc.reason
            continue
        for got in ps.frame[["id", "prompt", "chosen", "rejected", "category"]].to_dict("records"):
            assert got == by_id[got["id"]]
        clean = [r["id"] for r in rows if "\r" not in "".join(r.values())]
        assert set(clean) <= set(ps.frame["id"])  # rows without a \r always load


# Parquet columns have one type each: draw the type per column, then the values.
PARQUET_TYPES = {
    "string": (pa.string(), st.one_of(st.none(), text_value)),
    "text": (pa.string(), text_value),
    "response": (pa.string(), response),
    "int": (pa.int64(), st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1))),
    "id": (pa.int64(), st.integers(0, 10**6)),
    "float": (pa.float64(), st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))),
    "label": (pa.float64(), st.one_of(st.none(), st.floats(0, 1))),
    "bool": (pa.bool_(), st.one_of(st.none(), st.booleans())),
    "list": (pa.list_(pa.string()), st.one_of(st.none(), st.lists(plain_text, max_size=2))),
}


@st.composite
def parquet_table(draw):
    n = draw(st.integers(1, 5))
    good = 10 if draw(st.booleans()) else 7  # half the files hold only valid rows
    columns = {}
    kinds = {  # the first kind is the usual one, drawn most of the time
        "id": ["id", "string", "float"],
        "prompt": ["text", "string", "int", "list"],
        "chosen": ["response", "string", "float"],
        "rejected": ["response", "string", "bool"],
        "label": ["label", "float", "int", "string", "bool"],
        "category": ["string", "int"],
    }
    for name, options in kinds.items():
        kind = draw(mostly(st.just(options[0]), st.sampled_from(options[1:]), good))
        arrow_type, values = PARQUET_TYPES[kind]
        columns[name] = (arrow_type, draw(st.lists(values, min_size=n, max_size=n)))
    if draw(st.booleans()):
        columns.pop("id")  # generated ids
    return columns


@SETTINGS
@given(columns=parquet_table())
def test_parquet_rows_load_equal_or_fail_by_name(tmp_path_factory, columns):
    path = tmp_path_factory.mktemp("parquet") / "data.parquet"
    table = pa.table({k: pa.array(v, type=t, from_pandas=False) for k, (t, v) in columns.items()})
    pq.write_table(table, path)
    n = table.num_rows
    rows = [{k: v[i] for k, (_, v) in columns.items()} for i in range(n)]
    # a null is a missing value, as in the other formats
    rows = [{k: v for k, v in r.items() if v is not None} for r in rows]
    check_outcome(path, rows, "row")


# --------------------------------------------------------------------------- damaged files

valid_text = st.one_of(
    st.text(st.one_of(any_char, odd_char), min_size=1, max_size=30), huge(st.text(any_char, min_size=1, max_size=3))
).filter(lambda s: s.strip() and not s.lstrip().startswith("["))


@st.composite
def valid_rows(draw):
    rows = []
    for i in range(draw(st.integers(1, 5))):
        chosen = "c" + draw(valid_text)
        rows.append({"id": f"r{i}", "prompt": draw(valid_text), "chosen": chosen, "rejected": "r" + draw(valid_text)})
    return rows


def write_any(path: Path, rows: list[dict]) -> Path:
    fmt = path.suffix
    if fmt == ".jsonl":
        return write_jsonl(path, rows, ensure_ascii=False)
    if fmt == ".json":
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
        return path
    if fmt == ".csv":
        return write_csv(path, rows, crlf=True)
    pq.write_table(pa.table({k: [r[k] for r in rows] for k in rows[0]}), path)
    return path


@SETTINGS
@given(rows=valid_rows(), fmt=st.sampled_from(["jsonl", "json", "csv", "parquet"]), cut=st.floats(0, 1))
def test_truncated_files_give_input_rows_or_named_errors(tmp_path_factory, rows, fmt, cut):
    """A file cut at any byte: the surviving rows are input rows (CSV: the last one may be cut short)."""
    path = write_any(tmp_path_factory.mktemp("cut") / f"data.{fmt}", rows)
    assert load_preferences(path).frame[["id", "prompt", "chosen", "rejected"]].to_dict("records") == rows
    data = path.read_bytes()
    path.write_bytes(data[: int(cut * (len(data) - 1))])
    for on_error in ("raise", "skip"):
        try:
            ps = load_preferences(path, on_error=on_error)
        except DataFormatError as exc:
            assert str(exc).startswith(str(path)), str(exc)
            continue
        got = ps.frame[["id", "prompt", "chosen", "rejected"]].to_dict("records")
        by_id = {r["id"]: r for r in rows}
        if fmt == "csv" and got:
            # only the last field of the last row can be cut short and still give a row
            last, want = got[-1], by_id[got[-1]["id"]]
            assert {k: last[k] for k in ("id", "prompt", "chosen")} == {k: want[k] for k in ("id", "prompt", "chosen")}
            assert want["rejected"].startswith(last["rejected"])
            got = got[:-1]
        assert all(r == by_id[r["id"]] for r in got)
        assert [r["id"] for r in got] == [r["id"] for r in rows[: len(got)]]


BAD_BYTES = [b"\x80", b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xc0\xaf"]


@SETTINGS
@given(
    rows=valid_rows(),
    fmt=st.sampled_from(["jsonl", "json", "csv"]),
    where=st.integers(0, 10**6),
    key=st.sampled_from(["prompt", "chosen", "rejected"]),
    bad=st.sampled_from(BAD_BYTES),
)
def test_invalid_utf8_names_the_row_and_field(tmp_path_factory, rows, fmt, where, key, bad):
    """Bytes that are not UTF-8 inside one field: a DataFormatError naming that row and field, or a skip."""
    marker = "\ue000"  # a private-use character the strategies never draw
    target = where % len(rows)
    rows = [{k: v.replace(marker, "") for k, v in r.items()} for r in rows]
    rows[target][key] = marker + rows[target][key]
    path = write_any(tmp_path_factory.mktemp("utf8") / f"data.{fmt}", rows)
    path.write_bytes(path.read_bytes().replace(marker.encode(), bad))
    unit = "line" if fmt == "jsonl" else "row"
    number = target + 1 if fmt != "jsonl" else target + 1  # one row per line
    with pytest.raises(DataFormatError) as info:
        load_preferences(path)
    message = str(info.value)
    assert message.startswith(f"{path}, {unit} {number}, field {key!r}: invalid UTF-8"), message
    assert "save the file as UTF-8" in message
    if len(rows) > 1:
        ps = load_preferences(path, on_error="skip")
        assert [(s.row, s.field) for s in ps.skipped] == [(number, key)]
        assert ps.frame["id"].tolist() == [r["id"] for i, r in enumerate(rows) if i != target]


def test_a_row_split_by_a_bare_carriage_return_is_named(tmp_path):
    """pandas' to_csv leaves a lone \\r unquoted; the row it splits is one named error, later rows keep their numbers."""
    path = tmp_path / "cr.csv"
    rows = [
        {"prompt": "p", "chosen": "c", "rejected": "r", "category": "k\rk"},
        {"prompt": "p", "chosen": "c2", "rejected": "r2", "category": "k"},
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    assert b"k\rk\n" in path.read_bytes()  # unquoted
    with pytest.raises(DataFormatError) as info:
        load_preferences(path)
    message = str(info.value)
    assert message.startswith(f"{path}, row 1: the row ends at a bare carriage return")
    assert "write the file again with quoting=csv.QUOTE_ALL" in message
    ps = load_preferences(path, on_error="skip")
    assert [s.row for s in ps.skipped] == [1] and ps.frame["id"].tolist() == ["cr-2"]
    # the same rows written with every field quoted load unchanged
    pd.DataFrame(rows).to_csv(path, index=False, quoting=csv.QUOTE_ALL)
    assert load_preferences(path).frame["category"].tolist() == ["k\rk", "k"]
