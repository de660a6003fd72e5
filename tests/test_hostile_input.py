"""Hostile and broken input (issue 14): a correct result or a clear error, never a silent wrong one.

Every case writes a real file (JSON lines, CSV, Parquet, SQLite, Python modules) into
``tmp_path`` and goes through the public loaders, the real score cache and the CLI.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import struct
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from notebook_helpers import make_notebook

from workbench.cli import main
from workbench.data import DataFormatError, from_frame, from_records, load_preferences
from workbench.models import CallableRM, load_reward_model, score_texts
from workbench.models.cache import ScoreCache, ScoreCacheWarning, score_checksum
from workbench.models.demo import demo_model_dir
from workbench.models.fingerprint import module_files
from workbench.paths import cache_dir, model_dir
from workbench.reports.pipeline import AuditPlan, kernel_pythonpath, python_module_dirs
from workbench.reports.render import escape_markdown, escape_text

NAN_ADVICE = "leave the field out or null for the default"


def write_lines(path: Path, lines: list[str | bytes]) -> Path:
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    return path


# --------------------------------------------------------------------------- NaN labels


def test_nan_label_is_an_error_in_every_format(tmp_path):
    good = {"prompt": "p", "chosen": "c", "rejected": "r"}
    jsonl = write_lines(
        tmp_path / "n.jsonl", [json.dumps(good), '{"prompt": "p", "chosen": "c", "rejected": "r", "label": NaN}']
    )
    csv_path = tmp_path / "n.csv"
    csv_path.write_text("prompt,chosen,rejected,label\np,c,r,\np,c,r,NaN\n")
    parquet = tmp_path / "n.parquet"
    # a real NaN value (not a null) in a float column; the null in row 1 stays "missing"
    pq.write_table(
        pa.table(
            {
                "prompt": ["p", "p"],
                "chosen": ["c", "c"],
                "rejected": ["r", "r"],
                "label": pa.array([None, float("nan")], type=pa.float64()),
            }
        ),
        parquet,
    )
    for path, where in ((jsonl, "line 2"), (csv_path, "row 2"), (parquet, "row 2")):
        with pytest.raises(DataFormatError) as info:
            load_preferences(path)
        assert str(info.value).startswith(f"{path}, {where}, field 'label': expected a finite number, got NaN")
        assert NAN_ADVICE in str(info.value)
        skipped = load_preferences(path, on_error="skip")
        assert len(skipped) == 1 and skipped.frame["label"].tolist() == [1.0]  # null -> the default 1.0
        assert skipped.skip_summary()["field"].tolist() == ["label"]
    with pytest.raises(DataFormatError, match=r"^<dataframe>, row 1, field 'label': expected a finite number, got NaN"):
        from_frame(pd.DataFrame({"prompt": ["p"], "chosen": ["c"], "rejected": ["r"], "label": [np.nan]}))


# --------------------------------------------------------------------------- identical pairs, contradicting votes


def test_identical_pairs_and_contradicting_votes_are_flagged_and_skips_counted(tmp_path):
    rows = [
        {"prompt": "p", "chosen": "same", "rejected": "same"},
        {"prompt": "p", "chosen": "a", "rejected": "b", "votes_chosen": 1, "votes_rejected": 4, "label": 1.0},
        {"prompt": "p", "chosen": "a", "rejected": "b", "votes_chosen": 4, "votes_rejected": 1, "label": 0.2},
        {"prompt": "p", "chosen": "a", "rejected": "b", "votes_chosen": 3, "votes_rejected": 1, "label": 0.9},
        {"prompt": "p", "chosen": "a", "rejected": "b", "votes_chosen": 2, "votes_rejected": 2, "label": 1.0},
        {"prompt": "p", "chosen": "a", "rejected": "b", "votes_chosen": 1, "votes_rejected": 3},
    ]
    path = write_lines(tmp_path / "pairs.jsonl", [json.dumps(r) for r in rows])
    with pytest.raises(DataFormatError) as info:
        load_preferences(path)
    assert str(info.value) == (
        f"{path}, line 1, field 'rejected': identical to 'chosen': a preference pair needs two different "
        "responses (fix or drop the row)"
    )
    ps = load_preferences(path, on_error="skip")
    # kept: agreeing votes (0.9 with 3:1), a tie in votes with a hard label, votes alone (label 1/4)
    assert ps.frame["label"].tolist() == [0.9, 1.0, 0.25]
    assert [(s.row, s.field) for s in ps.skipped] == [(1, "rejected"), (2, "label"), (3, "label")]
    assert "label 1 contradicts the votes (1 for 'votes_chosen', 4 for 'votes_rejected')" in ps.skipped[1].reason
    summary = ps.skip_summary()
    assert summary["count"].sum() == 3 and ps.n_read == 6
    # the column mapping names the input columns
    with pytest.raises(DataFormatError, match=r"row 1, field 'worse': identical to 'better'"):
        from_records([{"prompt": "p", "better": "x", "worse": "x"}], columns={"chosen": "better", "rejected": "worse"})


# --------------------------------------------------------------------------- invalid UTF-8 and lone surrogates


def test_invalid_utf8_and_lone_surrogates_name_file_line_and_field(tmp_path):
    good = b'{"prompt": "p", "chosen": "fine", "rejected": "r"}'
    jsonl = write_lines(
        tmp_path / "u.jsonl",
        [
            good,
            b'{"prompt": "p", "chosen": "caf\xe9", "rejected": "r"}',
            b'{"prompt": "p\\ud800", "chosen": "c", "rejected": "r"}',
        ],
    )
    with pytest.raises(DataFormatError) as info:
        load_preferences(jsonl)
    assert str(info.value).startswith(f"{jsonl}, line 2, field 'chosen': invalid UTF-8 (byte 0xe9")
    assert "save the file as UTF-8" in str(info.value)
    ps = load_preferences(jsonl, on_error="skip")
    assert ps.frame["chosen"].tolist() == ["fine"]
    assert [(s.row, s.field) for s in ps.skipped] == [(2, "chosen"), (3, "prompt")]
    assert "lone surrogate \\ud800 at character 2" in ps.skipped[1].reason

    csv_path = tmp_path / "u.csv"
    csv_path.write_bytes(b"prompt,chosen,rejected\np,ok,r\np,bad\xff\xfe,r\n")
    with pytest.raises(DataFormatError, match=r"u\.csv, row 2, field 'chosen': invalid UTF-8 \(byte 0xff"):
        load_preferences(csv_path)
    assert load_preferences(csv_path, on_error="skip").frame["chosen"].tolist() == ["ok"]

    as_list = tmp_path / "u.json"
    as_list.write_bytes(
        b'[{"prompt": "p", "chosen": "ok", "rejected": "r"}, {"prompt": "\x80", "chosen": "c", "rejected": "r"}]'
    )
    with pytest.raises(DataFormatError, match=r"u\.json, row 2, field 'prompt': invalid UTF-8 \(byte 0x80"):
        load_preferences(as_list)
    assert len(load_preferences(as_list, on_error="skip")) == 1
    with pytest.raises(DataFormatError, match=r"^<records>, row 1, field 'rejected': lone surrogate"):
        from_records([{"prompt": "p", "chosen": "c", "rejected": "r\ud83d"}])


def test_empty_and_garbage_parquet_name_the_file(tmp_path):
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(random.Random(0).randbytes(5000))
    for path in (empty, garbage):
        with pytest.raises(DataFormatError) as info:
            load_preferences(path)
        assert str(info.value).startswith(f"{path}: not a readable Parquet file")
        assert "write it again" in str(info.value)


def test_random_truncation_and_odd_text_give_rows_or_named_errors(tmp_path):
    """A seeded fuzz: every outcome is the input read back, or a DataFormatError naming the file."""
    rng = random.Random(14)
    alphabet = ["a", " ", "\n", "\t", "\x00", "\x1b", "\u202e", "é", "漢", "🙂", '"', "\\", ",", "\ufeff", "`"]
    rows = []
    for i in range(30):
        text = lambda: "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))  # noqa: E731
        rows.append({"id": f"r{i}", "prompt": text(), "chosen": "x" + text(), "rejected": "y" + text()})
    for fmt in ("jsonl", "csv", "parquet"):
        path = tmp_path / f"fuzz.{fmt}"
        frame = pd.DataFrame(rows)
        if fmt == "jsonl":
            path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        elif fmt == "csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path)
        loaded = load_preferences(path)
        assert loaded.frame[["id", "prompt", "chosen", "rejected"]].to_dict("records") == rows
        data = path.read_bytes()
        for cut in sorted(rng.sample(range(1, len(data)), 12)):
            path.write_bytes(data[:cut])
            try:
                ps = load_preferences(path, on_error="skip")
            except DataFormatError as exc:
                assert str(path) in str(exc)
                continue
            got = ps.frame[["id", "prompt", "chosen", "rejected"]].to_dict("records")
            by_id = {r["id"]: r for r in rows}
            # a row that survives is the input row, except the very last one a cut may have shortened
            assert all(r == by_id[r["id"]] for r in got[:-1])
            path.write_bytes(data)


# --------------------------------------------------------------------------- scores: files


def test_scores_files_keep_numeric_looking_texts(tmp_path):
    prompts = ["007", "1e3", "true", "NA"]
    responses = ["0.50", "0.5", "null", ""]
    scores = [1.0, 2.0, 3.0, 4.0]
    frame = pd.DataFrame({"prompt": prompts, "response": responses, "score": scores})
    paths = {
        "csv": tmp_path / "s.csv",
        "jsonl": tmp_path / "s.jsonl",
        "json": tmp_path / "s.json",
        "parquet": tmp_path / "s.parquet",
    }
    frame.to_csv(paths["csv"], index=False)
    paths["jsonl"].write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict("records")))
    paths["json"].write_text(json.dumps(frame.to_dict("records")))
    frame.to_parquet(paths["parquet"])
    for path in paths.values():
        rm = load_reward_model(f"scores:{path}")
        got = score_texts(rm, prompts[::-1], responses[::-1], cache=None, progress=False).scores
        assert got.tolist() == scores[::-1], path.name
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p", "response": "a", "score": 1}\n{"prompt": "p", "response": 0.5, "score": 2}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl, line 2, field 'response': expected a string, got float 0\.5"):
        load_reward_model(f"scores:{bad}")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(ValueError, match=r"broken\.parquet: not a readable Parquet file"):
        load_reward_model(f"scores:{broken}")


# --------------------------------------------------------------------------- python: fingerprints


@pytest.fixture
def local_package(tmp_path, monkeypatch):
    root = tmp_path / "src"
    pkg = root / "hostile_rm_pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "helper.py").write_text("SCALE = 2.0\n")
    (pkg / "rm.py").write_text(
        "from hostile_rm_pkg.helper import SCALE\n\n\ndef score(prompts, responses):\n"
        "    return [SCALE * len(r) for r in responses]\n"
    )
    monkeypatch.syspath_prepend(str(root))
    yield pkg
    for name in [m for m in sys.modules if m.startswith("hostile_rm_pkg")]:
        del sys.modules[name]


def test_python_spec_fingerprint_covers_the_package_and_takes_a_version(local_package):
    with pytest.warns(UserWarning, match=r"python:hostile_rm_pkg\.rm:score: no version given.*@v2"):
        first = load_reward_model("python:hostile_rm_pkg.rm:score")
    assert {p.name for p in module_files(sys.modules["hostile_rm_pkg.rm"])} == {"__init__.py", "helper.py", "rm.py"}
    (local_package / "helper.py").write_text("SCALE = 3.0\n")  # the function's own source is unchanged
    with pytest.warns(UserWarning, match="no version given"):
        edited = load_reward_model("python:hostile_rm_pkg.rm:score")
    assert edited.fingerprint != first.fingerprint
    (local_package / "weights.bin").write_bytes(b"\x00\x01")  # a data file in the package counts too
    with pytest.warns(UserWarning, match="no version given"):
        assert load_reward_model("python:hostile_rm_pkg.rm:score").fingerprint != edited.fingerprint

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit version: no warning
        v3 = load_reward_model("python:hostile_rm_pkg.rm:score@v3")
        as_dict = load_reward_model({"spec": "python:hostile_rm_pkg.rm:score", "version": "v3"})
        v4 = load_reward_model("python:hostile_rm_pkg.rm:score@v4")
        pinned = load_reward_model({"spec": "python:hostile_rm_pkg.rm:score", "fingerprint": "mine"})
    assert v3.fingerprint == as_dict.fingerprint != v4.fingerprint
    assert v3.describe()["version"] == "v3" and v3.name == "hostile_rm_pkg.rm:score"
    assert pinned.fingerprint == "mine"
    (local_package / "helper.py").write_text("SCALE = 5.0\n")
    assert load_reward_model("python:hostile_rm_pkg.rm:score@v3").fingerprint == v3.fingerprint
    with pytest.raises(ValueError, match="nothing after '@'"):
        load_reward_model("python:hostile_rm_pkg.rm:score@")
    with pytest.raises(ValueError, match="give one version"):
        load_reward_model({"spec": "python:hostile_rm_pkg.rm:score@v1", "version": "v2"})
    with pytest.raises(ModuleNotFoundError, match=r"cannot import 'no_such_mod_14'.*PYTHONPATH"):
        load_reward_model("python:no_such_mod_14:score")
    with pytest.raises(AttributeError, match=r"rm\.py has no attribute 'nope'"):
        load_reward_model("python:hostile_rm_pkg.rm:nope@v1")


def test_callable_rm_fingerprint_follows_its_module_file(tmp_path, monkeypatch):
    mod = tmp_path / "hostile_callable_mod.py"
    mod.write_text("K = 1\n\n\ndef f(prompts, responses):\n    return [K] * len(responses)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import hostile_callable_mod

    try:
        before = CallableRM(hostile_callable_mod.f).fingerprint
        mod.write_text("K = 2\n\n\ndef f(prompts, responses):\n    return [K] * len(responses)\n")
        assert CallableRM(hostile_callable_mod.f).fingerprint != before
        assert (
            CallableRM(hostile_callable_mod.f, version="a").fingerprint
            == CallableRM(hostile_callable_mod.f, version="a").fingerprint
        )
        with pytest.raises(ValueError, match="not both"):
            CallableRM(hostile_callable_mod.f, version="a", fingerprint="b")
    finally:
        del sys.modules["hostile_callable_mod"]


# --------------------------------------------------------------------------- the score cache


def _flip_one_bit(path: Path, key: str) -> None:
    con = sqlite3.connect(path)
    (value,) = con.execute("SELECT score FROM scores_v2 WHERE key = ?", (key,)).fetchone()
    bits = struct.unpack("<q", struct.pack("<d", value))[0] ^ (1 << 3)
    con.execute("UPDATE scores_v2 SET score = ? WHERE key = ?", (struct.unpack("<d", struct.pack("<q", bits))[0], key))
    con.commit()
    con.close()


def test_a_flipped_bit_in_a_cached_score_is_detected_and_recomputed(tmp_path):
    calls = []

    def score(prompts, responses):
        calls.append(len(responses))
        return [len(r) + 0.25 for r in responses]

    rm = CallableRM(score, version="1")
    cache = ScoreCache(tmp_path / "c.sqlite")
    texts = ["a", "bb", "ccc"]
    first = score_texts(rm, ["p"] * 3, texts, cache=cache, progress=False)
    assert first.scores.tolist() == [1.25, 2.25, 3.25] and calls == [3]
    con = sqlite3.connect(cache.path)
    keys = [k for (k,) in con.execute("SELECT key FROM scores_v2")]
    con.close()
    assert len(keys) == 3
    # every stored score carries its checksum
    stored = dict(sqlite3.connect(cache.path).execute("SELECT key, checksum FROM scores_v2").fetchall())
    assert all(stored[k] == score_checksum(k, v) for k, v in cache.get_many(keys).items())
    _flip_one_bit(cache.path, keys[0])
    with pytest.warns(ScoreCacheWarning, match=r"c\.sqlite: 1 cached score\(s\) failed their checksum"):
        again = score_texts(rm, ["p"] * 3, texts, cache=cache, progress=False)
    assert again.scores.tolist() == first.scores.tolist()  # the damaged one was recomputed, not served
    assert calls == [3, 1] and again.n_cached == 2 and cache.n_corrupt == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rewritten: a third run is clean and fully cached
        assert score_texts(rm, ["p"] * 3, texts, cache=cache, progress=False).n_cached == 3


@pytest.mark.parametrize("damage", ["random_bytes", "truncated", "bad_page"])
def test_a_corrupt_cache_file_is_moved_aside_and_rebuilt(tmp_path, damage):
    path = tmp_path / "scores.sqlite"
    cache = ScoreCache(path)
    cache.put_many({f"key-{i}": i / 7 for i in range(3000)})
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    data = path.read_bytes()
    rng = random.Random(0)
    if damage == "random_bytes":
        path.write_bytes(rng.randbytes(len(data)))
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 3])
    else:
        page = 4096  # page 2 onwards: the root of the scores table, which every lookup reads
        path.write_bytes(data[:page] + rng.randbytes(2 * page) + data[3 * page :])
    rm = CallableRM(lambda p, r: [float(len(x)) for x in r], version="1")
    with pytest.warns(ScoreCacheWarning) as record:
        result = score_texts(rm, ["p", "p"], ["ab", "abc"], cache=ScoreCache(path), progress=False)
    message = str(record[0].message)
    assert f"score cache {path} is damaged" in message and "moved it to" in message
    assert "WORKBENCH_CACHE_DIR" in message
    assert result.scores.tolist() == [2.0, 3.0]
    aside = list(tmp_path.glob("scores.sqlite.corrupt-*"))
    assert len(aside) >= 1 and str(aside[0]) in " ".join(str(r.message) for r in record)
    assert len(ScoreCache(path)) == 2  # the rebuilt cache holds the new scores


def test_cache_folder_that_cannot_be_created_names_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match=r"cannot create the score cache folder .*file.*WORKBENCH_CACHE_DIR"):
        ScoreCache(blocker / "sub" / "scores.sqlite")


# --------------------------------------------------------------------------- where caches and models live


def test_moving_the_score_cache_does_not_move_the_demo_models(tmp_path, monkeypatch):
    monkeypatch.delenv("WORKBENCH_MODEL_DIR", raising=False)
    before = demo_model_dir("demo-clean")
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "new-cache"))
    assert cache_dir() == tmp_path / "new-cache"
    assert ScoreCache().path == tmp_path / "new-cache" / "scores.sqlite"
    assert demo_model_dir("demo-clean") == before  # not retrained just because the score cache moved
    monkeypatch.setenv("WORKBENCH_MODEL_DIR", str(tmp_path / "models"))
    assert model_dir() == tmp_path / "models"
    assert demo_model_dir("demo-clean") == tmp_path / "models" / "demo-models" / before.name


# --------------------------------------------------------------------------- the CLI before any notebook runs


@pytest.fixture
def one_notebook(tmp_path):
    folder = tmp_path / "nbs"
    folder.mkdir()
    make_notebook(folder / "01_x.ipynb", 'model = "m"  # RM\ndata = "golden"  # data\n', "print(model)")
    return folder


def test_cli_exit_code_2_for_inputs_found_wrong_before_the_notebooks(one_notebook, tmp_path, capsys):
    base = ["audit", "--notebook-dir", str(one_notebook)]
    out = tmp_path / "out"
    missing = tmp_path / "nowhere" / "pairs.jsonl"
    assert main([*base, "--model", "demo-clean", "--data", str(missing), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--data {str(missing)!r}: no such file or folder" in err and not out.exists()
    assert main([*base, "--model", "demo-clean", "--data", "missing_here.csv", "--out", str(out)]) == 2
    assert "'missing_here.csv': no such file or folder (relative paths are taken from" in capsys.readouterr().err

    as_file = tmp_path / "report.txt"
    as_file.write_text("not a folder")
    assert main([*base, "--model", "demo-clean", "--out", str(as_file)]) == 2
    assert f"--out {str(as_file)!r} is a file" in capsys.readouterr().err
    assert main([*base, "--model", "demo-clean", "--out", str(as_file / "sub")]) == 2
    assert "cannot be created" in capsys.readouterr().err and as_file.read_text() == "not a folder"

    assert main([*base, "--model", f"scores:{tmp_path / 'no.csv'}", "--out", str(out)]) == 2
    assert "--model 'scores:" in capsys.readouterr().err
    assert main([*base, "--model", "demo-clean", "--model-version", "v2", "--out", str(out)]) == 2
    assert "--model-version applies to python:module:function models" in capsys.readouterr().err
    assert main([*base, "--model", "python:m:f@v1", "--model-version", "v2", "--out", str(out)]) == 2
    assert "already names a version" in capsys.readouterr().err
    assert not out.exists()


def test_python_module_folders_reach_the_kernels(tmp_path, monkeypatch):
    (tmp_path / "hostile_localmod.py").write_text("def f(prompts, responses):\n    return [1.0] * len(responses)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plan = AuditPlan(
        {"model": "python:hostile_localmod:f"},
        {Path("a.ipynb"): {"model": "python:hostile_localmod:f@v1", "models": "demo-clean,python:json:dumps"}},
        {},
    )
    assert python_module_dirs(plan) == [str(tmp_path.resolve())]  # json lives in the Python installation
    monkeypatch.setenv("PYTHONPATH", "/already/there")
    with kernel_pythonpath([str(tmp_path)]):
        assert os.environ["PYTHONPATH"] == f"{tmp_path}{os.pathsep}/already/there"
    assert os.environ["PYTHONPATH"] == "/already/there"


@pytest.mark.slow
def test_python_localmod_from_the_working_directory_runs_in_the_notebooks(tmp_path, monkeypatch):
    """``python -m workbench audit --model python:localmod:fn`` run where localmod.py lives."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "hostile_kernel_mod.py").write_text(
        "def score(prompts, responses):\n    return [len(r) for r in responses]\n"
    )
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    make_notebook(
        nbs / "01_use.ipynb",
        'model = "m"  # RM\n',
        "from workbench.models import load_reward_model\n"
        "rm = load_reward_model(model)\n"
        "print('scores', rm.score_items([('p', 'abcd', None)]).tolist())",
    )
    monkeypatch.chdir(work)
    monkeypatch.syspath_prepend(str(work))  # what `python -m` does for its working directory
    monkeypatch.delenv("PYTHONPATH", raising=False)
    out = tmp_path / "out"
    code = main(
        ["audit", "--model", "python:hostile_kernel_mod:score", "--model-version", "v1", "--notebook-dir", str(nbs)]
        + ["--out", str(out), "--timeout", "120"]
    )
    assert code == 0, (out / "01_use.html").read_text()[-3000:] if (out / "01_use.html").exists() else code
    assert "scores [4.0]" in (out / "01_use.html").read_text()
    assert "PYTHONPATH" not in os.environ
    sys.modules.pop("hostile_kernel_mod", None)


# --------------------------------------------------------------------------- escaping data for Markdown


MARKDOWN_PAYLOADS = [
    "x`[a](javascript:alert(1))`",
    "[click](javascript:alert(1))",
    "![img](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "$\\href{javascript:alert(1)}{x}$",
    "<javascript:alert(1)>",
    "&lt;b&gt; &#106;avascript:alert(1)",
    "\u202egnp.exe",
    "line\n\n# heading\n\n* list",
]


def test_escape_markdown_leaves_no_markup_in_nbconverts_renderer():
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    raw = markdown2html_mistune("`" + MARKDOWN_PAYLOADS[0] + "`")
    assert 'href="javascript:' in raw  # the hole: a backtick closes the code span and the link goes live
    for payload in MARKDOWN_PAYLOADS:
        rendered = markdown2html_mistune(f"**data** {escape_markdown(payload)}")
        for tag in ("<a ", "<img", "<script", "<code", "<h1", "<li", "<em", "\u202e"):
            assert tag not in rendered, (payload, rendered)
    assert escape_text("a\u202eb") == "a\\u202eb"
    assert "\\u202e" in markdown2html_mistune(escape_markdown("\u202e"))
